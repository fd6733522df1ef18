//! The persistence rule, shared by both engines: messages that depend on a write wait
//! until storage reports it durable.
//!
//! A message is queued either to leave at once ([`Outbox::send_now`]) or after the
//! write being built in this step ([`Outbox::send_after_write`]). When `ready` issues
//! that write ([`Outbox::next_seq`]), [`Outbox::settle`] ties every deferred message
//! to the newest write in flight; [`Outbox::persisted`] releases them. Messages to
//! this node itself go through the same queue and come back out of
//! [`Outbox::take_local`], so a node's answers to itself obey the rule too.

use super::{Envelope, NodeId};
use std::collections::VecDeque;

/// Messages held for an fsync. Beyond this the oldest are dropped: sends are best
/// effort anyway, and a driver that never syncs must not exhaust memory.
const MAX_WAITING_MSGS: usize = 65_536;

#[derive(Debug)]
pub(crate) struct Outbox<B> {
    id: NodeId,
    /// The newest write issued, and the newest reported durable.
    seq: u64,
    persisted: u64,
    now: Vec<Envelope<B>>,
    deferred: Vec<Envelope<B>>,
    waiting: VecDeque<(u64, Envelope<B>)>,
}

impl<B> Outbox<B> {
    pub(crate) fn new(id: NodeId) -> Self {
        Outbox {
            id,
            seq: 0,
            persisted: 0,
            now: Vec::new(),
            deferred: Vec::new(),
            waiting: VecDeque::new(),
        }
    }

    /// A message that depends on nothing waiting for the disk.
    pub(crate) fn send_now(&mut self, m: Envelope<B>) {
        self.now.push(m);
    }

    /// A message that must wait for the write this step is building.
    pub(crate) fn send_after_write(&mut self, m: Envelope<B>) {
        self.deferred.push(m);
    }

    /// Is a write issued and not yet durable?
    pub(crate) fn write_in_flight(&self) -> bool {
        self.seq > self.persisted
    }

    /// Issues the next write; returns its seq.
    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Deferred messages wait for the newest write in flight, or leave now when
    /// there is none. Call only when no records are waiting to be issued.
    pub(crate) fn settle(&mut self) {
        let in_flight = self.write_in_flight();
        for m in self.deferred.drain(..) {
            if in_flight {
                self.waiting.push_back((self.seq, m));
            } else {
                self.now.push(m);
            }
        }
        while self.waiting.len() > MAX_WAITING_MSGS {
            self.waiting.pop_front();
        }
    }

    /// Storage made every write with `seq <= seq` durable: release what waited.
    pub(crate) fn persisted(&mut self, seq: u64) {
        let seq = seq.min(self.seq);
        if seq <= self.persisted {
            return;
        }
        self.persisted = seq;
        while self.waiting.front().is_some_and(|(s, _)| *s <= seq) {
            if let Some((_, m)) = self.waiting.pop_front() {
                self.now.push(m);
            }
        }
    }

    /// Takes the messages addressed to this node that may be handled now.
    pub(crate) fn take_local(&mut self) -> Vec<B> {
        if !self.now.iter().any(|m| m.to == self.id) {
            return Vec::new();
        }
        let (local, out): (Vec<_>, Vec<_>) = std::mem::take(&mut self.now)
            .into_iter()
            .partition(|m| m.to == self.id);
        self.now = out;
        local.into_iter().map(|m| m.body).collect()
    }

    /// Takes the messages to peers that may leave now. Messages to this node stay
    /// for [`Outbox::take_local`].
    pub(crate) fn take(&mut self) -> Vec<Envelope<B>> {
        let id = self.id;
        let (local, out): (Vec<_>, Vec<_>) = std::mem::take(&mut self.now)
            .into_iter()
            .partition(|m| m.to == id);
        self.now = local;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(to: NodeId, body: u32) -> Envelope<u32> {
        Envelope {
            from: 1,
            to,
            chosen_through: 0,
            body,
        }
    }

    #[test]
    fn deferred_messages_wait_for_their_write() {
        let mut o = Outbox::new(1);
        o.send_after_write(msg(2, 10));
        o.send_now(msg(2, 11));
        let seq = o.next_seq();
        o.settle();
        assert_eq!(o.take().iter().map(|m| m.body).collect::<Vec<_>>(), [11]);
        // A later message waits for the same write.
        o.send_after_write(msg(3, 12));
        o.settle();
        assert!(o.take().is_empty());
        o.persisted(seq);
        assert_eq!(
            o.take().iter().map(|m| m.body).collect::<Vec<_>>(),
            [10, 12]
        );
    }

    #[test]
    fn without_a_write_in_flight_deferred_messages_leave_at_once() {
        let mut o = Outbox::new(1);
        o.send_after_write(msg(2, 1));
        o.settle();
        assert_eq!(o.take().len(), 1);
    }

    #[test]
    fn local_messages_come_back_separately_and_persisted_is_capped() {
        let mut o = Outbox::new(1);
        o.send_after_write(msg(1, 5));
        o.send_after_write(msg(2, 6));
        let seq = o.next_seq();
        o.settle();
        assert!(o.take_local().is_empty());
        // A durable report beyond the last write issued changes nothing extra.
        o.persisted(seq + 10);
        assert!(!o.write_in_flight());
        assert_eq!(o.take_local(), [5]);
        assert_eq!(o.take().iter().map(|m| m.to).collect::<Vec<_>>(), [2]);
    }
}
