//! Basic Paxos: every slot is decided by its own single-decree instance, and any
//! node proposes the values it is given. There is no leader.
//!
//! - **Proposer** (`proposer`): a value waits in a queue until the node runs an
//!   instance for it (at most `max_inflight_msgs` at once) in the slot after every
//!   slot it has seen used. Phase 1: a ballot `(round, node)` above every ballot seen
//!   in that slot, promised to itself durably, then Prepare to every acceptor. With
//!   promises from a majority it proposes the value of the highest-ballot proposal
//!   the promises carried, and its own value only when there is none. Phase 2:
//!   Accept to every acceptor; with a majority of Accepted the value is chosen and
//!   every node is told. If another value took the slot, its own moves on to a later
//!   slot. A rejected attempt (another proposer's higher ballot: a duel) or one
//!   unanswered for `election_ticks_min` ticks is retried with a higher ballot after
//!   a randomized backoff that doubles with every failure in a row.
//! - **Learner**: chosen values are applied in slot order. Every node tells its
//!   peers its chosen prefix now and then, so a node that missed the last values
//!   of an idle cluster learns that it lags. A hole (an unchosen slot below a
//!   chosen one) is first asked of the peers ahead (see `catchup`); one
//!   still open after `election_ticks_max` ticks gets an instance of its own with a
//!   no-op as this node's value, which either reveals the value accepted there or
//!   chooses the no-op.
//! - **Acceptor** (`acceptor`): per slot, the promised ballot and the accepted
//!   proposal. It never promises a ballot `<=` the one promised, never accepts one
//!   `<` it, and answers only once the write recording the change is durable.
//! - **Reads**: a read is a marker value (node, epoch, round) proposed like a command;
//!   once it is chosen in a slot, the read is served after that slot is applied.
//!   The epoch, bumped durably at every start, keeps a marker proposed before a
//!   restart from being taken for a new read.

mod acceptor;
mod proposer;

