//! Membership changes by joint consensus (Raft paper §6).
//!
//! The leader appends C_old,new (`voters_old: Some(old)`); from then on every
//! decision needs a majority of both sets. Once C_old,new commits, the leader
//! (whoever it is by then) appends C_new. A leader that is not in C_new steps down
//! when C_new commits. Each server uses the newest configuration in its log,
//! committed or not; truncating the log restores the previous one.
//!
//! "C_old,new is committed" means: the newest configuration entry is at or below
//! the commit index, or there is no configuration entry in the log at all (the
//! joint configuration came in a snapshot, which holds only committed state). The
//! leader checks it on every commit and every tick, so neither compaction nor a
//! refused proposal nor an idle cluster leaves it joint.
//!
//! Every configuration names the incarnation of each voter (see `identity`); a
//! change takes the incarnations the leader knows.

use super::progress::Progress;
use super::types::{Incarnation, Index, Membership, NodeId, Payload};
use super::{ProposeError, Raft, Role};
use std::collections::{BTreeMap, BTreeSet};

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
        let mut incarnations = BTreeMap::new();
        for &id in &voters {
            let Some(inc) = self.known_incarnation(id) else {
                return Err(ProposeError::BadMembership(format!(
                    "node {id} has not been heard from yet, so its incarnation is unknown"
                )));
            };
            incarnations.insert(id, inc);
        }
        let next = if same_voters || self.cfg.mutants.joint_skip {
            // Only the learners change (no quorum does), or the joint-skip mutant.
            Membership {
                voters,
                learners,
                voters_old: None,
                incarnations,
                incarnations_old: None,
            }
        } else {
            Membership {
                learners,
                voters_old: Some(self.membership.voters.clone()),
                incarnations_old: Some(self.membership.incarnations.clone()),
                voters,
                incarnations,
            }
        };
        self.propose(Payload::Config(next))
    }

    /// A configuration entry is uncommitted, or the cluster is in a joint one.
    pub(super) fn config_change_pending(&self) -> bool {
        self.membership.voters_old.is_some() || !self.config_committed()
    }

    /// Whether the newest configuration is committed: its entry is at or below the
    /// commit index, or it came from a snapshot (no configuration entry in the log).
    fn config_committed(&self) -> bool {
        self.config_log
            .last()
            .is_none_or(|(i, _)| *i <= self.log.commit)
    }

    /// Leader: once C_old,new is committed, append C_new. Called on every commit
    /// and every tick, so a proposal refused by the limits is retried.
    pub(super) fn maybe_finish_joint(&mut self) {
        if self.role != Role::Leader
            || self.membership.voters_old.is_none()
            || !self.config_committed()
        {
            return;
        }
        let fin = Membership {
            voters: self.membership.voters.clone(),
            learners: self.membership.learners.clone(),
            voters_old: None,
            incarnations: self.membership.incarnations.clone(),
            incarnations_old: None,
        };
        // Refused only by the uncommitted-entry limit; retried on the next tick.
        let _ = self.propose(Payload::Config(fin));
    }

    /// Leader: once a configuration without us is committed, step down (it has
    /// just told the followers the commit index).
    pub(super) fn maybe_leave(&mut self) {
        if self.role == Role::Leader && self.config_committed() && !self.is_voter() {
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
            if !self.progress.contains_key(&id) {
                let inc = self.expected_incarnation(id);
                self.progress.insert(id, Progress::new(next, inc));
            }
        }
    }

    /// The incarnation to expect from `id`: the one last heard from, else the one
    /// the configuration names.
    pub(super) fn expected_incarnation(&self, id: NodeId) -> Incarnation {
        self.heard
            .get(&id)
            .copied()
            .unwrap_or_else(|| self.membership.admitted(id))
    }
}
