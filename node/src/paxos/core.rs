//! What both engines share: the state every Paxos node keeps besides its protocol
//! role ([`Core`]: configuration, clock, slot log, pending writes, outbox, catch-up,
//! counters) and the one `ready` loop ([`Machine`], [`ready`]).

use super::catchup::{Answer, CatchUp};
use super::limits::{MAX_APPLY_PER_READY, MAX_VALUES_PER_MSG};
use super::outbox::Outbox;
use super::slots::SlotLog;
use super::{
    Ballot, Decided, Envelope, NodeId, PaxosConfig, Peers, ProposalId, ReadState, Ready, Role,
    Slot, Snapshot, Stats, Status, Value, Write, slot_ok,
};
use crate::consensus::rng::SplitMix64;

/// The part of an engine's public API that is the same for both: feeding a peer
/// message, reporting durable writes, compacting, collecting the `Ready`, and the
/// counters. Expanded inside each engine's `impl` (which also provides `valid`).
macro_rules! shared_api {
    () => {
        /// Feeds one message from a peer. Malformed ones are dropped and counted.
        pub fn step(&mut self, m: Message) {
            // The body is checked only once the envelope is known sane.
            let ok = self.core.peers.envelope_ok(&m) && self.valid(&m);
            if self.core.admit(&m, ok) {
                core::Machine::handle(self, m.from, m.chosen_through, m.body);
            }
        }

        /// Storage made every write with `seq <= seq` durable.
        pub fn persisted(&mut self, seq: u64) {
            self.core.outbox.persisted(seq);
        }

        /// The application captured its state through `slot` as `data`: forget
        /// the slots up to it. Refused (false) unless `slot` is applied and newer
        /// than the current snapshot.
        pub fn compact(&mut self, slot: Slot, data: Vec<u8>) -> bool {
            self.core.compact(slot, data)
        }

        /// Collects what the driver must do now, to be carried out in field order.
        /// Call after every batch of inputs.
        pub fn ready(&mut self) -> Ready<Body, Record> {
            core::ready(self)
        }

        /// Counters for `/metrics`.
        pub fn stats(&self) -> &Stats {
            &self.core.stats
        }
    };
}
pub(crate) use shared_api;

/// Bound on self-addressed message rounds handled inside one `ready`.
const MAX_LOCAL_ROUNDS: usize = 64;

/// The state both engines keep, with the operations that do not depend on the
/// protocol. `B` is the engine's message body, `R` its durable record.
#[derive(Debug)]
pub(crate) struct Core<B, R> {
    pub id: NodeId,
    pub cfg: PaxosConfig,
    pub peers: Peers,
    pub rng: SplitMix64,
    /// Ticks since this engine started.
    pub now: u64,
    pub slots: SlotLog,
    pub catch_up: CatchUp,
    /// Records not yet handed to storage.
    pub records: Vec<R>,
    /// A snapshot to hand to storage with the next write (which then carries a
    /// checkpoint of every record).
    pub snapshot_to_persist: Option<Snapshot>,
    /// A snapshot installed from a peer, for the application.
    pub installed: Option<Snapshot>,
    pub send_snapshot: Vec<NodeId>,
    pub abandoned: Vec<ProposalId>,
    pub outbox: Outbox<B>,
    pub stats: Stats,
}

impl<B, R> Core<B, R> {
    pub(crate) fn new(cfg: PaxosConfig, snapshot: Option<&Snapshot>) -> Self {
        Core {
            id: cfg.id,
            peers: Peers::new(cfg.id, &cfg.peers),
            rng: SplitMix64::new(cfg.seed, cfg.id),
            now: 0,
            slots: SlotLog::new(snapshot.map_or(0, |s| s.last_slot)),
            catch_up: CatchUp::default(),
            records: Vec::new(),
            snapshot_to_persist: None,
            installed: None,
            send_snapshot: Vec::new(),
            abandoned: Vec::new(),
            outbox: Outbox::new(cfg.id),
            stats: Stats::default(),
            cfg,
        }
    }

    /// The status figures, given what only the engine knows.
    pub(crate) fn status(
        &self,
        role: Role,
        leader: Option<NodeId>,
        ballot: Ballot,
        last_index: Slot,
    ) -> Status {
        let s = &self.slots;
        Status {
            id: self.id,
            role,
            leader,
            ballot,
            chosen_index: s.prefix(),
            applied_index: s.applied(),
            first_index: s.snapshot() + 1,
            last_index: last_index.max(s.max_slot()),
            snapshot_index: s.snapshot(),
        }
    }

    fn envelope(&self, to: NodeId, body: B) -> Envelope<B> {
        Envelope {
            from: self.id,
            to,
            chosen_through: self.slots.prefix(),
            body,
        }
    }

    /// A message that depends on nothing waiting for the disk.
    pub(crate) fn send_now(&mut self, to: NodeId, body: B) {
        let m = self.envelope(to, body);
        self.outbox.send_now(m);
    }

    /// A message that must wait for the write this step builds (the persistence rule).
    pub(crate) fn send_after_write(&mut self, to: NodeId, body: B) {
        let m = self.envelope(to, body);
        self.outbox.send_after_write(m);
    }

    /// The boundary check shared by every message: a known peer, to us, with a sane
    /// chosen prefix (which is then noted for catch-up). Counts the rejects.
    pub(crate) fn admit(&mut self, m: &Envelope<B>, body_ok: bool) -> bool {
        if !body_ok || !self.peers.envelope_ok(m) {
            self.stats.rejected_messages += 1;
            return false;
        }
        self.catch_up.observe(m.from, m.chosen_through);
        true
    }

    /// How long to wait for a catch-up answer, or between snapshot offers.
    fn retry_ticks(&self) -> u64 {
        u64::from(self.cfg.election_ticks_min.max(1))
    }