use self::proposer::{Instance, Own};
use super::core::{self, Core, Machine};
use super::limits::MAX_WINDOW;
use super::slots::Learned;
use super::{
    Ballot, Envelope, NodeId, PaxosConfig, ProposalId, ReadState, Ready, Recovered, Role, Slot,
    Snapshot, Stats, Status, Value, run_ok, slot_ok,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// The Basic Paxos messages. Every one names its slot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Phase 1a.
    Prepare { slot: Slot, ballot: Ballot },
    /// Phase 1b, with the acceptor's accepted proposal in the slot, if any.
    Promise {
        slot: Slot,
        ballot: Ballot,
        accepted: Option<(Ballot, Value)>,
    },
    /// Phase 2a.
    Accept {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
    /// Phase 2b: durably accepted.
    Accepted { slot: Slot, ballot: Ballot },
    /// The acceptor refuses `ballot` in `slot`: it has promised `promised`.
    Reject {
        slot: Slot,
        ballot: Ballot,
        promised: Ballot,
    },
    /// Sent to every peer every `election_ticks_max` ticks: nothing but the
    /// envelope's chosen prefix, so a learner that missed the last values of an idle
    /// cluster learns that it lags (and asks).
    Prefix,
    /// Send me the chosen values from `from_slot` on.
    CatchUp { from_slot: Slot },
    /// Chosen values of the slots `first .. first + values.len()` (the learn message,
    /// and the answer to a catch-up or to a phase message for a decided slot).
    Chosen { first: Slot, values: Vec<Value> },
    /// The sender's newest snapshot, for a peer whose catch-up asked for slots the
    /// sender compacted (named in [`Ready::send_snapshot`]; the engine adapter of
    /// the node sends it). Installed like one given to `install_snapshot`.
    Snapshot { snapshot: Snapshot },
}

/// A durable change, replayed in order at recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// This run of the node has epoch `.0` (read markers carry it).
    Epoch(u64),
    /// The acceptor promised `ballot` in `slot`.
    Promised { slot: Slot, ballot: Ballot },
    /// The acceptor accepted `value` in `slot` under `ballot` (promising it too).
    Accepted {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
    /// `value` is chosen in `slot`.
    Chosen { slot: Slot, value: Value },
}

super::record_view!(Record, Record::Promised { .. });

pub type Message = Envelope<Body>;

/// The Basic Paxos state machine of one node.
pub struct BasicPaxos {
    core: Core<Body, Record>,
    epoch: u64,
    /// The highest slot seen in any peer's message (within the window).
    max_seen_slot: Slot,
    /// The highest ballot used or seen (the term-like figure for status).
    max_ballot: Ballot,
    instances: BTreeMap<Slot, Instance>,
    /// Own values waiting for an instance.
    queue: VecDeque<Own>,
    /// Own commands chosen and not yet applied, by slot.
    own_chosen: BTreeMap<Slot, ProposalId>,
    next_proposal: ProposalId,
    next_read_round: u64,
    /// A hole below a chosen slot: `(prefix when seen, tick to fill it from)`.
    gap: Option<(Slot, u64)>,
    /// When another proposer's Prepare or Accept was last seen, per unchosen slot.
    active: BTreeMap<Slot, u64>,
    reads_ready: Vec<ReadState>,
}

impl BasicPaxos {
    /// Builds the engine from what storage recovered (replaying its records). The
    /// new epoch is the first record written.
    pub fn new(cfg: PaxosConfig, recovered: Recovered<Record>) -> BasicPaxos {
        let mut bp = BasicPaxos {
            core: Core::new(cfg, recovered.snapshot.as_ref()),
            epoch: 0,
            max_seen_slot: 0,
            max_ballot: Ballot::ZERO,
            instances: BTreeMap::new(),
            queue: VecDeque::new(),
            own_chosen: BTreeMap::new(),
            next_proposal: 0,
            next_read_round: 0,
            gap: None,
            active: BTreeMap::new(),
            reads_ready: Vec::new(),
        };
        for r in recovered.records {
            bp.replay(r);
        }
        bp.epoch += 1;
        bp.core.records.push(Record::Epoch(bp.epoch));
        bp
    }

    fn replay(&mut self, r: Record) {
        let ok = match r {
            Record::Epoch(e) => {
                self.epoch = self.epoch.max(e);
                true
            }
            Record::Promised { slot, ballot }
                if slot_ok(slot) && self.core.peers.ballot_ok(ballot) =>
            {
                if let Some(st) = self.core.slots.state_mut(slot) {
                    st.promised = st.promised.max(ballot);
                }
                self.max_ballot = self.max_ballot.max(ballot);
                true
            }
            Record::Accepted {
                slot,
                ballot,
                value,
            } if slot_ok(slot) && self.core.peers.ballot_ok(ballot) => {
                if let Some(st) = self.core.slots.state_mut(slot) {
                    st.promised = st.promised.max(ballot);
                    st.accepted = Some((ballot, value));
                }
                self.max_ballot = self.max_ballot.max(ballot);
                true
            }
            Record::Chosen { slot, value } if slot_ok(slot) => {
                if self.core.slots.learn(slot, value) == Learned::Conflict {
                    self.core.stats.conflicts += 1;
                }
                true
            }
            _ => false,
        };
        if !ok {
            self.core.stats.bad_records += 1;
        }
    }

    /// Every node proposes, accepts and learns: the role is always
    /// [`Role::Proposer`] and there is no leader.
    pub fn status(&self) -> Status {
        let running = self.instances.last_key_value().map_or(0, |(&s, _)| s);
        let last = running.max(self.max_seen_slot);
        self.core
            .status(Role::Proposer, None, self.max_ballot, last)
    }
    /// The epoch of this run of the node (read markers carry it).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
    /// Own values not yet chosen (queued or in an instance).
    pub fn in_flight(&self) -> usize {
        self.queue.len() + self.instances.values().filter(|i| i.own.is_some()).count()
    }

    core::shared_api!();

    /// A snapshot from peer `from` (sent out of band after it saw this node lag).
    /// Installed when it is past the chosen prefix. Instances in the slots it covers
    /// end: an own read goes back to the queue (a later slot serves it as well), an
    /// own command is abandoned (it may be inside the snapshot).
    pub fn install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) -> bool {
        let Some(through) = self.core.install(from, snapshot) else {
            return false;
        };
        let rest = self.instances.split_off(&(through + 1));
        let covered = std::mem::replace(&mut self.instances, rest);
        for own in covered.into_values().filter_map(|i| i.own) {
            match own.value {
                Value::Read { .. } => self.queue.push_front(own),
                _ => self.core.abandoned.push(own.id),
            }
        }
        let rest = self.own_chosen.split_off(&(through + 1));
        let covered = std::mem::replace(&mut self.own_chosen, rest);
        self.core.abandoned.extend(covered.into_values());
        true
    }
}

impl Machine for BasicPaxos {
    type Body = Body;
    type Record = Record;

    fn core(&mut self) -> &mut Core<Body, Record> {
        &mut self.core
    }

    fn housekeeping(&mut self) {
        self.start_instances();
        if let Some((peer, from_slot)) = self.core.want_catch_up() {
            self.core.send_now(peer, Body::CatchUp { from_slot });
        }
    }

    fn proposal_at(&mut self, slot: Slot, _: &Value) -> Option<ProposalId> {
        self.own_chosen.remove(&slot)
    }

    fn take_reads(&mut self) -> (Vec<ReadState>, Vec<u64>) {
        (std::mem::take(&mut self.reads_ready), Vec::new())
    }

