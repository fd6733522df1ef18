//! Replica tests on a tiny deterministic cluster: every output is carried out by
//! hand (persist at once, deliver messages in order), so each test is exact.

use super::*;
use crate::kv::MAX_DELTAS;
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
fn a_replica_cut_off_catches_up_from_a_snapshot_with_the_dedup_table() {
    let mut c = Cluster::with_snapshots(3, Mutants::default(), 5);
    c.tick_all(40);
    let l = c.leader().expect("leader");
    let away = (1..=3).find(|&i| i != l).unwrap_or(1);
    c.cut.insert(away);
    let mut writes = Vec::new();
    for i in 0..12u64 {
        let request = ClientRequest {
            client: 9,
            seq: i + 1,
            op: put(&format!("k{i}"), json!(i)),
        };
        c.next_id += 1;
        let id = c.next_id;
        let outs = c.input(l, Input::Client { id, request });
        c.carry(l, outs);
        c.deliver_all();
        writes.push(id);
    }
    for w in &writes {
        assert!(matches!(c.replies[w], Response::Done(_)));
    }
    assert!(c.nodes[&l].snapshot_index() >= 10, "leader compacted");
    assert!(c.nodes[&l].status().first_log_index > 10);
    c.cut.clear();
    c.tick_all(10);
    let r = &c.nodes[&away];
    assert!(r.snapshot_index() >= 10, "installed a snapshot");
    for i in 0..12u64 {
        assert_eq!(r.read_local(&format!("k{i}")), Some(json!(i)));
    }
    assert_eq!(r.status().applied_index, c.nodes[&l].status().applied_index);
    // The dedup table travelled with the snapshot: led by the restored replica, a
    // retry of the client's last command returns the recorded result and is not
    // applied again.
    c.cut.insert(l);
    c.tick_all(60);
    let mut l2 = c.leader().expect("a new leader");
    if l2 != away {
        let outs = c.input(l2, Input::TransferLeader { to: away });
        c.carry(l2, outs);
        c.deliver_all();
        c.tick_all(10);
        l2 = c.leader().expect("leader after transfer");
    }
    assert_eq!(l2, away);
    c.next_id += 1;
    let retry = c.next_id;
    let request = ClientRequest {
        client: 9,
        seq: 12,
        op: put("k11", json!("again")),
    };
    let outs = c.input(l2, Input::Client { id: retry, request });
    c.carry(l2, outs);
    c.deliver_all();
    assert_eq!(
        c.replies[&retry],
        Response::Done(KvResult::Value(Some(json!(11))))
    );
    assert_eq!(c.nodes[&l2].read_local("k11"), Some(json!(11)));
}

#[test]
fn a_replica_restarts_from_its_snapshot_and_the_log_after_it() {
    let mut r = Replica::new(
        Config {
            snapshot_every: 3,
            ..config(1, 1, Mutants::default())
        },
        Recovered::default(),
    );
    let mut snapshot = None;
    let mut entries: Vec<Entry> = Vec::new();
    let mut hs = HardState::default();
    let mut pending = VecDeque::new();
    for step in 0..60u64 {
        if (30..38).contains(&step) {
            pending.push_back(Input::Client {
                id: step,
                request: ClientRequest {
                    client: 0,
                    seq: 0,
                    op: put(&format!("p{step}"), json!(step)),
                },
            });
        }
        pending.push_back(Input::Tick);
        while let Some(input) = pending.pop_front() {
            for o in r.handle(input) {
                match o {
                    Output::Persist(DurableWrite::Raft(PersistWrite {
                        seq,
                        snapshot: s,
                        truncate_from,
                        entries: e,
                        hard_state,
                        ..
                    })) => {
                        if let Some(s) = s {
                            entries.retain(|x| x.index > s.meta.last_index);
                            snapshot = Some(s);
                        }
                        if let Some(t) = truncate_from {
                            entries.retain(|x| x.index < t);
                        }
                        entries.extend(e);
                        if let Some(h) = hard_state {
                            hs = h;
                        }
                        pending.push_back(Input::Persisted { seq });
                    }
                    Output::Snapshot { index, source } => {
                        pending.push_back(serialized(index, &source))
                    }
                    _ => {}
                }
            }
        }
    }
    let snap = snapshot.expect("snapshots were taken");
    assert!(snap.meta.last_index >= 6);
    assert!(
        entries
            .first()
            .is_none_or(|e| e.index == snap.meta.last_index + 1)
    );
    let r2 = Replica::new(
        config(1, 1, Mutants::default()),
        crate::raft::Recovered {
            identity: None,
            hard_state: hs,
            snapshot: Some(snap),
            entries,
        }
        .into(),
    );
    // What the log holds after the snapshot applies once the node, alone, is leader
    // again and commits it.
    let mut r2 = r2;
    let mut pending: VecDeque<Input> = (0..30).map(|_| Input::Tick).collect();
    while let Some(input) = pending.pop_front() {
        for o in r2.handle(input) {
            if let Output::Persist(w) = o {
                pending.push_front(Input::Persisted { seq: w.seq() });
            }
        }
    }
    for step in 30..38u64 {
        assert_eq!(r2.read_local(&format!("p{step}")), Some(json!(step)));
    }
    // An unreadable snapshot is an error, not a panic.
    let bad = crate::raft::Recovered {
        snapshot: Some(Snapshot {
            data: b"not json".to_vec().into(),
            ..Snapshot::default()
        }),
        ..crate::raft::Recovered::default()
    };
    assert!(Replica::try_new(config(1, 1, Mutants::default()), bad.into()).is_err());
}