    /// The peer to ask for the values after our prefix, if we lag behind one.
    pub(crate) fn want_catch_up(&mut self) -> Option<(NodeId, Slot)> {
        let retry = self.retry_ticks();
        let peer = self.catch_up.want(self.now, self.slots.prefix(), retry)?;
        self.stats.catch_up_requests += 1;
        Some((peer, self.slots.prefix() + 1))
    }

    /// Answers a catch-up request: the chosen values from `from_slot` on, or (for
    /// compacted slots) a snapshot the driver sends.
    pub(crate) fn answer_catch_up(&mut self, from: NodeId, from_slot: Slot) -> Option<Vec<Value>> {
        let max = self.cfg.max_values_per_msg.clamp(1, MAX_VALUES_PER_MSG);
        let retry = self.retry_ticks();
        match self
            .catch_up
            .answer(&self.slots, self.now, from, from_slot, max, retry)
        {
            Answer::Snapshot => {
                self.offer_snapshot(from);
                None
            }
            Answer::Values(values) => Some(values),
            Answer::Nothing => None,
        }
    }

    /// Asks the driver to send our snapshot to `to` (at most once per retry period).
    pub(crate) fn maybe_offer_snapshot(&mut self, to: NodeId) {
        let retry = self.retry_ticks();
        if to != self.id && self.catch_up.may_offer(self.now, to, retry) {
            self.offer_snapshot(to);
        }
    }

    fn offer_snapshot(&mut self, to: NodeId) {
        self.stats.snapshots_sent += 1;
        self.send_snapshot.push(to);
    }

    /// The application captured its state through `slot`: forget the slots up to it.
    pub(crate) fn compact(&mut self, slot: Slot, data: Vec<u8>) -> bool {
        if !self.slots.compact(slot) {
            return false;
        }
        self.snapshot_to_persist = Some(Snapshot {
            last_slot: slot,
            data,
        });
        true
    }

    /// A snapshot from peer `from`: installed when it is past the chosen prefix.
    /// Returns the slot it covers through, when installed.
    pub(crate) fn install(&mut self, from: NodeId, snapshot: Snapshot) -> Option<Slot> {
        if from == self.id || !self.peers.contains(from) || !slot_ok(snapshot.last_slot) {
            self.stats.rejected_messages += 1;
            return None;
        }
        let through = snapshot.last_slot;
        if !self.slots.install(through) {
            return None;
        }
        self.catch_up.answered();
        self.stats.snapshots_installed += 1;
        self.snapshot_to_persist = Some(snapshot.clone());
        self.installed = Some(snapshot);
        Some(through)
    }

    /// Issues the pending records as one write; after a snapshot, `checkpoint` (every
    /// record needed to rebuild the state after it) replaces them.
    fn issue_write(&mut self, checkpoint: Option<Vec<R>>) -> Option<Write<R>> {
        if self.records.is_empty() && self.snapshot_to_persist.is_none() {
            return None;
        }
        let seq = self.outbox.next_seq();
        let snapshot = self.snapshot_to_persist.take();
        let records = match checkpoint {
            Some(all) if snapshot.is_some() => {
                self.records.clear();
                all
            }
            _ => std::mem::take(&mut self.records),
        };
        Some(Write {
            seq,
            snapshot,
            records,
        })
    }
}

/// A Paxos engine as the shared `ready` loop drives it.
pub(crate) trait Machine {
    type Body;
    type Record;
    fn core(&mut self) -> &mut Core<Self::Body, Self::Record>;
    /// Work that does not wait for input: new Accepts to send, instances to
    /// start, heartbeats, catch-up requests.
    fn housekeeping(&mut self);
    /// Handles one message (from a peer, or one this node sent itself).
    fn handle(&mut self, from: NodeId, chosen_through: Slot, body: Self::Body);
    /// Every record needed to rebuild the state after the snapshot.
    fn checkpoint(&self) -> Vec<Self::Record>;
    /// Which own proposal a decided value is, if any.
    fn proposal_at(&mut self, slot: Slot, value: &Value) -> Option<ProposalId>;
    /// Confirmed and failed read rounds.
    fn take_reads(&mut self) -> (Vec<ReadState>, Vec<u64>);
}

/// Collects what the driver must do now: handles the node's messages to itself
/// (those that may be handled now), issues one write, ties the messages that
/// depend on it to it, and hands out decided values and reads.
pub(crate) fn ready<M: Machine>(m: &mut M) -> Ready<M::Body, M::Record> {
    for _ in 0..MAX_LOCAL_ROUNDS {
        m.housekeeping();
        let core = m.core();
        if core.records.is_empty() && core.snapshot_to_persist.is_none() {
            core.outbox.settle();
        }
        let local = core.outbox.take_local();
        if local.is_empty() {
            break;
        }
        let (id, prefix) = (core.id, core.slots.prefix());
        for body in local {
            m.handle(id, prefix, body);
        }
    }
    let checkpoint = m
        .core()
        .snapshot_to_persist
        .is_some()
        .then(|| m.checkpoint());
    let core = m.core();
    let persist = core.issue_write(checkpoint);
    core.outbox.settle();
    let decided = core.slots.take_decided(MAX_APPLY_PER_READY);
    let committed = decided
        .into_iter()
        .map(|(slot, value)| Decided {
            slot,
            proposal: m.proposal_at(slot, &value),
            value,
        })
        .collect();
    let (reads, failed_reads) = m.take_reads();
    let core = m.core();
    Ready {
        persist,
        messages: core.outbox.take(),
        send_snapshot: std::mem::take(&mut core.send_snapshot),
        installed: core.installed.take(),
        committed,
        reads,
        failed_reads,
        abandoned: std::mem::take(&mut core.abandoned),
    }
}
