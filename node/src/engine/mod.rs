//! The one door between the replica and consensus. PURE: no tokio, clock, rand,
//! files or network.
//!
//! The replica proposes opaque commands, asks for read confirmations, and carries out
//! what [`Engine::ready`] returns; it never sees an engine's messages, durable records
//! or roles, only the neutral wrappers here:
//!
//! - [`PeerMessage`]: a message between two nodes of the same engine. The transport
//!   and the simulator move it without looking inside; a message of another engine
//!   is refused at the boundary.
//! - [`DurableWrite`] and [`Recovered`]: what the engine asks storage to make durable,
//!   and what storage gives back at start-up.
//! - [`EngineReady`]: everything to do after a batch of inputs, in field order.
//! - [`Committed`]: a decided log position, in order, as the state machine sees it.
//!
//! # Snapshots
//! The state machine's bytes belong to the application and the server, not to the
//! engine's messages. The seam is shaped for that: an engine names the peers that
//! need a snapshot in [`EngineReady::send_snapshot`] (with its [`SnapshotMeta`]), the
//! server streams the stored file, and the receiving side reports it with
//! [`Engine::snapshot_received`]. Raft still carries the bytes in its own
//! `InstallSnapshot` message, and the Paxos engines in their `Body::Snapshot`, so
//! they report an installed snapshot with its bytes in [`EngineReady::installed`];
//! [`PeerMessage::snapshot_data`] lets the replica check those bytes before the
//! engine acts on them.

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

mod paxos;
mod raft;

pub use crate::consensus::{EngineKind, Index, Mutants, NodeId, ProposeError, ReadState, Role};
use crate::paxos::{basic, multi};
pub use crate::raft::types::SnapshotData;
use crate::raft::types::{Incarnation, Membership, Message, MessageBody};
use crate::raft::{PersistWrite, RaftConfig};

/// A message between two nodes running the same engine.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum PeerMessage {
    Raft(Message),
    MultiPaxos(multi::Message),
    BasicPaxos(basic::Message),
}

impl PeerMessage {
    pub fn kind(&self) -> EngineKind {
        match self {
            PeerMessage::Raft(_) => EngineKind::Raft,
            PeerMessage::MultiPaxos(_) => EngineKind::MultiPaxos,
            PeerMessage::BasicPaxos(_) => EngineKind::BasicPaxos,
        }
    }

    pub fn from(&self) -> NodeId {
        match self {
            PeerMessage::Raft(m) => m.from,
            PeerMessage::MultiPaxos(m) => m.from,
            PeerMessage::BasicPaxos(m) => m.from,
        }
    }

    pub fn to(&self) -> NodeId {
        match self {
            PeerMessage::Raft(m) => m.to,
            PeerMessage::MultiPaxos(m) => m.to,
            PeerMessage::BasicPaxos(m) => m.to,
        }
    }

    /// The state-machine bytes this message carries, with the last index they cover
    /// (Raft's InstallSnapshot and the Paxos engines' Snapshot; no other message
    /// carries any), not yet copied.
    fn carried(&self) -> Option<(Index, Carried<'_>)> {
        match self {
            PeerMessage::Raft(Message {
                body: MessageBody::InstallSnapshot { snapshot },
                ..
            }) => Some((snapshot.meta.last_index, Carried::Raft(&snapshot.data))),
            PeerMessage::MultiPaxos(m) => match &m.body {
                multi::Body::Snapshot { snapshot } => Some(paxos(snapshot)),
                _ => None,
            },
            PeerMessage::BasicPaxos(m) => match &m.body {
                basic::Body::Snapshot { snapshot } => Some(paxos(snapshot)),
                _ => None,
            },
            _ => None,
        }
    }

    /// The last index covered by the state-machine bytes this message carries, if it
    /// carries any; cheap, unlike [`PeerMessage::snapshot_data`].
    pub fn snapshot_index(&self) -> Option<Index> {
        self.carried().map(|(index, _)| index)
    }

    /// The state-machine bytes this message carries, with the last index they cover.
    /// Shared for Raft; a Paxos snapshot's are copied.
    pub fn snapshot_data(&self) -> Option<(Index, bytes::Bytes)> {
        self.carried().map(|(index, data)| {
            let bytes = match data {
                Carried::Raft(d) => d.contiguous(),
                Carried::Paxos(b) => bytes::Bytes::copy_from_slice(b),
            };
            (index, bytes)
        })
    }
}

