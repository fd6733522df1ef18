//! The driver task: the only owner of the [`Replica`]. It feeds inputs in, and carries
//! out the outputs in the order the replica returned them.
//!
//! It never waits on a peer or on the disk: Persist goes to [`GroupCommit`] (one batch
//! on a blocking thread, the rest queued), Send goes to a bounded per-peer queue that
//! drops when full, Reply completes a oneshot. Bursts of inputs are handled before the
//! next batch goes to disk, so concurrent proposals share one fsync.
//!
//! Snapshots: an `Output::Snapshot` carries an O(1) clone of the state machine; it
//! is serialized on the low-priority background thread (one at a time, paced) while
//! the replica keeps serving, and the bytes come back as `Input::SnapshotReady`,
//! which compacts the log. The snapshot's file and the deletion of the log segments
//! it covers go to the same thread (see `background` and `disk`).

use super::background::Background;
use super::disk::{Compactor, Disk, GroupCommit, PersistOp};
use super::metrics::Metrics;
use super::transport::Transport;
use crate::engine::{DurableWrite, Index, NodeId, PeerMessage, SnapshotData};
use crate::kv::KvOp;
use crate::kv::{Layout, SnapshotSource};
use crate::replica::{ClientRequest, Input, Output, Replica, RequestId, Response, Status};
use crate::storage::Paced;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::MissedTickBehavior;

/// Capacity of the driver's input queue; a full queue makes the HTTP layer answer 503.
pub const INPUT_QUEUE: usize = 8192;
/// Most inputs handled in one burst before outputs reach the disk and the network.
const BURST: usize = 1024;
/// Most client requests waiting for the replica at once.
const MAX_PENDING: usize = 16384;
/// Every this many ticks, forget waiters whose HTTP request has given up.
const PRUNE_EVERY_TICKS: u64 = 100;
/// Most `POST /admin/snapshot` callers waiting at once; more are answered at once
/// with the current snapshot index.
const MAX_SNAPSHOT_WAITERS: usize = 64;

/// What the rest of the server asks of the driver.
#[derive(Debug)]
pub enum DriverMsg {
    Client {
        request: ClientRequest,
        reply: oneshot::Sender<Response>,
    },
    Membership {
        voters: Vec<NodeId>,
        reply: oneshot::Sender<Response>,
    },
    Transfer {
        to: NodeId,
    },
    Peer(PeerMessage),
    /// Take a snapshot now; answered with the index the newest snapshot covers.
    Snapshot {
        reply: oneshot::Sender<Index>,
    },
}

/// A client waiting for its answer. Reads are never indeterminate, so at shutdown a
/// read gets "unavailable" while a proposed write gets "indeterminate".
struct Waiter {
    tx: oneshot::Sender<Response>,
    is_read: bool,
}

/// The index a serialized snapshot covers, and its bytes and their layout (or why
/// there are none).
type SnapshotBytes = (Index, Result<(SnapshotData, Layout), crate::kv::KvError>);
type SnapshotJob = oneshot::Receiver<SnapshotBytes>;

pub struct Driver<D: Disk> {
    id: NodeId,
    replica: Replica,
    disk: GroupCommit<D>,
    transport: Transport,
    pending: HashMap<RequestId, Waiter>,
    next_request: RequestId,
    status_tx: watch::Sender<Status>,
    metrics: Arc<Metrics>,
    ticks: u64,
    /// The snapshot being serialized on a blocking thread.
    snapshot_job: Option<SnapshotJob>,
    /// The index `snapshot_job` covers.
    serializing: Index,
    snapshot_waiters: Vec<oneshot::Sender<Index>>,
    /// While the replica takes in our own serialized snapshot through this index:
    /// the Persist carrying it only compacts, so its file is written off the
    /// write path (see `disk`).
    compacting: Option<Index>,
    compactor: Compactor,
    background: Background,
}

impl<D: Disk> Driver<D> {
    pub fn new(
        id: NodeId,
        replica: Replica,
        disk: D,
        transport: Transport,
        status_tx: watch::Sender<Status>,
        metrics: Arc<Metrics>,
        background: Background,
    ) -> Self {
        let disk = GroupCommit::new(disk);
        Driver {
            compactor: Compactor::new(disk.snapshot_dir(), background.clone()),
            background,
            id,
            replica,
            disk,
            transport,
            pending: HashMap::new(),
            next_request: 1,
            status_tx,
            metrics,
            ticks: 0,
            snapshot_job: None,
            serializing: 0,
            snapshot_waiters: Vec::new(),
            compacting: None,
        }
    }

