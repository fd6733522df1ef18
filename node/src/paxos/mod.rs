//! Two Paxos consensus engines: [`basic::BasicPaxos`] and [`multi::MultiPaxos`].
//! PURE: no tokio, clock, rand, files or network; one seed decides every random choice.
//!
//! Both decide a log of *slots*, one value per slot, and present the shape of API the
//! Raft core has: feed them [`tick`](multi::MultiPaxos::tick), [`step`](multi::MultiPaxos::step)
//! (a peer message), `propose`, `read_index`, `persisted` and `install_snapshot`; then
//! call `ready` and carry out the returned [`Ready`] in field order: make the write
//! durable (and report it with `persisted(seq)`), send the messages, send the snapshot
//! to the peers named, restore the installed snapshot, apply the decided values, and
//! serve the confirmed reads once the state machine has applied their slot.
//!
//! - **Basic Paxos** ([`basic`]): every slot is its own single-decree instance, run by
//!   any node that has a value for it; there is no leader. Two round trips per value,
//!   and proposers that collide on a slot duel (retrying with higher ballots after a
//!   randomized backoff) until one value is chosen.
//! - **Multi-Paxos** ([`multi`]): a leader runs phase 1 once for every slot from its
//!   first unchosen one, then only phase 2 per value, batched and pipelined.
//!
//! # The persistence rule
//!
//! An acceptor's answer (Promise, Accepted) is held back until storage reports durable
//! the write that recorded what it promises, exactly as in the Raft core: the write
//! comes out in [`Ready::persist`] with a `seq`, and the messages that depend on it
//! leave only after `persisted(seq)`. A node's answers to itself (a proposer is also an
//! acceptor) follow the same path, so a proposer counts its own promise or acceptance
//! only once it is durable, and a Prepare leaves only once the proposer's own promise
//! of that ballot is durable (a restarted node then never reuses a ballot).
//!
//! # Durable state
//!
//! Each engine writes *records* (its own `Record` type: promised ballots, accepted
//! `(ballot, value)` per slot, chosen values) appended in order; a restart replays
//! them ([`Recovered`]). A write that carries a snapshot replaces every record stored
//! before it: the records in that write are then a complete checkpoint of the state
//! after the snapshot. Storage never has to interpret a record.
//!
//! # Snapshots
//!
//! Compaction is driven by the application ([`multi::MultiPaxos::compact`]); the
//! engine keeps only the snapshot's slot. A lagging peer that asks for compacted
//! slots is named in [`Ready::send_snapshot`]: the engine adapter (`engine::paxos`)
//! sends it the newest snapshot, bytes included, as the engine's own `Body::Snapshot`
//! message, which the receiver hands to `install_snapshot` once the replica has
//! checked that the bytes decode.
//!
//! Membership is static: the peers given in [`PaxosConfig`] are the acceptors.

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

/// Implements [`RecordView`] for an engine's `Record`, whose `Accepted { slot,
/// ballot, value }` and `Chosen { slot, value }` variants have the same shape in both
/// engines; `$promise` matches its promise records.
macro_rules! record_view {
    ($record:ident, $promise:pat) => {
        impl $crate::paxos::RecordView for $record {
            fn accepted(&self) -> Option<(Slot, Ballot, &Value)> {
                match self {
                    $record::Accepted {
                        slot,
                        ballot,
                        value,
                    } => Some((*slot, *ballot, value)),
                    _ => None,
                }
            }

            fn chosen(&self) -> Option<(Slot, &Value)> {
                match self {
                    $record::Chosen { slot, value } => Some((*slot, value)),
                    _ => None,
                }
            }

            fn is_promise(&self) -> bool {
                matches!(self, $promise)
            }
        }
    };
}
use record_view;

pub mod basic;
mod catchup;
pub mod check;
mod core;
pub mod multi;
mod outbox;
mod slots;
#[cfg(test)]
mod testing;
pub mod types;

