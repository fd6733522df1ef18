//! Data types shared by the consensus core, storage, the transport and the simulator.
//!
//! Everything here is plain data: no I/O. All types serialize with serde so the
//! storage layer and the peer transport can encode them compactly (postcard).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

pub use crate::consensus::{Index, NodeId};
/// A Raft term.
pub type Term = u64;
/// One life of a node id. A node that starts with no durable state (a new node, or
/// one whose disk was lost) takes a fresh random incarnation from its driver, so the
/// cluster can tell it from the node that used the id before and made promises
/// (votes, acknowledged entries) it no longer remembers. Configurations name the
/// incarnation of each voter; only that incarnation's votes and acknowledgements
/// count. Incarnation 0 is that of nodes whose bootstrap configuration was given
/// rather than discovered (tests).
pub type Incarnation = u64;

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
    /// Encoded as one byte string (postcard: its length, then the bytes; the same
    /// bytes as a sequence of `u8`, written and read in one copy instead of one
    /// call per byte).
    Command(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A configuration entry: the membership from this index on (joint or simple).
    Config(Membership),
}

impl Payload {
    /// The command's bytes (a no-op or a configuration counts as none).
    pub fn size(&self) -> usize {
        match self {
            Payload::Command(c) => c.len(),
            Payload::Noop | Payload::Config(_) => 0,
        }
    }
}

/// Cluster membership. `voters_old` is `Some` while in a joint configuration
/// (C_old,new): then decisions need a majority of `voters` AND of `voters_old`.
/// A voter counts only as the incarnation its set names (`incarnations` for
/// `voters`, `incarnations_old` for `voters_old`; an id missing there is
/// incarnation 0), so a node that lost its state is no voter until a configuration
/// names its new incarnation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
    pub voters_old: Option<BTreeSet<NodeId>>,
    pub incarnations: BTreeMap<NodeId, Incarnation>,
    pub incarnations_old: Option<BTreeMap<NodeId, Incarnation>>,
}

impl Membership {
    /// The incarnation `voters` admits for `id`.
    pub fn admitted(&self, id: NodeId) -> Incarnation {
        self.incarnations.get(&id).copied().unwrap_or(0)
    }

    /// The incarnation `voters_old` admits for `id`.
    pub fn admitted_old(&self, id: NodeId) -> Incarnation {
        self.incarnations_old
            .as_ref()
            .and_then(|m| m.get(&id).copied())
            .unwrap_or(0)
    }

    /// Whether incarnation `inc` of `id` is a voter of either set.
    pub fn is_voter(&self, id: NodeId, inc: Incarnation) -> bool {
        (self.voters.contains(&id) && self.admitted(id) == inc)
            || self
                .voters_old
                .as_ref()
                .is_some_and(|old| old.contains(&id) && self.admitted_old(id) == inc)
    }

    /// Whether `id` is named as a voter of either set, whatever its incarnation.
    pub fn has_voter_id(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.voters_old.as_ref().is_some_and(|o| o.contains(&id))
    }

    /// Every id the configuration names: voters of both sets and learners.
    pub fn members(&self) -> BTreeSet<NodeId> {
        let mut ids = self.voters.clone();
        ids.extend(self.voters_old.iter().flatten().copied());
        ids.extend(self.learners.iter().copied());
        ids
    }
}

/// Who a node is: the cluster it belongs to and its incarnation. Durable: written
/// before the node takes part in anything, so it survives every restart, and lost
/// only with the node's state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Nonzero once the node belongs to a cluster (it bootstrapped one, or learned
    /// of one from a member); 0 while it is still asking its peers.
    pub cluster: u64,
    pub incarnation: Incarnation,
    /// The configuration the cluster was bootstrapped with (the membership before
    /// any configuration entry): the initial voters and their incarnations.
    pub bootstrap: Membership,
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

/// A state-machine snapshot. `data` is opaque to the core; it is shared, not copied,
/// when the snapshot is cloned (kept, persisted and sent at once), and encodes like a
/// `Vec<u8>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: SnapshotData,
}

/// A snapshot's state-machine bytes, held as the pieces they were built from: a
/// snapshot that is the previous one plus a delta is the previous one's pieces and
/// one more, so taking it costs about the delta, never a copy of the bytes before.
/// Cloning shares every piece. It reads, compares and encodes as the one byte
/// string its pieces add up to (like a `Vec<u8>`, so the encoding is the same as
/// contiguous bytes').
#[derive(Clone, Default)]
pub struct SnapshotData {
    pieces: Vec<bytes::Bytes>,
    len: usize,
}

