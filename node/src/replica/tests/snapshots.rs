//! Snapshot tests: taking, serializing, installing and recovering them, deltas and
//! their bounds, and when each node takes its automatic snapshot.

use super::*;
use crate::kv::{CHAIN_FACTOR, CHAIN_FACTOR_ONE_BLOB, MAX_DELTAS};

/// Raft's chains may reach CHAIN_FACTOR times the state; the Paxos engines, which
/// store and send every snapshot as one blob, keep theirs within the smaller factor.
#[test]
fn each_engine_bounds_its_chains_by_its_own_factor() {
    for (kind, want) in [
        (EngineKind::Raft, CHAIN_FACTOR),
        (EngineKind::MultiPaxos, CHAIN_FACTOR_ONE_BLOB),
        (EngineKind::BasicPaxos, CHAIN_FACTOR_ONE_BLOB),
    ] {
        let mut c = Cluster::with_engine(3, kind);
        c.tick_all(60);
        let at = c.leader().unwrap_or(1);
        let w = c.request(at, put("k", json!(1)));
        c.tick_all(5);
        assert_eq!(
            c.replies[&w],
            Response::Done(KvResult::Value(Some(json!(1))))
        );
        let outs = c.input(at, Input::TakeSnapshot);
        let factors: Vec<usize> = (outs.iter())
            .filter_map(|o| match o {
                Output::Snapshot { source, .. } => Some(source.factor()),
                _ => None,
            })
            .collect();
        assert_eq!(factors, vec![want], "{kind:?}");
        c.carry(at, outs);
    }
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
    let mut d = Durable::default();
    let puts: Vec<_> = (30..38u64)
        .map(|step| (format!("p{step}"), json!(step)))
        .collect();
    drive(&mut r, &puts, &mut d);
    let snap = d.snapshot.clone().expect("snapshots were taken");
    assert!(snap.meta.last_index >= 6);
    assert!(
        d.entries
            .first()
            .is_none_or(|e| e.index == snap.meta.last_index + 1)
    );
    // What the log holds after the snapshot applies once the node, alone, is leader
    // again and commits it.
    let mut r2 = Replica::new(config(1, 1, Mutants::default()), d.recovered());
    drive(&mut r2, &[], &mut Durable::default());
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

impl Durable {
    /// What storage would recover from it.
    fn recovered(&self) -> Recovered {
        crate::raft::Recovered {
            identity: None,
            hard_state: self.hard_state,
            snapshot: self.snapshot.clone(),
            entries: self.entries.clone(),
        }
        .into()
    }
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
    let (_, recovered) = Kv::decode_snapshot(&snap.data.contiguous()).expect("decodes");
    assert_eq!(
        recovered, before,
        "the persisted snapshot is the last taken"
    );
    let restarted = |d: &Durable| Replica::new(cfg(), d.recovered());
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