/// A Paxos snapshot's last slot and its bytes, as its message holds them.
fn paxos(s: &crate::paxos::Snapshot) -> (Index, Carried<'_>) {
    (s.last_slot, Carried::Paxos(&s.data))
}

/// Snapshot bytes as a peer message holds them.
enum Carried<'a> {
    Raft(&'a crate::raft::types::SnapshotData),
    Paxos(&'a [u8]),
}

impl From<Message> for PeerMessage {
    fn from(m: Message) -> PeerMessage {
        PeerMessage::Raft(m)
    }
}

/// One write to make durable; report it with [`Engine::persisted`] once it is.
// One engine runs per node, so every value is of one variant: boxing Raft's (the
// largest) would only add an allocation per write.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DurableWrite {
    Raft(PersistWrite),
    /// Records appended in order; a write with a snapshot replaces every record
    /// stored before it.
    MultiPaxos(crate::paxos::Write<multi::Record>),
    BasicPaxos(crate::paxos::Write<basic::Record>),
}

impl DurableWrite {
    pub fn kind(&self) -> EngineKind {
        match self {
            DurableWrite::Raft(_) => EngineKind::Raft,
            DurableWrite::MultiPaxos(_) => EngineKind::MultiPaxos,
            DurableWrite::BasicPaxos(_) => EngineKind::BasicPaxos,
        }
    }

    /// Increases by one with every write of an engine.
    pub fn seq(&self) -> u64 {
        match self {
            DurableWrite::Raft(w) => w.seq,
            DurableWrite::MultiPaxos(w) => w.seq,
            DurableWrite::BasicPaxos(w) => w.seq,
        }
    }
}

impl TryFrom<DurableWrite> for crate::paxos::Write<multi::Record> {
    /// The engine the write was of.
    type Error = EngineKind;
    fn try_from(w: DurableWrite) -> Result<Self, EngineKind> {
        match w {
            DurableWrite::MultiPaxos(w) => Ok(w),
            other => Err(other.kind()),
        }
    }
}

impl TryFrom<DurableWrite> for crate::paxos::Write<basic::Record> {
    /// The engine the write was of.
    type Error = EngineKind;
    fn try_from(w: DurableWrite) -> Result<Self, EngineKind> {
        match w {
            DurableWrite::BasicPaxos(w) => Ok(w),
            other => Err(other.kind()),
        }
    }
}

/// What storage recovered at start-up, for the engine the data directory holds.
#[allow(clippy::large_enum_variant)] // one per node start: size does not matter
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovered {
    Raft(crate::raft::Recovered),
    MultiPaxos(crate::paxos::Recovered<multi::Record>),
    BasicPaxos(crate::paxos::Recovered<basic::Record>),
}

impl Default for Recovered {
    fn default() -> Recovered {
        Recovered::Raft(crate::raft::Recovered::default())
    }
}

impl From<crate::raft::Recovered> for Recovered {
    fn from(r: crate::raft::Recovered) -> Recovered {
        Recovered::Raft(r)
    }
}

impl Recovered {
    pub fn kind(&self) -> EngineKind {
        match self {
            Recovered::Raft(_) => EngineKind::Raft,
            Recovered::MultiPaxos(_) => EngineKind::MultiPaxos,
            Recovered::BasicPaxos(_) => EngineKind::BasicPaxos,
        }
    }

    /// The state-machine bytes of the recovered snapshot, if there is one (shared,
    /// not copied, where the engine keeps them shared).
    pub fn snapshot_bytes(&self) -> Option<SnapshotData> {
        match self {
            Recovered::Raft(r) => r.snapshot.as_ref().map(|s| s.data.clone()),
            Recovered::MultiPaxos(r) => (r.snapshot.as_ref()).map(|s| s.data.clone().into()),
            Recovered::BasicPaxos(r) => (r.snapshot.as_ref()).map(|s| s.data.clone().into()),
        }
    }
}

/// A decided log position, as the state machine sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub index: Index,
    /// The term (or ballot) the value was proposed in: a proposal made in an earlier
    /// term than the one it was decided in was replaced by another node's.
    pub term: u64,
    pub value: Decided,
    /// The ticket [`Engine::propose`] returned, when this position may hold this
    /// node's proposal (Raft: its index, always; the term then tells whether it is
    /// ours. Paxos: only when the value is this node's own).
    pub proposal: Option<u64>,
}