    /// Every record needed to rebuild the state after the snapshot.
    fn checkpoint(&self) -> Vec<Record> {
        let mut out = vec![Record::Epoch(self.epoch)];
        for (slot, st) in self.core.slots.from(self.core.slots.snapshot() + 1) {
            if let Some((ballot, value)) = &st.accepted {
                out.push(Record::Accepted {
                    slot,
                    ballot: *ballot,
                    value: value.clone(),
                });
            }
            if st.promised > st.accepted.as_ref().map_or(Ballot::ZERO, |(b, _)| *b) {
                out.push(Record::Promised {
                    slot,
                    ballot: st.promised,
                });
            }
            if let Some(value) = &st.chosen {
                out.push(Record::Chosen {
                    slot,
                    value: value.clone(),
                });
            }
        }
        out
    }

    fn handle(&mut self, from: NodeId, _chosen_through: Slot, body: Body) {
        match body {
            Body::Prepare { slot, ballot } => self.on_prepare(from, slot, ballot),
            Body::Promise {
                slot,
                ballot,
                accepted,
            } => self.on_promise(from, slot, ballot, accepted),
            Body::Accept {
                slot,
                ballot,
                value,
            } => self.on_accept(from, slot, ballot, value),
            Body::Accepted { slot, ballot } => self.on_accepted(from, slot, ballot),
            Body::Reject {
                slot,
                ballot,
                promised,
            } => self.on_reject(slot, ballot, promised),
            // The envelope's prefix was noted on admission.
            Body::Prefix => {}
            Body::CatchUp { from_slot } => {
                if let Some(values) = self.core.answer_catch_up(from, from_slot) {
                    let first = from_slot;
                    self.core.send_now(from, Body::Chosen { first, values });
                }
            }
            Body::Chosen { first, values } => {
                self.core.catch_up.answered();
                for (slot, value) in (first..).zip(values) {
                    self.learn(slot, value);
                }
            }
            Body::Snapshot { snapshot } => {
                self.install_snapshot(from, snapshot);
            }
        }
    }
}

impl BasicPaxos {
    /// The boundary check of a message body: sane ballots and slots, ballots owned
    /// by whoever may own them.
    fn valid(&self, m: &Message) -> bool {
        let p = &self.core.peers;
        let ballot_ok = |b: Ballot| p.ballot_near(b, self.max_ballot.round);
        let (from, me) = (m.from, self.core.id);
        match &m.body {
            Body::Prepare { slot, ballot } | Body::Accept { slot, ballot, .. } => {
                slot_ok(*slot) && ballot_ok(*ballot) && ballot.node == from
            }
            Body::Promise {
                slot,
                ballot,
                accepted,
            } => {
                slot_ok(*slot)
                    && ballot_ok(*ballot)
                    && ballot.node == me
                    && accepted
                        .as_ref()
                        .is_none_or(|(b, _)| ballot_ok(*b) && b < ballot)
            }
            Body::Accepted { slot, ballot } => {
                slot_ok(*slot) && ballot_ok(*ballot) && ballot.node == me
            }
            Body::Reject {
                slot,
                ballot,
                promised,
            } => slot_ok(*slot) && ballot_ok(*ballot) && ballot.node == me && ballot_ok(*promised),
            Body::Prefix => true,
            Body::CatchUp { from_slot } => slot_ok(*from_slot),
            Body::Chosen { first, values } => !values.is_empty() && run_ok(*first, values.len()),
            Body::Snapshot { snapshot } => slot_ok(snapshot.last_slot),
        }
    }

    /// Notes a slot a peer used, so this node proposes past it.
    fn saw_slot(&mut self, slot: Slot) {
        if slot <= self.core.slots.prefix() + MAX_WINDOW {
            self.max_seen_slot = self.max_seen_slot.max(slot);
        }
    }

    /// `value` is chosen in `slot` (learned from any source). The instance there, if
    /// any, ends: its own value is done if it was chosen, else it moves on. A slot
    /// further past the chosen prefix than an acceptor takes part in is left for
    /// the catch-up.
    fn learn(&mut self, slot: Slot, value: Value) {
        if slot > self.core.slots.prefix() + MAX_WINDOW {
            // Too far ahead to keep: the catch-up brings it in order.
            return;
        }
        self.saw_slot(slot);
        match self.core.slots.learn(slot, value.clone()) {
            Learned::Known => {}
            Learned::Conflict => self.core.stats.conflicts += 1,
            Learned::New => {
                self.core.stats.decided += 1;
                self.active.remove(&slot);
                if let Some(inst) = self.instances.remove(&slot) {
                    self.finish(slot, inst.own, &value);
                }
                self.core.records.push(Record::Chosen { slot, value });
            }
        }
    }
}

#[cfg(test)]
mod tests;
