//! Replica tests on a tiny deterministic cluster: every output is carried out by
//! hand (persist at once, deliver messages in order), so each test is exact.

use super::*;
use crate::raft::PersistWrite;
use crate::raft::types::{Entry, HardState, Snapshot};
use serde_json::json;
use std::collections::BTreeSet;

pub(crate) fn config(id: NodeId, n: u64, mutants: Mutants) -> Config {
    Config {
        raft: RaftConfig {
            id,
            peers: (1..=n).collect(),
            election_ticks_min: 10,
            election_ticks_max: 20,
            heartbeat_ticks: 2,
            max_entries_per_msg: 64,
            max_inflight_msgs: 8,
            pre_vote: true,
            check_quorum: true,
            seed: 42,
            incarnation: 0,
            discover: false,
            mutants,
        },
        snapshot_every: 0,
    }
}

/// A cluster whose network can cut nodes off.
struct Cluster {
    nodes: BTreeMap<NodeId, Replica>,
    queue: VecDeque<PeerMessage>,
    replies: BTreeMap<RequestId, Response>,
    cut: BTreeSet<NodeId>,
    next_id: RequestId,
    /// Nodes whose snapshots are held back (as by a slow driver thread) into `held`.
    hold: BTreeSet<NodeId>,
    held: Vec<(NodeId, Index, crate::kv::SnapshotSource)>,
}

impl Cluster {
    fn new(n: u64, mutants: Mutants) -> Cluster {
        Cluster::build(n, mutants, 0, EngineKind::Raft)
    }

    /// A cluster of `n` nodes running `kind`, each from an empty data directory.
    fn with_engine(n: u64, kind: EngineKind) -> Cluster {
        Cluster::build(n, Mutants::default(), 0, kind)
    }

    fn with_snapshots(n: u64, mutants: Mutants, snapshot_every: u64) -> Cluster {
        Cluster::build(n, mutants, snapshot_every, EngineKind::Raft)
    }

    fn build(n: u64, mutants: Mutants, snapshot_every: u64, kind: EngineKind) -> Cluster {
        let nodes = (1..=n)
            .map(|id| {
                let cfg = Config {
                    snapshot_every,
                    ..config(id, n, mutants)
                };
                (id, Replica::new(cfg, crate::engine::empty(kind)))
            })
            .collect();
        Cluster {
            nodes,
            queue: VecDeque::new(),
            replies: BTreeMap::new(),
            cut: BTreeSet::new(),
            next_id: 0,
            hold: BTreeSet::new(),
            held: Vec::new(),
        }
    }

    /// Carries out outputs: persists complete at once, sends are queued.
    fn carry(&mut self, id: NodeId, outs: Vec<Output>) {
        let mut persisted = None;
        let mut snapshots = Vec::new();
        for o in outs {
            match o {
                // Serialized at once, as a driver's blocking thread would.
                Output::Snapshot { index, source } if self.hold.contains(&id) => {
                    self.held.push((id, index, source))
                }
                Output::Snapshot { index, source } => snapshots.push(serialized(index, &source)),
                Output::Restored { .. } => {}
                Output::Persist(w) => persisted = Some(w.seq()),
                Output::Send(m) => self.queue.push_back(m),
                Output::Reply { id, response } => {
                    assert!(
                        self.replies.insert(id, response).is_none(),
                        "two replies to {id}"
                    );
                }
                Output::Applied { .. } | Output::RoleChanged { .. } => {}
                Output::Refused(r) => {
                    panic!("n{id} refused a message from n{}: {}", r.from, r.reason)
                }
            }
        }
        if let Some(seq) = persisted {
            let outs = self.input(id, Input::Persisted { seq });
            self.carry(id, outs);
        }
        for input in snapshots {
            let outs = self.input(id, input);
            self.carry(id, outs);
        }
    }

    fn input(&mut self, id: NodeId, input: Input) -> Vec<Output> {
        match self.nodes.get_mut(&id) {
            Some(n) => n.handle(input),
            None => Vec::new(),
        }
    }

    fn deliver_all(&mut self) {
        let mut budget = 100_000;
        while let Some(m) = self.queue.pop_front() {
            budget -= 1;
            assert!(budget > 0, "message storm");
            if self.cut.contains(&m.from()) || self.cut.contains(&m.to()) {
                continue;
            }
            let to = m.to();
            let outs = self.input(to, Input::Message(m));
            self.carry(to, outs);
        }
    }