/// A follower's snapshot is still being serialized when a snapshot from the leader
/// replaces its state: those bytes must not become the base the next snapshot's
/// delta extends (the changes tracked since describe the installed state).
#[test]
fn a_snapshot_overtaken_by_an_install_is_not_the_next_delta_base() {
    let mut c = Cluster::with_snapshots(3, Mutants::default(), 5);
    c.tick_all(40);
    let l = c.leader().expect("leader");
    let f = (1..=3).find(|&i| i != l).unwrap_or(1);
    // A state large enough for the later snapshots to be deltas.
    for i in 0..13 {
        c.put_acknowledged(l, &format!("early{i}"), json!("x".repeat(200)));
    }
    c.hold.insert(f);
    for i in 0..6 {
        c.put_acknowledged(l, &format!("k{i}"), json!(i));
    }
    assert_eq!(c.held.len(), 1, "the follower started a snapshot");
    c.cut.insert(f);
    for i in 0..12 {
        c.put_acknowledged(l, &format!("k{i}"), json!(100 + i));
    }
    c.cut.clear();
    c.tick_all(10);
    let installed = c.nodes[&f].snapshot_index();
    assert!(
        installed > c.held[0].1,
        "the follower installed a newer snapshot"
    );
    c.hold.clear();
    let (id, index, source) = c.held.remove(0);
    let outs = c.input(id, serialized(index, &source));
    c.carry(id, outs);
    // The next snapshots extend the installed state; `serialized` checks each
    // decodes to the state it was taken from.
    for i in 0..12 {
        c.put_acknowledged(l, &format!("late{i}"), json!(i));
    }
    assert!(
        c.nodes[&f].snapshot_index() > installed,
        "took snapshots since"
    );
    for i in 0..12 {
        assert_eq!(
            c.nodes[&f].read_local(&format!("k{i}")),
            Some(json!(100 + i))
        );
    }
}