    /// Runs until `shutdown` flips or every sender is gone, then answers every waiting
    /// client and makes everything queued durable. A disk error ends the node: it can
    /// no longer keep its promises.
    pub async fn run(
        mut self,
        mut rx: mpsc::Receiver<DriverMsg>,
        tick: Duration,
        mut shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<()> {
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        self.publish();
        loop {
            tokio::select! {
                biased;
                done = self.disk.finished() => {
                    let done = done?;
                    self.metrics.fsyncs.fetch_add(1, Relaxed);
                    self.metrics.persisted_batches.fetch_add(done.ops as u64, Relaxed);
                    self.metrics.observe_fsync(done.sync_time);
                    self.compactor.placed(done.installs);
                    self.metrics.snapshots_dropped.fetch_add(done.dropped as u64, Relaxed);
                    if !done.obsolete.is_empty() {
                        self.compactor.delete(done.obsolete);
                    }
                    self.step(Input::Persisted { seq: done.seq });
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    let mut inputs = Vec::new();
                    self.accept(msg, &mut inputs);
                    for _ in 1..BURST {
                        match rx.try_recv() {
                            Ok(msg) => self.accept(msg, &mut inputs),
                            Err(_) => break,
                        }
                    }
                    self.step_many(inputs);
                }
                job = snapshot_done(&mut self.snapshot_job) => {
                    self.snapshot_job = None;
                    match job {
                        Ok((index, Ok((data, layout)))) => {
                            self.metrics.snapshots_taken.fetch_add(1, Relaxed);
                            if layout.deltas > 0 {
                                self.metrics.snapshot_deltas.fetch_add(1, Relaxed);
                            }
                            tracing::info!(
                                index,
                                bytes = data.len(),
                                deltas = layout.deltas,
                                "snapshot taken"
                            );
                            self.compacting = Some(index);
                            self.step(Input::SnapshotReady { index, data, layout });
                            self.compacting = None;
                        }
                        // No compaction this time; the next snapshot may start.
                        Ok((index, Err(e))) => {
                            tracing::error!(index, error = %e, "snapshot serialization failed");
                            self.step(Input::SnapshotFailed { index });
                        }
                        Err(_) => {
                            tracing::error!("snapshot serialization failed: the snapshot thread is gone");
                            let index = self.serializing;
                            self.step(Input::SnapshotFailed { index });
                        }
                    }
                }
                written = self.compactor.finished() => match written {
                    Ok(prepared) => self.compactor.place(prepared, &mut self.disk),
                    Err(e) => {
                        tracing::error!(error = %e, "compaction snapshot not written; the log stays longer");
                        self.compactor.start_next(&mut self.disk);
                    }
                },
                _ = ticker.tick() => {
                    self.ticks += 1;
                    if self.ticks.is_multiple_of(PRUNE_EVERY_TICKS) {
                        self.pending.retain(|_, w| !w.tx.is_closed());
                    }
                    self.step(Input::Tick);
                    self.metrics.set_engine(self.replica.engine_metrics());
                }
                _ = shutdown.changed() => break,
            }
            self.disk.kick();
            self.answer_snapshot_waiters();
            self.publish();
        }
        rx.close();
        while let Ok(msg) = rx.try_recv() {
            if let DriverMsg::Client { reply, .. } | DriverMsg::Membership { reply, .. } = msg {
                let _ = reply.send(shutting_down());
            }
        }
        for (_, w) in self.pending.drain() {
            let r = if w.is_read {
                shutting_down()
            } else {
                Response::Indeterminate
            };
            let _ = w.tx.send(r);
        }
        self.disk.flush().await?;
        Ok(())
    }

    /// Turns one request into replica input (handled with the rest of its burst, so
    /// that concurrent proposals share one Persist and one Append per peer).
    fn accept(&mut self, msg: DriverMsg, inputs: &mut Vec<Input>) {
        match msg {
            DriverMsg::Client { request, reply } => {
                let is_read = matches!(request.op, KvOp::Get { .. });
                if let Some(id) = self.register(reply, is_read) {
                    self.metrics.proposals.fetch_add(1, Relaxed);
                    inputs.push(Input::Client { id, request });
                }
            }
            DriverMsg::Membership { voters, reply } => {
                if let Some(id) = self.register(reply, false) {
                    inputs.push(Input::ChangeMembership {
                        id,
                        voters,
                        learners: None,
                    });
                }
            }
            DriverMsg::Transfer { to } => inputs.push(Input::TransferLeader { to }),
            DriverMsg::Peer(m) => inputs.push(Input::Message(m)),
            DriverMsg::Snapshot { reply } => {
                if self.snapshot_waiters.len() >= MAX_SNAPSHOT_WAITERS {
                    let _ = reply.send(self.replica.snapshot_index());
                } else {
                    self.snapshot_waiters.push(reply);
                    inputs.push(Input::TakeSnapshot);
                }
            }
        }
    }

    /// Gives the waiter an id, or answers it at once when too many are waiting.
    fn register(&mut self, tx: oneshot::Sender<Response>, is_read: bool) -> Option<RequestId> {
        if self.pending.len() >= MAX_PENDING {
            let _ = tx.send(Response::Rejected {
                reason: "too many requests in flight".into(),
            });
            return None;
        }
        let id = self.next_request;
        self.next_request += 1;
        self.pending.insert(id, Waiter { tx, is_read });
        Some(id)
    }

    fn step(&mut self, input: Input) {
        self.step_many(vec![input]);
    }

    /// Inputs in, their outputs carried out in order.
    fn step_many(&mut self, inputs: Vec<Input>) {
        if inputs.is_empty() {
            return;
        }
        for out in self.replica.handle_many(inputs) {
            match out {
                Output::Persist(DurableWrite::Raft(mut w)) => {
                    if let Some(i) = &w.identity {
                        tracing::info!(
                            cluster = %format!("{:016x}", i.cluster),
                            incarnation = %format!("{:016x}", i.incarnation),
                            "identity recorded"
                        );
                    }
                    // Our own snapshot covers only entries the log holds durably: it
                    // need not be in place before anything else is.
                    let compaction = w
                        .snapshot
                        .take_if(|s| Some(s.meta.last_index) == self.compacting);
                    self.disk
                        .push(PersistOp::Write(Box::new(DurableWrite::Raft(w))));
                    if let Some(s) = compaction {
                        self.compactor.push(s, &mut self.disk);
                    }
                }
                // A Paxos snapshot carries the records it keeps: it rides its write.
                Output::Persist(w) => self.disk.push(PersistOp::Write(Box::new(w))),
                Output::Send(m) => {
                    if m.to() == self.id {
                        tracing::warn!(?m, "replica addressed a message to itself; dropped");
                    } else {
                        self.transport.send(m);
                    }
                }
                Output::Reply { id, response } => {
                    if let Some(w) = self.pending.remove(&id) {
                        self.metrics.replies.fetch_add(1, Relaxed);
                        let _ = w.tx.send(response);
                    }
                }
                Output::Applied { .. } => {
                    self.metrics.applied_entries.fetch_add(1, Relaxed);
                }
                Output::Snapshot { index, source } => self.serialize_snapshot(index, source),
                Output::Restored { index, term } => {
                    self.metrics.snapshots_installed.fetch_add(1, Relaxed);
                    tracing::info!(index, term, "state restored from the leader's snapshot");
                }
                Output::RoleChanged { role, term, leader } => {
                    self.metrics.role_changes.fetch_add(1, Relaxed);
                    tracing::info!(?role, term, ?leader, "role changed");
                }
                Output::Refused(r) => {
                    if self.metrics.refused(r.reason) {
                        tracing::warn!(
                            from = r.from,
                            term = r.term,
                            reason = r.reason,
                            "refused a peer message: {} (logged once per kind and \
                             minute; node_peer_refused_messages_total counts them all)",
                            r.detail
                        );
                    }
                }
            }
        }
    }

    /// Serializes a state-machine clone on a blocking thread. The replica emits one
    /// snapshot at a time, so no job is running here.
    fn serialize_snapshot(&mut self, index: Index, source: SnapshotSource) {
        if self.snapshot_job.is_some() {
            tracing::warn!(index, "snapshot requested while one is being serialized");
            return;
        }
        self.serializing = index;
        let pace = self.background.pace();
        self.snapshot_job = Some(self.background.run(move || {
            // A delta costs about the changes (the base's pieces are shared); only
            // the whole state is paced.
            let r = source.as_delta().transpose().unwrap_or_else(|| {
                let mut out = Paced::new(Vec::new(), pace, None);
                (source.write_whole(&mut out)).map(|layout| (out.into_inner().into(), layout))
            });
            (index, r)
        }));
    }

    /// Answers `/admin/snapshot` callers once no snapshot is in the works: taken,
    /// its file written and put in place durably (or its writing failed, logged).
    fn answer_snapshot_waiters(&mut self) {
        if self.snapshot_waiters.is_empty()
            || self.snapshot_job.is_some()
            || self.replica.snapshot_pending()
            || !self.compactor.is_idle()
        {
            return;
        }
        let index = self.replica.snapshot_index();
        for w in self.snapshot_waiters.drain(..) {
            let _ = w.send(index);
        }
    }

    fn publish(&self) {
        self.status_tx.send_replace(self.replica.status());
    }
}

/// Completes when the running snapshot job does; never when there is none.
async fn snapshot_done(
    job: &mut Option<SnapshotJob>,
) -> Result<SnapshotBytes, oneshot::error::RecvError> {
    match job {
        Some(j) => j.await,
        None => std::future::pending().await,
    }
}

fn shutting_down() -> Response {
    Response::Rejected {
        reason: "shutting down".into(),
    }
}
