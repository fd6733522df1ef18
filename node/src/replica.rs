//! The replica: the Raft core plus the key-value state machine plus the client
//! requests waiting on them. PURE: no tokio, clock, rand, files or network.
//!
//! A driver (the tokio server, or the simulator) feeds [`Input`]s to
//! [`Replica::handle`] and carries out the returned [`Output`]s **in order**.
//! The order encodes the persistence rule: a message or reply that depends on a
//! write is only returned after the driver has reported that write durable with
//! [`Input::Persisted`].

use crate::kv::{Command, KvOp, KvResult};
use crate::raft::types::{Entry, HardState, Index, Membership, Message, NodeId, Snapshot, Term};
use serde::{Deserialize, Serialize};

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
    /// Known bugs switched on deliberately, so the test pipeline can prove it catches them.
    pub mutants: Mutants,
}

/// Known bugs (DESIGN.md "Mutants"). All false in a correct node.
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
}

impl Mutants {
    /// Parses one `--unsafe` name. `no-fsync` is a storage mutant, handled by the driver.
    pub fn parse(name: &str) -> Option<Mutants> {
        let mut m = Mutants::default();
        match name {
            "commit-old-term" => m.commit_old_term = true,
            "vote-any-log" => m.vote_any_log = true,
            "stale-read" => m.stale_read = true,
            "ack-before-commit" => m.ack_before_commit = true,
            "no-fsync" => {}
            _ => return None,
        }
        Some(m)
    }
}

/// What a node recovered from its storage at start-up (empty on first boot).
#[derive(Clone, Debug, Default)]
pub struct Recovered {
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
    ChangeMembership { id: RequestId, voters: Vec<NodeId> },
}

/// What the driver must do, in this order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Make durable, in this order: the snapshot (if any), then truncate the log at
    /// `truncate_from` (drop every entry with index >= it), then append `entries`, then
    /// write `hard_state` (if any), then fsync; afterwards report `Input::Persisted { seq }`.
    /// `seq` increases by one with every Persist output.
    Persist {
        seq: u64,
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
    /// The role or leader changed (for logs, metrics and the simulator).
    RoleChanged {
        role: Role,
        term: Term,
        leader: Option<NodeId>,
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
    // Filled in by the implementation.
    _private: (),
}

impl Replica {
    /// Builds a replica from its configuration and what storage recovered.
    pub fn new(_config: Config, _recovered: Recovered) -> Replica {
        todo!("replica implementation")
    }

    /// Feeds one input; returns the outputs to carry out in order.
    pub fn handle(&mut self, _input: Input) -> Vec<Output> {
        todo!("replica implementation")
    }

    /// The current status (cheap).
    pub fn status(&self) -> Status {
        todo!("replica implementation")
    }

    /// Reads local state without consensus (`?stale=true`).
    pub fn read_local(&self, _key: &str) -> Option<serde_json::Value> {
        todo!("replica implementation")
    }
}

#[allow(dead_code)]
fn _uses(_: Command) {}
