//! The leader's view of one follower: how far it matches and how to send it more.
//!
//! Probe: we do not know where the follower's log diverges; send one Append at a
//! time and wait for its answer. Replicate: the follower is keeping up; send
//! optimistically (pipelining) with at most `max_inflight` unacknowledged Appends.
//! Snapshot: the follower needs entries the leader has compacted away; one
//! InstallSnapshot is in flight and nothing else is sent until it is answered or
//! times out.

use super::types::{Incarnation, Index};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressState {
    Probe,
    Replicate,
    Snapshot,
}

#[derive(Clone, Debug)]
pub struct Progress {
    /// The incarnation of the follower this progress describes: the one the
    /// configuration names until another one is heard from (then the progress
    /// starts over, since the new incarnation holds nothing it can be trusted with).
    pub incarnation: Incarnation,
    /// Highest index known to match the leader's log.
    pub match_index: Index,
    /// Next index to send.
    pub next_index: Index,
    pub state: ProgressState,
    /// Probe only: an Append is outstanding.
    pub probe_sent: bool,
    /// Replicate only: the last index of every unacknowledged Append, oldest first.
    pub inflight: VecDeque<Index>,
    /// Snapshot only: the last index of the snapshot in flight.
    pub pending_snapshot: Index,
    /// Snapshot only: leader ticks since it was sent.
    pub snapshot_ticks: u32,
    /// Heard from since the last CheckQuorum round.
    pub recent_active: bool,
    /// Highest read_ctx this peer has echoed in the current term.
    pub read_ack: u64,
}

impl Progress {
    pub fn new(next_index: Index, incarnation: Incarnation) -> Self {
        Progress {
            incarnation,
            match_index: 0,
            next_index,
            state: ProgressState::Probe,
            probe_sent: false,
            inflight: VecDeque::new(),
            pending_snapshot: 0,
            snapshot_ticks: 0,
            recent_active: false,
            read_ack: 0,
        }
    }

    pub fn is_paused(&self, max_inflight: usize) -> bool {
        match self.state {
            ProgressState::Probe => self.probe_sent,
            ProgressState::Replicate => self.inflight.len() >= max_inflight,
            ProgressState::Snapshot => true,
        }
    }

    pub fn become_probe(&mut self) {
        self.state = ProgressState::Probe;
        self.probe_sent = false;
        self.inflight.clear();
        self.next_index = self.match_index + 1;
    }

    pub fn become_replicate(&mut self) {
        self.state = ProgressState::Replicate;
        self.probe_sent = false;
        self.inflight.clear();
        self.next_index = self.match_index + 1;
    }

    /// An InstallSnapshot through `index` was sent. Heartbeats go on meanwhile,
    /// positioned just after the snapshot.
    pub fn become_snapshot(&mut self, index: Index) {
        self.state = ProgressState::Snapshot;
        self.probe_sent = false;
        self.inflight.clear();
        self.pending_snapshot = index;
        self.snapshot_ticks = 0;
        self.next_index = index + 1;
    }

    /// Records that an Append ending at `last` was sent.
    pub fn sent(&mut self, last: Index, non_empty: bool) {
        match self.state {
            ProgressState::Probe => self.probe_sent = true,
            ProgressState::Replicate if non_empty => {
                self.next_index = last + 1;
                self.inflight.push_back(last);
            }
            ProgressState::Replicate | ProgressState::Snapshot => {}
        }
    }

    /// A success acknowledgement through `index`. Returns whether `match_index` grew.
    pub fn maybe_update(&mut self, index: Index) -> bool {
        let grew = index > self.match_index;
        if grew {
            self.match_index = index;
            self.probe_sent = false;
        }
        self.next_index = self.next_index.max(index + 1);
        while self.inflight.front().is_some_and(|&i| i <= index) {
            self.inflight.pop_front();
        }
        grew
    }

    /// A rejection of an Append whose previous index was `rejected`, with the
    /// next index the hints suggest. Returns false when the rejection is stale.
    pub fn maybe_decrease(&mut self, rejected: Index, hint_next: Index) -> bool {
        match self.state {
            ProgressState::Replicate => {
                if rejected <= self.match_index {
                    return false;
                }
                self.become_probe();
                self.set_next_after_reject(rejected, hint_next);
                true
            }
            ProgressState::Probe => {
                if rejected + 1 != self.next_index {
                    return false;
                }
                self.set_next_after_reject(rejected, hint_next);
                self.probe_sent = false;
                true
            }
            // Heartbeats are rejected until the snapshot is installed.
            ProgressState::Snapshot => false,
        }
    }

    /// Moves `next_index` back to at most `rejected` (so probing always makes
    /// progress) and not below what is known to match. A follower that lost
    /// acknowledged entries (storage without fsync) also lowers `match_index`.
    fn set_next_after_reject(&mut self, rejected: Index, hint_next: Index) {
        let next = hint_next.min(rejected).max(1);
        if next <= self.match_index {
            self.match_index = next - 1;
        }
        self.next_index = next.max(self.match_index + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipelining_stops_at_the_inflight_limit() {
        let mut p = Progress::new(1, 0);
        p.become_replicate();
        p.sent(5, true);
        p.sent(10, true);
        assert!(p.is_paused(2));
        assert!(p.maybe_update(5));
        assert!(!p.is_paused(2));
        assert_eq!(p.next_index, 11);
    }

    #[test]
    fn stale_rejections_are_ignored() {
        let mut p = Progress::new(10, 0);
        p.match_index = 4;
        p.become_replicate();
        assert!(!p.maybe_decrease(3, 2));
        assert!(p.maybe_decrease(8, 6));
        assert_eq!(p.state, ProgressState::Probe);
        assert_eq!(p.next_index, 6);
        // A second rejection for an older probe is stale.
        assert!(!p.maybe_decrease(8, 5));
    }
}
