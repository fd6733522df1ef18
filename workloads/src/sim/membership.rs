//! Membership faults in the simulator: random configuration changes asked of the
//! leader through the replica's admin input (remove, add, replace one or two voters
//! at once, shrink to one voter, grow to every node, add learners, promote them),
//! with snapshots and leader crashes timed to land while the joint configuration is
//! in force. Also what "settled" means for the end of a run: one leader, no joint
//! configuration, and a node that lost its disk voting again.

use super::world::{Driven, Ev, MS, World};
use crate::faults::Fault;
use node::raft::types::NodeId;
use node::replica::{Input, Response, Status};
use rand::RngExt;
use serde_json::json;
use std::collections::BTreeSet;

impl<R: Driven> World<R> {
    pub(super) fn status_of(&self, id: NodeId) -> Option<Status> {
        self.nodes.get(&id)?.replica.as_ref().map(Driven::status)
    }

    /// One membership fault: asks the leader for a random change of its voters or
    /// learners, then maybe snapshots nodes and crashes the leader a moment later,
    /// so the joint phase meets compaction and elections.
    pub(super) fn membership_change(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let Some(st) = self.status_of(leader) else {
            return;
        };
        let m = &st.membership;
        if m.voters_old.is_some() {
            return;
        }
        let all: Vec<NodeId> = self.nodes.keys().copied().collect();
        let voters: Vec<NodeId> = m.voters.iter().copied().collect();
        let outside: Vec<NodeId> = all
            .iter()
            .copied()
            .filter(|i| !m.voters.contains(i))
            .collect();
        let mut new_voters = m.voters.clone();
        let mut new_learners: Option<BTreeSet<NodeId>> = None;
        let kind = self.rng.random_range(0..8u32);
        let what = match kind {
            0 if voters.len() > 1 => {
                new_voters.remove(&self.pick(&voters));
                "remove"
            }
            1 if !outside.is_empty() => {
                new_voters.insert(self.pick(&outside));
                "add"
            }
            2 if !outside.is_empty() => {
                new_voters.remove(&self.pick(&voters));
                new_voters.insert(self.pick(&outside));
                "replace"
            }
            3 if voters.len() > 1 => {
                let keep = if self.rng.random_bool(0.5) {
                    leader
                } else {
                    self.pick(&voters)
                };
                new_voters = BTreeSet::from([keep]);
                "shrink-to-one"
            }
            4 if !outside.is_empty() => {
                new_voters = all.iter().copied().collect();
                "grow-to-all"
            }
            5 if !outside.is_empty() => {
                let mut l = m.learners.clone();
                for &id in &outside {
                    if self.rng.random_bool(0.6) {
                        l.insert(id);
                    }
                }
                l.insert(self.pick(&outside));
                new_learners = Some(l);
                "add-learners"
            }
            6 if !m.learners.is_empty() => {
                new_voters.extend(m.learners.iter().copied());
                new_learners = Some(BTreeSet::new());
                "promote-learners"
            }
            7 if voters.len() >= 2 && outside.len() >= 2 => {
                let mut out = voters.clone();
                let mut fresh = outside.clone();
                for _ in 0..2 {
                    let a = out.remove(self.rng.random_range(0..out.len()));
                    let b = fresh.remove(self.rng.random_range(0..fresh.len()));
                    new_voters.remove(&a);
                    new_voters.insert(b);
                }
                "replace-two"
            }
            _ => return,
        };
        if let Some((w, _)) = self.wiped
            && new_voters.contains(&w)
            && new_voters.len() < 3
        {
            // A node that lost its disk must not become necessary to a quorum.
            return;
        }
        self.stats.membership_changes += 1;
        let voters: Vec<NodeId> = new_voters.into_iter().collect();
        let learners: Option<Vec<NodeId>> = new_learners.map(|l| l.into_iter().collect());
        self.nemesis_event(
            "membership",
            json!({"change": what, "leader": leader, "voters": voters, "learners": learners}),
        );
        let t = self.now + self.rng.random_range(50_000..500_000);
        self.queue.push(
            t,
            Ev::Admin {
                node: leader,
                voters,
                learners,
            },
        );
        if self.rng.random_bool(0.6) {
            for id in all {
                if self.rng.random_bool(0.5) {
                    let t = self.now + self.rng.random_range(0..40 * MS);
                    self.queue.push(t, Ev::CompactSoon { node: id });
                }
            }
        }
        if self.opts.nemesis.contains(Fault::Kill) && self.rng.random_bool(0.25) {
            let epoch = self.nodes.get(&leader).map_or(0, |n| n.epoch);
            let t = self.now + self.rng.random_range(0..25 * MS);
            self.queue.push(
                t,
                Ev::CrashSoon {
                    node: leader,
                    epoch,
                },
            );
        }
    }

    fn pick(&mut self, ids: &[NodeId]) -> NodeId {
        ids[self.rng.random_range(0..ids.len())]
    }

    /// A membership request reaches its node.
    pub(super) fn on_admin(&mut self, ev: Ev) {
        let Ev::Admin { node, .. } = &ev else {
            return;
        };
        let node = *node;
        let Some(Ev::Admin {
            voters, learners, ..
        }) = self.gate(node, ev)
        else {
            return;
        };
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        n.next_request += 1;
        let id = n.next_request;
        n.admin.insert(id);
        self.trace_line(|| format!("n{node} admin {id} voters {voters:?} learners {learners:?}"));
        self.feed(
            node,
            Input::ChangeMembership {
                id,
                voters,
                learners,
            },
        );
    }

    pub(super) fn on_admin_reply(&mut self, node: NodeId, id: u64, response: &Response) {
        match response {
            Response::Done(_) => self.stats.membership_done += 1,
            Response::NotLeader { .. } | Response::Rejected { .. } | Response::Invalid { .. } => {
                self.stats.membership_refused += 1
            }
            Response::Indeterminate => {}
        }
        self.trace_line(|| format!("n{node} admin {id} answered {response:?}"));
    }

    /// Why the cluster has not settled yet, if it has not: a run ends only once one
    /// node leads, its configuration is not joint, and a node that lost its disk has
    /// caught up and votes again.
    pub(super) fn unsettled(&mut self) -> Option<String> {
        if self.opts.engine == node::engine::EngineKind::BasicPaxos {
            // Every node proposes; there is no leader or configuration to wait for.
            return None;
        }
        let Some(leader) = self.leader() else {
            return Some("no leader".into());
        };
        let st = self.status_of(leader)?;
        if st.membership.voters_old.is_some() {
            return Some(format!(
                "the configuration is still joint (leader n{leader}: voters {:?}, old {:?})",
                st.membership.voters,
                st.membership.voters_old.unwrap_or_default()
            ));
        }
        if self.wiped_pending(&st.membership) {
            let w = self.wiped.map_or(0, |(w, _)| w);
            return Some(format!(
                "node {w} lost its disk and does not vote again yet"
            ));
        }
        None
    }
}
