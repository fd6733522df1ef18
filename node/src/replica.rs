//! The replica: the Raft core plus the key-value state machine plus the client
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

mod engine;

use crate::kv::{Command, Kv, KvError, KvOp, KvResult};
use crate::raft::types::{
    Entry, HardState, Identity, Incarnation, Index, Membership, Message, MessageBody, NodeId,
    Payload, Snapshot, Term,
};
use crate::raft::validate::Rejection;
use crate::raft::{ProposeError, Raft, RaftConfig};
use engine::{Consensus, Ready};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Identifies one in-flight client request inside one node. Assigned by the driver;
/// unique among the requests it has outstanding.
pub type RequestId = u64;

/// Static configuration of one replica. Everything random derives from `seed`.
#[derive(Clone, Debug)]
pub struct Config {
    pub id: NodeId,
    /// The initial voters (used only when the log holds no configuration yet).
    pub peers: Vec<NodeId>,
    /// Election timeout is drawn uniformly from `[election_ticks_min, election_ticks_max)`.
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    pub heartbeat_ticks: u32,
    /// Max entries per Append message, and max unacknowledged Append messages per peer.
    pub max_entries_per_msg: usize,
    pub max_inflight_msgs: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Seeds the only random number generator (election timeouts).
    pub seed: u64,
    /// The incarnation to take if storage holds no identity (random, from the driver).
    pub incarnation: Incarnation,
    /// Join by asking the peers (the node's rule, see `raft::identity`); `false`
    /// takes `peers` as the bootstrap configuration at once (tests only).
    pub discover: bool,
    /// Known bugs switched on deliberately, so the test pipeline can prove it catches them.
    pub mutants: Mutants,
    /// Take a snapshot after this many entries applied since the last one; 0 never.
    pub snapshot_every: u64,
}

/// Known bugs (docs/design.md, "Mutants"). All false in a correct node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// Count replicas for entries of earlier terms (Raft paper figure 8).
    pub commit_old_term: bool,
    /// Grant votes without the §5.4.1 up-to-date check.
    pub vote_any_log: bool,
    /// Serve linearizable reads from local state with no ReadIndex round.
    pub stale_read: bool,
    /// Reply to a write as soon as it is appended to the leader's log.
    pub ack_before_commit: bool,
    /// Change the voters in one step, without the joint configuration.
    pub joint_skip: bool,
}

/// One known bug `--unsafe` switches on (docs/design.md, "Mutants").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutant {
    CommitOldTerm,
    VoteAnyLog,
    StaleRead,
    AckBeforeCommit,
    /// Acknowledge writes before they are durable: a storage mutant, carried out by
    /// the driver (the node's disk, the simulator's), not by the replica.
    NoFsync,
    JointSkip,
}

impl Mutant {
    pub const ALL: [Mutant; 6] = [
        Mutant::CommitOldTerm,
        Mutant::VoteAnyLog,
        Mutant::StaleRead,
        Mutant::AckBeforeCommit,
        Mutant::NoFsync,
        Mutant::JointSkip,
    ];

    /// The name `--unsafe` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::CommitOldTerm => "commit-old-term",
            Mutant::VoteAnyLog => "vote-any-log",
            Mutant::StaleRead => "stale-read",
            Mutant::AckBeforeCommit => "ack-before-commit",
            Mutant::JointSkip => "joint-skip",
            Mutant::NoFsync => "no-fsync",
        }
    }

    /// The replica's switches for this mutant (none for `no-fsync`).
    pub fn mutants(self) -> Mutants {
        let mut m = Mutants::default();
        match self {
            Mutant::CommitOldTerm => m.commit_old_term = true,
            Mutant::VoteAnyLog => m.vote_any_log = true,
            Mutant::StaleRead => m.stale_read = true,
            Mutant::AckBeforeCommit => m.ack_before_commit = true,
            Mutant::JointSkip => m.joint_skip = true,
            Mutant::NoFsync => {}
        }
        m
    }
}

/// What a node recovered from its storage at start-up (empty on first boot).
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    /// `None` when storage holds no identity: a new node, or one that lost its state.
    pub identity: Option<Identity>,
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, contiguous.
    pub entries: Vec<Entry>,
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
    Message(Message),
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
    /// The driver serialized the state of an `Output::Snapshot` through `index`.
    SnapshotReady { index: Index, data: Vec<u8> },
    /// The driver could not serialize the state of the `Output::Snapshot` through
    /// `index`: no compaction this time, and the next snapshot may start.
    SnapshotFailed { index: Index },
}

