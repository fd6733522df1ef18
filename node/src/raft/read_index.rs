//! ReadIndex (thesis §6.4): linearizable reads without writing to the log.
//!
//! The leader records its commit index when a read arrives, confirms it is still
//! the leader by a heartbeat round that a quorum echoes (`read_ctx`), and the read
//! is served once the state machine has applied that index. A new leader first
//! commits an entry of its own term (its no-op), because until then it does not
//! know the latest commit index.

use super::quorum::has_quorum;
use super::types::Index;
use super::{ProposeError, Raft, ReadState, Role};
use std::collections::VecDeque;

/// Rounds are numbered per node; a round's number is also its `read_ctx`, so a
/// peer echoing context `c` confirms every round `<= c`.
#[derive(Debug, Default)]
pub(super) struct ReadIndex {
    next_round: u64,
    /// Requested before the leader committed an entry of its term.
    waiting_commit: Vec<u64>,
    /// Started, awaiting a quorum of echoes, oldest first: `(round, index)`.
    pending: VecDeque<(u64, Index)>,
    /// Confirmed, for the next `Ready`.
    pub(super) ready: Vec<ReadState>,
    /// A heartbeat round must go out with the next `Ready`.
    pub(super) need_bcast: bool,
}

/// Bound on reads waiting for confirmation at one leader.
const MAX_PENDING_READS: usize = 100_000;

impl ReadIndex {
    /// Drops every round (leadership changed); the replica fails their requests.
    pub(super) fn reset(&mut self) {
        self.waiting_commit.clear();
        self.pending.clear();
        self.need_bcast = false;
    }

    /// The context to put in heartbeats: the newest round still unconfirmed.
    pub(super) fn latest_ctx(&self) -> u64 {
        self.pending.back().map_or(0, |&(r, _)| r)
    }

    /// The newest round ever started (0 before the first): no peer can echo more.
    pub(super) fn last_round(&self) -> u64 {
        self.next_round
    }
}

impl Raft {
    /// Starts a linearizable read. Returns the round number that a later
    /// [`ReadState`] will carry.
    pub fn read_index(&mut self) -> Result<u64, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.reads.pending.len() + self.reads.waiting_commit.len() >= MAX_PENDING_READS {
            return Err(ProposeError::Busy);
        }
        self.reads.next_round += 1;
        let round = self.reads.next_round;
        if self.log.term(self.log.commit) != Some(self.term) {
            self.reads.waiting_commit.push(round);
        } else {
            self.start_read(round);
        }
        Ok(round)
    }

    fn start_read(&mut self, round: u64) {
        self.reads.pending.push_back((round, self.log.commit));
        self.reads.need_bcast = true;
        self.confirm_reads();
    }

    /// The leader's first entry of its term committed: start the reads that waited.
    pub(super) fn start_waiting_reads(&mut self) {
        for round in std::mem::take(&mut self.reads.waiting_commit) {
            self.start_read(round);
        }
    }

    /// Moves every round that a quorum has echoed to `ready`.
    pub(super) fn confirm_reads(&mut self) {
        while let Some(&(round, index)) = self.reads.pending.front() {
            let confirmed = has_quorum(&self.membership, &|p, inc| {
                self.is_me(p, inc) || self.tracked(p, inc).is_some_and(|pr| pr.read_ack >= round)
            });
            if !confirmed {
                break;
            }
            self.reads.pending.pop_front();
            self.reads.ready.push(ReadState { round, index });
        }
        if self.reads.pending.is_empty() {
            self.reads.need_bcast = false;
        }
    }
}
