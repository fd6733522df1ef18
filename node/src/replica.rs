//! The replica: a consensus engine plus the key-value state machine plus the client
//! requests waiting on them. PURE: no tokio, clock, rand, files or network.
//!
//! A driver (the tokio server, or the simulator) feeds [`Input`]s to
//! [`Replica::handle`] (or a burst of them to [`Replica::handle_many`]) and carries
//! out the returned [`Output`]s **in order**.
//! The order encodes the persistence rule: a message or reply that depends on a
//! write is only returned after the driver has reported that write durable with
//! [`Input::Persisted`]. Hence a `Send` that follows a `Persist` in the same batch
//! never depends on it (it is a leader's Append, which Raft thesis §10.2.1 allows
//! before the leader's own fsync): a driver may send it while the write is in
//! flight.
//!
//! Snapshots are copy-on-write: every `snapshot_every` applied entries (or on
//! [`Input::TakeSnapshot`]) the replica emits [`Output::Snapshot`] with an O(1)
//! clone of the state machine; the driver serializes it off the hot path and hands
//! the bytes back with [`Input::SnapshotReady`], which compacts the log. A snapshot
//! installed from the leader replaces the state machine before later entries apply.

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here and in replica/ (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

pub use crate::consensus::{EngineKind, Mutant, Mutants, Role};
pub use crate::engine::Recovered;
use crate::engine::{
    Committed, Decided, DurableWrite, Engine, EngineReady, Index, Installed, NodeId, PeerMessage,
    ProposeError, Refused,
};
use crate::kv::{
    CHAIN_FACTOR_ONE_BLOB, Command, Kv, KvError, KvOp, KvResult, Layout, SnapshotBase,
    SnapshotSource,
};
use crate::raft::RaftConfig;
use crate::raft::types::{Incarnation, Membership, SnapshotData};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Identifies one in-flight client request inside one node. Assigned by the driver;
/// unique among the requests it has outstanding.
pub type RequestId = u64;

/// Static configuration of one replica: the consensus core's, and what the replica
/// adds to it. Everything random derives from the core's `seed`; the mutants are
/// the core's too (the replica reads `stale_read` and `ack_before_commit`).
#[derive(Clone, Debug)]
pub struct Config {
    pub raft: RaftConfig,
    /// Take a snapshot once per this many applied entries, at the node's own phase
    /// (see [`snapshot_due`]); 0 never.
    pub snapshot_every: u64,
}

/// A client request as it reaches the replica. `(client, seq)` deduplicates retries:
/// a command with a `(client, seq)` already applied is answered with the first result.
/// `client == 0` means "no deduplication".
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientRequest {
    pub client: u64,
    pub seq: u64,
    pub op: KvOp,
}

/// Everything that can happen to a replica.
#[derive(Clone, Debug)]
pub enum Input {
    /// One unit of logical time passed.
    Tick,
    /// A message arrived from a peer.
    Message(PeerMessage),
    /// A client asked something. Reads with `KvOp::Get { stale: true }` are served locally.
    Client {
        id: RequestId,
        request: ClientRequest,
    },
    /// The driver made every `Output::Persist` with `seq <= persisted_seq` durable.
    Persisted { seq: u64 },
    /// Ask the leader to hand leadership to `to` (admin API).
    TransferLeader { to: NodeId },
    /// Propose a membership change (admin API); the replica runs joint consensus.
    /// `learners`: the new learner set (`None` keeps the current learners).
    ChangeMembership {
        id: RequestId,
        voters: Vec<NodeId>,
        learners: Option<Vec<NodeId>>,
    },
    /// Take a snapshot now (admin API), unless nothing was applied since the last
    /// one or one is being serialized already.
    TakeSnapshot,
    /// The driver serialized the state of an `Output::Snapshot` through `index`
    /// (with `SnapshotSource::to_bytes` or its two halves, which also gave the layout).
    SnapshotReady {
        index: Index,
        data: SnapshotData,
        layout: Layout,
    },
    /// The driver could not serialize the state of the `Output::Snapshot` through
    /// `index`: no compaction this time, and the next snapshot may start.
    SnapshotFailed { index: Index },
}

/// What the driver must do, in this order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Make the write durable (in the order its engine documents), then fsync;
    /// afterwards report `Input::Persisted { seq }`. `seq` increases by one with
    /// every Persist.
    Persist(DurableWrite),
    /// Send to a peer. Best effort: the network may drop it.
    Send(PeerMessage),
    /// Answer client request `id`.
    Reply { id: RequestId, response: Response },
    /// For observers (metrics, simulator invariant checks): entries applied to the
    /// state machine, in index order, with their terms.
    Applied { index: Index, term: u64 },
    /// Serialize `source` (the state after applying `index`: an O(1) copy-on-write
    /// clone, and what a delta needs) with `SnapshotSource::to_bytes`, preferably
    /// off the driver's hot path, and hand the bytes back with
    /// `Input::SnapshotReady`. Dropping it is safe (no compaction).
    Snapshot {
        index: Index,
        source: SnapshotSource,
    },
    /// The state machine was replaced by a snapshot through `index` received from
    /// the leader (for metrics and the simulator).
    Restored { index: Index, term: u64 },
    /// The role or leader changed (for logs, metrics and the simulator).
    RoleChanged {
        role: Role,
        term: u64,
        leader: Option<NodeId>,
    },
    /// A peer message was refused: no correct node sends it (for metrics and logs).
    Refused(Refused),
}