/// What the driver must do, in this order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Make durable, in this order: the identity (if any), the snapshot (if any), then
    /// truncate the log at `truncate_from` (drop every entry with index >= it), then
    /// append `entries`, then write `hard_state` (if any), then fsync; afterwards
    /// report `Input::Persisted { seq }`. `seq` increases by one with every Persist.
    Persist {
        seq: u64,
        identity: Option<Identity>,
        snapshot: Option<Snapshot>,
        truncate_from: Option<Index>,
        entries: Vec<Entry>,
        hard_state: Option<HardState>,
    },
    /// Send to a peer. Best effort: the network may drop it.
    Send(Message),
    /// Answer client request `id`.
    Reply { id: RequestId, response: Response },
    /// For observers (metrics, simulator invariant checks): entries applied to the
    /// state machine, in index order, with their terms.
    Applied { index: Index, term: Term },
    /// Serialize `kv` (the state after applying `index`; an O(1) copy-on-write clone)
    /// with `Kv::to_snapshot`, preferably off the driver's hot path, and hand the
    /// bytes back with `Input::SnapshotReady`. Dropping it is safe (no compaction).
    Snapshot { index: Index, kv: Kv },
    /// The state machine was replaced by a snapshot through `index` received from
    /// the leader (for metrics and the simulator).
    Restored { index: Index, term: Term },
    /// The role or leader changed (for logs, metrics and the simulator).
    RoleChanged {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
    },
    /// A peer message was refused: no correct node sends it (for metrics and logs).
    Refused {
        from: NodeId,
        term: Term,
        reason: Rejection,
    },
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
    /// committed command cannot be decoded, so every replica skipped it.
    Invalid { reason: String },
}

/// The role of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
    Learner,
}

/// A snapshot of a replica's state for `/status`. Never blocks on consensus.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    /// This node's incarnation, and its cluster (0 while it is still joining).
    pub incarnation: Incarnation,
    pub cluster: u64,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub first_log_index: Index,
    pub last_log_index: Index,
    pub snapshot_index: Index,
    pub membership: Membership,
}

