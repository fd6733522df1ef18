//! Multi-Paxos: a leader runs phase 1 once, then only phase 2 per value.
//!
//! - **Election** (`leader`): a follower that hears no leader for a randomized
//!   timeout picks a ballot above every round it has seen, promises it to itself
//!   (durably), and sends Prepare for every slot from its first unchosen one. With
//!   promises from a majority it becomes leader: every slot a promise reveals is
//!   proposed again with the value of the highest ballot accepted there (a value known
//!   chosen is simply learned), and every hole among them gets a no-op.
//! - **Replication** (`leader`): the leader assigns each value the next slot and sends
//!   Accepts in batches (`max_values_per_msg` values each), with up to
//!   `max_inflight_msgs` unanswered Accepts per peer (pipelining). A slot is chosen
//!   when a majority has durably accepted it in the leader's ballot. The chosen
//!   prefix rides on every message: a follower marks chosen the slots it accepted in
//!   the same ballot, and asks for the rest (see `catchup`).
//! - **Failure detection**: heartbeats every `heartbeat_ticks`; a leader that has not
//!   heard from a majority for `election_ticks_min` ticks steps down, and a follower
//!   that has heard from a leader in that time ignores Prepares (so a node that only
//!   lost touch cannot depose a live leader).
//! - **Reads** (`leader`): no lease. The read index is the last slot the leader has
//!   proposed; the read is confirmed once a majority has answered a heartbeat
//!   showing it still honours the leader's ballot, and is served once the state
//!   machine has applied through the index.
//! - **Acceptor** (`acceptor`): one promised ballot for every slot. Promises and
//!   acceptances are recorded and their answers wait for the write (the persistence
//!   rule, see `outbox`).

mod acceptor;
mod leader;

use self::leader::{Candidate, Leadership, Reads};
use super::core::{self, Core, Machine};
use super::limits::{MAX_VALUES_PER_MSG, MAX_WINDOW};
use super::slots::Learned;
use super::{
    Ballot, Envelope, NodeId, PaxosConfig, ProposalId, ReadState, Ready, Recovered, Role, Slot,
    Snapshot, Stats, Status, Value, run_ok, slot_ok,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The Multi-Paxos messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Phase 1a for every slot from `from_slot` on.
    Prepare { ballot: Ballot, from_slot: Slot },
    /// Phase 1b: what the acceptor holds past both `from_slot` and its chosen prefix
    /// (the envelope's `chosen_through`; every slot up to it is chosen).
    Promise {
        ballot: Ballot,
        entries: Vec<PromiseEntry>,
    },
    /// The acceptor refuses `ballot`: it has promised `promised`.
    Reject { ballot: Ballot, promised: Ballot },
    /// Phase 2a for the slots `first .. first + values.len()`.
    Accept {
        ballot: Ballot,
        first: Slot,
        values: Vec<Value>,
    },
    /// Phase 2b: the slots `first ..= last` are durably accepted (none when
    /// `first > last`: they were compacted, or too far ahead).
    Accepted {
        ballot: Ballot,
        first: Slot,
        last: Slot,
    },
    /// The leader is alive; `read_ctx` is the newest read round to confirm.
    Heartbeat { ballot: Ballot, read_ctx: u64 },
    /// "I still honour `ballot`", echoing `read_ctx`.
    HeartbeatAck { ballot: Ballot, read_ctx: u64 },
    /// Send me the chosen values from `from_slot` on.
    CatchUp { from_slot: Slot },
    /// Chosen values of the slots `first .. first + values.len()`.
    Chosen { first: Slot, values: Vec<Value> },
    /// The sender's newest snapshot, for a peer whose catch-up asked for slots the
    /// sender compacted (named in [`Ready::send_snapshot`]; the engine adapter of
    /// the node sends it). Installed like one given to `install_snapshot`.
    Snapshot { snapshot: Snapshot },
}

/// One slot in a Promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromiseEntry {
    Accepted {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
    Chosen {
        slot: Slot,
        value: Value,
    },
}

impl PromiseEntry {
    pub fn slot(&self) -> Slot {
        match self {
            PromiseEntry::Accepted { slot, .. } | PromiseEntry::Chosen { slot, .. } => *slot,
        }
    }
}

/// A durable change, replayed in order at recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// The acceptor promised this ballot (for every slot).
    Promised(Ballot),
    /// The acceptor accepted `value` in `slot` under `ballot` (which it thereby
    /// promised too).
    Accepted {
        slot: Slot,
        ballot: Ballot,
        value: Value,
    },
    /// `value` is chosen in `slot`.
    Chosen { slot: Slot, value: Value },
}

super::record_view!(Record, Record::Promised(_));

pub type Message = Envelope<Body>;

