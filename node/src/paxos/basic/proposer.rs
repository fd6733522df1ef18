//! The proposer side of Basic Paxos: one instance per slot this node drives, duels
//! and retries with randomized backoff, and the filling of holes.

use super::{BasicPaxos, Body};
use crate::paxos::limits::MAX_UNCHOSEN;
use crate::paxos::{Ballot, NodeId, ProposalId, ProposeError, ReadState, Slot, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A value this node wants chosen in some slot.
#[derive(Clone, Debug)]
pub(super) struct Own {
    pub id: ProposalId,
    pub value: Value,
}

/// Where an attempt stands.
#[derive(Debug)]
pub(super) enum Phase {
    /// Phase 1: the promises so far, each with the proposal its acceptor accepted.
    Preparing(BTreeMap<NodeId, Option<(Ballot, Value)>>),
    /// Phase 2: the value proposed and who durably accepted it.
    Accepting {
        value: Value,
        votes: BTreeSet<NodeId>,
    },
    /// Waiting to try again.
    Backoff { until: u64 },
}

/// One single-decree instance this node drives.
#[derive(Debug)]
pub(super) struct Instance {
    pub ballot: Ballot,
    /// The value this node wants here; `None` when filling a hole (a no-op).
    pub own: Option<Own>,
    pub phase: Phase,
    /// The highest round seen in this slot (our next ballot goes above it).
    pub max_round_seen: u64,
    /// When the current phase started.
    pub started: u64,
    /// Failed attempts in a row (doubles the backoff and the time allowed, up to a
    /// cap).
    pub streak: u32,
}

/// The backoff doubles at most this many times.
const MAX_BACKOFF_DOUBLINGS: u32 = 4;

impl BasicPaxos {
    /// Queues a state-machine command. It is chosen in some slot this node cannot
    /// know yet; [`crate::paxos::Decided::proposal`] reports it there.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<ProposalId, ProposeError> {
        self.enqueue(Value::Command(command))
    }

    /// Starts a linearizable read: a marker is proposed like a command, and the
    /// returned round comes back in [`crate::paxos::Ready::reads`] with the slot it was
    /// chosen in.
    pub fn read_index(&mut self) -> Result<u64, ProposeError> {
        let round = self.next_read_round + 1;
        let value = Value::Read {
            node: self.core.id,
            epoch: self.epoch,
            round,
        };
        self.enqueue(value)?;
        self.next_read_round = round;
        Ok(round)
    }

    fn enqueue(&mut self, value: Value) -> Result<ProposalId, ProposeError> {
        if self.queue.len() + self.instances.len() >= MAX_UNCHOSEN as usize {
            return Err(ProposeError::Busy);
        }
        self.next_proposal += 1;
        let id = self.next_proposal;
        self.queue.push_back(Own { id, value });
        Ok(id)
    }

    /// Gives queued values an instance each, while fewer than the limit run.
    pub(super) fn start_instances(&mut self) {
        let max = self.core.cfg.max_inflight_msgs.max(1);
        while self.instances.len() < max {
            let Some(own) = self.queue.pop_front() else {
                break;
            };
            let slot = self.free_slot();
            self.open(slot, Some(own));
        }
    }

    /// The slot after every slot this node knows to be in use.
    fn free_slot(&self) -> Slot {
        let running = self.instances.last_key_value().map_or(0, |(&s, _)| s);
        self.core
            .slots
            .max_slot()
            .max(self.max_seen_slot)
            .max(running)
            + 1
    }

    fn open(&mut self, slot: Slot, own: Option<Own>) {
        let inst = Instance {
            ballot: Ballot::ZERO,
            own,
            phase: Phase::Backoff {
                until: self.core.now,
            },
            max_round_seen: 0,
            started: self.core.now,
            streak: 0,
        };
        self.instances.insert(slot, inst);
        self.attempt(slot);
    }

    /// Phase 1 with a ballot above every one seen in the slot, promised to ourselves
    /// first: the Prepares leave once that promise is durable.
    fn attempt(&mut self, slot: Slot) {
        let promised = self
            .core
            .slots
            .get(slot)
            .map_or(Ballot::ZERO, |s| s.promised);
        let now = self.core.now;
        let Some(inst) = self.instances.get_mut(&slot) else {
            return;
        };
        let round = inst
            .max_round_seen
            .max(promised.round)
            .max(inst.ballot.round);
        let ballot = Ballot::after(round, self.core.id);
        inst.ballot = ballot;
        inst.phase = Phase::Preparing(BTreeMap::new());
        inst.started = now;
        self.core.stats.prepares += 1;
        self.on_prepare(self.core.id, slot, ballot);
        for p in self.core.peers.others() {
            self.core
                .send_after_write(p, Body::Prepare { slot, ballot });
        }
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        slot: Slot,
        ballot: Ballot,
        accepted: Option<(Ballot, Value)>,
    ) {
        let majority = self.core.peers.majority();
        let Some(inst) = self.instances.get_mut(&slot) else {
            return;
        };
        if inst.ballot != ballot {
            return;
        }
        let Phase::Preparing(promises) = &mut inst.phase else {
            return;
        };
        promises.insert(from, accepted);
        if promises.len() >= majority {
            self.start_accept(slot);
        }
    }

    /// Phase 2: the value of the highest-ballot proposal among the promises, or our
    /// own when they carried none (always our own with the `ignore_accepted` mutant).
    fn start_accept(&mut self, slot: Slot) {
        let ignore = self.core.cfg.mutants.ignore_accepted;
        let Some(inst) = self.instances.get_mut(&slot) else {
            return;
        };
        let Phase::Preparing(promises) = &inst.phase else {
            return;
        };
        let highest = promises
            .values()
            .flatten()
            .max_by_key(|(b, _)| *b)
            .map(|(_, v)| v.clone());
        let value = match highest {
            Some(v) if !ignore => {
                self.core.stats.reproposed += 1;
                v
            }
            _ => inst.own.as_ref().map_or(Value::Noop, |o| o.value.clone()),
        };
        inst.phase = Phase::Accepting {
            value: value.clone(),
            votes: BTreeSet::new(),
        };
        inst.started = self.core.now;
        let ballot = inst.ballot;
        for p in self.core.peers.all() {
            let value = value.clone();
            self.core.send_now(
                p,
                Body::Accept {
                    slot,
                    ballot,
                    value,
                },
            );
        }
    }

    /// A majority of durable acceptances: the value is chosen; everyone is told.
    pub(super) fn on_accepted(&mut self, from: NodeId, slot: Slot, ballot: Ballot) {
        let majority = self.core.peers.majority();
        let Some(inst) = self.instances.get_mut(&slot) else {
            return;
        };
        if inst.ballot != ballot {
            return;
        }
        let Phase::Accepting { value, votes } = &mut inst.phase else {
            return;
        };
        votes.insert(from);
        if votes.len() < majority {
            return;
        }
        let value = value.clone();
        self.learn(slot, value.clone());
        for p in self.core.peers.others() {
            let values = vec![value.clone()];
            self.core.send_now(
                p,
                Body::Chosen {
                    first: slot,
                    values,
                },
            );
        }
    }

    /// Another proposer's higher ballot preempted the attempt: back off, then retry
    /// above it.
    pub(super) fn on_reject(&mut self, slot: Slot, ballot: Ballot, promised: Ballot) {
        self.max_ballot = self.max_ballot.max(promised);
        let Some(inst) = self.instances.get_mut(&slot) else {
            return;
        };
        if inst.ballot != ballot || matches!(inst.phase, Phase::Backoff { .. }) {
            return;
        }
        inst.max_round_seen = inst.max_round_seen.max(promised.round);
        if promised <= ballot {
            // An answer to a duplicated Prepare of the ballot already promised.
            return;
        }
        if promised.node != self.core.id {
            self.core.stats.duels += 1;
        }
        self.backoff(slot);
    }

    /// Waits a random number of ticks, doubling the range with each failure in a
    /// row, so duelling proposers stop colliding.
    pub(super) fn backoff(&mut self, slot: Slot) {
        let base = self.core.cfg.election_ticks_min.max(2);
        let now = self.core.now;
        let Some(inst) = self.instances.get_mut(&slot) else {
            return;
        };
        inst.streak = inst.streak.saturating_add(1);
        let hi = base << (inst.streak - 1).min(MAX_BACKOFF_DOUBLINGS);
        let wait = self.core.rng.range(1, hi);
        inst.phase = Phase::Backoff {
            until: now + u64::from(wait),
        };
    }

    /// One unit of logical time: retries that are due, phases unanswered by a
    /// majority in time (backed off, then retried), holes that stayed open too
    /// long, and every `election_ticks_max` ticks our chosen prefix to the peers. The time allowed starts at `election_ticks_max` ticks and doubles with
    /// every failure in a row, so slow disks or links still let an attempt finish.
    pub fn tick(&mut self) {
        self.core.now += 1;
        let base = u64::from(self.core.cfg.election_ticks_max.max(1));
        let due: Vec<(Slot, bool)> = self
            .instances
            .iter()
            .filter_map(|(&slot, inst)| match inst.phase {
                Phase::Backoff { until } if until <= self.core.now => Some((slot, true)),
                Phase::Preparing(_) | Phase::Accepting { .. }
                    if self.core.now
                        >= inst.started + (base << inst.streak.min(MAX_BACKOFF_DOUBLINGS)) =>
                {
                    Some((slot, false))
                }
                _ => None,
            })
            .collect();
        for (slot, retry) in due {
            if retry {
                self.core.stats.retries += 1;
                self.attempt(slot);
            } else {
                self.core.stats.timeouts += 1;
                self.backoff(slot);
            }
        }
        self.fill_holes();
        let period = u64::from(self.core.cfg.election_ticks_max.max(1));
        if self.core.now.is_multiple_of(period) {
            for p in self.core.peers.others() {
                self.core.send_now(p, Body::Prefix);
            }
        }
    }

    /// An unchosen slot below a chosen one that stays open for `election_ticks_max`
    /// ticks (plus a random share of it, so nodes that see the same hole do not all
    /// start at once) gets an instance with a no-op as our value, unless another
    /// proposer was seen working on it within that time.
    fn fill_holes(&mut self) {
        let prefix = self.core.slots.prefix();
        self.active = self.active.split_off(&(prefix + 1));
        if self.core.slots.max_chosen() <= prefix {
            self.gap = None;
            return;
        }
        let wait = u64::from(self.core.cfg.election_ticks_max.max(1));
        let due = match self.gap {
            Some((p, t)) if p == prefix => t,
            _ => {
                let jitter = u64::from(
                    self.core
                        .rng
                        .range(0, self.core.cfg.election_ticks_max.max(1)),
                );
                let due = self.core.now + wait + jitter;
                self.gap = Some((prefix, due));
                due
            }
        };
        if self.core.now < due {
            return;
        }
        self.gap = None;
        for slot in self
            .core
            .slots
            .holes(self.core.cfg.max_inflight_msgs.max(1))
        {
            let busy = self
                .active
                .get(&slot)
                .is_some_and(|&t| self.core.now < t + wait);
            if !busy && !self.instances.contains_key(&slot) {
                self.core.stats.holes_filled += 1;
                self.open(slot, None);
            }
        }
    }

    /// The instance in `slot` ended with `chosen` there.
    pub(super) fn finish(&mut self, slot: Slot, own: Option<Own>, chosen: &Value) {
        let Some(own) = own else {
            return;
        };
        if own.value != *chosen {
            // Another value took the slot: ours moves on to a later one.
            self.queue.push_front(own);
            return;
        }
        match own.value {
            Value::Read { round, .. } => self.reads_ready.push(ReadState { round, index: slot }),
            _ => {
                self.own_chosen.insert(slot, own.id);
            }
        }
    }
}
