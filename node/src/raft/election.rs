//! Terms, elections, PreVote, CheckQuorum and leadership transfer.
//!
//! - §5.1: a message with a newer term turns the receiver into a follower of it.
//! - §5.2: randomized election timeouts; a candidate needs a majority of votes.
//! - §5.4.1: a vote goes only to a candidate whose log is at least as up-to-date.
//! - Thesis §9.6: PreVote (ask first whether an election could be won, without
//!   bumping any term) and the leader lease / CheckQuorum (a node that heard from a
//!   live leader within the minimum election timeout ignores vote requests; a leader
//!   that has not heard from a quorum for that long steps down). Together they keep
//!   a node that was cut off by a partition from deposing a healthy leader.
//! - Thesis §3.10: leadership transfer via TimeoutNow.

use super::progress::Progress;
use super::quorum::{VoteResult, has_quorum, joint_vote_result, recorded_vote};
use super::types::{Entry, Incarnation, Message, MessageBody, NodeId, Payload, Term};
use super::validate::MAX_TERM;
use super::{Raft, Role};

impl Raft {
    pub(super) fn reset_election_timer(&mut self) {
        self.election_elapsed = 0;
        self.randomized_timeout = self
            .rng
            .range(self.cfg.election_ticks_min, self.cfg.election_ticks_max);
    }

    pub(super) fn tick_election(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed >= self.randomized_timeout {
            if self.promotable() {
                self.reset_election_timer();
                self.campaign(self.cfg.pre_vote, false);
            } else {
                self.reset_election_timer();
                self.announce();
            }
        }
    }

    pub(super) fn tick_leader(&mut self) {
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks_min {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_recently_active() {
                self.become_follower(self.term, None);
                return;
            }
            // A transfer that did not finish within an election timeout is abandoned.
            self.transferee = None;
        }
        self.tick_snapshots();
        // Retried every tick: a refused C_new (or re-admission) must not wait for
        // the next commit, which an idle cluster may never have.
        self.maybe_finish_joint();
        self.maybe_readmit();
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    /// CheckQuorum: did a quorum (counting ourselves) talk to us since the last check?
    fn quorum_recently_active(&mut self) -> bool {
        let ok = has_quorum(&self.membership, &|p, inc| {
            self.is_me(p, inc) || self.tracked(p, inc).is_some_and(|pr| pr.recent_active)
        });
        for pr in self.progress.values_mut() {
            pr.recent_active = false;
        }
        ok
    }

    /// Starts an election as an election timeout would (through PreVote when it is
    /// configured). Used by tests and transcripts to pick who campaigns.
    pub fn hup(&mut self) {
        if self.promotable() && self.role != Role::Leader {
            self.reset_election_timer();
            self.campaign(self.cfg.pre_vote, false);
        }
    }

    /// Starts a (pre-)campaign. `transfer` marks a leadership transfer, which
    /// bypasses the receivers' leader lease. A real campaign counts the node's own
    /// vote only once the new term and vote are durable ([`Raft::persisted`]): a
    /// node whose own vote is a majority must not lead a term it could forget.
    pub(super) fn campaign(&mut self, pre_vote: bool, transfer: bool) {
        if self.term >= MAX_TERM {
            // Terms this high are refused from peers; never reached by counting.
            return;
        }
        let campaign_term = if pre_vote {
            self.become_pre_candidate();
            self.term + 1
        } else {
            self.become_candidate();
            self.term
        };
        if pre_vote {
            self.votes
                .insert(self.id, (self.identity.incarnation, true));
            if self.tally() == VoteResult::Won {
                self.campaign(false, transfer);
                return;
            }
        } else {
            self.own_vote_seq = Some(0);
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for to in self.voter_ids() {
            if to != self.id {
                let body = MessageBody::Vote {
                    pre_vote,
                    last_log_index,
                    last_log_term,
                    transfer,
                };
                self.send_with_term(to, campaign_term, body);
            }
        }
    }

    /// The campaign's term and vote are durable: the node's own vote counts now.
    pub(super) fn count_own_vote(&mut self) {
        if self.role != Role::Candidate {
            return;
        }
        self.votes
            .insert(self.id, (self.identity.incarnation, true));
        self.after_tally();
    }

    fn tally(&self) -> VoteResult {
        joint_vote_result(&self.membership, &|id, inc| {
            recorded_vote(&self.votes, id, inc)
        })
    }

    /// Acts on the tally of a real (not pre-) campaign.
    fn after_tally(&mut self) {
        match self.tally() {
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => self.become_follower(self.term, None),
            VoteResult::Pending => {}
        }
    }

    pub(super) fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term != self.term {
            self.term = term;
            self.vote = None;
            self.hs_dirty = true;
        }
        self.role = self.follower_role();
        self.leader = leader;
        self.reset_role_state();
    }

    fn become_pre_candidate(&mut self) {
        self.role = Role::PreCandidate;
        self.leader = None;
        self.reset_role_state();
    }

    fn become_candidate(&mut self) {
        self.term += 1;
        self.vote = Some(self.id);
        self.hs_dirty = true;
        self.role = Role::Candidate;
        self.leader = None;
        self.reset_role_state();
    }

    pub(super) fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.reset_role_state();
        let next = self.log.last_index() + 1;
        let mut peers: Vec<NodeId> = self.voter_ids();
        peers.extend(self.membership.learners.iter().copied());
        for p in peers {
            if p != self.id {
                let inc = self.expected_incarnation(p);
                self.progress.insert(p, Progress::new(next, inc));
            }
        }
        // §5.4.2 / §8: a no-op of the new term lets earlier entries commit, and
        // ReadIndex may serve reads once it is committed.
        let noop = Entry {
            term: self.term,
            index: next,
            payload: Payload::Noop,
        };
        self.log.append(noop);
        self.need_bcast = true;
        self.maybe_commit();
    }

