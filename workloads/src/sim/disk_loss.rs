//! Disk loss in the simulator: a node is killed and its disk is lost, whole or all
//! but the snapshot file (the write-ahead log alone is gone), then it restarts with
//! what is left. One node at a time: no other disk is lost until the first node has
//! caught up and votes again, and only a node whose loss leaves a majority of every
//! voter set of the configuration. The property: no acknowledged write is lost.

use super::world::{Driven, World};
use node::raft::types::{Membership, NodeId};
use node::replica::Role;
use rand::RngExt;
use serde_json::json;

/// Whether the voters of `m` keep a majority in each of their sets without `victim`.
fn survives_loss(m: &Membership, victim: NodeId) -> bool {
    [Some(&m.voters), m.voters_old.as_ref()]
        .into_iter()
        .flatten()
        .all(|set| !set.contains(&victim) || set.len() >= 3)
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
        if !survives_loss(&st.membership, victim) {
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

    /// Whether the node whose disk was lost is still catching up, or still waits to
    /// be re-admitted as a voter (it reports itself a learner while the leader's
    /// configuration names its id as a voter). Clears the mark once it is back.
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
        let back = st.applied_index >= commit && (!voter_id || st.role != Role::Learner);
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
            ..Membership::default()
        };
        assert!(survives_loss(&m(&[1, 2, 3], None), 1));
        assert!(!survives_loss(&m(&[1, 2], None), 1));
        assert!(survives_loss(&m(&[1, 2], None), 3));
        assert!(!survives_loss(&m(&[1], None), 1));
        assert!(!survives_loss(&m(&[1, 2, 3], Some(&[1, 2])), 2));
        assert!(survives_loss(&m(&[1, 2, 3, 4], Some(&[1, 2, 4])), 4));
    }
}
