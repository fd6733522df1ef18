//! Plain data shared by both Paxos engines, their storage and their transport.
//! Everything serializes with serde, so postcard can carry it.

use super::{NodeId, ReadState};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A log position. The first slot is 1; slot 0 is "before the log".
pub type Slot = u64;

/// Names one value a node proposed (unique within one run of the engine). The engine
/// reports its fate: [`Decided::proposal`] when it is chosen and applied, or
/// [`Ready::abandoned`] when this node will not learn whether it was.
pub type ProposalId = u64;

/// A proposal number. Globally unique because it carries its proposer's id, and
/// ordered by round first. A node makes a ballot durable (as its own promise) before
/// any other node can see it, so it never reuses one after a restart.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Ballot {
    pub round: u64,
    pub node: NodeId,
}

impl Ballot {
    /// Below every real ballot: nothing promised, nothing accepted.
    pub const ZERO: Ballot = Ballot { round: 0, node: 0 };

    /// The ballot of `node` in the round after `round`.
    pub fn after(round: u64, node: NodeId) -> Ballot {
        Ballot {
            round: round + 1,
            node,
        }
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.round, self.node)
    }
}

/// What a slot holds. The engines never look inside a command.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Value {
    /// Fills a hole; changes nothing.
    Noop,
    /// An opaque state-machine command, encoded as one byte string (as Raft's
    /// `Payload::Command`).
    Command(#[serde(with = "serde_bytes")] Vec<u8>),
    /// Basic Paxos: a read marker. The read of `node`'s round `round` is linearizable
    /// once the state machine has applied the slot this marker was chosen in.
    /// `epoch` (bumped durably at every start) keeps a marker of an earlier run of
    /// the node from being taken for a new read.
    Read {
        node: NodeId,
        epoch: u64,
        round: u64,
    },
}

impl Value {
    /// The command, if this value changes the state machine.
    pub fn command(&self) -> Option<&[u8]> {
        match self {
            Value::Command(c) => Some(c),
            Value::Noop | Value::Read { .. } => None,
        }
    }

    /// Applying it changes nothing (a no-op or a read marker).
    pub fn is_noop(&self) -> bool {
        self.command().is_none()
    }
}

/// A state-machine snapshot: the state after applying every slot through
/// `last_slot`. `data` is opaque to the engines.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub last_slot: Slot,
    pub data: Vec<u8>,
}

/// A message between two nodes. `chosen_through` is the sender's chosen prefix
/// (every slot up to it is chosen and known to the sender): a receiver that is
/// behind asks the sender for the values.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope<B> {
    pub from: NodeId,
    pub to: NodeId,
    pub chosen_through: Slot,
    pub body: B,
}

/// One storage write. Storage makes it durable in this order: save `snapshot` (if
/// any) and drop every record stored before; append `records`; fsync. Then the
/// driver reports `persisted(seq)`. `seq` grows by one with every write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write<R> {
    pub seq: u64,
    pub snapshot: Option<Snapshot>,
    pub records: Vec<R>,
}

/// What observers outside an engine (the invariant checks) read in its durable
/// records.
pub trait RecordView {
    /// `(slot, ballot, value)` when the record says the acceptor accepted `value`.
    fn accepted(&self) -> Option<(Slot, Ballot, &Value)>;
    /// `(slot, value)` when the record says `value` is chosen in `slot`.
    fn chosen(&self) -> Option<(Slot, &Value)>;
    /// The record is an acceptor's promise and nothing else.
    fn is_promise(&self) -> bool;
}

/// What storage recovered at start-up: the newest snapshot and the records after it,
/// in write order. Empty on first boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered<R> {
    pub snapshot: Option<Snapshot>,
    pub records: Vec<R>,
}

impl<R> Default for Recovered<R> {
    fn default() -> Self {
        Recovered {
            snapshot: None,
            records: Vec::new(),
        }
    }
}

/// One chosen value, handed to the application in slot order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    pub slot: Slot,
    pub value: Value,
    /// This node's own proposal, when the value is the one it proposed.
    pub proposal: Option<ProposalId>,
}

/// Everything the driver must do after a batch of inputs, in field order.
#[derive(Debug)]
pub struct Ready<B, R> {
    pub persist: Option<Write<R>>,
    /// Messages that may leave now (those depending on a write not yet durable are
    /// held inside the engine until `persisted`).
    pub messages: Vec<Envelope<B>>,
    /// Send these peers the newest stored snapshot, out of band; their drivers hand
    /// it to `install_snapshot`.
    pub send_snapshot: Vec<NodeId>,
    /// A snapshot installed from a peer: restore the state machine from it before
    /// applying `committed` (which continue after it).
    pub installed: Option<Snapshot>,
    /// Chosen values, in slot order, each exactly once.
    pub committed: Vec<Decided>,
    /// Reads confirmed: serve each once the state machine has applied its `index`.
    pub reads: Vec<ReadState>,
    /// Read rounds that will never be confirmed (leadership lost): they observed
    /// nothing and may be refused cleanly.
    pub failed_reads: Vec<u64>,
    /// Own proposals whose fate this node will not learn (leadership lost, or their
    /// slot went into a snapshot from a peer): they may or may not be chosen.
    pub abandoned: Vec<ProposalId>,
}

impl<B, R> Default for Ready<B, R> {
    fn default() -> Self {
        Ready {
            persist: None,
            messages: Vec::new(),
            send_snapshot: Vec::new(),
            installed: None,
            committed: Vec::new(),
            reads: Vec::new(),
            failed_reads: Vec::new(),
            abandoned: Vec::new(),
        }
    }
}