pub use self::types::{
    Ballot, Decided, Envelope, ProposalId, Ready, RecordView, Recovered, Slot, Snapshot, Value,
    Write,
};
pub use crate::consensus::{NodeId, ProposeError, ReadState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Static parameters of a Paxos engine. Everything random derives from `seed`.
#[derive(Clone, Debug)]
pub struct PaxosConfig {
    pub id: NodeId,
    /// Every acceptor, this node included (added when missing). Static.
    pub peers: Vec<NodeId>,
    /// Multi-Paxos: a follower that hears no leader for a timeout drawn from
    /// `[election_ticks_min, election_ticks_max)` runs phase 1. Basic Paxos: a
    /// phase unanswered by a majority for `election_ticks_max << streak` ticks, or
    /// rejected, backs off for a random time below `election_ticks_min << streak`
    /// and is retried (`streak`: failures in a row, capped); a hole below a chosen
    /// slot is filled after `election_ticks_max` ticks.
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    /// Multi-Paxos: the leader's heartbeat period.
    pub heartbeat_ticks: u32,
    /// Multi-Paxos: values per Accept message. Both: values per catch-up answer.
    pub max_values_per_msg: usize,
    /// Multi-Paxos: unanswered Accept messages per peer. Basic Paxos: instances a
    /// node runs at once for its own values.
    pub max_inflight_msgs: usize,
    pub seed: u64,
    pub mutants: PaxosMutants,
}

/// Known bugs switched on deliberately, so the test pipeline can prove it catches
/// them. All false in a correct node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PaxosMutants {
    /// `paxos-forget-promise`: an acceptor answers a Prepare before its promise is
    /// durable, so a crash makes it forget the promise.
    pub forget_promise: bool,
    /// `paxos-ignore-accepted`: a proposer proposes its own value even when a
    /// promise carried an accepted one.
    pub ignore_accepted: bool,
}

/// What a node is doing, in engine-neutral words.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Multi-Paxos: phase 1 completed; proposes with phase 2 only.
    Leader,
    /// Multi-Paxos: running phase 1 for a new ballot.
    Candidate,
    /// Multi-Paxos: accepting and learning from a leader (or waiting for one).
    Follower,
    /// Basic Paxos: every node proposes, accepts and learns; there is no leader.
    Proposer,
}

/// A node's figures for `/status`, cheap to take.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub leader: Option<NodeId>,
    /// The term-like figure: Multi-Paxos, the ballot promised; Basic Paxos, the
    /// highest ballot used or seen.
    pub ballot: Ballot,
    /// Every slot through this one is chosen and known here.
    pub chosen_index: Slot,
    /// Every slot through this one was handed to the application.
    pub applied_index: Slot,
    /// The first slot still held (the one after the snapshot).
    pub first_index: Slot,
    /// The highest slot held, proposed, or seen in use.
    pub last_index: Slot,
    pub snapshot_index: Slot,
}

/// Counters for `/metrics`. They only grow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Phase 1 attempts started (Basic: per slot; Multi: per election).
    pub prepares: u64,
    /// Attempts preempted by another proposer's higher ballot.
    pub duels: u64,
    /// Attempts started again after a rejection or a timeout.
    pub retries: u64,
    /// Attempts that got no answer from a majority in time.
    pub timeouts: u64,
    /// Multi-Paxos: phase 1 completed (this node became leader).
    pub leaderships: u64,
    /// Slots proposed with a no-op to fill a hole.
    pub holes_filled: u64,
    /// Values proposed again because a promise carried them.
    pub reproposed: u64,
    /// Slots decided (learned chosen) at this node.
    pub decided: u64,
    /// Catch-up requests sent.
    pub catch_up_requests: u64,
    /// Snapshots this node asked the driver to send to a peer.
    pub snapshots_sent: u64,
    pub snapshots_installed: u64,
    /// Peer messages dropped at the boundary (unknown sender, absurd ballot or slot,
    /// malformed contents).
    pub rejected_messages: u64,
    /// Recovered records that made no sense and were skipped.
    pub bad_records: u64,
    /// A slot learned chosen with two different values: a safety violation seen
    /// locally. Always 0 in a correct cluster.
    pub conflicts: u64,
}