/// What was decided at one position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decided {
    /// Nothing for the state machine (a leader's first entry, a filled hole).
    Noop,
    Command(Vec<u8>),
    /// A membership change: `joint` while both the old and new voters decide.
    Membership {
        voters: Vec<NodeId>,
        joint: bool,
    },
}

/// Describes a snapshot: the state after applying everything through `index`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub index: Index,
    /// The term (or ballot) of position `index`.
    pub term: u64,
}

/// A snapshot the engine installed: the state machine becomes it before `committed`
/// (which continue after it) applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    pub meta: SnapshotMeta,
    /// The state machine's bytes, when they came inside the engine's own message.
    pub data: SnapshotData,
}

/// A peer message refused at the boundary: no correct node sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub from: NodeId,
    pub term: u64,
    /// A short name, for metric labels.
    pub reason: &'static str,
    /// What the peer did, for logs.
    pub detail: &'static str,
}

/// Everything the driver must do after a batch of inputs, in field order.
#[derive(Debug, Default)]
pub struct EngineReady {
    pub refused: Vec<Refused>,
    pub persist: Option<DurableWrite>,
    /// May leave now: the engine holds back whatever depends on a write until the
    /// write is reported durable (the persistence rule).
    pub messages: Vec<PeerMessage>,
    /// Peers that need the newest stored snapshot, sent out of band.
    pub send_snapshot: Vec<(NodeId, SnapshotMeta)>,
    pub installed: Option<Installed>,
    pub committed: Vec<Committed>,
    pub reads: Vec<ReadState>,
    /// Read rounds that will never be confirmed: they observed nothing.
    pub failed_reads: Vec<u64>,
    /// Own proposals whose fate this node will not learn: indeterminate.
    pub abandoned: Vec<u64>,
}

/// A node's consensus figures for `/status`.
#[derive(Clone, Debug)]
pub struct EngineStatus {
    pub role: Role,
    pub term: u64,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub first_index: Index,
    pub last_index: Index,
    pub membership: Membership,
    pub incarnation: Incarnation,
    pub cluster: u64,
}

/// One of an engine's own counters, for `/metrics` (it only grows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineCounter {
    /// The metric name without `_total`.
    pub name: &'static str,
    pub help: &'static str,
    pub value: u64,
}

/// A consensus engine, as the replica drives it.
pub trait Engine: Send {
    fn kind(&self) -> EngineKind;
    /// One unit of logical time passed.
    fn tick(&mut self);
    /// A peer message arrived (one of another engine is refused).
    fn step(&mut self, m: PeerMessage);
    /// Every write with `seq <= seq` is durable.
    fn persisted(&mut self, seq: u64);
    /// Proposes a state-machine command; returns its ticket (Raft: the log index),
    /// which comes back in [`Committed::proposal`] or [`EngineReady::abandoned`].
    fn propose(&mut self, command: Vec<u8>) -> Result<Index, ProposeError>;
    /// Starts a membership change to `voters` (and `learners`, when given); returns
    /// the position of its first entry.
    fn change_membership(
        &mut self,
        voters: Vec<NodeId>,
        learners: Option<Vec<NodeId>>,
    ) -> Result<Index, ProposeError>;
    /// Starts a linearizable read; the returned round comes back in
    /// [`EngineReady::reads`].
    fn read(&mut self) -> Result<u64, ProposeError>;
    fn transfer_leader(&mut self, to: NodeId);
    /// The application captured its state through `index` in `data`: compact.
    fn compact(&mut self, index: Index, data: SnapshotData) -> bool;
    /// The server received a peer's snapshot file described by `meta`; true when the
    /// engine installs it (it then comes out in [`EngineReady::installed`]).
    fn snapshot_received(&mut self, from: NodeId, meta: SnapshotMeta) -> bool;
    fn ready(&mut self) -> EngineReady;

    fn role(&self) -> Role;
    /// The term (or ballot round) this node is in.
    fn term(&self) -> u64;
    fn leader(&self) -> Option<NodeId>;
    fn applied_index(&self) -> Index;
    fn status(&self) -> EngineStatus;
    /// Counters only this engine keeps (the node's own metrics cover the rest).
    fn metrics(&self) -> Vec<EngineCounter> {
        Vec::new()
    }
}