impl SnapshotData {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The pieces, in order (none is empty).
    pub fn pieces(&self) -> &[bytes::Bytes] {
        &self.pieces
    }

    /// These bytes followed by `piece` (the pieces before are shared).
    pub fn with(&self, piece: bytes::Bytes) -> SnapshotData {
        let mut out = self.clone();
        out.len += piece.len();
        if !piece.is_empty() {
            out.pieces.push(piece);
        }
        out
    }

    /// The bytes as one buffer: shared when there is one piece, copied otherwise.
    pub fn contiguous(&self) -> bytes::Bytes {
        match self.pieces.as_slice() {
            [] => bytes::Bytes::new(),
            [one] => one.clone(),
            many => bytes::Bytes::from(many.concat()),
        }
    }

    /// The bytes from `offset` on, as slices of the pieces (nothing copied).
    pub fn slices_from(&self, offset: usize) -> impl Iterator<Item = &[u8]> {
        let mut skip = offset;
        self.pieces.iter().filter_map(move |p| {
            if skip >= p.len() {
                skip -= p.len();
                return None;
            }
            let at = std::mem::take(&mut skip);
            Some(&p[at..])
        })
    }

    /// Whether these bytes begin with `prefix`'s. When they were built from its
    /// pieces (a delta after it) that is seen from the pieces alone, without reading
    /// the bytes; otherwise the bytes are compared.
    pub fn starts_with(&self, prefix: &SnapshotData) -> bool {
        if prefix.len > self.len {
            return false;
        }
        let shared = prefix.pieces.len() <= self.pieces.len()
            && (prefix.pieces.iter().zip(&self.pieces))
                .all(|(a, b)| a.as_ptr() == b.as_ptr() && a.len() == b.len());
        shared || same_bytes(prefix.slices_from(0), self.slices_from(0), prefix.len)
    }
}

/// Whether the first `n` bytes of two runs of slices are equal.
fn same_bytes<'a>(
    a: impl Iterator<Item = &'a [u8]>,
    b: impl Iterator<Item = &'a [u8]>,
    mut n: usize,
) -> bool {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    let (mut at_a, mut at_b) = (0, 0);
    while n > 0 {
        let (Some(x), Some(y)) = (a.peek(), b.peek()) else {
            return false;
        };
        let k = (x.len() - at_a).min(y.len() - at_b).min(n);
        if x[at_a..at_a + k] != y[at_b..at_b + k] {
            return false;
        }
        (at_a, at_b, n) = (at_a + k, at_b + k, n - k);
        if at_a == x.len() {
            a.next();
            at_a = 0;
        }
        if at_b == y.len() {
            b.next();
            at_b = 0;
        }
    }
    true
}

impl From<bytes::Bytes> for SnapshotData {
    fn from(b: bytes::Bytes) -> SnapshotData {
        SnapshotData::default().with(b)
    }
}

impl From<Vec<u8>> for SnapshotData {
    fn from(v: Vec<u8>) -> SnapshotData {
        SnapshotData::from(bytes::Bytes::from(v))
    }
}

impl From<&'static [u8]> for SnapshotData {
    fn from(s: &'static [u8]) -> SnapshotData {
        SnapshotData::from(bytes::Bytes::from_static(s))
    }
}

impl PartialEq for SnapshotData {
    fn eq(&self, other: &SnapshotData) -> bool {
        self.len == other.len && same_bytes(self.slices_from(0), other.slices_from(0), self.len)
    }
}

impl Eq for SnapshotData {}

impl std::fmt::Debug for SnapshotData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SnapshotData({} bytes in {} pieces)",
            self.len,
            self.pieces.len()
        )
    }
}

impl Serialize for SnapshotData {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.contiguous())
    }
}

impl<'de> Deserialize<'de> for SnapshotData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SnapshotData, D::Error> {
        bytes::Bytes::deserialize(d).map(SnapshotData::from)
    }
}