    fn tick_all(&mut self, ticks: u32) {
        for _ in 0..ticks {
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for id in ids {
                let outs = self.input(id, Input::Tick);
                self.carry(id, outs);
            }
            self.deliver_all();
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.nodes
            .iter()
            .find(|(id, r)| r.status().role == Role::Leader && !self.cut.contains(id))
            .map(|(id, _)| *id)
    }

    fn request(&mut self, node: NodeId, op: KvOp) -> RequestId {
        self.next_id += 1;
        let id = self.next_id;
        let request = ClientRequest {
            client: 0,
            seq: 0,
            op,
        };
        let outs = self.input(node, Input::Client { id, request });
        self.carry(node, outs);
        id
    }

    /// Writes `key = v` through `node` and checks that the write was acknowledged.
    fn put_acknowledged(&mut self, node: NodeId, key: &str, v: serde_json::Value) {
        let w = self.request(node, put(key, v.clone()));
        self.deliver_all();
        assert_eq!(self.replies[&w], Response::Done(KvResult::Value(Some(v))));
    }
}

fn put(key: &str, v: serde_json::Value) -> KvOp {
    KvOp::Put {
        key: key.into(),
        value: v,
    }
}

fn get(key: &str) -> KvOp {
    KvOp::Get {
        key: key.into(),
        stale: false,
    }
}

#[test]
fn writes_and_linearizable_reads_go_through_the_leader() {
    let mut c = Cluster::new(3, Mutants::default());
    c.tick_all(40);
    let l = c.leader().expect("a leader after 40 ticks");
    c.put_acknowledged(l, "k", json!(1));
    let r = c.request(l, get("k"));
    assert!(
        !c.replies.contains_key(&r),
        "a read waits for its heartbeat round"
    );
    c.deliver_all();
    assert_eq!(
        c.replies[&r],
        Response::Done(KvResult::Value(Some(json!(1))))
    );
    // Every replica applied the write.
    c.tick_all(4);
    for n in c.nodes.values() {
        assert_eq!(n.read_local("k"), Some(json!(1)));
    }
    let f = (1..=3).find(|&i| i != l).unwrap_or(1);
    let w2 = c.request(f, put("k", json!(2)));
    assert_eq!(c.replies[&w2], Response::NotLeader { leader: Some(l) });
}

#[test]
fn many_requests_in_one_call_become_one_persist() {
    let mut c = Cluster::new(3, Mutants::default());
    c.tick_all(40);
    let l = c.leader().expect("leader");
    let inputs: Vec<Input> = (0..10)
        .map(|i| Input::Client {
            id: 100 + i,
            request: ClientRequest {
                client: 0,
                seq: 0,
                op: put(&format!("k{i}"), json!(i)),
            },
        })
        .collect();
    let outs = c
        .nodes
        .get_mut(&l)
        .map(|n| n.handle_many(inputs))
        .unwrap_or_default();
    let persists = outs
        .iter()
        .filter(|o| matches!(o, Output::Persist { .. }))
        .count();
    let appends = outs.iter().filter(|o| matches!(o, Output::Send(_))).count();
    assert_eq!(persists, 1);
    assert_eq!(appends, 2, "one Append per follower");
    c.carry(l, outs);
    c.deliver_all();
    assert_eq!((100..110).filter(|i| c.replies.contains_key(i)).count(), 10);
}

#[test]
fn lost_leadership_turns_proposals_indeterminate_and_reads_not_leader() {
    let mut c = Cluster::new(3, Mutants::default());
    c.tick_all(40);
    let l = c.leader().expect("leader");
    c.cut.insert(l);
    let w = c.request(l, put("x", json!(1)));
    let r = c.request(l, get("x"));
    // CheckQuorum makes the cut-off leader step down within an election timeout.
    c.tick_all(30);
    assert_eq!(c.replies[&w], Response::Indeterminate);
    assert!(matches!(c.replies[&r], Response::NotLeader { .. }));
    let l2 = c.leader().expect("a new leader on the majority side");
    assert_ne!(l, l2);
}

#[test]
fn ack_before_commit_mutant_replies_without_quorum() {
    let m = Mutants {
        ack_before_commit: true,
        ..Mutants::default()
    };
    let mut c = Cluster::new(3, m);
    c.tick_all(40);
    let l = c.leader().expect("leader");
    c.cut.insert(l);
    let w = c.request(l, put("x", json!(1)));
    assert_eq!(
        c.replies[&w],
        Response::Done(KvResult::Value(Some(json!(1))))
    );
}

/// `stale-read` is one bug on every role: a follower that missed a write and a
/// leader cut off from its quorum both answer a linearizable read from their own
/// state. Without the mutant the follower names the leader and the cut-off leader
/// keeps the read waiting for a confirmation round that never comes.
#[test]
fn stale_read_mutant_answers_reads_locally_on_every_role() {
    for stale_read in [false, true] {
        let m = Mutants {
            stale_read,
            ..Mutants::default()
        };
        let mut c = Cluster::new(3, m);
        c.tick_all(40);
        let l = c.leader().expect("leader");
        let f = (1..=3).find(|&i| i != l).unwrap_or(1);
        c.cut.insert(f);
        c.put_acknowledged(l, "x", json!(1));
        let on_follower = c.request(f, get("x"));
        c.cut.insert(l);
        let on_leader = c.request(l, get("x"));
        if stale_read {
            assert_eq!(
                c.replies[&on_follower],
                Response::Done(KvResult::Value(None))
            );
            assert_eq!(
                c.replies[&on_leader],
                Response::Done(KvResult::Value(Some(json!(1))))
            );
        } else {
            assert_eq!(
                c.replies[&on_follower],
                Response::NotLeader { leader: Some(l) }
            );
            assert!(!c.replies.contains_key(&on_leader));
        }
    }
}

#[test]
fn membership_change_replies_after_the_final_configuration() {
    let mut c = Cluster::new(3, Mutants::default());
    // Node 4 starts empty, knowing the old voters; it is not one of them.
    c.nodes.insert(
        4,
        Replica::new(config(4, 3, Mutants::default()), Recovered::default()),
    );
    c.tick_all(40);
    let l = c.leader().expect("leader");
    let f = (1..=3).find(|&i| i != l).unwrap_or(1);
    let outs = c.input(
        f,
        Input::ChangeMembership {
            id: 8,
            voters: vec![1, 2],
            learners: None,
        },
    );
    c.carry(f, outs);
    assert!(matches!(c.replies[&8], Response::NotLeader { .. }));
    let outs = c.input(
        l,
        Input::ChangeMembership {
            id: 9,
            voters: vec![],
            learners: None,
        },
    );
    c.carry(l, outs);
    assert!(matches!(c.replies[&9], Response::Rejected { .. }));
    let voters = vec![l, f, 4];
    let outs = c.input(
        l,
        Input::ChangeMembership {
            id: 10,
            voters: voters.clone(),
            learners: None,
        },
    );
    c.carry(l, outs);
    c.deliver_all();
    c.tick_all(4);
    let mut sorted = voters;
    sorted.sort_unstable();
    let expect = Response::Done(KvResult::Value(Some(json!({ "voters": sorted }))));
    assert_eq!(c.replies.get(&10), Some(&expect));
    assert_eq!(c.nodes[&4].status().membership.voters.len(), 3);
    // The new configuration works: a write commits with node 4 as a voter.
    let w = c.request(l, put("m", json!(1)));
    c.deliver_all();
    assert_eq!(
        c.replies[&w],
        Response::Done(KvResult::Value(Some(json!(1))))
    );
}

#[test]
fn single_node_commits_after_its_own_fsync() {
    let mut c = Cluster::new(1, Mutants::default());
    c.tick_all(25);
    assert_eq!(c.leader(), Some(1));
    let w = c.request(1, put("a", json!("b")));
    assert_eq!(
        c.replies[&w],
        Response::Done(KvResult::Value(Some(json!("b"))))
    );
    let r = c.request(1, get("a"));
    assert_eq!(
        c.replies[&r],
        Response::Done(KvResult::Value(Some(json!("b"))))
    );
}

#[test]
fn restart_replays_the_recovered_log() {
    let mut r = Replica::new(config(1, 1, Mutants::default()), Recovered::default());
    let mut entries = Vec::new();
    let mut hs = HardState::default();
    let mut id = 0;
    for step in 0..40 {
        let input = if step == 30 {
            id += 1;
            Input::Client {
                id,
                request: ClientRequest {
                    client: 5,
                    seq: 1,
                    op: put("p", json!(7)),
                },
            }
        } else {
            Input::Tick
        };
        let mut outs = r.handle(input);
        while let Some(Output::Persist(DurableWrite::Raft(PersistWrite {
            seq,
            entries: e,
            hard_state,
            ..
        }))) = outs
            .iter()
            .find(|o| matches!(o, Output::Persist { .. }))
            .cloned()
        {
            entries.extend(e);
            if let Some(h) = hard_state {
                hs = h;
            }
            outs = r.handle(Input::Persisted { seq });
        }
    }
    assert_eq!(r.read_local("p"), Some(json!(7)));
    hs.commit = r.status().commit_index;
    let r2 = Replica::new(
        config(1, 1, Mutants::default()),
        crate::raft::Recovered {
            identity: None,
            hard_state: hs,
            snapshot: None,
            entries,
        }
        .into(),
    );
    let mut r2 = r2;
    r2.handle(Input::Tick);
    assert_eq!(r2.read_local("p"), Some(json!(7)));
    assert_eq!(r2.status().term, hs.term);
}

#[test]
fn a_committed_command_that_cannot_be_decoded_is_skipped_by_every_replica() {
    let mut c = Cluster::new(3, Mutants::default());
    c.tick_all(40);
    let l = c.leader().expect("leader");
    let first = c.request(l, put("k", json!(1)));
    c.deliver_all();
    assert_eq!(
        c.replies[&first],
        Response::Done(KvResult::Value(Some(json!(1))))
    );
    // Bytes no validated proposal produces: the decoder refuses them at apply.
    let node = c.nodes.get_mut(&l).expect("leader");
    let index = node
        .engine
        .propose(b"{not a command".to_vec())
        .expect("proposed");
    let term = node.engine.term();
    node.writes.insert(index, (999, term));
    let outs = node.handle_many(Vec::new());
    c.carry(l, outs);
    c.deliver_all();
    assert!(
        matches!(c.replies.get(&999), Some(Response::Invalid { .. })),
        "{:?}",
        c.replies.get(&999)
    );
    // Nothing is stuck behind it: the next write commits and applies everywhere.
    let next = c.request(l, put("k", json!(2)));
    c.deliver_all();
    c.tick_all(4);
    assert_eq!(
        c.replies[&next],
        Response::Done(KvResult::Value(Some(json!(2))))
    );
    for n in c.nodes.values() {
        assert!(n.status().applied_index > index);
        assert_eq!(n.read_local("k"), Some(json!(2)));
    }
}

#[test]
fn multi_paxos_serves_writes_and_linearizable_reads_through_the_replica() {
    let mut c = Cluster::with_engine(3, EngineKind::MultiPaxos);
    c.tick_all(60);
    let l = c.leader().expect("a multi-paxos leader after 60 ticks");
    assert_eq!(c.nodes[&l].status().consensus, EngineKind::MultiPaxos);
    let w = c.request(l, put("k", json!(1)));
    c.tick_all(5);
    assert_eq!(
        c.replies[&w],
        Response::Done(KvResult::Value(Some(json!(1))))
    );
    let r = c.request(l, get("k"));
    c.tick_all(5);
    assert_eq!(
        c.replies[&r],
        Response::Done(KvResult::Value(Some(json!(1))))
    );
    // A follower refuses, naming the leader; every replica applied the write.
    let f = (1..=3).find(|&id| id != l).expect("a follower");
    let x = c.request(f, put("k", json!(2)));
    assert_eq!(c.replies[&x], Response::NotLeader { leader: Some(l) });
    for id in 1..=3 {
        assert_eq!(c.nodes[&id].read_local("k"), Some(json!(1)), "node {id}");
    }
    // Membership is static under Paxos.
    c.next_id += 1;
    let m = c.next_id;
    let outs = c.input(
        l,
        Input::ChangeMembership {
            id: m,
            voters: vec![1, 2],
            learners: None,
        },
    );
    c.carry(l, outs);
    assert!(
        matches!(&c.replies[&m], Response::Invalid { reason } if reason.contains("static")),
        "{:?}",
        c.replies[&m]
    );
}

#[test]
fn basic_paxos_takes_writes_and_reads_at_every_node() {
    let mut c = Cluster::with_engine(3, EngineKind::BasicPaxos);
    c.tick_all(5);
    assert_eq!(c.nodes[&1].status().role, Role::Proposer);
    let mut writes = Vec::new();
    for id in 1..=3u64 {
        writes.push((id, c.request(id, put(&format!("k{id}"), json!(id)))));
    }
    c.tick_all(200);
    for (id, w) in writes {
        assert_eq!(
            c.replies.get(&w),
            Some(&Response::Done(KvResult::Value(Some(json!(id))))),
            "write through node {id}"
        );
    }
    // A read through node 3 of what node 1 wrote goes through a slot of its own.
    let r = c.request(3, get("k1"));
    c.tick_all(100);
    assert_eq!(
        c.replies.get(&r),
        Some(&Response::Done(KvResult::Value(Some(json!(1)))))
    );
    let applied: Vec<Index> = (1..=3)
        .map(|id| c.nodes[&id].status().applied_index)
        .collect();
    assert!(applied.iter().all(|&a| a >= 4), "applied: {applied:?}");
}

#[test]
fn a_message_of_another_engine_is_refused_at_the_door() {
    let mut r = Replica::new(
        config(1, 3, Mutants::default()),
        crate::engine::empty(EngineKind::BasicPaxos),
    );
    let raft_msg = crate::raft::types::Message {
        from: 2,
        to: 1,
        term: 1,
        incarnation: 0,
        body: crate::raft::types::MessageBody::TimeoutNow,
    };
    let outs = r.handle(Input::Message(PeerMessage::Raft(raft_msg)));
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Refused(x) if x.reason == "wrong_engine" && x.from == 2)),
        "{outs:?}"
    );
}