    fn reset_role_state(&mut self) {
        self.reset_election_timer();
        self.heartbeat_elapsed = 0;
        self.votes.clear();
        self.own_vote_seq = None;
        self.progress.clear();
        self.transferee = None;
        self.reads.reset();
        self.need_bcast = false;
        self.commit_moved = false;
    }

    /// Applies the term rules to an incoming message. Returns false when the
    /// message must be dropped.
    pub(super) fn step_term(&mut self, m: &Message) -> bool {
        if m.term > self.term {
            match m.body {
                MessageBody::Vote {
                    pre_vote, transfer, ..
                } => {
                    let in_lease = self.cfg.check_quorum
                        && self.leader.is_some()
                        && self.election_elapsed < self.cfg.election_ticks_min;
                    if in_lease && !transfer {
                        // Leader lease: a live leader exists, ignore the disruption.
                        return false;
                    }
                    if !pre_vote {
                        self.become_follower(m.term, None);
                    }
                }
                // A granted pre-vote carries the term the candidate will use.
                MessageBody::VoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                MessageBody::Append { .. } | MessageBody::InstallSnapshot { .. } => {
                    self.become_follower(m.term, Some(m.from));
                }
                _ => self.become_follower(m.term, None),
            }
            true
        } else if m.term < self.term {
            match m.body {
                // Tell a stale leader about the newer term so it steps down; with
                // CheckQuorum it would otherwise keep its followers' leases alive.
                MessageBody::Append { read_ctx, .. } => {
                    let body = MessageBody::AppendResponse {
                        success: false,
                        match_index: 0,
                        conflict_index: 0,
                        conflict_term: None,
                        read_ctx,
                    };
                    self.send(m.from, body);
                }
                MessageBody::Vote { pre_vote: true, .. } => {
                    let body = MessageBody::VoteResponse {
                        pre_vote: true,
                        granted: false,
                    };
                    self.send(m.from, body);
                }
                _ => {}
            }
            false
        } else {
            true
        }
    }

    pub(super) fn handle_vote(&mut self, m: &Message) {
        let MessageBody::Vote {
            pre_vote,
            last_log_index,
            last_log_term,
            ..
        } = m.body
        else {
            return;
        };
        let can_vote = self.vote == Some(m.from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre_vote && m.term > self.term);
        let up_to_date =
            self.cfg.mutants.vote_any_log || self.log.is_up_to_date(last_log_index, last_log_term);
        let granted = can_vote && up_to_date;
        if granted && !pre_vote {
            self.vote = Some(m.from);
            self.hs_dirty = true;
            self.election_elapsed = 0;
        }
        let term = if pre_vote && granted {
            m.term
        } else {
            self.term
        };
        let body = MessageBody::VoteResponse { pre_vote, granted };
        self.send_with_term(m.from, term, body);
    }

    pub(super) fn handle_vote_response(
        &mut self,
        from: NodeId,
        inc: Incarnation,
        pre_vote: bool,
        granted: bool,
    ) {
        let expected = if pre_vote {
            Role::PreCandidate
        } else {
            Role::Candidate
        };
        if self.role != expected {
            return;
        }
        self.votes.insert(from, (inc, granted));
        if pre_vote {
            match self.tally() {
                VoteResult::Won => self.campaign(false, false),
                VoteResult::Lost => self.become_follower(self.term, None),
                VoteResult::Pending => {}
            }
        } else {
            self.after_tally();
        }
    }

    /// Asks the leader to hand leadership to `to` (thesis §3.10).
    pub fn transfer_leader(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.id || !self.membership.voters.contains(&to) {
            return;
        }
        self.transferee = Some(to);
        self.election_elapsed = 0;
        let caught_up = self
            .progress
            .get(&to)
            .is_some_and(|pr| pr.match_index == self.log.last_index());
        if caught_up {
            self.send(to, MessageBody::TimeoutNow);
        } else {
            self.send_append(to, true);
        }
    }

    /// Leader side: `to` just caught up; finish a pending transfer.
    pub(super) fn maybe_finish_transfer(&mut self, to: NodeId) {
        if self.transferee == Some(to)
            && self
                .progress
                .get(&to)
                .is_some_and(|pr| pr.match_index == self.log.last_index())
        {
            self.send(to, MessageBody::TimeoutNow);
        }
    }

    pub(super) fn handle_timeout_now(&mut self) {
        if self.promotable() && self.role != Role::Leader {
            self.campaign(false, true);
        }
    }
}