/// Builds the engine `recovered` belongs to. A Paxos engine takes the identity,
/// peers, timings, batch sizes, seed and mutants of `cfg`.
pub fn build(cfg: RaftConfig, recovered: Recovered) -> Box<dyn Engine> {
    let paxos = || crate::paxos::PaxosConfig {
        id: cfg.id,
        peers: cfg.peers.clone(),
        election_ticks_min: cfg.election_ticks_min,
        election_ticks_max: cfg.election_ticks_max,
        heartbeat_ticks: cfg.heartbeat_ticks,
        max_values_per_msg: cfg.max_entries_per_msg,
        max_inflight_msgs: cfg.max_inflight_msgs,
        seed: cfg.seed,
        mutants: crate::paxos::PaxosMutants {
            forget_promise: cfg.mutants.paxos_forget_promise,
            ignore_accepted: cfg.mutants.paxos_ignore_accepted,
        },
    };
    match recovered {
        Recovered::MultiPaxos(r) => {
            let snapshot = r.snapshot.clone();
            let core = multi::MultiPaxos::new(paxos(), r);
            Box::new(paxos::PaxosEngine::new(core, &cfg.peers, snapshot))
        }
        Recovered::BasicPaxos(r) => {
            let snapshot = r.snapshot.clone();
            let core = basic::BasicPaxos::new(paxos(), r);
            Box::new(paxos::PaxosEngine::new(core, &cfg.peers, snapshot))
        }
        Recovered::Raft(r) => Box::new(crate::raft::Raft::recover(cfg, r)),
    }
}

/// What a node recovers when its data directory is new, for `kind`.
pub fn empty(kind: EngineKind) -> Recovered {
    match kind {
        EngineKind::Raft => Recovered::default(),
        EngineKind::MultiPaxos => Recovered::MultiPaxos(Default::default()),
        EngineKind::BasicPaxos => Recovered::BasicPaxos(Default::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{Snapshot, SnapshotMeta as RaftSnapshotMeta};

    fn raft_config(id: NodeId, peers: Vec<NodeId>) -> RaftConfig {
        RaftConfig {
            id,
            peers,
            election_ticks_min: 10,
            election_ticks_max: 20,
            heartbeat_ticks: 2,
            max_entries_per_msg: 8,
            max_inflight_msgs: 4,
            pre_vote: true,
            check_quorum: true,
            seed: 1,
            incarnation: 0,
            discover: false,
            mutants: Mutants::default(),
        }
    }

    #[test]
    fn a_peer_message_names_its_engine_ends_and_snapshot_bytes() {
        let m = PeerMessage::Raft(Message {
            from: 2,
            to: 3,
            term: 4,
            incarnation: 0,
            body: MessageBody::InstallSnapshot {
                snapshot: Snapshot {
                    meta: RaftSnapshotMeta {
                        last_index: 9,
                        ..RaftSnapshotMeta::default()
                    },
                    data: b"state".to_vec().into(),
                },
            },
        });
        assert_eq!((m.kind(), m.from(), m.to()), (EngineKind::Raft, 2, 3));
        assert_eq!(
            m.snapshot_data(),
            Some((9, bytes::Bytes::from_static(b"state")))
        );
        assert_eq!(m.snapshot_index(), Some(9));
        let bytes = postcard::to_allocvec(&m).expect("encodes");
        assert_eq!(
            postcard::from_bytes::<PeerMessage>(&bytes).expect("decodes"),
            m
        );
    }

    #[test]
    fn a_raft_pre_candidate_is_a_candidate_behind_the_interface() {
        let mut e = build(raft_config(1, vec![1, 2, 3]), Recovered::default());
        assert_eq!(e.kind(), EngineKind::Raft);
        assert_eq!(e.role(), Role::Follower);
        // With pre-vote and nobody answering, the node stays a pre-candidate in its
        // term: the neutral role says candidate, and the term has not moved.
        for _ in 0..40 {
            e.tick();
            let _ = e.ready();
        }
        assert_eq!(e.role(), Role::Candidate);
        assert_eq!(e.term(), 0);
        let s = e.status();
        assert_eq!(s.role, Role::Candidate);
        assert_eq!(s.membership.voters.len(), 3);
    }
}