/// A message between two nodes. `term` is the sender's current term and
/// `incarnation` the sender's incarnation: a vote or an acknowledgement counts only
/// where the configuration names that incarnation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub incarnation: Incarnation,
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
    /// "Who are you?": sent by a node that is not yet part of a cluster to its
    /// peers (and, to make itself known, by a node that is no member of its
    /// configuration). The sender's incarnation rides in the message.
    Discover,
    /// The answer to `Discover` asked by incarnation `asker`: the responder's
    /// identity (cluster 0 and an empty bootstrap while it is still asking too).
    DiscoverReply {
        asker: Incarnation,
        cluster: u64,
        bootstrap: Membership,
    },
    /// A follower's answer to a heartbeat that leaves at once while its full
    /// AppendResponse waits for a pending disk write. It claims nothing about the
    /// log, only "I follow you in this term" (and echoes the ReadIndex round), so a
    /// slow follower disk never makes a healthy leader fail CheckQuorum or stall
    /// its reads.
    HeartbeatAck {
        read_ctx: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::SnapshotData;
    use bytes::Bytes;

    /// The same 10 bytes as one piece, and as 3 + 0 + 7.
    fn split() -> (SnapshotData, SnapshotData) {
        let whole = SnapshotData::from(b"0123456789".to_vec());
        let parts = SnapshotData::from(Bytes::from_static(b"012"))
            .with(Bytes::new())
            .with(Bytes::from_static(b"3456789"));
        (whole, parts)
    }

    #[test]
    fn snapshot_data_reads_as_the_bytes_its_pieces_add_up_to() {
        let (whole, parts) = split();
        assert_eq!(parts.len(), 10);
        assert_eq!(parts.pieces().len(), 2, "an empty piece is not kept");
        assert_eq!(whole, parts);
        assert_ne!(whole, SnapshotData::from(b"0123456780".to_vec()));
        assert_eq!(parts.contiguous(), Bytes::from_static(b"0123456789"));
        let from = |d: &SnapshotData, at| d.slices_from(at).collect::<Vec<_>>().concat();
        for at in 0..=11 {
            let want = b"0123456789".get(at..).unwrap_or_default();
            assert_eq!(from(&parts, at), want, "from {at}");
        }
        // The encoding is that of the contiguous bytes.
        let encoded = postcard::to_allocvec(&parts).expect("encodes");
        assert_eq!(encoded, postcard::to_allocvec(&whole.contiguous()).unwrap());
        let back: SnapshotData = postcard::from_bytes(&encoded).expect("decodes");
        assert_eq!(back, whole);
    }

    /// A command encodes as it did when it was a plain `Vec<u8>` (a sequence of
    /// bytes), so logs and peers of either build read each other's.
    #[test]
    fn a_command_encodes_as_the_sequence_of_its_bytes() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        enum AsSequence {
            Noop,
            Command(Vec<u8>),
        }
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 % 256) as u8).collect();
            let old = postcard::to_allocvec(&AsSequence::Command(bytes.clone())).unwrap();
            let raft = postcard::to_allocvec(&super::Payload::Command(bytes.clone())).unwrap();
            let paxos = crate::paxos::types::Value::Command(bytes.clone());
            let paxos = postcard::to_allocvec(&paxos).unwrap();
            assert_eq!(raft, old, "Raft, {len} bytes");
            assert_eq!(paxos, old, "Paxos, {len} bytes");
            let back: super::Payload = postcard::from_bytes(&old).unwrap();
            assert_eq!(back, super::Payload::Command(bytes.clone()));
            let back: AsSequence = postcard::from_bytes(&raft).unwrap();
            assert_eq!(back, AsSequence::Command(bytes));
        }
    }

    #[test]
    fn a_prefix_is_seen_from_shared_pieces_or_from_the_bytes() {
        let (whole, parts) = split();
        let base = SnapshotData::from(Bytes::from_static(b"012"));
        let next = base.with(Bytes::from_static(b"34"));
        assert!(next.starts_with(&base), "shared pieces");
        assert!(next.pieces()[0].as_ptr() == base.pieces()[0].as_ptr());
        // Not shared, but the same bytes: still a prefix.
        assert!(whole.starts_with(&SnapshotData::from(b"01234".to_vec())));
        assert!(parts.starts_with(&SnapshotData::from(b"0123".to_vec())));
        assert!(whole.starts_with(&parts) && parts.starts_with(&whole));
        assert!(whole.starts_with(&SnapshotData::default()));
        // Different bytes, or longer: not a prefix.
        assert!(!parts.starts_with(&SnapshotData::from(b"0124".to_vec())));
        assert!(!base.starts_with(&next));
    }
}