/// The answer to a client request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Response {
    /// The operation took effect (or, for a read, observed this state).
    Done(KvResult),
    /// Certainly not applied: this node is not the leader. `leader` is a hint.
    NotLeader { leader: Option<NodeId> },
    /// Indeterminate: the request was proposed but leadership was lost before it
    /// committed; it may or may not be applied later.
    Indeterminate,
    /// Certainly not applied, for another reason (e.g. a full proposal queue).
    Rejected { reason: String },
    /// Certainly not applied, and asking again would fail the same way: the
    /// committed command cannot be decoded, so every replica skipped it, or the
    /// engine does not do this at all (membership changes under Paxos).
    Invalid { reason: String },
}

/// A snapshot of a replica's state for `/status`. Never blocks on consensus.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    /// The engine this node runs.
    pub consensus: EngineKind,
    /// This node's incarnation, and its cluster (0 while it is still joining).
    pub incarnation: Incarnation,
    pub cluster: u64,
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub first_log_index: Index,
    pub last_log_index: Index,
    pub snapshot_index: Index,
    pub membership: Membership,
}

/// Consensus engine + KV + pending requests.
pub struct Replica {
    id: NodeId,
    mutants: Mutants,
    /// The consensus engine, used only through the [`Engine`] interface.
    engine: Box<dyn Engine>,
    kv: Kv,
    /// Proposed writes by the engine's ticket (Raft: the log index): `(request,
    /// term proposed in)`.
    writes: BTreeMap<Index, (RequestId, u64)>,
    /// Reads awaiting leadership confirmation, by read round.
    reads: BTreeMap<u64, (u64, Vec<(RequestId, String)>)>,
    /// Confirmed reads awaiting `applied >= index`, in index order.
    confirmed: VecDeque<(Index, Vec<(RequestId, String)>)>,
    /// Membership changes in progress: `(index of C_old,new, request, term)`.
    /// Answered when a later final configuration (C_new) is applied.
    changes: Vec<(Index, RequestId, u64)>,
    /// Last observed (role, term, leader), to notice changes.
    seen: (Role, u64, Option<NodeId>),
    snapshot_every: u64,
    /// Applied index of the newest snapshot taken, installed or recovered.
    snapshot_index: Index,
    /// An `Output::Snapshot` whose bytes have not come back yet.
    snapshot_in_flight: Option<Index>,
    /// The newest snapshot's bytes, which the next one may extend with the changes
    /// `kv` tracked since (see `kv`'s module docs). `None`: the next is whole.
    snapshot_base: Option<SnapshotBase>,
    /// The state was replaced (a snapshot installed) while `snapshot_in_flight`
    /// was being serialized: its bytes must not become the base.
    in_flight_replaced: bool,
    /// A received snapshot's bytes and their state, decoded before the engine saw
    /// the message (so an undecodable one is refused), waiting for the engine to
    /// install it within the same `handle_many`. Used only for those very bytes: the
    /// engine may refuse the message after all, and another snapshot at the same
    /// index may be the one it installs.
    incoming: Option<(Index, bytes::Bytes, Kv, Layout)>,
    out: Vec<Output>,
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("the recovered snapshot is unreadable: {0}")]
    Snapshot(#[from] KvError),
}

