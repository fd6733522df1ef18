//! Unit tests of the core on a tiny in-memory network.

use super::*;

fn cfg(id: NodeId, n: u64) -> RaftConfig {
    RaftConfig {
        id,
        peers: (1..=n).collect(),
        election_ticks_min: 10,
        election_ticks_max: 20,
        heartbeat_ticks: 2,
        max_entries_per_msg: 4,
        max_inflight_msgs: 2,
        pre_vote: true,
        check_quorum: true,
        seed: 1,
        commit_old_term: false,
        vote_any_log: false,
    }
}

struct Net {
    nodes: BTreeMap<NodeId, Raft>,
    /// Writes issued and not yet durable, per node.
    unpersisted: BTreeMap<NodeId, u64>,
    msgs: VecDeque<Message>,
    /// Nodes whose messages are all lost.
    cut: Vec<NodeId>,
}

impl Net {
    fn new(n: u64, tweak: impl Fn(&mut RaftConfig)) -> Net {
        let nodes = (1..=n)
            .map(|id| {
                let mut c = cfg(id, n);
                tweak(&mut c);
                (id, Raft::new(c, HardState::default(), None, Vec::new()))
            })
            .collect();
        Net {
            nodes,
            unpersisted: BTreeMap::new(),
            msgs: VecDeque::new(),
            cut: Vec::new(),
        }
    }

    fn collect(&mut self, id: NodeId) -> Ready {
        let r = self
            .nodes
            .get_mut(&id)
            .map(|n| n.ready())
            .unwrap_or_default();
        if let Some(p) = &r.persist {
            self.unpersisted.insert(id, p.seq);
        }
        self.msgs.extend(r.messages.iter().cloned());
        r
    }

    fn persist_all(&mut self) {
        for (id, seq) in std::mem::take(&mut self.unpersisted) {
            if let Some(n) = self.nodes.get_mut(&id) {
                n.persisted(seq);
            }
            self.collect(id);
        }
    }

    fn stabilize(&mut self) {
        for _ in 0..10_000 {
            self.persist_all();
            let Some(m) = self.msgs.pop_front() else {
                if self.unpersisted.is_empty() {
                    return;
                }
                continue;
            };
            let to = m.to;
            if self.cut.contains(&to) || self.cut.contains(&m.from) {
                continue;
            }
            if let Some(n) = self.nodes.get_mut(&to) {
                n.step(m);
            }
            self.collect(to);
        }
        panic!("no quiescence");
    }

    fn with(&mut self, id: NodeId, f: impl FnOnce(&mut Raft)) -> Ready {
        if let Some(n) = self.nodes.get_mut(&id) {
            f(n);
        }
        self.collect(id)
    }

    fn node(&self, id: NodeId) -> &Raft {
        &self.nodes[&id]
    }
}

#[test]
fn vote_response_waits_for_the_vote_to_be_durable() {
    let mut net = Net::new(3, |c| c.pre_vote = false);
    let r = net.with(1, |n| n.hup());
    assert!(r.persist.is_some());
    assert!(
        r.messages.is_empty(),
        "Vote requests before the self-vote is durable"
    );
    net.persist_all();
    assert_eq!(net.msgs.len(), 2);
    let m = net.msgs.pop_front().expect("vote request");
    let r = net.with(2, |n| n.step(m));
    assert!(r.persist.as_ref().is_some_and(|p| p.hard_state.is_some()));
    assert!(
        r.messages.is_empty(),
        "granted vote sent before it was persisted"
    );
    net.persist_all();
    assert!(
        net.msgs
            .iter()
            .any(|m| m.from == 2
                && matches!(m.body, MessageBody::VoteResponse { granted: true, .. }))
    );
}

#[test]
fn leader_counts_itself_only_when_durable() {
    let mut net = Net::new(1, |_| {});
    net.with(1, |n| n.hup());
    assert_eq!(net.node(1).role(), Role::Leader);
    let idx = net.nodes.get_mut(&1).map(|n| n.propose(Payload::Noop));
    assert_eq!(idx, Some(Ok(2)));
    let r = net.collect(1);
    assert!(r.persist.is_some());
    assert_eq!(net.node(1).log().commit, 0, "committed before fsync");
    net.persist_all();
    assert_eq!(net.node(1).log().commit, 2);
}

#[test]
fn election_replication_and_commit_in_three_nodes() {
    let mut net = Net::new(3, |_| {});
    net.with(1, |n| n.hup());
    net.stabilize();
    assert_eq!(net.node(1).role(), Role::Leader);
    for i in 0..10u8 {
        net.nodes
            .get_mut(&1)
            .map(|n| n.propose(Payload::Command(vec![i])));
    }
    net.collect(1);
    net.stabilize();
    // Heartbeats spread the final commit index.
    for _ in 0..2 {
        net.with(1, |n| n.tick());
    }
    net.stabilize();
    for id in 1..=3 {
        let n = net.node(id);
        assert_eq!(n.log().last_index(), 11);
        assert_eq!(n.log().commit, 11, "node {id}");
    }
}