/// A Paxos engine's snapshot offer from `from` to `to`, covering through `through`.
fn paxos_snapshot(
    kind: EngineKind,
    from: NodeId,
    to: NodeId,
    through: Index,
    data: &[u8],
) -> PeerMessage {
    let snapshot = crate::paxos::Snapshot {
        last_slot: through,
        data: data.to_vec(),
    };
    match kind {
        EngineKind::MultiPaxos => PeerMessage::MultiPaxos(crate::paxos::Envelope {
            from,
            to,
            chosen_through: through,
            body: crate::paxos::multi::Body::Snapshot { snapshot },
        }),
        EngineKind::BasicPaxos => PeerMessage::BasicPaxos(crate::paxos::Envelope {
            from,
            to,
            chosen_through: through,
            body: crate::paxos::basic::Body::Snapshot { snapshot },
        }),
        EngineKind::Raft => unreachable!("Raft's snapshots travel in InstallSnapshot"),
    }
}

#[test]
fn a_paxos_snapshot_that_does_not_decode_is_not_installed() {
    for kind in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
        let mut c = Cluster::with_engine(3, kind);
        c.tick_all(60);
        let node = c.leader().unwrap_or(1);
        let w = c.request(node, put("k", json!(1)));
        c.tick_all(100);
        assert_eq!(
            c.replies.get(&w),
            Some(&Response::Done(KvResult::Value(Some(json!(1))))),
            "{kind:?}"
        );
        let to = (1..=3).find(|&id| id != node).expect("another node");
        let before = c.nodes[&to].status();
        // A snapshot ahead of the node whose bytes are not a state: taking it in would skip
        // every slot it claims to cover while the store stays as it was.
        let through = before.applied_index + 100;
        let m = paxos_snapshot(kind, node, to, through, b"not a snapshot");
        let outs = c.input(to, Input::Message(m));
        assert!(
            !outs.iter().any(|o| matches!(o, Output::Restored { .. })),
            "{kind:?}: {outs:?}"
        );
        assert!(
            outs.iter().any(|o| matches!(o, Output::Refused(x)
                if x.reason == "snapshot_undecodable" && x.from == node)),
            "{kind:?}: {outs:?}"
        );
        let after = c.nodes[&to].status();
        assert!(
            after.applied_index < through,
            "{kind:?}: applied {} after an undecodable snapshot through {through}",
            after.applied_index
        );
        assert_eq!(c.nodes[&to].read_local("k"), Some(json!(1)), "{kind:?}");
    }
}