/// Raft + KV + pending requests.
pub struct Replica {
    id: NodeId,
    mutants: Mutants,
    /// The consensus engine, used only through the narrow [`Consensus`] interface.
    engine: Box<dyn Consensus + Send>,
    kv: Kv,
    /// Proposed writes by log index: `(request, term proposed in)`.
    writes: BTreeMap<Index, (RequestId, Term)>,
    /// Reads awaiting leadership confirmation, by read round.
    reads: BTreeMap<u64, (Term, Vec<(RequestId, String)>)>,
    /// Confirmed reads awaiting `applied >= index`, in index order.
    confirmed: VecDeque<(Index, Vec<(RequestId, String)>)>,
    /// Membership changes in progress: `(index of C_old,new, request, term)`.
    /// Answered when a later final configuration (C_new) is applied.
    changes: Vec<(Index, RequestId, Term)>,
    /// Last observed (role, term, leader), to notice changes.
    seen: (Role, Term, Option<NodeId>),
    snapshot_every: u64,
    /// Applied index of the newest snapshot taken, installed or recovered.
    snapshot_index: Index,
    /// An `Output::Snapshot` whose bytes have not come back yet.
    snapshot_in_flight: Option<Index>,
    /// A received snapshot's state, decoded before the core saw the message (so an
    /// undecodable one is refused), waiting for the core to install it.
    incoming: Option<(Index, Kv)>,
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
        let kv = match &recovered.snapshot {
            Some(s) => kv_from(&s.data)?,
            None => Kv::new(),
        };
        let raft_cfg = RaftConfig {
            id: config.id,
            peers: config.peers.clone(),
            election_ticks_min: config.election_ticks_min,
            election_ticks_max: config.election_ticks_max,
            heartbeat_ticks: config.heartbeat_ticks,
            max_entries_per_msg: config.max_entries_per_msg,
            max_inflight_msgs: config.max_inflight_msgs,
            pre_vote: config.pre_vote,
            check_quorum: config.check_quorum,
            seed: config.seed,
            incarnation: config.incarnation,
            discover: config.discover,
            commit_old_term: config.mutants.commit_old_term,
            vote_any_log: config.mutants.vote_any_log,
            joint_skip: config.mutants.joint_skip,
        };
        let raft = Raft::new(
            raft_cfg,
            recovered.hard_state,
            recovered.identity.as_ref(),
            recovered.snapshot.as_ref(),
            recovered.entries,
        );
        let seen = (raft.role(), raft.term(), raft.leader());
        let snapshot_index = raft.log().snapshot_index();
        Ok(Replica {
            id: config.id,
            mutants: config.mutants,
            engine: Box::new(raft),
            kv,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            confirmed: VecDeque::new(),
            changes: Vec::new(),
            seen,
            snapshot_every: config.snapshot_every,
            snapshot_index,
            snapshot_in_flight: None,
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
        std::mem::take(&mut self.out)
    }

    /// The current status (cheap).
    pub fn status(&self) -> Status {
        let e = &self.engine;
        let identity = e.identity();
        Status {
            id: self.id,
            incarnation: identity.incarnation,
            cluster: identity.cluster,
            role: e.role(),
            term: e.term(),
            leader: e.leader(),
            commit_index: e.commit_index(),
            applied_index: e.applied_index(),
            first_log_index: e.first_index(),
            last_log_index: e.last_index(),
            snapshot_index: e.first_index() - 1,
            membership: e.membership().clone(),
        }
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
            Input::SnapshotReady { index, data } => {
                if self.snapshot_in_flight == Some(index) {
                    self.snapshot_in_flight = None;
                }
                if self.engine.compact(index, data) {
                    self.snapshot_index = index;
                }
            }
            Input::SnapshotFailed { index } => {
                if self.snapshot_in_flight == Some(index) {
                    self.snapshot_in_flight = None;
                }
            }
            Input::Persisted { seq } => self.engine.persisted(seq),
            Input::TransferLeader { to } => self.engine.transfer_leader(to),
            Input::ChangeMembership {
                id,
                voters,
                learners,
            } => match self.engine.propose_membership(voters, learners) {
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
                if self.mutants.stale_read && self.engine.role() == Role::Leader {
                    // Mutant: no ReadIndex round, so a deposed leader serves old state.
                    let v = self.read_local(&key);
                    self.reply(id, Response::Done(KvResult::Value(v)));
                    return;
                }
                match self.engine.read_index() {
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
                match self.engine.propose_command(cmd.encode()) {
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

    /// A peer message. A snapshot's state is decoded here, before the core acts on
    /// it: one that cannot be decoded is dropped (the leader will resend it).
    fn message(&mut self, m: Message) {
        if let MessageBody::InstallSnapshot { snapshot } = &m.body {
            match kv_from(&snapshot.data) {
                Ok(kv) => self.incoming = Some((snapshot.meta.last_index, kv)),
                Err(_) => return,
            }
        }
        self.engine.step(m);
    }

    /// Emits `Output::Snapshot` when enough was applied since the last snapshot
    /// (or `force`), unless one is being serialized.
    fn maybe_snapshot(&mut self, force: bool) {
        let applied = self.engine.applied_index();
        if self.snapshot_in_flight.is_some() || applied <= self.snapshot_index {
            return;
        }
        let due = self.snapshot_every > 0 && applied - self.snapshot_index >= self.snapshot_every;
        if force || due {
            self.snapshot_in_flight = Some(applied);
            self.out.push(Output::Snapshot {
                index: applied,
                kv: self.kv.clone(),
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
            other => Response::Rejected {
                reason: other.to_string(),
            },
        };
        self.reply(id, response);
    }

    fn process_ready(&mut self, ready: Ready) {
        for r in ready.refused {
            self.out.push(Output::Refused {
                from: r.from,
                term: r.term,
                reason: r.reason,
            });
        }
        if let Some(p) = ready.persist {
            self.out.push(Output::Persist {
                seq: p.seq,
                identity: p.identity,
                snapshot: p.snapshot,
                truncate_from: p.truncate_from,
                entries: p.entries,
                hard_state: p.hard_state,
            });
        }
        self.out
            .extend(ready.messages.into_iter().map(Output::Send));
        if let Some(s) = ready.snapshot {
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
        self.serve_reads();
        self.check_role();
    }

    /// The core installed a snapshot from the leader: the state machine becomes it.
    fn restore(&mut self, s: Snapshot) {
        let index = s.meta.last_index;
        let kv = match self.incoming.take() {
            Some((i, kv)) if i == index => Ok(kv),
            _ => kv_from(&s.data),
        };
        // Decoded in `message` before the core accepted it, so this cannot fail;
        // keep the old state rather than stop if it somehow does.
        if let Ok(kv) = kv {
            self.kv = kv;
        }
        self.snapshot_index = index;
        self.out.push(Output::Restored {
            index,
            term: s.meta.last_term,
        });
    }

    /// Applies one committed entry. Total: a command that cannot be decoded (no
    /// validated proposal is one) changes nothing on any replica, since all of them
    /// decode the same bytes the same way, and its client is told it was not applied.
    fn apply(&mut self, e: Entry) {
        self.out.push(Output::Applied {
            index: e.index,
            term: e.term,
        });
        let result = match &e.payload {
            Payload::Command(bytes) => Some(Command::decode(bytes).and_then(|c| self.kv.apply(&c))),
            Payload::Config(m) if m.voters_old.is_none() => {
                self.finish_changes(e.index, m);
                None
            }
            _ => None,
        };
        let Some((id, term)) = self.writes.remove(&e.index) else {
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
    fn finish_changes(&mut self, index: Index, m: &Membership) {
        let voters: Vec<NodeId> = m.voters.iter().copied().collect();
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

/// The state machine a snapshot's data describes (empty data: the empty state).
fn kv_from(data: &[u8]) -> Result<Kv, KvError> {
    if data.is_empty() {
        Ok(Kv::new())
    } else {
        Kv::from_snapshot(data)
    }
}

#[cfg(test)]
mod tests;