#[test]
fn follower_refuses_to_vote_for_a_shorter_log() {
    let mut net = Net::new(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    net.with(1, |n| n.hup());
    net.stabilize();
    // Only node 2 receives the new entry.
    net.cut.push(3);
    net.nodes.get_mut(&1).map(|n| n.propose(Payload::Noop));
    net.collect(1);
    net.stabilize();
    net.cut.clear();
    net.with(3, |n| n.hup());
    net.stabilize();
    assert!(net.node(3).log().last_index() < net.node(1).log().last_index());
    assert_ne!(net.node(3).role(), Role::Leader);
}

#[test]
fn vote_any_log_mutant_elects_a_stale_candidate() {
    let mut net = Net::new(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
        c.vote_any_log = true;
    });
    net.with(1, |n| n.hup());
    net.stabilize();
    net.cut.push(3);
    net.nodes.get_mut(&1).map(|n| n.propose(Payload::Noop));
    net.collect(1);
    net.stabilize();
    net.cut.clear();
    assert!(net.node(3).log().last_index() < net.node(1).log().last_index());
    net.with(3, |n| n.hup());
    net.stabilize();
    assert_eq!(net.node(3).role(), Role::Leader);
}

#[test]
fn leadership_transfer_hands_over_to_a_caught_up_peer() {
    let mut net = Net::new(3, |_| {});
    net.with(1, |n| n.hup());
    net.stabilize();
    net.with(1, |n| n.transfer_leader(2));
    net.stabilize();
    assert_eq!(net.node(2).role(), Role::Leader);
    assert_eq!(net.node(1).leader(), Some(2));
    assert_eq!(net.node(1).role(), Role::Follower);
}

#[test]
fn a_lost_append_is_repaired_by_heartbeats() {
    let mut net = Net::new(3, |_| {});
    net.with(1, |n| n.hup());
    net.stabilize();
    for i in 0..6u8 {
        net.nodes
            .get_mut(&1)
            .map(|n| n.propose(Payload::Command(vec![i])));
        net.collect(1);
        // Every Append to node 3 is lost.
        net.msgs.retain(|m| m.to != 3);
    }
    net.stabilize();
    for _ in 0..4 {
        net.with(1, |n| n.tick());
        net.stabilize();
    }
    assert_eq!(net.node(3).log().last_index(), 7);
    assert_eq!(net.node(3).log().commit, 7);
}

#[test]
fn recovered_state_restores_term_vote_and_membership() {
    let entries = vec![
        Entry {
            term: 2,
            index: 1,
            payload: Payload::Config(Membership {
                voters: [1, 2, 3, 4].into(),
                ..Membership::default()
            }),
        },
        // A torn, non-contiguous tail is ignored.
        Entry {
            term: 2,
            index: 3,
            payload: Payload::Noop,
        },
    ];
    let hs = HardState {
        term: 2,
        vote: Some(3),
        commit: 9,
    };
    let r = Raft::new(cfg(1, 3), hs, None, entries);
    assert_eq!((r.term(), r.vote()), (2, Some(3)));
    assert_eq!(r.log().last_index(), 1);
    assert_eq!(r.log().commit, 1, "commit clamped to the log");
    assert_eq!(r.membership().voters.len(), 4);
}

#[test]
fn a_slow_follower_disk_neither_deposes_the_leader_nor_stalls_reads() {
    let mut net = Net::new(3, |_| {});
    net.with(1, |n| n.hup());
    net.stabilize();
    assert_eq!(net.node(1).role(), Role::Leader);
    // From here on the followers' writes never become durable, so every answer
    // that depends on their logs waits; only the leader's disk works.
    net.nodes.get_mut(&1).map(|n| n.propose(Payload::Noop));
    net.collect(1);
    let round = net.nodes.get_mut(&1).map(|n| n.read_index());
    assert!(matches!(round, Some(Ok(_))), "{round:?}");
    let mut confirmed = Vec::new();
    // Five maximal election timeouts.
    for _ in 0..5 * 20 {
        confirmed.extend(net.with(1, |n| n.tick()).reads);
        for _ in 0..100 {
            if let Some(seq) = net.unpersisted.remove(&1) {
                if let Some(n) = net.nodes.get_mut(&1) {
                    n.persisted(seq);
                }
                confirmed.extend(net.collect(1).reads);
            }
            let Some(m) = net.msgs.pop_front() else { break };
            let to = m.to;
            if let Some(n) = net.nodes.get_mut(&to) {
                n.step(m);
            }
            let r = net.collect(to);
            if to == 1 {
                confirmed.extend(r.reads);
            }
        }
    }
    assert_eq!(net.node(1).role(), Role::Leader, "stepped down");
    assert_eq!(
        net.node(1).log().commit,
        1,
        "committed without durable followers"
    );
    assert_eq!(confirmed.len(), 1, "the read round was not confirmed");
}