#[test]
fn a_snapshot_offer_at_or_below_what_was_applied_is_not_decoded() {
    // Bytes that do not decode show whether the replica looked at them: it refuses
    // such a snapshot as undecodable only when it decodes it.
    for kind in [
        EngineKind::Raft,
        EngineKind::MultiPaxos,
        EngineKind::BasicPaxos,
    ] {
        let mut c = Cluster::with_engine(3, kind);
        c.tick_all(60);
        let l = c.leader().unwrap_or(1);
        let w = c.request(l, put("k", json!(1)));
        c.tick_all(100);
        assert!(c.replies.contains_key(&w), "{kind:?}");
        let to = (1..=3).find(|&id| id != l).expect("a follower");
        let applied = c.nodes[&to].status().applied_index;
        assert!(applied > 0, "{kind:?}");
        let term = c.nodes[&to].status().term;
        let offer = |through, data: &[u8]| match kind {
            EngineKind::Raft => {
                let snapshot = crate::raft::types::Snapshot {
                    meta: crate::raft::types::SnapshotMeta {
                        last_index: through,
                        last_term: term,
                        ..Default::default()
                    },
                    data: bytes::Bytes::copy_from_slice(data).into(),
                };
                PeerMessage::Raft(crate::raft::types::Message {
                    from: l,
                    to,
                    term,
                    incarnation: 0,
                    body: crate::raft::types::MessageBody::InstallSnapshot { snapshot },
                })
            }
            _ => paxos_snapshot(kind, l, to, through, data),
        };
        let undecodable = |outs: &[Output]| {
            outs.iter()
                .any(|o| matches!(o, Output::Refused(x) if x.reason == "snapshot_undecodable"))
        };
        for through in [applied - 1, applied] {
            let outs = c.input(to, Input::Message(offer(through, b"not a state")));
            assert!(!undecodable(&outs), "{kind:?} at {through}: {outs:?}");
            assert!(
                !outs.iter().any(|o| matches!(o, Output::Restored { .. })),
                "{kind:?}: {outs:?}"
            );
        }
        assert_eq!(c.nodes[&to].read_local("k"), Some(json!(1)), "{kind:?}");
        // One past it is decoded, and refused.
        let outs = c.input(to, Input::Message(offer(applied + 1, b"not a state")));
        assert!(undecodable(&outs), "{kind:?}: {outs:?}");
    }
}