/// The Multi-Paxos state machine of one node.
pub struct MultiPaxos {
    core: Core<Body, Record>,
    /// The acceptor's promise, for every slot.
    promised: Ballot,
    /// The highest round seen in any ballot: a new ballot goes above it.
    max_round_seen: u64,
    role: Role,
    leader: Option<NodeId>,
    election_elapsed: u32,
    randomized_timeout: u32,
    candidate: Option<Candidate>,
    lead: Option<Leadership>,
    /// Values this node proposed as leader, by slot, until applied or abandoned.
    own: BTreeMap<Slot, (ProposalId, Value)>,
    next_proposal: ProposalId,
    reads: Reads,
}

impl MultiPaxos {
    /// Builds the engine from what storage recovered (replaying its records).
    pub fn new(cfg: PaxosConfig, recovered: Recovered<Record>) -> MultiPaxos {
        let mut mp = MultiPaxos {
            core: Core::new(cfg, recovered.snapshot.as_ref()),
            promised: Ballot::ZERO,
            max_round_seen: 0,
            role: Role::Follower,
            leader: None,
            election_elapsed: 0,
            randomized_timeout: 0,
            candidate: None,
            lead: None,
            own: BTreeMap::new(),
            next_proposal: 0,
            reads: Reads::default(),
        };
        for r in recovered.records {
            mp.replay(r);
        }
        mp.max_round_seen = mp.promised.round;
        mp.reset_election_timer();
        mp
    }

