//! Identity: which cluster a node belongs to, which incarnation of its id it is, and
//! how a node with no state joins without ever counting as a node that had one.
//!
//! The danger: a node whose disk was lost (or only its write-ahead log) forgot its
//! votes and the entries it acknowledged. If it came back as the same voter, a
//! candidate missing committed entries could win with its vote, and a leader could
//! count its old acknowledgements toward entries it no longer holds. And at first
//! boot every node is as blank as a wiped one, with the same command line.
//!
//! The rule:
//! - A node that starts with no identity takes a fresh random incarnation (from its
//!   driver) and makes it durable before it sends anything. It then asks its peers
//!   (`Discover`) who they are, and takes part in nothing until it has joined.
//! - If a peer answers that it belongs to a cluster, the node joins that cluster.
//!   If the cluster's bootstrap configuration names the node with its current
//!   incarnation, it is an original member that had simply not started yet: it never
//!   voted nor acknowledged anything (it had not joined), so it votes at once.
//!   Otherwise it is a new incarnation: no configuration names it, so its votes and
//!   acknowledgements count nowhere (candidates and leaders count a voter only as the
//!   incarnation its configuration names), it does not campaign, and it reports
//!   itself a learner. The leader replicates to it like to anyone with its id, and
//!   once it has caught up with the commit index, re-admits it by a joint
//!   configuration change whose new set names the new incarnation (the old set still
//!   names the lost one, which can never answer again).
//! - Only the peer with the lowest id bootstraps a cluster, and only when every other
//!   peer has answered, in reply to this incarnation's own question, that it has not
//!   joined one either. The bootstrap configuration names every peer with the
//!   incarnation it answered with; the cluster id is derived from it. Every other
//!   node only ever joins. So a cluster is bootstrapped again only if the
//!   bootstrapping node lost its state before any other node had joined (then the
//!   first cluster has never had a majority, so it holds nothing), and a node never
//!   counts as a voter it did not durably become.
//! - A node that is no voter of its configuration and no learner either (removed,
//!   added to the address book but not yet to the cluster, or a new incarnation
//!   waiting to be re-admitted) announces itself every election timeout, so any
//!   leader knows its incarnation. A leader names in a new configuration only
//!   incarnations it has heard from (or that the current one names already).
//!
//! What is refused instead of recovered: damage the node can see but not explain
//! (missing segments, a broken record in the middle) stops storage from opening;
//! the operator deletes the data directory and the node joins as a new incarnation.
//! A disk that silently returns old data with a valid-looking log cannot be told
//! from a correct one by any node: that is outside the fault model.

use super::progress::Progress;
use super::types::{Incarnation, Membership, MessageBody, NodeId, Payload};
use super::{Raft, Role};
use std::collections::BTreeSet;

/// Derives a cluster id from the bootstrap configuration (nonzero): every node that
/// bootstraps or joins from the same configuration gets the same id.
fn cluster_id(bootstrap: &Membership) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |x: u64| {
        h ^= x;
        h = h.wrapping_mul(0x0000_0100_0000_01b3).rotate_left(17);
    };
    for &id in &bootstrap.voters {
        mix(id);
        mix(bootstrap.admitted(id));
    }
    h.max(1)
}

impl Raft {
    /// While joining: ask the peers every election timeout (the first time at once).
    pub(super) fn tick_discover(&mut self) {
        self.election_elapsed += 1;
        if self.election_elapsed == 1 || self.election_elapsed >= self.randomized_timeout {
            if self.election_elapsed > 1 {
                self.reset_election_timer();
            }
            let peers: Vec<NodeId> = self.cfg.peers.clone();
            for p in peers {
                if p != self.id {
                    self.send(p, MessageBody::Discover);
                }
            }
            // A node that is its own only peer has no one to hear from.
            self.maybe_bootstrap();
        }
    }

    /// A joined node that is no voter of its configuration (a learner excepted: the
    /// leader replicates to it) tells the others its incarnation, so a leader can
    /// add or re-admit it (called every election timeout of a non-voter).
    pub(super) fn announce(&mut self) {
        if !self.cfg.discover || self.membership.learners.contains(&self.id) {
            return;
        }
        let mut to: BTreeSet<NodeId> = self.cfg.peers.iter().copied().collect();
        to.extend(self.membership.voters.iter().copied());
        to.remove(&self.id);
        for p in to {
            self.send(p, MessageBody::Discover);
        }
    }

    /// Any message: remember the sender's incarnation. A leader tracking the sender
    /// under another incarnation starts its progress over: the new incarnation holds
    /// nothing the old one acknowledged.
    pub(super) fn heard_incarnation(&mut self, from: NodeId, inc: Incarnation) {
        if self.heard.get(&from) != Some(&inc) {
            self.heard.insert(from, inc);
        }
        let next = self.log.last_index() + 1;
        if let Some(pr) = self.progress.get_mut(&from)
            && pr.incarnation != inc
        {
            *pr = Progress::new(next, inc);
        }
    }

