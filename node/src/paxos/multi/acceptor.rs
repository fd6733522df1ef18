//! The acceptor and learner side of Multi-Paxos: Prepare, Accept, Heartbeat, and
//! catch-up requests and answers.

use super::{Body, MultiPaxos, PromiseEntry, Record};
use crate::paxos::limits::MAX_WINDOW;
use crate::paxos::{Ballot, NodeId, Role, Slot, Value};

impl MultiPaxos {
    /// Phase 1b. Promises only a ballot above every one promised so far. The Promise
    /// waits for the write that records it (the `forget_promise` mutant sends it at
    /// once, so a crash before the write makes the acceptor forget it).
    pub(super) fn on_prepare(&mut self, from: NodeId, ballot: Ballot, from_slot: Slot) {
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if ballot <= self.promised {
            let promised = self.promised;
            self.core.send_now(from, Body::Reject { ballot, promised });
            return;
        }
        if from != self.core.id && self.in_lease() {
            // A live leader was heard from within the minimum election timeout: a
            // node that merely lost touch with it must not depose it.
            return;
        }
        self.promise(ballot);
        if from != self.core.id {
            // Give the candidate time to finish before campaigning ourselves.
            self.reset_election_timer();
        }
        let prefix = self.core.slots.prefix();
        let start = from_slot.max(prefix + 1);
        // Nothing past prefix + MAX_WINDOW was ever accepted here (see `on_accept`).
        let entries: Vec<PromiseEntry> = self
            .core
            .slots
            .between(start, prefix + MAX_WINDOW)
            .filter_map(|(slot, st)| match (&st.chosen, &st.accepted) {
                (Some(value), _) => Some(PromiseEntry::Chosen {
                    slot,
                    value: value.clone(),
                }),
                (None, Some((b, value))) => Some(PromiseEntry::Accepted {
                    slot,
                    ballot: *b,
                    value: value.clone(),
                }),
                (None, None) => None,
            })
            .collect();
        let body = Body::Promise { ballot, entries };
        if self.core.cfg.mutants.forget_promise {
            self.core.send_now(from, body);
        } else {
            self.core.send_after_write(from, body);
        }
    }

    /// Raises the promise to `ballot` (recorded), leaving any own candidacy (a duel
    /// lost) or leadership of a lower ballot.
    fn promise(&mut self, ballot: Ballot) {
        self.promised = ballot;
        self.core.records.push(Record::Promised(ballot));
        let own = match (&self.candidate, &self.lead) {
            (Some(c), _) => Some(c.ballot),
            (None, Some(l)) => Some(l.ballot),
            (None, None) => None,
        };
        if own.is_some_and(|b| b < ballot) {
            if self.candidate.is_some() {
                self.core.stats.duels += 1;
            }
            self.become_follower(None);
        }
    }

    /// A leader (possibly this node) was heard from recently.
    fn in_lease(&self) -> bool {
        self.role == Role::Leader
            || (self.leader.is_some() && self.election_elapsed < self.core.cfg.election_ticks_min)
    }

    /// A message from the leader of `ballot`: follow it.
    fn follow(&mut self, leader: NodeId, ballot: Ballot) {
        self.max_round_seen = self.max_round_seen.max(ballot.round);
        if ballot > self.promised {
            self.promise(ballot);
        }
        if self.role != Role::Follower {
            self.become_follower(Some(leader));
        }
        self.leader = Some(leader);
        self.election_elapsed = 0;
    }

    /// Phase 2b for a batch. Every slot not compacted and within the window past our
    /// chosen prefix is accepted and recorded; the answer waits for the write.
    pub(super) fn on_accept(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        chosen_through: Slot,
        first: Slot,
        values: Vec<Value>,
    ) {
        if ballot < self.promised {
            let promised = self.promised;
            self.core.send_now(from, Body::Reject { ballot, promised });
            return;
        }
        if from != self.core.id {
            self.follow(from, ballot);
        }
        let lo = first.max(self.core.slots.snapshot() + 1);
        let hi = (first + values.len() as Slot - 1).min(self.core.slots.prefix() + MAX_WINDOW);
        for (slot, value) in (first..).zip(values) {
            if slot < lo || slot > hi {
                continue;
            }
            if let Some(st) = self.core.slots.state_mut(slot) {
                st.accepted = Some((ballot, value.clone()));
            }
            self.core.records.push(Record::Accepted {
                slot,
                ballot,
                value,
            });
        }
        self.core.send_after_write(
            from,
            Body::Accepted {
                ballot,
                first: lo,
                last: hi,
            },
        );
        if from != self.core.id {
            self.learn_from_leader(ballot, chosen_through);
        }
    }

    /// The leader of `ballot` reports every slot through `through` chosen: the slots
    /// we accepted in that very ballot hold the value it chose (a leader proposes
    /// one value per slot per ballot, and steps down before vouching for a slot
    /// where it learned another). The others come by catch-up.
    fn learn_from_leader(&mut self, ballot: Ballot, through: Slot) {
        let from = self.core.slots.prefix() + 1;
        let upto = through.min(self.core.slots.max_slot());
        let found: Vec<(Slot, Value)> = self
            .core
            .slots
            .between(from, upto)
            .filter_map(|(slot, st)| match (&st.chosen, &st.accepted) {
                (None, Some((b, v))) if *b == ballot => Some((slot, v.clone())),
                _ => None,
            })
            .collect();
        for (slot, value) in found {
            self.learn(slot, value);
        }
    }

    /// A heartbeat: follow the leader and say we still honour its ballot. The answer
    /// leaves at once: it claims only that no higher ballot is promised here, which
    /// a crash cannot make false for the reads it confirms (a later promise of a
    /// higher ballot happens after this answer either way).
    pub(super) fn on_heartbeat(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        chosen_through: Slot,
        read_ctx: u64,
    ) {
        if ballot < self.promised {
            let promised = self.promised;
            self.core.send_now(from, Body::Reject { ballot, promised });
            return;
        }
        self.follow(from, ballot);
        self.learn_from_leader(ballot, chosen_through);
        self.core
            .send_now(from, Body::HeartbeatAck { ballot, read_ctx });
    }

    pub(super) fn on_catch_up(&mut self, from: NodeId, from_slot: Slot) {
        if let Some(values) = self.core.answer_catch_up(from, from_slot) {
            let first = from_slot;
            self.core.send_now(from, Body::Chosen { first, values });
        }
    }

    pub(super) fn on_chosen(&mut self, first: Slot, values: Vec<Value>) {
        self.core.catch_up.answered();
        for (slot, value) in (first..).zip(values) {
            self.learn(slot, value);
        }
    }
}