/// Bound on proposals waiting to commit at one leader.
const MAX_PENDING_WRITES: usize = 100_000;
/// Bound on the `Ready` rounds drained per `handle` call.
const MAX_READY_ROUNDS: usize = 16;

impl Replica {
    /// Builds a replica from its configuration and what storage recovered.
    ///
    /// # Panics
    /// When the recovered snapshot cannot be decoded; use [`Replica::try_new`] to
    /// get that as an error instead.
    pub fn new(config: Config, recovered: Recovered) -> Replica {
        match Replica::try_new(config, recovered) {
            Ok(r) => r,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Replica::new`], but reports an unreadable snapshot as an error.
    pub fn try_new(config: Config, recovered: Recovered) -> Result<Replica, ReplicaError> {
        let (mut kv, snapshot_base) = match recovered.snapshot_bytes() {
            Some(data) if !data.is_empty() => {
                let (kv, layout) = Kv::decode_snapshot(&data.contiguous())?;
                (kv, Some(SnapshotBase { data, layout }))
            }
            _ => (Kv::new(), None),
        };
        if config.snapshot_every > 0 || snapshot_base.is_some() {
            kv.begin_changes();
        }
        let id = config.raft.id;
        let mutants = config.raft.mutants;
        let engine = crate::engine::build(config.raft, recovered);
        let seen = (engine.role(), engine.term(), engine.leader());
        let status = engine.status();
        let snapshot_index = status.first_index - 1;
        Ok(Replica {
            id,
            mutants,
            engine,
            kv,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            confirmed: VecDeque::new(),
            changes: Vec::new(),
            seen,
            snapshot_every: config.snapshot_every,
            snapshot_index,
            snapshot_in_flight: None,
            snapshot_base,
            in_flight_replaced: false,
            incoming: None,
            out: Vec::new(),
        })
    }

    /// Feeds one input; returns the outputs to carry out in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        self.handle_many(std::iter::once(input))
    }

    /// Feeds several inputs and collects their outputs together, so that many
    /// client requests become one `Output::Persist` and one Append per peer.
    pub fn handle_many(&mut self, inputs: impl IntoIterator<Item = Input>) -> Vec<Output> {
        for input in inputs {
            self.input(input);
        }
        for _ in 0..MAX_READY_ROUNDS {
            let ready = self.engine.ready();
            let more = !ready.committed.is_empty();
            self.process_ready(ready);
            if !more {
                break;
            }
        }
        // A snapshot the engine did not install now never will be from this decode.
        self.incoming = None;
        std::mem::take(&mut self.out)
    }

    /// The current status (cheap).
    pub fn status(&self) -> Status {
        let e = self.engine.status();
        Status {
            id: self.id,
            consensus: self.engine.kind(),
            incarnation: e.incarnation,
            cluster: e.cluster,
            role: e.role,
            term: e.term,
            leader: e.leader,
            commit_index: e.commit_index,
            applied_index: e.applied_index,
            first_log_index: e.first_index,
            last_log_index: e.last_index,
            snapshot_index: e.first_index - 1,
            membership: e.membership,
        }
    }

    /// The engine's own counters, for `/metrics`.
    pub fn engine_metrics(&self) -> Vec<crate::engine::EngineCounter> {
        self.engine.metrics()
    }

    /// Reads local state without consensus (`?stale=true`).
    pub fn read_local(&self, key: &str) -> Option<serde_json::Value> {
        self.kv.get(key).cloned()
    }

    fn reply(&mut self, id: RequestId, response: Response) {
        self.out.push(Output::Reply { id, response });
    }

    fn input(&mut self, input: Input) {
        match input {
            Input::Tick => self.engine.tick(),
            Input::Message(m) => self.message(m),
            Input::TakeSnapshot => self.maybe_snapshot(true),
            Input::SnapshotReady {
                index,
                data,
                layout,
            } => {
                if self.snapshot_in_flight == Some(index) {
                    self.snapshot_in_flight = None;
                    // The changes tracked since this snapshot began are relative to
                    // it, unless the state was replaced meanwhile.
                    self.snapshot_base = match self.in_flight_replaced {
                        true => self.snapshot_base.take(),
                        false => Some(SnapshotBase {
                            data: data.clone(),
                            layout,
                        }),
                    };
                }
                if self.engine.compact(index, data) {
                    self.snapshot_index = index;
                }
            }
            Input::SnapshotFailed { index } => {
                if self.snapshot_in_flight == Some(index) {
                    self.snapshot_in_flight = None;
                    // The changes up to it were handed over and are lost: the next
                    // snapshot is whole (unless the state was replaced since).
                    if !self.in_flight_replaced {
                        self.snapshot_base = None;
                    }
                }
            }
            Input::Persisted { seq } => self.engine.persisted(seq),
            Input::TransferLeader { to } => self.engine.transfer_leader(to),
            Input::ChangeMembership {
                id,
                voters,
                learners,
            } => match self.engine.change_membership(voters, learners) {
                Ok(index) => self.changes.push((index, id, self.engine.term())),
                Err(e) => self.refuse(id, e),
            },
            Input::Client { id, request } => self.client(id, request),
        }
    }

    fn client(&mut self, id: RequestId, request: ClientRequest) {
        match request.op {
            KvOp::Get { key, stale: true } => {
                let v = self.read_local(&key);
                self.reply(id, Response::Done(KvResult::Value(v)));
            }
            KvOp::Get { key, stale: false } => {
                if self.mutants.stale_read {
                    // Mutant `stale-read`: a linearizable read is answered from the
                    // local state machine of the node that received it, with no
                    // confirmation round, on leader and followers alike, so a lagging
                    // follower or a deposed leader serves old state.
                    let v = self.read_local(&key);
                    self.reply(id, Response::Done(KvResult::Value(v)));
                    return;
                }
                match self.engine.read() {
                    Ok(round) => {
                        let term = self.engine.term();
                        let entry = self.reads.entry(round).or_insert((term, Vec::new()));
                        entry.1.push((id, key));
                    }
                    Err(e) => self.refuse(id, e),
                }
            }
            op => {
                if self.writes.len() >= MAX_PENDING_WRITES {
                    self.refuse(id, ProposeError::Busy);
                    return;
                }
                let cmd = Command {
                    client: request.client,
                    seq: request.seq,
                    op,
                };
                match self.engine.propose(cmd.encode()) {
                    Ok(_) if self.mutants.ack_before_commit => {
                        // Mutant: answer before the entry commits, from local state.
                        let result = self.kv.evaluate(&cmd.op);
                        self.reply(id, Response::Done(result));
                    }
                    Ok(index) => {
                        self.writes.insert(index, (id, self.engine.term()));
                    }
                    Err(e) => self.refuse(id, e),
                }
            }
        }
    }

    /// A peer message. A snapshot's state is decoded here, before the engine acts on
    /// it: one that cannot be decoded is dropped (a correct sender resends it), so
    /// no engine installs bytes the store cannot take. One the engine would refuse
    /// as stale is not decoded.
    fn message(&mut self, m: PeerMessage) {
        // Refused at the door: the engine never sees it.
        let refused = |reason, detail| {
            Output::Refused(Refused {
                from: m.from(),
                term: 0,
                reason,
                detail,
            })
        };
        if m.kind() != self.engine.kind() {
            let r = refused("wrong_engine", "it runs another consensus engine");
            self.out.push(r);
            return;
        }
        // An offer at or below what was applied is refused by every engine (Raft
        // installs only past its commit index, Paxos only past its chosen prefix,
        // both at or past the applied index), so it is not worth decoding: repeated
        // offers after a catch-up would each cost a pass over the whole state here.
        let applied = self.engine.applied_index();
        let fresh = m.snapshot_index().is_some_and(|i| i > applied);
        if let Some((index, data)) = fresh.then(|| m.snapshot_data()).flatten() {
            match kv_from(&data) {
                Ok((kv, layout)) => self.incoming = Some((index, data, kv, layout)),
                Err(_) => {
                    let r = refused(
                        "snapshot_undecodable",
                        "its snapshot's bytes are not a state of the store",
                    );
                    self.out.push(r);
                    return;
                }
            }
        }
        self.engine.step(m);
    }

    /// Emits `Output::Snapshot` when enough was applied since the last snapshot
    /// (see [`snapshot_due`]) or `force`, unless one is being serialized.
    fn maybe_snapshot(&mut self, force: bool) {
        let applied = self.engine.applied_index();
        if self.snapshot_in_flight.is_some() || applied <= self.snapshot_index {
            return;
        }
        let due = snapshot_due(self.id, self.snapshot_every, self.snapshot_index, applied);
        if force || due {
            self.snapshot_in_flight = Some(applied);
            self.in_flight_replaced = false;
            let changes = self.kv.begin_changes();
            let mut source =
                SnapshotSource::after(self.kv.clone(), changes, self.snapshot_base.clone());
            // Paxos stores and sends each snapshot as one blob: a long chain would
            // cost every snapshot, so its chains stay shorter.
            if self.engine.kind() != EngineKind::Raft {
                source = source.chain_factor(CHAIN_FACTOR_ONE_BLOB);
            }
            self.out.push(Output::Snapshot {
                index: applied,
                source,
            });
        }
    }

    /// The index of the newest snapshot (0 without one).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    /// Whether an `Output::Snapshot` is waiting for its `Input::SnapshotReady`.
    pub fn snapshot_pending(&self) -> bool {
        self.snapshot_in_flight.is_some()
    }

    fn refuse(&mut self, id: RequestId, e: ProposeError) {
        let response = match e {
            ProposeError::NotLeader { leader } => Response::NotLeader { leader },
            // The engine never does it: asking again fails the same way.
            ProposeError::Unsupported(reason) => Response::Invalid { reason },
            other => Response::Rejected {
                reason: other.to_string(),
            },
        };
        self.reply(id, response);
    }

    fn process_ready(&mut self, ready: EngineReady) {
        self.out
            .extend(ready.refused.into_iter().map(Output::Refused));
        if let Some(p) = ready.persist {
            self.out.push(Output::Persist(p));
        }
        self.out
            .extend(ready.messages.into_iter().map(Output::Send));
        if let Some(s) = ready.installed {
            self.restore(s);
        }
        let applied_any = !ready.committed.is_empty();
        for e in ready.committed {
            self.apply(e);
        }
        if applied_any {
            self.maybe_snapshot(false);
        }
        for r in ready.reads {
            if let Some((_, reqs)) = self.reads.remove(&r.round) {
                self.confirmed.push_back((r.index, reqs));
            }
        }
        for ticket in ready.abandoned {
            if let Some((id, _)) = self.writes.remove(&ticket) {
                self.reply(id, Response::Indeterminate);
            }
        }
        for round in ready.failed_reads {
            let hint = self.engine.leader().filter(|&l| l != self.id);
            for (id, _) in self.reads.remove(&round).map(|r| r.1).unwrap_or_default() {
                self.reply(id, Response::NotLeader { leader: hint });
            }
        }
        self.serve_reads();
        self.check_role();
    }

    /// The core installed a snapshot from the leader: the state machine becomes it.
    fn restore(&mut self, s: Installed) {
        let index = s.meta.index;
        let decoded = match self.incoming.take() {
            Some((i, bytes, kv, layout))
                if i == index && s.data == SnapshotData::from(bytes.clone()) =>
            {
                Ok((kv, layout))
            }
            _ => kv_from(&s.data.contiguous()),
        };
        // Decoded in `message` before the engine accepted it, so this cannot fail
        // there; keep the old state rather than stop if it somehow does, and
        // never extend bytes that do not decode: the next snapshot is then whole.
        self.snapshot_base = match decoded {
            Ok((kv, layout)) => {
                self.kv = kv;
                Some(SnapshotBase {
                    data: s.data.clone(),
                    layout,
                })
                .filter(|b| !b.data.is_empty())
            }
            Err(_) => None,
        };
        // Later snapshots extend the installed one with the changes from here on.
        self.kv.begin_changes();
        self.in_flight_replaced = self.snapshot_in_flight.is_some();
        self.snapshot_index = index;
        self.out.push(Output::Restored {
            index,
            term: s.meta.term,
        });
    }

    /// Applies one committed entry. Total: a command that cannot be decoded (no
    /// validated proposal is one) changes nothing on any replica, since all of them
    /// decode the same bytes the same way, and its client is told it was not applied.
    fn apply(&mut self, e: Committed) {
        self.out.push(Output::Applied {
            index: e.index,
            term: e.term,
        });
        let result = match &e.value {
            Decided::Command(bytes) => Some(Command::decode(bytes).and_then(|c| self.kv.apply(&c))),
            Decided::Membership {
                voters,
                joint: false,
            } => {
                self.finish_changes(e.index, voters.clone());
                None
            }
            _ => None,
        };
        let Some((id, term)) = e.proposal.and_then(|t| self.writes.remove(&t)) else {
            return;
        };
        let response = match result {
            _ if term != e.term => Response::Indeterminate,
            Some(Ok(r)) => Response::Done(r),
            // An older retry than the client's newest command: its own first
            // attempt may have been applied, and its result is gone.
            Some(Err(KvError::StaleRequest { .. })) => Response::Indeterminate,
            Some(Err(err)) => Response::Invalid {
                reason: err.to_string(),
            },
            None => Response::Indeterminate,
        };
        self.reply(id, response);
    }

    /// A final configuration was applied: changes started before it are done.
    fn finish_changes(&mut self, index: Index, voters: Vec<NodeId>) {
        let done: Vec<RequestId> = self
            .changes
            .iter()
            .filter(|(i, _, _)| *i <= index)
            .map(|(_, id, _)| *id)
            .collect();
        self.changes.retain(|(i, _, _)| *i > index);
        for id in done {
            let value = serde_json::json!({ "voters": voters });
            self.reply(id, Response::Done(KvResult::Value(Some(value))));
        }
    }

    fn serve_reads(&mut self) {
        let applied = self.engine.applied_index();
        while self.confirmed.front().is_some_and(|(i, _)| *i <= applied) {
            let Some((_, reqs)) = self.confirmed.pop_front() else {
                break;
            };
            for (id, key) in reqs {
                let v = self.read_local(&key);
                self.reply(id, Response::Done(KvResult::Value(v)));
            }
        }
    }

    /// Notices role changes; a leader that lost its term fails what it holds:
    /// proposals may still commit (Indeterminate), reads certainly did nothing.
    fn check_role(&mut self) {
        let now = (self.engine.role(), self.engine.term(), self.engine.leader());
        if now == self.seen {
            return;
        }
        let was_leading = self.seen.0 == Role::Leader;
        let still_leading = now.0 == Role::Leader && now.1 == self.seen.1;
        self.seen = now;
        if was_leading && !still_leading {
            // Requests made in a newer term of our own (we lost and regained
            // leadership within one batch) stay: they are still in play.
            let current = (now.0 == Role::Leader).then_some(now.1);
            let writes = std::mem::take(&mut self.writes);
            for (index, (id, term)) in writes {
                if Some(term) == current {
                    self.writes.insert(index, (id, term));
                } else {
                    self.reply(id, Response::Indeterminate);
                }
            }
            let changes = std::mem::take(&mut self.changes);
            for (index, id, term) in changes {
                if Some(term) == current {
                    self.changes.push((index, id, term));
                } else {
                    self.reply(id, Response::Indeterminate);
                }
            }
            let hint = self.engine.leader().filter(|&l| l != self.id);
            let reads = std::mem::take(&mut self.reads);
            let mut failed: Vec<RequestId> = Vec::new();
            for (round, (term, reqs)) in reads {
                if Some(term) == current {
                    self.reads.insert(round, (term, reqs));
                } else {
                    failed.extend(reqs.into_iter().map(|(id, _)| id));
                }
            }
            // Confirmed reads not yet served observed nothing: they fail cleanly.
            let confirmed = std::mem::take(&mut self.confirmed);
            failed.extend(confirmed.into_iter().flat_map(|(_, r)| r).map(|(id, _)| id));
            for id in failed {
                self.reply(id, Response::NotLeader { leader: hint });
            }
        }
        self.out.push(Output::RoleChanged {
            role: now.0,
            term: now.1,
            leader: now.2,
        });
    }
}

/// The state machine a snapshot's data describes (empty data: the empty state),
/// and the layout of those bytes.
fn kv_from(data: &[u8]) -> Result<(Kv, Layout), KvError> {
    if data.is_empty() {
        Ok((Kv::new(), Layout::default()))
    } else {
        Kv::decode_snapshot(data)
    }
}

/// Whether a node that snapshotted at `last` and has applied through `applied` is
/// due for its automatic snapshot (`every == 0`: never).
///
/// Each node snapshots once per `every` entries, when its applied index crosses
/// the next multiple of `every` shifted by a phase of its own ([`snapshot_phase`]).
/// With one period for all, every node would snapshot at the same index, so at the
/// same moment: a leader would find both followers of a three-node cluster busy at
/// once, and on shared machines the nodes would compete for the same cores. With
/// phases spread over the period, no two nodes of a small cluster snapshot together.
/// A snapshot taken or installed off the schedule (forced, or from the leader) is
/// followed by the next at least `every / 2` entries later, after which the node is
/// back on its phase (`last == 0` is no snapshot: the first falls on the phase).
pub fn snapshot_due(id: NodeId, every: u64, last: Index, applied: Index) -> bool {
    if every == 0 || applied <= last || (last > 0 && applied - last < every.div_ceil(2)) {
        return false;
    }
    let phase = snapshot_phase(id, every);
    (applied + phase) / every > (last + phase) / every
}

/// Node `id`'s shift of the period of `every` entries, in `0..every` (it snapshots
/// where `applied + phase` is a multiple of `every`): the fractional part of `id`
/// times the golden ratio, scaled to the period. Those fractions spread any few
/// consecutive ids evenly (ids 1, 2, 3 at 0.62, 0.24 and 0.85 of the period; no two
/// within 0.14 of it for ids 1 to 5).
pub fn snapshot_phase(id: NodeId, every: u64) -> u64 {
    // 2^64 divided by the golden ratio, odd (Fibonacci hashing).
    const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;
    let frac = id.wrapping_mul(GOLDEN) >> 32;
    ((u128::from(frac) * u128::from(every)) >> 32) as u64
}

#[cfg(test)]
mod tests;
