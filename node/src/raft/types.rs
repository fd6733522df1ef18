//! Data types shared by the consensus core, storage, the transport and the simulator.
//!
//! Everything here is plain data: no I/O. All types serialize with serde so the
//! storage layer and the peer transport can encode them compactly (postcard).

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A member of the cluster. Ids are chosen by the operator (`--id`), never 0.
pub type NodeId = u64;
/// A Raft term.
pub type Term = u64;
/// A log position. The first real entry has index 1; index 0 is "before the log".
pub type Index = u64;

/// One log entry. Invariant: in any log, `entries[i].index == offset + i`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: Payload,
}

/// What an entry carries. The core never looks inside `Command`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by a new leader so it can commit entries of earlier terms (§5.4.2).
    Noop,
    /// An opaque state-machine command (the replica encodes KV commands here).
    Command(Vec<u8>),
    /// A configuration entry: the membership from this index on (joint or simple).
    Config(Membership),
}

/// Cluster membership. `voters_old` is `Some` while in a joint configuration
/// (C_old,new): then decisions need a majority of `voters` AND of `voters_old`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub voters_old: Option<BTreeSet<NodeId>>,
}

/// State that must be durable before the node answers any message that depends on it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
    /// Highest index known committed. Persisting it is an optimisation only.
    pub commit: Index,
}

/// Describes a snapshot: the state after applying everything up to `last_index`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub last_index: Index,
    pub last_term: Term,
    pub membership: Membership,
}

/// A state-machine snapshot. `data` is opaque to the core.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

/// A message between two nodes. `term` is the sender's current term.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

/// The Raft RPCs. Field names follow the Raft paper where one exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    /// RequestVote, or a PreVote when `pre_vote` (then `term` is the term the sender
    /// would campaign in, and nothing is changed by receiving it).
    Vote {
        pre_vote: bool,
        last_log_index: Index,
        last_log_term: Term,
        /// Set by a leadership transfer (TimeoutNow): bypasses the leader lease check.
        transfer: bool,
    },
    VoteResponse {
        pre_vote: bool,
        granted: bool,
    },
    /// AppendEntries; an empty `entries` is a heartbeat. `read_ctx` echoes ReadIndex rounds.
    Append {
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
        read_ctx: u64,
    },
    /// `success`: the follower's log matches through `match_index`.
    /// On failure, `conflict_index`/`conflict_term` let the leader skip a whole term.
    AppendResponse {
        success: bool,
        match_index: Index,
        conflict_index: Index,
        conflict_term: Option<Term>,
        read_ctx: u64,
    },
    InstallSnapshot {
        snapshot: Snapshot,
    },
    InstallSnapshotResponse {
        last_index: Index,
    },
    /// Leadership transfer: the receiver should campaign at once.
    TimeoutNow,
    /// A follower's answer to a heartbeat that leaves at once while its full
    /// AppendResponse waits for a pending disk write. It claims nothing about the
    /// log, only "I follow you in this term" (and echoes the ReadIndex round), so a
    /// slow follower disk never makes a healthy leader fail CheckQuorum or stall
    /// its reads.
    HeartbeatAck {
        read_ctx: u64,
    },
}
