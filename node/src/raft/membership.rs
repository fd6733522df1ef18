//! Membership changes by joint consensus (Raft paper §6).
//!
//! The leader appends C_old,new (`voters_old: Some(old)`); from then on every
//! decision needs a majority of both sets. Once C_old,new commits, the leader
//! (whoever it is by then) appends C_new. A leader that is not in C_new steps down
//! when C_new commits. Each server uses the newest configuration in its log,
//! committed or not; truncating the log restores the previous one.

use super::progress::Progress;
use super::types::{Index, Membership, NodeId, Payload};
use super::{ProposeError, Raft, Role};
use std::collections::BTreeSet;

impl Raft {
    /// Starts moving the voters to `voters` (and the learners to `learners`, when
    /// given; otherwise the learners stay, less any that become voters). Returns the
    /// index of the first configuration entry: C_old,new when the voters change, or
    /// the final configuration itself when only the learners do (learners count in
    /// no quorum, so that change needs no joint phase).
    pub fn propose_membership(
        &mut self,
        voters: BTreeSet<NodeId>,
        learners: Option<BTreeSet<NodeId>>,
    ) -> Result<Index, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if voters.is_empty() {
            return Err(ProposeError::BadMembership(
                "the new voter set is empty".into(),
            ));
        }
        let learners: BTreeSet<NodeId> = learners
            .unwrap_or_else(|| self.membership.learners.clone())
            .into_iter()
            .filter(|id| !voters.contains(id))
            .collect();
        let same_voters = voters == self.membership.voters && self.membership.voters_old.is_none();
        if same_voters && learners == self.membership.learners {
            return Err(ProposeError::BadMembership(
                "the voters and learners are already these".into(),
            ));
        }
        if self.config_change_pending() {
            return Err(ProposeError::BadMembership(
                "another membership change is in progress".into(),
            ));
        }
        let next = if same_voters {
            Membership {
                voters,
                learners,
                voters_old: None,
            }
        } else {
            Membership {
                learners,
                voters_old: Some(self.membership.voters.clone()),
                voters,
            }
        };
        self.propose(Payload::Config(next))
    }

    /// A configuration entry is uncommitted, or the cluster is in a joint one.
    fn config_change_pending(&self) -> bool {
        self.membership.voters_old.is_some()
            || self
                .config_log
                .last()
                .is_some_and(|(i, _)| *i > self.log.commit)
    }

    /// Leader: once C_old,new is committed, append C_new.
    pub(super) fn maybe_finish_joint(&mut self) {
        let committed = self
            .config_log
            .last()
            .is_some_and(|(i, _)| *i <= self.log.commit);
        if self.role == Role::Leader && committed && self.membership.voters_old.is_some() {
            let fin = Membership {
                voters: self.membership.voters.clone(),
                learners: self.membership.learners.clone(),
                voters_old: None,
            };
            // Refused only by the uncommitted-entry limit; retried on the next commit.
            let _ = self.propose(Payload::Config(fin));
        }
    }

    /// Leader: once a configuration without us is committed, step down (it has
    /// just told the followers the commit index).
    pub(super) fn maybe_leave(&mut self) {
        let committed = self
            .config_log
            .last()
            .is_some_and(|(i, _)| *i <= self.log.commit);
        if self.role == Role::Leader && committed && !self.is_voter() {
            self.become_follower(self.term, None);
        }
    }

    /// Leader: keep one progress entry per other member of the configuration.
    pub(super) fn sync_progress(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut members: BTreeSet<NodeId> = self.voter_ids().into_iter().collect();
        members.extend(self.membership.learners.iter().copied());
        members.remove(&self.id);
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index() + 1;
        for id in members {
            self.progress
                .entry(id)
                .or_insert_with(|| Progress::new(next));
        }
    }
}