/// Upper bounds that keep every queue and message bounded.
pub(crate) mod limits {
    use super::Slot;
    /// Rounds and slots above this are absurd: a peer that sends one is ignored, so
    /// no ballot or slot arithmetic can overflow.
    pub const MAX_ROUND: u64 = 1 << 62;
    pub const MAX_SLOT: Slot = 1 << 62;
    /// A peer's ballot may be at most this many rounds above the highest round a
    /// node has seen (legitimate rounds grow by one per election or retry).
    pub const MAX_ROUND_STEP: u64 = 1 << 32;
    /// An acceptor takes part in no slot further than this past its chosen prefix.
    pub const MAX_WINDOW: Slot = 1 << 16;
    /// Values in one message (Accept batch, catch-up answer, promise entries).
    pub const MAX_VALUES_PER_MSG: usize = 1 << 16;
    /// Values handed to the application per `ready`.
    pub const MAX_APPLY_PER_READY: usize = 4096;
    /// A leader's unchosen slots, or a Basic proposer's queued values.
    pub const MAX_UNCHOSEN: u64 = 20_000;
    /// Reads waiting for confirmation at one node.
    pub const MAX_PENDING_READS: usize = 100_000;
}

/// The fixed set of acceptors.
#[derive(Clone, Debug)]
pub(crate) struct Peers {
    id: NodeId,
    all: BTreeSet<NodeId>,
}

impl Peers {
    pub(crate) fn new(id: NodeId, peers: &[NodeId]) -> Peers {
        let mut all: BTreeSet<NodeId> = peers.iter().copied().filter(|&p| p != 0).collect();
        all.insert(id);
        Peers { id, all }
    }

    pub(crate) fn contains(&self, id: NodeId) -> bool {
        self.all.contains(&id)
    }

    pub(crate) fn majority(&self) -> usize {
        self.all.len() / 2 + 1
    }

    /// Every acceptor but this node, in id order.
    pub(crate) fn others(&self) -> Vec<NodeId> {
        self.all.iter().copied().filter(|&p| p != self.id).collect()
    }

    /// Every acceptor, this node included, in id order.
    pub(crate) fn all(&self) -> Vec<NodeId> {
        self.all.iter().copied().collect()
    }

    /// A ballot a peer may legitimately send: a known owner and a sane round.
    pub(crate) fn ballot_ok(&self, b: Ballot) -> bool {
        b.round >= 1 && b.round <= limits::MAX_ROUND && self.contains(b.node)
    }

    /// [`Peers::ballot_ok`], and not absurdly far above `known_round` (the highest
    /// round this node has seen): one message must not push the ballots of the
    /// cluster toward the end of the round space.
    pub(crate) fn ballot_near(&self, b: Ballot, known_round: u64) -> bool {
        self.ballot_ok(b) && b.round <= known_round.saturating_add(limits::MAX_ROUND_STEP)
    }

    /// The envelope of a peer message: from a known peer other than us, to us.
    pub(crate) fn envelope_ok<B>(&self, m: &Envelope<B>) -> bool {
        m.to == self.id
            && m.from != self.id
            && self.contains(m.from)
            && m.chosen_through <= limits::MAX_SLOT
    }
}

/// A slot a peer may name: from 1 to the absurdity bound.
pub(crate) fn slot_ok(slot: Slot) -> bool {
    (1..=limits::MAX_SLOT).contains(&slot)
}

/// A run of `len` slots starting at `first` that stays within the bounds.
pub(crate) fn run_ok(first: Slot, len: usize) -> bool {
    slot_ok(first) && len <= limits::MAX_VALUES_PER_MSG && first + len as Slot <= limits::MAX_SLOT
}
