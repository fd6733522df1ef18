//! The acceptor side of Basic Paxos: one promise and one accepted proposal per slot.

use super::{BasicPaxos, Body, Record};
use crate::paxos::limits::MAX_WINDOW;
use crate::paxos::{Ballot, NodeId, Slot, Value};

impl BasicPaxos {
    /// Phase 1b. Promises only a ballot above the one promised in the slot, and
    /// answers with the proposal accepted there. The Promise waits for the write
    /// that records it (the `forget_promise` mutant sends it at once).
    pub(super) fn on_prepare(&mut self, from: NodeId, slot: Slot, ballot: Ballot) {
        if self.answer_decided(from, slot) {
            return;
        }
        let Some(st) = self.core.slots.state_mut(slot) else {
            return;
        };
        if ballot <= st.promised {
            let promised = st.promised;
            self.refuse(from, slot, ballot, promised);
            return;
        }
        st.promised = ballot;
        let accepted = st.accepted.clone();
        self.max_ballot = self.max_ballot.max(ballot);
        self.core.records.push(Record::Promised { slot, ballot });
        let body = Body::Promise {
            slot,
            ballot,
            accepted,
        };
        if self.core.cfg.mutants.forget_promise {
            self.core.send_now(from, body);
        } else {
            self.core.send_after_write(from, body);
        }
    }

    /// Phase 2b. Accepts unless a higher ballot was promised in the slot; the answer
    /// waits for the write that records the acceptance.
    pub(super) fn on_accept(&mut self, from: NodeId, slot: Slot, ballot: Ballot, value: Value) {
        if self.answer_decided(from, slot) {
            return;
        }
        let Some(st) = self.core.slots.state_mut(slot) else {
            return;
        };
        if ballot < st.promised {
            let promised = st.promised;
            self.refuse(from, slot, ballot, promised);
            return;
        }
        st.promised = ballot;
        st.accepted = Some((ballot, value.clone()));
        self.max_ballot = self.max_ballot.max(ballot);
        self.core.records.push(Record::Accepted {
            slot,
            ballot,
            value,
        });
        self.core
            .send_after_write(from, Body::Accepted { slot, ballot });
    }

    fn refuse(&mut self, to: NodeId, slot: Slot, ballot: Ballot, promised: Ballot) {
        let body = Body::Reject {
            slot,
            ballot,
            promised,
        };
        self.core.send_now(to, body);
    }

    /// A phase message for a slot already decided here is answered with the value
    /// (or, for a compacted slot, the snapshot). A slot too far past our chosen
    /// prefix is ignored: no acceptor state is kept for it. Returns whether the
    /// message was dealt with.
    fn answer_decided(&mut self, from: NodeId, slot: Slot) -> bool {
        if from != self.core.id {
            self.saw_slot(slot);
            if slot > self.core.slots.prefix() && slot <= self.core.slots.prefix() + MAX_WINDOW {
                // Another proposer works on this slot: it is no hole to fill yet.
                self.active.insert(slot, self.core.now);
            }
        }
        if slot <= self.core.slots.snapshot() {
            self.core.maybe_offer_snapshot(from);
            return true;
        }
        if let Some(v) = self.core.slots.chosen(slot) {
            let values = vec![v.clone()];
            self.core.send_now(
                from,
                Body::Chosen {
                    first: slot,
                    values,
                },
            );
            return true;
        }
        slot > self.core.slots.prefix() + MAX_WINDOW
    }
}