#[test]
fn a_snapshot_the_engine_refuses_does_not_stand_in_for_the_one_it_installs() {
    // The state `k` = `v`, as snapshot bytes.
    let state = |v: i64| {
        let mut kv = Kv::new();
        let op = put("k", json!(v));
        kv.apply(&crate::kv::Command {
            client: 0,
            seq: 0,
            op,
        })
        .expect("applies");
        kv.to_snapshot().expect("encodes")
    };
    let mut c = Cluster::with_engine(3, EngineKind::MultiPaxos);
    c.tick_all(60);
    let l = c.leader().expect("a leader");
    let to = (1..=3).find(|&id| id != l).expect("a follower");
    let through = c.nodes[&to].status().applied_index + 100;
    let offer =
        |from, data: Vec<u8>| paxos_snapshot(EngineKind::MultiPaxos, from, to, through, &data);
    // In one burst: a member's snapshot, which is installed, then one of the same
    // index from a node that is no member, which decodes but is refused.
    let r = c.nodes.get_mut(&to).expect("the follower");
    let outs = r.handle_many([
        Input::Message(offer(l, state(7))),
        Input::Message(offer(99, state(666))),
    ]);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::Restored { index, .. } if *index == through)),
        "{outs:?}"
    );
    assert_eq!(r.status().applied_index, through);
    assert_eq!(r.read_local("k"), Some(json!(7)));
}

/// What a driver hands back for `Output::Snapshot`: the bytes, checked to decode to
/// the very state they were taken from.
fn serialized(index: Index, source: &crate::kv::SnapshotSource) -> Input {
    let (data, layout) = source.to_bytes().expect("encodes");
    assert_eq!(
        Kv::from_snapshot(&data.contiguous()).as_ref(),
        Ok(source.kv()),
        "snapshot through {index} ({layout:?}) decodes to another state"
    );
    Input::SnapshotReady {
        index,
        data,
        layout,
    }
}

mod snapshots;
