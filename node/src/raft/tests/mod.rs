//! Unit tests of the core on a tiny in-memory network. `identity`: joining by
//! discovery, lost state and re-admission; `hostile`: peer messages no correct node
//! sends.

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
        incarnation: 0,
        discover: false,
        mutants: Default::default(),
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
                (
                    id,
                    Raft::new(c, HardState::default(), None, None, Vec::new()),
                )
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
        self.stabilize_seeing(|_| {});
    }

    /// [`Net::stabilize`], showing `seen` every message delivered.
    fn stabilize_seeing(&mut self, mut seen: impl FnMut(&Message)) {
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
            seen(&m);
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

/// A node whose own vote is a majority (a single voter) must not lead before its
/// new term and vote are durable: it would send Appends of that term, and after a
/// crash lead the same term again with other entries at the same indexes.
#[test]
fn a_single_voter_leads_only_once_its_term_and_vote_are_durable() {
    let mut net = Net::new(1, |_| {});
    net.with(1, |n| n.hup());
    assert_eq!(
        net.node(1).role(),
        Role::Candidate,
        "led before its vote was durable"
    );
    assert_eq!(net.node(1).term(), 1);
    // A crash now loses term 1; the restarted node campaigns for term 1 again,
    // which is fine: it never led it.
    let back = Raft::new(cfg(1, 1), HardState::default(), None, None, Vec::new());
    assert_eq!((back.term(), back.role()), (0, Role::Follower));
    net.persist_all();
    assert_eq!(net.node(1).role(), Role::Leader);
    assert_eq!(net.node(1).hard_state().vote, Some(1));
}

#[test]
fn leader_counts_itself_only_when_durable() {
    let mut net = Net::new(1, |_| {});
    net.with(1, |n| n.hup());
    net.persist_all();
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
        c.mutants.vote_any_log = true;
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

/// Many large entries behind a follower go in Appends bounded in bytes as well as in
/// entries: 512 entries of 1 MiB in one message (512 MiB) would pass what a node
/// reads from a peer (256 MiB), and the follower would never catch up.
#[test]
fn appends_to_a_lagging_follower_are_bounded_in_bytes() {
    let mut net = Net::new(3, |c| {
        c.max_entries_per_msg = 512;
        c.max_inflight_msgs = 256;
    });
    net.with(1, |n| n.hup());
    net.stabilize();
    net.cut.push(3);
    for i in 0..40u8 {
        net.with(1, |n| {
            let _ = n.propose(Payload::Command(vec![i; 1 << 20]));
        });
        net.stabilize();
    }
    net.cut.clear();
    let mut largest = 0;
    let mut sent = 0;
    for _ in 0..200 {
        if net.node(3).log().last_index() == net.node(1).log().last_index() {
            break;
        }
        net.with(1, |n| n.tick());
        net.stabilize_seeing(|m| {
            if let (3, MessageBody::Append { entries, .. }) = (m.to, &m.body) {
                let bytes: usize = entries.iter().map(|e| e.payload.size()).sum();
                largest = largest.max(bytes);
                sent += entries.len();
            }
        });
    }
    assert_eq!(
        net.node(3).log().last_index(),
        net.node(1).log().last_index(),
        "node 3 did not catch up"
    );
    assert!(sent >= 40, "only {sent} entries went to node 3");
    assert!(
        largest <= MAX_APPEND_BYTES,
        "an Append carried {largest} bytes of commands (bound {MAX_APPEND_BYTES})"
    );
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
    let r = Raft::new(cfg(1, 3), hs, None, None, entries);
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

/// A 3-node cluster led by node 1 where node 3 missed `n` proposals, after which
/// the leader compacted its log through its applied index. Returns that index.
fn leader_compacted_while_3_was_away(net: &mut Net, n: u8) -> Index {
    net.with(1, |r| r.hup());
    net.stabilize();
    net.cut.push(3);
    for i in 0..n {
        net.nodes
            .get_mut(&1)
            .map(|r| r.propose(Payload::Command(vec![i])));
        net.collect(1);
        net.stabilize();
    }
    // Heartbeats spread the commit index; every Ready hands committed entries over.
    for _ in 0..2 {
        net.with(1, |r| r.tick());
    }
    net.stabilize();
    let applied = net.node(1).log().applied;
    assert_eq!(applied, 1 + n as Index);
    let mut done = false;
    let r = net.with(1, |r| done = r.compact(applied, b"state".to_vec()));
    assert!(done);
    let p = r.persist.expect("the snapshot goes to storage");
    let s = p.snapshot.expect("snapshot in the write");
    assert_eq!(s.meta.last_index, applied);
    net.persist_all();
    net.cut.clear();
    applied
}

#[test]
fn compaction_drops_the_prefix_and_keeps_the_membership() {
    let mut net = Net::new(3, |_| {});
    net.with(1, |r| r.hup());
    net.stabilize();
    for i in 0..5u8 {
        net.nodes
            .get_mut(&1)
            .map(|r| r.propose(Payload::Command(vec![i])));
    }
    net.collect(1);
    net.stabilize();
    let applied = net.node(1).log().applied;
    assert_eq!(applied, 6);
    let mut ok = Vec::new();
    let r = net.with(1, |r| {
        ok.push(r.compact(applied + 1, vec![1]));
        ok.push(r.compact(4, vec![4]));
        ok.push(r.compact(4, vec![4]));
        ok.push(r.compact(3, vec![3]));
    });
    assert_eq!(
        ok,
        [false, true, false, false],
        "only applied, newer indexes"
    );
    let n = net.node(1);
    assert_eq!(n.log().first_index(), 5);
    assert_eq!(n.log().last_index(), 6);
    assert_eq!(n.log().term(4), n.snapshot().map(|s| s.meta.last_term));
    let s = r
        .persist
        .and_then(|p| p.snapshot)
        .expect("persisted snapshot");
    assert_eq!(s.meta.last_index, 4);
    assert_eq!(s.data, vec![4].into());
    assert_eq!(s.meta.membership.voters, [1, 2, 3].into_iter().collect());
    // A restart from the snapshot plus the rest of the log is the same log.
    let entries = n.log().slice(5, 6).to_vec();
    let back = Raft::new(cfg(1, 3), n.hard_state(), None, Some(&s), entries);
    assert_eq!(back.log().first_index(), 5);
    assert_eq!(back.log().applied, 4);
    assert_eq!(back.membership().voters.len(), 3);
}

#[test]
fn a_follower_behind_the_snapshot_installs_it_then_catches_up() {
    let mut net = Net::new(3, |_| {});
    let snap = leader_compacted_while_3_was_away(&mut net, 6);
    // Heartbeats find node 3 behind the snapshot: it gets the snapshot once.
    let mut installs = 0;
    let mut restored = None;
    for _ in 0..6 {
        net.with(1, |r| r.tick());
        for _ in 0..1000 {
            net.persist_all();
            let Some(m) = net.msgs.pop_front() else { break };
            if matches!(m.body, MessageBody::InstallSnapshot { .. }) {
                installs += 1;
            }
            let to = m.to;
            if let Some(r) = net.nodes.get_mut(&to) {
                r.step(m);
            }
            let ready = net.collect(to);
            if to == 3 && ready.snapshot.is_some() {
                restored = ready.snapshot.map(|s| s.data);
            }
        }
    }
    assert_eq!(installs, 1, "the snapshot is not resent while answered");
    assert_eq!(restored, Some(b"state"[..].into()));
    let n3 = net.node(3);
    assert_eq!(n3.log().snapshot_index(), snap);
    assert_eq!(n3.log().commit, snap);
    // New entries then reach it by Appends.
    net.nodes
        .get_mut(&1)
        .map(|r| r.propose(Payload::Command(vec![99])));
    net.collect(1);
    net.stabilize();
    for _ in 0..2 {
        net.with(1, |r| r.tick());
    }
    net.stabilize();
    let n3 = net.node(3);
    assert_eq!(n3.log().last_index(), snap + 1);
    assert_eq!(n3.log().commit, snap + 1);
    assert_eq!(n3.log().applied, snap + 1);
}

#[test]
fn a_lost_snapshot_is_resent_after_a_timeout() {
    let mut net = Net::new(3, |_| {});
    leader_compacted_while_3_was_away(&mut net, 4);
    let mut sent = 0;
    for _ in 0..30 {
        net.with(1, |r| r.tick());
        net.persist_all();
        sent += net
            .msgs
            .iter()
            .filter(|m| matches!(m.body, MessageBody::InstallSnapshot { .. }))
            .count();
        // Everything to node 3 is lost; node 2 answers.
        net.msgs.retain(|m| m.to != 3);
        net.stabilize();
    }
    // 30 ticks with an election timeout of 10: a few resends, not one per heartbeat.
    assert!((2..=4).contains(&sent), "sent {sent} snapshots");
}

#[test]
fn install_answer_waits_for_persistence_and_stale_snapshots_change_nothing() {
    let mut net = Net::new(3, |_| {});
    let snap = leader_compacted_while_3_was_away(&mut net, 5);
    let Some(snapshot) = net.node(1).snapshot().cloned() else {
        panic!("leader has a snapshot");
    };
    let term = net.node(1).term();
    let install = |s: Snapshot| Message {
        from: 1,
        to: 3,
        term,
        incarnation: 0,
        body: MessageBody::InstallSnapshot { snapshot: s },
    };
    let r = net.with(3, |r| r.step(install(snapshot.clone())));
    assert!(r.persist.as_ref().is_some_and(|p| p.snapshot.is_some()));
    assert!(r.snapshot.is_some());
    assert!(
        r.messages.is_empty(),
        "answered before the snapshot is durable"
    );
    net.msgs.clear();
    net.persist_all();
    let answer = net.msgs.pop_front().map(|m| m.body);
    assert_eq!(
        answer,
        Some(MessageBody::InstallSnapshotResponse { last_index: snap })
    );
    // The same snapshot again, or an older one: nothing changes, the answer is
    // the commit index, and the state machine is not restored again.
    let mut older = snapshot.clone();
    older.meta.last_index = snap - 2;
    for s in [snapshot, older] {
        let before = (net.node(3).log().first_index(), net.node(3).log().commit);
        let r = net.with(3, |r| r.step(install(s)));
        assert!(r.snapshot.is_none());
        assert!(r.persist.is_none_or(|p| p.snapshot.is_none()));
        let after = (net.node(3).log().first_index(), net.node(3).log().commit);
        assert_eq!(before, after);
        assert_eq!(
            r.messages.last().map(|m| m.body.clone()),
            Some(MessageBody::InstallSnapshotResponse { last_index: snap })
        );
    }
}

#[test]
fn install_keeps_a_log_suffix_that_continues_the_snapshot() {
    let mut log = RaftLog::recovered(
        0,
        0,
        (1..=6)
            .map(|i| Entry {
                term: 1,
                index: i,
                payload: Payload::Noop,
            })
            .collect(),
    );
    assert!(log.install_snapshot(4, 1));
    assert_eq!((log.first_index(), log.last_index(), log.commit), (5, 6, 4));
    assert!(!log.has_unstable());
    // A snapshot whose last entry conflicts with the log discards all of it, and
    // storage is told to drop what it holds after the snapshot.
    assert!(!log.install_snapshot(5, 2));
    assert_eq!((log.first_index(), log.last_index()), (6, 5));
    assert_eq!(log.take_unstable(), (Some(6), Vec::new()));
}

/// A snapshot that replaces a conflicting log also drops the configurations the
/// discarded entries carried: a follower that had appended an uncommitted joint
/// configuration, then installs a leader's snapshot of a history without it, must
/// not keep acting on it (it would campaign and count votes by a configuration no
/// committed history holds).
#[test]
fn a_snapshot_that_replaces_the_log_drops_the_configurations_of_discarded_entries() {
    let all: std::collections::BTreeSet<NodeId> = [1, 2, 3].into();
    let joint = Membership {
        voters: [3].into(),
        voters_old: Some(all.clone()),
        ..Membership::default()
    };
    let entries = vec![
        Entry {
            term: 1,
            index: 1,
            payload: Payload::Noop,
        },
        Entry {
            term: 1,
            index: 2,
            payload: Payload::Noop,
        },
        Entry {
            term: 2,
            index: 3,
            payload: Payload::Config(joint.clone()),
        },
    ];
    let hs = HardState {
        term: 2,
        vote: Some(3),
        commit: 1,
    };
    let mut n = Raft::new(cfg(3, 3), hs, None, None, entries);
    assert_eq!(n.membership(), &joint);
    let snapshot = Snapshot {
        meta: types::SnapshotMeta {
            last_index: 2,
            last_term: 2,
            membership: Membership {
                voters: all.clone(),
                ..Membership::default()
            },
        },
        data: Default::default(),
    };
    n.step(Message {
        from: 1,
        to: 3,
        term: 3,
        incarnation: 0,
        body: MessageBody::InstallSnapshot { snapshot },
    });
    assert_eq!(n.log().last_index(), 2);
    assert_eq!(n.membership().voters, all);
    assert_eq!(n.membership().voters_old, None);
}

/// A C_new refused when C_old,new commits (here a leadership transfer was under
/// way) used to be retried only on the next commit, which an idle cluster never
/// has: the cluster stayed joint. The leader now retries every tick.
#[test]
fn a_refused_c_new_is_retried_without_another_commit() {
    let mut net = Net::new(3, |c| c.check_quorum = false);
    net.with(1, |n| n.hup());
    net.stabilize();
    net.with(1, |n| {
        assert!(n.propose_membership([1, 2, 4].into(), None).is_ok());
        // Node 4 does not answer: the transfer stays pending and refuses proposals.
        n.transfer_leader(4);
    });
    net.stabilize();
    assert!(
        net.node(1).membership().voters_old.is_some(),
        "C_new went out"
    );
    assert!(
        net.node(1).log().commit >= 2,
        "the joint entry did not commit"
    );
    for _ in 0..30 {
        net.with(1, |n| n.tick());
        net.stabilize();
    }
    let m = net.node(1).membership();
    assert_eq!(
        (m.voters_old.clone(), m.voters.clone()),
        (None, [1, 2, 4].into())
    );
}

mod hostile;
mod identity;