#[test]
fn a_failed_snapshot_lets_the_next_one_start() {
    let mut r = Replica::new(
        Config {
            snapshot_every: 3,
            ..config(1, 1, Mutants::default())
        },
        Recovered::default(),
    );
    let mut asked = Vec::new();
    let mut pending = VecDeque::new();
    for step in 0..40u64 {
        pending.push_back(Input::Client {
            id: step,
            request: ClientRequest {
                client: 0,
                seq: 0,
                op: put(&format!("f{step}"), json!(step)),
            },
        });
        pending.push_back(Input::Tick);
        while let Some(input) = pending.pop_front() {
            for o in r.handle(input) {
                match o {
                    Output::Persist(w) => pending.push_back(Input::Persisted { seq: w.seq() }),
                    // Every serialization fails.
                    Output::Snapshot { index, .. } => {
                        asked.push(index);
                        pending.push_back(Input::SnapshotFailed { index });
                    }
                    _ => {}
                }
            }
        }
    }
    assert!(asked.len() >= 2, "snapshots asked for: {asked:?}");
    assert!(!r.snapshot_pending());
    assert_eq!(r.snapshot_index(), 0, "nothing was compacted");
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

/// What a driver hands back for `Output::Snapshot`: the bytes, checked to decode to
/// the very state they were taken from.
fn serialized(index: Index, source: &crate::kv::SnapshotSource) -> Input {
    let (data, layout) = source.to_bytes().expect("encodes");
    assert_eq!(
        Kv::from_snapshot(&data).as_ref(),
        Ok(source.kv()),
        "snapshot through {index} ({layout:?}) decodes to another state"
    );
    Input::SnapshotReady {
        index,
        data,
        layout,
    }
}

/// Each node snapshots once per period, at a phase of its own: the nodes of a
/// cluster of up to five do not snapshot at the same index, and after a snapshot off
/// the schedule the next comes no sooner than half a period later.
#[test]
fn automatic_snapshots_fall_at_a_phase_of_each_node() {
    let every = 10_000;
    // The indexes at which node `id` snapshots while applying one entry at a time.
    let taken = |id: NodeId, from: Index, to: Index| {
        let mut last = from;
        let mut at = Vec::new();
        for applied in from + 1..=to {
            if snapshot_due(id, every, last, applied) {
                at.push(applied);
                last = applied;
            }
        }
        at
    };
    let mut phases: Vec<u64> = (1..=5).map(|id| snapshot_phase(id, every)).collect();
    phases.sort_unstable();
    let gaps = phases.windows(2).map(|w| w[1] - w[0]);
    let wrap = phases[0] + every - phases[4];
    assert!(
        gaps.chain([wrap]).all(|g| g >= every * 14 / 100),
        "phases of ids 1..=5 too close: {phases:?}"
    );
    for id in 1..=5 {
        let at = taken(id, 0, 100_000);
        assert!(at.len() >= 9, "node {id} snapshotted at {at:?}");
        // From the first, exactly one period apart, at the node's phase.
        assert!(at.windows(2).all(|w| w[1] - w[0] == every), "{at:?}");
        assert!(
            at.iter()
                .all(|i| (i + snapshot_phase(id, every)).is_multiple_of(every))
        );
    }
    // Nodes 1, 2 and 3 never snapshot at the same index.
    let sets: Vec<BTreeSet<Index>> = (1..=3)
        .map(|id| taken(id, 0, 100_000).into_iter().collect())
        .collect();
    assert!(sets[0].is_disjoint(&sets[1]) && sets[1].is_disjoint(&sets[2]));
    assert!(sets[0].is_disjoint(&sets[2]));
    // A snapshot installed just before the node's next boundary: the next one waits
    // half a period, then the node is back on its phase.
    let id = 2;
    let boundary = every - snapshot_phase(id, every) + 3 * every;
    let after = taken(id, boundary - 1, boundary + 3 * every);
    assert_eq!(after[0], boundary - 1 + every / 2, "{after:?}");
    assert!(
        after[1..]
            .iter()
            .all(|i| (i + snapshot_phase(id, every)).is_multiple_of(every))
    );
    // Off means off; a period of 1 snapshots every entry.
    assert!(!snapshot_due(id, 0, 0, 1_000_000));
    assert_eq!(taken(id, 0, 5).len(), 0);
    assert!((1..50).all(|i| snapshot_due(id, 1, i - 1, i)));
}

/// One single-node replica's durable state as its Persist outputs leave it, and the
/// layouts of the snapshots it took, in order.
#[derive(Default)]
struct Durable {
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    hard_state: HardState,
    layouts: Vec<crate::kv::Layout>,
}

/// Drives `r` through `puts` (one client request per tick), handing back every
/// snapshot serialized and every write persisted, and records what is durable.
fn drive(r: &mut Replica, puts: &[(String, serde_json::Value)], d: &mut Durable) {
    let mut pending: VecDeque<Input> = (0..30).map(|_| Input::Tick).collect();
    for (i, (key, v)) in puts.iter().enumerate() {
        pending.push_back(Input::Client {
            id: i as u64,
            request: ClientRequest {
                client: 0,
                seq: 0,
                op: put(key, v.clone()),
            },
        });
        pending.push_back(Input::Tick);
    }
    while let Some(input) = pending.pop_front() {
        for o in r.handle(input) {
            match o {
                Output::Persist(DurableWrite::Raft(w)) => {
                    if let Some(s) = w.snapshot {
                        d.entries.retain(|x| x.index > s.meta.last_index);
                        d.snapshot = Some(s);
                    }
                    if let Some(t) = w.truncate_from {
                        d.entries.retain(|x| x.index < t);
                    }
                    d.entries.extend(w.entries);
                    if let Some(h) = w.hard_state {
                        d.hard_state = h;
                    }
                    pending.push_front(Input::Persisted { seq: w.seq });
                }
                Output::Snapshot { index, source } => {
                    let ready = serialized(index, &source);
                    if let Input::SnapshotReady { layout, .. } = &ready {
                        d.layouts.push(*layout);
                    }
                    pending.push_front(ready);
                }
                _ => {}
            }
        }
    }
}

/// The bounds on a chain of deltas hold across a restart: a replica recovered from
/// an image plus deltas counts them, so its next snapshot extends the chain by one
/// (not a fresh count that could let the chain grow past `MAX_DELTAS` and twice
/// the state), and the chain is written whole again once at the bound.
#[test]
fn a_recovered_chain_of_deltas_keeps_its_bounds() {
    let cfg = || Config {
        snapshot_every: 3,
        ..config(1, 1, Mutants::default())
    };
    let mut r = Replica::new(cfg(), Recovered::default());
    let mut d = Durable::default();
    // A store of 60 keys of 1 KiB, then small overwrites of three of them: deltas
    // far smaller than the image, so the count bound is the one reached.
    let fill: Vec<(String, serde_json::Value)> = (0..60)
        .map(|i| (format!("k{i}"), json!("v".repeat(1024))))
        .collect();
    let overwrite: Vec<(String, serde_json::Value)> =
        (0..30).map(|i| (format!("k{}", i % 3), json!(i))).collect();
    drive(&mut r, &fill, &mut d);
    drive(&mut r, &overwrite, &mut d);
    let before = d.layouts.last().copied().expect("snapshots taken");
    assert!(before.deltas >= 2, "the chain grew: {:?}", d.layouts);
    let snap = d.snapshot.clone().expect("a snapshot persisted");
    let (_, recovered) = Kv::decode_snapshot(&snap.data).expect("decodes");
    assert_eq!(
        recovered, before,
        "the persisted snapshot is the last taken"
    );
    let restarted = |d: &Durable| {
        Replica::new(
            cfg(),
            crate::raft::Recovered {
                identity: None,
                hard_state: d.hard_state,
                snapshot: d.snapshot.clone(),
                entries: d.entries.clone(),
            }
            .into(),
        )
    };
    let mut r2 = restarted(&d);
    let taken = d.layouts.len();
    drive(&mut r2, &overwrite[..6], &mut d);
    let after = &d.layouts[taken..];
    assert!(!after.is_empty(), "snapshots after the restart");
    assert_eq!(after[0].deltas, before.deltas + 1, "{after:?}");
    assert_eq!(after[0].image_len, before.image_len);
    // Keep going (restarting each round) until the chain reaches the bound: the
    // snapshot after it is whole, and none ever went past it.
    let mut r3 = restarted(&d);
    for _ in 0..MAX_DELTAS {
        if d.layouts.iter().any(|l| l.deltas == MAX_DELTAS) {
            break;
        }
        drive(&mut r3, &overwrite[..9], &mut d);
        r3 = restarted(&d);
    }
    assert!(d.layouts.iter().all(|l| l.deltas <= MAX_DELTAS));
    let at = d.layouts.iter().position(|l| l.deltas == MAX_DELTAS);
    let at = at.unwrap_or_else(|| panic!("the chain reached the bound: {:?}", d.layouts));
    drive(&mut r3, &overwrite[..9], &mut d);
    assert_eq!(
        d.layouts.get(at + 1).map(|l| l.deltas),
        Some(0),
        "{:?}",
        &d.layouts[at..]
    );
}
