//! Disk loss in the simulator: a node is killed and its disk is lost, whole or all
//! but the snapshot file (the write-ahead log alone is gone), then it restarts with
//! what is left. One node at a time: no other disk is lost until the first node has
//! caught up and votes again, and only a node whose loss leaves a majority of every
//! voter set of every configuration a node holds (an uncommitted one too: its
//! holder may still win an election with it). The property: no acknowledged write
//! is lost.

use super::world::{Driven, MS, World};
use node::raft::types::{Incarnation, Membership, NodeId, Payload};
use node::replica::Role;
use rand::RngExt;
use serde_json::json;

/// How long a node that lost its disk runs before it counts as known again: a few
/// election timeouts, in which it announces its new incarnation.
const ANNOUNCED_NS: u64 = 1_000 * MS;

/// Whether the voters of `m` keep a majority in each of their sets without `victim`.
/// A voter counts only if `live(id, incarnation)` says that incarnation still runs
/// (a node that lost its disk before is no voter until it is re-admitted).
fn survives_loss(
    m: &Membership,
    victim: NodeId,
    live: &impl Fn(NodeId, Incarnation) -> bool,
) -> bool {
    let halves = [
        Some((&m.voters, &m.incarnations)),
        m.voters_old.as_ref().zip(m.incarnations_old.as_ref()),
    ];
    halves.into_iter().flatten().all(|(set, incs)| {
        let alive = set
            .iter()
            .filter(|&&id| id != victim && live(id, incs.get(&id).copied().unwrap_or(0)))
            .count();
        alive > set.len() / 2
    })
}

impl<R: Driven> World<R> {
    /// One disk-loss fault.
    pub(super) fn disk_loss(&mut self) {
        let Some(leader) = self.leader() else {
            return;
        };
        let Some(st) = self.status_of(leader) else {
            return;
        };
        if self.wiped_pending(&st.membership) {
            return;
        }
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        let victim = ids[self.rng.random_range(0..ids.len())];
        let live = |id: NodeId, inc: Incarnation| self.incarnation_of(id) == Some(inc);
        let configs = self.configurations_held();
        if !configs.iter().all(|m| survives_loss(m, victim, &live)) {
            return;
        }
        let keep_snapshot = self.rng.random_bool(0.5);
        let running = self.nodes.get(&victim).is_some_and(|n| n.replica.is_some());
        if running {
            self.crash(victim, "disk-loss");
        }
        let Some(n) = self.nodes.get_mut(&victim) else {
            return;
        };
        let had_snapshot = n.disk.durable.snapshot.is_some();
        n.disk.lose(keep_snapshot);
        if keep_snapshot {
            self.stats.wal_losses += 1;
        } else {
            self.stats.disk_wipes += 1;
        }
        let what = if keep_snapshot && had_snapshot {
            "wal-lost-snapshot-kept"
        } else {
            "disk-wiped"
        };
        self.nemesis_event("disk-loss", json!({"node": victim, "lost": what}));
        self.wiped = Some((victim, st.commit_index));
    }

    /// The newest configuration of every node: a running node's, or the one on the
    /// disk of a node that is down.
    fn configurations_held(&self) -> Vec<Membership> {
        self.nodes
            .values()
            .filter_map(|n| match &n.replica {
                Some(r) => Some(r.status().membership),
                None => {
                    let d = &n.disk.durable;
                    let in_log = d.entries.iter().rev().find_map(|e| match &e.payload {
                        Payload::Config(m) => Some(m.clone()),
                        _ => None,
                    });
                    in_log
                        .or_else(|| d.snapshot.as_ref().map(|s| s.meta.membership.clone()))
                        .or_else(|| d.identity.as_ref().map(|i| i.bootstrap.clone()))
                }
            })
            .collect()
    }

    /// The incarnation node `id` is (running, or on its disk while it is down).
    fn incarnation_of(&self, id: NodeId) -> Option<Incarnation> {
        let n = self.nodes.get(&id)?;
        match &n.replica {
            Some(r) => Some(r.status().incarnation),
            None => n.disk.durable.identity.as_ref().map(|i| i.incarnation),
        }
    }

    /// Whether the node whose disk was lost is still catching up, or still waits to
    /// be re-admitted as a voter (it reports itself a learner while the leader's
    /// configuration names its id as a voter, and its re-admission is done only
    /// once the configuration is no longer joint). A node the configuration no
    /// longer names owes nothing. Clears the mark once it is back.
    pub(super) fn wiped_pending(&mut self, leader_config: &Membership) -> bool {
        let Some((w, commit)) = self.wiped else {
            return false;
        };
        let Some(st) = self.status_of(w) else {
            return true;
        };
        let voter_id = leader_config.voters.contains(&w)
            || leader_config
                .voters_old
                .as_ref()
                .is_some_and(|o| o.contains(&w));
        let member = voter_id || leader_config.learners.contains(&w);
        let running_ns = self
            .nodes
            .get(&w)
            .map_or(0, |n| self.now.saturating_sub(n.started_ns));
        let back = (!member && st.cluster != 0 && running_ns >= ANNOUNCED_NS)
            || (st.applied_index >= commit
                && leader_config.voters_old.is_none()
                && (!voter_id || st.role != Role::Learner));
        if back {
            self.wiped = None;
            self.trace_line(|| format!("n{w} is back after losing its disk"));
        }
        !back
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn a_loss_must_leave_a_majority_of_every_voter_set() {
        let set = |v: &[NodeId]| v.iter().copied().collect::<BTreeSet<_>>();
        let m = |v: &[NodeId], old: Option<&[NodeId]>| Membership {
            voters: set(v),
            voters_old: old.map(set),
            incarnations_old: old.map(|_| Default::default()),
            ..Membership::default()
        };
        let all = |_: NodeId, _: Incarnation| true;
        assert!(survives_loss(&m(&[1, 2, 3], None), 1, &all));
        assert!(!survives_loss(&m(&[1, 2], None), 1, &all));
        assert!(survives_loss(&m(&[1, 2], None), 3, &all));
        assert!(!survives_loss(&m(&[1], None), 1, &all));
        assert!(!survives_loss(&m(&[1, 2, 3], Some(&[1, 2])), 2, &all));
        assert!(survives_loss(&m(&[1, 2, 3, 4], Some(&[1, 2, 4])), 4, &all));
        // Node 3 runs as another incarnation than the configuration names: it no
        // longer counts, so losing node 1 too would leave no majority.
        let three_lost = |id: NodeId, _: Incarnation| id != 3;
        assert!(!survives_loss(&m(&[1, 2, 3], None), 1, &three_lost));
        assert!(survives_loss(&m(&[1, 2, 3], None), 3, &three_lost));
    }
}