    fn replay(&mut self, r: Record) {
        let ok = match r {
            Record::Promised(b) if self.core.peers.ballot_ok(b) => {
                self.promised = self.promised.max(b);
                true
            }
            Record::Accepted {
                slot,
                ballot,
                value,
            } if slot_ok(slot) && self.core.peers.ballot_ok(ballot) => {
                self.promised = self.promised.max(ballot);
                if let Some(st) = self.core.slots.state_mut(slot) {
                    st.accepted = Some((ballot, value));
                }
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

    pub fn status(&self) -> Status {
        let proposed = self.lead.as_ref().map_or(0, |l| l.next_slot - 1);
        self.core
            .status(self.role, self.leader, self.promised, proposed)
    }

    /// One unit of logical time.
    pub fn tick(&mut self) {
        self.core.now += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_timeout {
                self.campaign();
            }
        }
    }

    core::shared_api!();

    /// A snapshot from peer `from` (sent out of band after it saw this node lag).
    /// Installed when it is past the chosen prefix; the state machine gets it through
    /// [`Ready::installed`]. Returns whether it was installed.
    pub fn install_snapshot(&mut self, from: NodeId, snapshot: Snapshot) -> bool {
        let Some(through) = self.core.install(from, snapshot) else {
            return false;
        };
        let covered: Vec<Slot> = self.own.range(..=through).map(|(&s, _)| s).collect();
        for s in covered {
            if let Some((id, _)) = self.own.remove(&s) {
                self.core.abandoned.push(id);
            }
        }
        // A leader whose proposals the snapshot covers cannot tell what was chosen
        // there; it must not vouch for those slots in its ballot.
        let proposed_inside = self
            .lead
            .as_mut()
            .is_some_and(|l| l.drop_pending_through(through));
        if proposed_inside {
            self.become_follower(None);
        }
        true
    }
}

impl Machine for MultiPaxos {
    type Body = Body;
    type Record = Record;

    fn core(&mut self) -> &mut Core<Body, Record> {
        &mut self.core
    }

    fn housekeeping(&mut self) {
        if self.role == Role::Leader {
            self.send_accepts();
            self.maybe_heartbeat();
        }
        if let Some((peer, from_slot)) = self.core.want_catch_up() {
            self.core.send_now(peer, Body::CatchUp { from_slot });
        }
    }

    fn checkpoint(&self) -> Vec<Record> {
        let mut out = vec![Record::Promised(self.promised)];
        for (slot, st) in self.core.slots.from(self.core.slots.snapshot() + 1) {
            if let Some((ballot, value)) = &st.accepted {
                out.push(Record::Accepted {
                    slot,
                    ballot: *ballot,
                    value: value.clone(),
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

    fn proposal_at(&mut self, slot: Slot, value: &Value) -> Option<ProposalId> {
        match self.own.remove(&slot) {
            Some((id, v)) if v == *value => Some(id),
            Some((id, _)) => {
                self.core.abandoned.push(id);
                None
            }
            None => None,
        }
    }

    fn take_reads(&mut self) -> (Vec<ReadState>, Vec<u64>) {
        (
            std::mem::take(&mut self.reads.ready),
            std::mem::take(&mut self.reads.failed),
        )
    }

    fn handle(&mut self, from: NodeId, chosen_through: Slot, body: Body) {
        match body {
            Body::Prepare { ballot, from_slot } => self.on_prepare(from, ballot, from_slot),
            Body::Promise { ballot, entries } => {
                self.on_promise(from, ballot, chosen_through, entries)
            }
            Body::Reject { ballot, promised } => self.on_reject(ballot, promised),
            Body::Accept {
                ballot,
                first,
                values,
            } => self.on_accept(from, ballot, chosen_through, first, values),
            Body::Accepted {
                ballot,
                first,
                last,
            } => self.on_accepted(from, ballot, first, last),
            Body::Heartbeat { ballot, read_ctx } => {
                self.on_heartbeat(from, ballot, chosen_through, read_ctx)
            }
            Body::HeartbeatAck { ballot, read_ctx } => {
                self.on_heartbeat_ack(from, ballot, read_ctx)
            }
            Body::CatchUp { from_slot } => self.on_catch_up(from, from_slot),
            Body::Chosen { first, values } => self.on_chosen(first, values),
            Body::Snapshot { snapshot } => {
                self.install_snapshot(from, snapshot);
            }
        }
    }
}

impl MultiPaxos {
    /// The boundary check of a message body: sane ballots and slots, ballots owned
    /// by whoever may own them, ordered promise entries.
    fn valid(&self, m: &Message) -> bool {
        let known = self.promised.round.max(self.max_round_seen);
        let p = &self.core.peers;
        let ballot_ok = |b: Ballot| p.ballot_near(b, known);
        let (from, me) = (m.from, self.core.id);
        match &m.body {
            Body::Prepare { ballot, from_slot } => {
                ballot_ok(*ballot) && ballot.node == from && slot_ok(*from_slot)
            }
            Body::Promise { ballot, entries } => {
                ballot_ok(*ballot)
                    && ballot.node == me
                    && entries.len() <= MAX_VALUES_PER_MSG
                    && self.entries_ok(entries, m.chosen_through, known)
            }
            Body::Reject { ballot, promised } => {
                ballot_ok(*ballot) && ballot.node == me && ballot_ok(*promised)
            }
            Body::Accept {
                ballot,
                first,
                values,
            } => {
                ballot_ok(*ballot)
                    && ballot.node == from
                    && !values.is_empty()
                    && run_ok(*first, values.len())
            }
            Body::Accepted {
                ballot,
                first,
                last,
            } => {
                ballot_ok(*ballot)
                    && ballot.node == me
                    && slot_ok(*first)
                    && (last < first || last - first < MAX_VALUES_PER_MSG as Slot)
            }
            Body::Heartbeat { ballot, .. } => ballot_ok(*ballot) && ballot.node == from,
            Body::HeartbeatAck { ballot, .. } => ballot_ok(*ballot) && ballot.node == me,
            Body::CatchUp { from_slot } => slot_ok(*from_slot),
            Body::Chosen { first, values } => !values.is_empty() && run_ok(*first, values.len()),
            Body::Snapshot { snapshot } => slot_ok(snapshot.last_slot),
        }
    }

    /// Promise entries: strictly increasing slots, none further past the sender's
    /// chosen prefix than an acceptor may accept, ballots of known peers.
    fn entries_ok(&self, entries: &[PromiseEntry], through: Slot, known: u64) -> bool {
        let mut prev = 0;
        entries.iter().all(|e| {
            let s = e.slot();
            let ok = s > prev
                && slot_ok(s)
                && s <= through.saturating_add(MAX_WINDOW)
                && match e {
                    PromiseEntry::Accepted { ballot, .. } => {
                        self.core.peers.ballot_near(*ballot, known)
                    }
                    PromiseEntry::Chosen { .. } => true,
                };
            prev = s;
            ok
        })
    }

    /// `value` is chosen in `slot` (learned from any source). A slot further past
    /// the chosen prefix than an acceptor takes part in is left for later.
    fn learn(&mut self, slot: Slot, value: Value) {
        if slot > self.core.slots.prefix() + MAX_WINDOW {
            return;
        }
        match self.core.slots.learn(slot, value.clone()) {
            Learned::Known => {}
            Learned::Conflict => self.core.stats.conflicts += 1,
            Learned::New => {
                self.core.stats.decided += 1;
                // A leader that proposed something else here has been overtaken by a
                // higher ballot: it must stop vouching for slots in its own.
                let overtaken = self
                    .lead
                    .as_mut()
                    .and_then(|l| l.pending.remove(&slot))
                    .is_some_and(|p| p.value != value);
                self.core.records.push(Record::Chosen { slot, value });
                if overtaken {
                    self.become_follower(None);
                }
            }
        }
    }

    fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.randomized_timeout = self.core.rng.range(
            self.core.cfg.election_ticks_min,
            self.core.cfg.election_ticks_max,
        );
    }

    /// Leaves any leadership or candidacy. A leader's unchosen proposals and
    /// unconfirmed reads are given up (reported in the next `Ready`).
    fn become_follower(&mut self, leader: Option<NodeId>) {
        if self.lead.take().is_some() {
            let unchosen: Vec<Slot> = self
                .own
                .keys()
                .copied()
                .filter(|&s| !self.core.slots.is_chosen(s))
                .collect();
            for s in unchosen {
                if let Some((id, _)) = self.own.remove(&s) {
                    self.core.abandoned.push(id);
                }
            }
            self.reads.fail_all();
        }
        self.candidate = None;
        self.role = Role::Follower;
        self.leader = leader;
        self.reset_election_timer();
    }
}

#[cfg(test)]
mod tests;
