//! Catch-up of a lagging learner, shared by both engines.
//!
//! Every message carries its sender's chosen prefix. A node that sees a peer ahead of
//! it asks that peer for the values after its own prefix (one request at a time; a
//! request unanswered for `retry_ticks` goes to the next peer ahead). The peer
//! answers with a run of chosen values, or, when the slots asked for are compacted,
//! asks its driver to send the snapshot (at most once per `retry_ticks` per peer).

use super::slots::SlotLog;
use super::{NodeId, Slot, Value};
use std::collections::BTreeMap;

/// How to answer a peer's catch-up request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The slots asked for are compacted: the driver sends the snapshot.
    Snapshot,
    /// The chosen values from the slot asked for on.
    Values(Vec<Value>),
    /// Nothing to send (nothing known there, or a snapshot was offered just now).
    Nothing,
}

#[derive(Debug, Default)]
pub(crate) struct CatchUp {
    /// The highest chosen prefix each peer has reported.
    peer_prefix: BTreeMap<NodeId, Slot>,
    /// The outstanding request: `(tick sent, peer asked)`.
    requested: Option<(u64, NodeId)>,
    /// When a snapshot was last offered to each peer.
    offered: BTreeMap<NodeId, u64>,
}

impl CatchUp {
    /// A peer reported its chosen prefix.
    pub(crate) fn observe(&mut self, peer: NodeId, prefix: Slot) {
        let p = self.peer_prefix.entry(peer).or_insert(0);
        *p = (*p).max(prefix);
    }

    /// The peer to ask now, if this node lags and no request is outstanding (or the
    /// last one timed out, in which case the next peer ahead is tried).
    pub(crate) fn want(&mut self, now: u64, own_prefix: Slot, retry_ticks: u64) -> Option<NodeId> {
        let ahead: Vec<NodeId> = self
            .peer_prefix
            .iter()
            .filter(|&(_, &p)| p > own_prefix)
            .map(|(&id, _)| id)
            .collect();
        if ahead.is_empty() {
            self.requested = None;
            return None;
        }
        let peer = match self.requested {
            Some((sent, _)) if now < sent + retry_ticks => return None,
            Some((_, last)) => ahead
                .iter()
                .copied()
                .find(|&p| p > last)
                .unwrap_or(ahead[0]),
            None => {
                // The peer furthest ahead (lowest id on ties).
                let best = ahead
                    .iter()
                    .map(|id| self.peer_prefix[id])
                    .max()
                    .unwrap_or(0);
                ahead
                    .iter()
                    .copied()
                    .find(|id| self.peer_prefix[id] == best)
                    .unwrap_or(ahead[0])
            }
        };
        self.requested = Some((now, peer));
        Some(peer)
    }

    /// An answer (values or a snapshot) arrived: the next request may go at once.
    pub(crate) fn answered(&mut self) {
        self.requested = None;
    }

    /// Answers `peer`, which asked for the values from `from_slot` on.
    pub(crate) fn answer(
        &mut self,
        slots: &SlotLog,
        now: u64,
        peer: NodeId,
        from_slot: Slot,
        max_values: usize,
        retry_ticks: u64,
    ) -> Answer {
        if from_slot <= slots.snapshot() {
            return if self.may_offer(now, peer, retry_ticks) {
                Answer::Snapshot
            } else {
                Answer::Nothing
            };
        }
        let values = slots.chosen_run(from_slot, max_values);
        if values.is_empty() {
            Answer::Nothing
        } else {
            Answer::Values(values)
        }
    }

    /// Whether a snapshot may be offered to `peer` now.
    pub(crate) fn may_offer(&mut self, now: u64, peer: NodeId, retry_ticks: u64) -> bool {
        match self.offered.get(&peer) {
            Some(&t) if now < t + retry_ticks => false,
            _ => {
                self.offered.insert(peer, now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_the_peer_furthest_ahead_then_rotates_on_timeout() {
        let mut c = CatchUp::default();
        assert_eq!(c.want(0, 5, 10), None);
        c.observe(2, 9);
        c.observe(3, 20);
        c.observe(2, 4); // never goes back
        assert_eq!(c.want(0, 5, 10), Some(3));
        assert_eq!(c.want(5, 5, 10), None, "outstanding");
        assert_eq!(c.want(10, 5, 10), Some(2), "timed out: next peer ahead");
        c.answered();
        assert_eq!(c.want(11, 9, 10), Some(3), "2 is no longer ahead");
        assert_eq!(c.want(12, 20, 10), None, "caught up");
        assert!(c.may_offer(0, 2, 10));
        assert!(!c.may_offer(9, 2, 10));
        assert!(c.may_offer(10, 2, 10));
    }
}