    /// Answers who we are.
    pub(super) fn handle_discover(&mut self, m: &super::types::Message) {
        let (cluster, bootstrap) = if self.joined {
            (self.identity.cluster, self.identity.bootstrap.clone())
        } else {
            (0, Membership::default())
        };
        let body = MessageBody::DiscoverReply {
            asker: m.incarnation,
            cluster,
            bootstrap,
        };
        self.send(m.from, body);
    }

    /// While joining: a peer told us who it is.
    pub(super) fn handle_discover_reply(&mut self, m: super::types::Message) {
        let MessageBody::DiscoverReply {
            asker,
            cluster,
            bootstrap,
        } = m.body
        else {
            return;
        };
        if self.joined || asker != self.identity.incarnation {
            // Already joined, or the answer to a question of a former incarnation.
            return;
        }
        if cluster != 0 {
            self.join(cluster, bootstrap);
            return;
        }
        self.discover_replies.insert(m.from, m.incarnation);
        self.maybe_bootstrap();
    }

    /// The peer with the lowest id bootstraps once every other peer has answered
    /// that it has not joined a cluster either.
    fn maybe_bootstrap(&mut self) {
        if self.cfg.peers.iter().min() != Some(&self.id) {
            return;
        }
        let mut bootstrap = Membership::default();
        for &p in &self.cfg.peers {
            let inc = if p == self.id {
                self.identity.incarnation
            } else {
                match self.discover_replies.get(&p) {
                    Some(&inc) => inc,
                    None => return,
                }
            };
            bootstrap.voters.insert(p);
            bootstrap.incarnations.insert(p, inc);
        }
        let cluster = cluster_id(&bootstrap);
        self.join(cluster, bootstrap);
    }

    /// Joins `cluster`. The identity is written with the next `Ready`, before any
    /// message that follows (the persistence rule).
    fn join(&mut self, cluster: u64, bootstrap: Membership) {
        self.identity.cluster = cluster;
        self.identity.bootstrap = bootstrap.clone();
        self.identity_dirty = true;
        self.joined = true;
        self.discover_replies.clear();
        if self.snapshot.is_none() {
            self.base_membership = bootstrap;
        }
        self.refresh_membership();
        self.role = self.follower_role();
        self.reset_election_timer();
    }

    /// The incarnation a configuration should name for `id`: ours, the one last
    /// heard from, or (for a voter of the current configuration) the one it names
    /// already. `None` when the node has not been heard from: naming an incarnation
    /// from an older configuration could name one that lost its state, and a
    /// configuration that needs a lost incarnation can never commit.
    pub(super) fn known_incarnation(&self, id: NodeId) -> Option<Incarnation> {
        if id == self.id {
            return Some(self.identity.incarnation);
        }
        if let Some(&inc) = self.heard.get(&id) {
            return Some(inc);
        }
        if self.membership.voters.contains(&id) {
            return Some(self.membership.admitted(id));
        }
        (!self.cfg.discover).then_some(0)
    }

    /// Leader, every tick: a voter heard from as another incarnation than the
    /// configuration names, and caught up with the commit index, is re-admitted by
    /// a joint change that names its new incarnation.
    pub(super) fn maybe_readmit(&mut self) {
        if self.role != Role::Leader || self.config_change_pending() || self.transferee.is_some() {
            return;
        }
        let m = &self.membership;
        let mut incarnations = m.incarnations.clone();
        let mut changed = false;
        for &id in &m.voters {
            let Some(pr) = self.progress.get(&id) else {
                continue;
            };
            if pr.incarnation != m.admitted(id) && pr.match_index >= self.log.commit {
                incarnations.insert(id, pr.incarnation);
                changed = true;
            }
        }
        if !changed {
            return;
        }
        let next = if self.cfg.joint_skip {
            Membership {
                incarnations,
                ..m.clone()
            }
        } else {
            Membership {
                voters: m.voters.clone(),
                learners: m.learners.clone(),
                voters_old: Some(m.voters.clone()),
                incarnations,
                incarnations_old: Some(m.incarnations.clone()),
            }
        };
        // Refused only by the limits; retried on the next tick.
        let _ = self.propose(Payload::Config(next));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cluster_id_depends_on_every_voter_and_incarnation() {
        let b = |incs: &[(NodeId, Incarnation)]| Membership {
            voters: incs.iter().map(|p| p.0).collect(),
            incarnations: incs.iter().copied().collect(),
            ..Membership::default()
        };
        let a = cluster_id(&b(&[(1, 10), (2, 20), (3, 30)]));
        assert_ne!(a, 0);
        assert_eq!(a, cluster_id(&b(&[(1, 10), (2, 20), (3, 30)])));
        assert_ne!(a, cluster_id(&b(&[(1, 10), (2, 20), (3, 31)])));
        assert_ne!(a, cluster_id(&b(&[(1, 10), (2, 20)])));
    }
}
