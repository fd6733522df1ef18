//! Basic Paxos scenarios, driven message by message. Each checks what the protocol
//! promises at that step; the oracle (see `harness`) checks safety throughout.

use crate::harness::{
    Cluster, FORGET_PROMISE, IGNORE_ACCEPTED, OracleExt, assert_round_trips, cmd, link,
};
use node::paxos::basic::{BasicPaxos, Body, Record};
use node::paxos::{Ballot, Envelope, NodeId, PaxosMutants, Snapshot, Value};

type C = Cluster<BasicPaxos>;

/// Three nodes whose first write (the epoch) is durable.
fn cluster(mutants: PaxosMutants) -> C {
    let mut c: C = Cluster::new(3, 1, |cfg| cfg.mutants = mutants);
    for id in [1, 2, 3] {
        c.sync(id);
    }
    c
}

fn ballot(round: u64, node: NodeId) -> Ballot {
    Ballot { round, node }
}

/// The value of the first Accept in flight from `from`.
fn accept_value(c: &C, from: NodeId) -> Option<(Ballot, Value)> {
    c.messages().into_iter().find_map(|m| match &m.body {
        Body::Accept { ballot, value, .. } if m.from == from => Some((*ballot, value.clone())),
        _ => None,
    })
}

fn is_chosen(b: &Body) -> bool {
    matches!(b, Body::Chosen { .. })
}

/// Nodes 1 and 2 propose "a" and "b" in slot 1 at once; 1.2 preempts 1.1, "b" is
/// chosen by node 2, and nobody else hears of it. Node 1 then retries: its phase 1
/// reaches node 3 only. Returns the cluster with node 1's new Accept in flight.
fn duel(mutants: PaxosMutants) -> C {
    let mut c = cluster(mutants);
    c.propose(1, "a").unwrap();
    c.propose(2, "b").unwrap();
    assert!(
        c.messages().is_empty(),
        "Prepares wait for the self-promise"
    );
    c.sync(1);
    c.sync(2);
    c.deliver(link(1, 0));
    c.deliver(link(2, 0));
    // Node 2 had promised 1.2 to itself: it refuses 1.1. Node 1 backs off.
    c.deliver(|p| p.to() == 1);
    assert_eq!(c.node(1).engine().stats().duels, 1);
    for id in [1, 2, 3] {
        c.sync(id);
    }
    // Node 1 is backing off: node 3's late promise of 1.1 is ignored. Node 2 has
    // promises from everyone for 1.2 and proposes its own value.
    c.deliver(|_| true);
    assert_eq!(accept_value(&c, 2), Some((ballot(1, 2), cmd("b"))));
    c.deliver(|_| true);
    for id in [1, 2, 3] {
        c.sync(id);
    }
    c.deliver(link(0, 2));
    assert_eq!(c.oracle.chosen.get(&1), Some(&cmd("b")));
    c.drop_where(|p| matches!(p, crate::harness::Packet::Msg(m) if is_chosen(&m.body)));
    // Node 1 retries after its randomized backoff, with a ballot above 1.2.
    for _ in 0..100 {
        c.tick(1);
        c.sync(1);
        if !c.messages().is_empty() {
            break;
        }
    }
    assert!(c.node(1).engine().stats().retries >= 1);
    c.drop_where(link(1, 2));
    c.deliver(link(1, 3));
    c.sync(3);
    c.deliver(link(3, 1));
    c
}

#[test]
fn duelling_proposers_back_off_and_the_loser_adopts_the_chosen_value() {
    let mut c = duel(PaxosMutants::default());
    // The promises carried b (accepted under 1.2): node 1 proposes b, not a.
    let (b, v) = accept_value(&c, 1).expect("node 1 in phase 2");
    assert_eq!(b, ballot(2, 1));
    assert_eq!(v, cmd("b"));
    c.stabilize();
    // Node 1's own value moved on to the next slot.
    for id in [1, 2, 3] {
        assert_eq!(c.applied(id), [cmd("b"), cmd("a")], "node {id}");
    }
    let s = c.stats(1);
    assert_eq!(s.reproposed, 1);
    assert_eq!(c.node(1).acked.values().copied().collect::<Vec<_>>(), [2]);
    assert_eq!(c.node(2).acked.values().copied().collect::<Vec<_>>(), [1]);
    c.oracle.assert_safe();
}

#[test]
fn ignore_accepted_mutant_overwrites_the_chosen_value() {
    let m = IGNORE_ACCEPTED;
    let mut c = duel(m);
    assert_eq!(accept_value(&c, 1).map(|(_, v)| v), Some(cmd("a")));
    c.stabilize();
    c.oracle.assert_chosen_twice(1);
}

/// Node 1 gets "v" accepted by node 3 and itself (so it is chosen) and crashes
/// before anyone learns it; node 2, which heard nothing of it, proposes "w" for
/// the same slot.
fn crash_mid_phase_2(mutants: PaxosMutants) -> C {
    let mut c = cluster(mutants);
    c.propose(1, "v").unwrap();
    c.propose(2, "w").unwrap();
    c.sync(1);
    c.sync(2);
    c.deliver(link(1, 3));
    c.sync(3);
    c.deliver(link(3, 1));
    c.deliver(link(1, 3));
    c.sync(3);
    c.sync(1);
    assert_eq!(c.oracle.chosen.get(&1), Some(&cmd("v")));
    c.crash(1);
    c.drop_where(|p| p.from() == 1 || p.to() == 1);
    c.deliver(link(2, 3));
    c.sync(3);
    c.deliver(link(3, 2));
    c
}

#[test]
fn the_highest_accepted_value_survives_a_proposer_crash_mid_phase_2() {
    let mut c = crash_mid_phase_2(PaxosMutants::default());
    // Node 3's promise carried v, accepted under 1.1: node 2 proposes v.
    assert_eq!(accept_value(&c, 2), Some((ballot(1, 2), cmd("v"))));
    c.stabilize();
    assert_eq!(c.applied(2), [cmd("v"), cmd("w")]);
    assert_eq!(c.applied(3), [cmd("v"), cmd("w")]);
    // Node 1 restarts and learns both once a new value is decided.
    c.restart(1);
    c.propose(3, "x").unwrap();
    c.stabilize();
    assert_eq!(c.applied(1), [cmd("v"), cmd("w"), cmd("x")]);
    c.oracle.assert_safe();
}

#[test]
fn ignore_accepted_mutant_loses_a_value_chosen_before_the_crash() {
    let m = IGNORE_ACCEPTED;
    let mut c = crash_mid_phase_2(m);
    assert_eq!(accept_value(&c, 2), Some((ballot(1, 2), cmd("w"))));
    c.stabilize();
    assert!(!c.oracle.violations.is_empty());
}

#[test]
fn holes_below_a_chosen_slot_are_filled_with_noops() {
    let mut c = cluster(PaxosMutants::default());
    // Node 1's value is accepted by node 1 alone in slot 1, then node 1 crashes.
    c.propose(1, "lost").unwrap();
    c.sync(1);
    c.deliver(|_| true);
    c.sync(2);
    c.sync(3);
    c.deliver(|_| true);
    c.crash(1);
    c.drop_where(|p| p.from() == 1 || p.to() == 1);
    // Node 2 has seen slot 1 in use and proposes in slot 2.
    c.propose(2, "b").unwrap();
    c.stabilize();
    assert_eq!(
        c.node(2).engine().status().chosen_index,
        0,
        "slot 1 is a hole"
    );
    for _ in 0..60 {
        c.tick(2);
        c.tick(3);
        c.stabilize();
    }
    for id in [2, 3] {
        assert_eq!(c.applied(id), [Value::Noop, cmd("b")], "node {id}");
    }
    let filled = c.stats(2).holes_filled + c.stats(3).holes_filled;
    assert!(filled >= 1);
    c.oracle.assert_safe();
}

#[test]
fn a_promise_waits_for_the_disk_unless_the_mutant_forgets_it() {
    for forget in [false, true] {
        let m = PaxosMutants {
            forget_promise: forget,
            ..PaxosMutants::default()
        };
        let mut c = cluster(m);
        c.propose(1, "a").unwrap();
        c.sync(1);
        c.deliver(link(1, 2));
        let promised = c
            .messages()
            .iter()
            .any(|m| matches!(m.body, Body::Promise { .. }));
        assert_eq!(promised, forget, "forget_promise={forget}");
    }
}

/// Node 3 promises node 2's ballot before the write is durable (mutant only), then
/// crashes and accepts node 1's lower ballot: two values get chosen in slot 1.
fn forgotten_promise(mutants: PaxosMutants) -> C {
    let mut c = cluster(mutants);
    c.propose(1, "v").unwrap();
    c.sync(1);
    c.drop_where(link(1, 2));
    c.deliver(link(1, 3));
    c.sync(3);
    c.deliver(link(3, 1));
    c.sync(1);
    // Node 1's Accepts of v (1.1) are in flight. Node 2 never heard of slot 1.
    c.propose(2, "w").unwrap();
    c.sync(2);
    c.deliver(link(2, 3));
    c.deliver(link(3, 2));
    c.crash(3);
    c.restart(3);
    c.deliver(link(1, 3));
    c.sync(3);
    c.stabilize();
    c
}

#[test]
fn forget_promise_mutant_lets_two_values_be_chosen() {
    forgotten_promise(FORGET_PROMISE)
        .oracle
        .assert_chosen_twice(1);
}

#[test]
fn a_promise_lost_before_the_disk_was_never_given() {
    let c = forgotten_promise(PaxosMutants::default());
    assert_eq!(c.oracle.chosen.get(&1), Some(&cmd("v")));
    c.oracle.assert_safe();
}

#[test]
fn a_read_is_served_through_the_slot_its_marker_is_chosen_in() {
    let mut c = cluster(PaxosMutants::default());
    c.propose(1, "x").unwrap();
    c.stabilize();
    let round = c.read(2).unwrap();
    assert!(c.node(2).confirmed.is_empty());
    c.stabilize();
    assert_eq!(
        c.node(2).confirmed,
        [(round, 2)],
        "after the write in slot 1"
    );
    let epoch = c.node(2).engine().epoch();
    assert_eq!(
        c.applied(3)[1],
        Value::Read {
            node: 2,
            epoch,
            round
        }
    );
    // A restart bumps the epoch: a marker of the old run is never a new read's.
    c.crash(2);
    c.restart(2);
    assert_eq!(c.node(2).engine().epoch(), epoch + 1);
}

#[test]
fn malformed_messages_are_dropped_and_counted() {
    let mut c = cluster(PaxosMutants::default());
    let bad = [
        (
            9,
            Body::Prepare {
                slot: 1,
                ballot: ballot(1, 9),
            },
        ), // unknown sender
        (
            2,
            Body::Prepare {
                slot: 0,
                ballot: ballot(1, 2),
            },
        ),
        (
            2,
            Body::Prepare {
                slot: 1,
                ballot: ballot(u64::MAX, 2),
            },
        ),
        (
            2,
            Body::Accept {
                slot: 1,
                ballot: ballot(1, 3),
                value: Value::Noop,
            },
        ), // not 2's
        (
            2,
            Body::Promise {
                slot: 1,
                ballot: ballot(1, 2),
                accepted: None,
            },
        ), // not our ballot
        (
            2,
            Body::Promise {
                slot: 1,
                ballot: ballot(1, 1),
                accepted: Some((ballot(5, 2), Value::Noop)), // above the promise
            },
        ),
        (
            2,
            Body::Chosen {
                first: 1,
                values: Vec::new(),
            },
        ),
        (
            2,
            Body::Chosen {
                first: u64::MAX,
                values: vec![Value::Noop],
            },
        ),
        (
            2,
            Body::Reject {
                slot: 1,
                ballot: ballot(1, 1),
                promised: ballot(2, 7),
            },
        ),
    ];
    let n = bad.len() as u64;
    for (from, body) in bad {
        c.node(1).engine().step(Envelope {
            from,
            to: 1,
            chosen_through: 0,
            body,
        });
    }
    c.collect(1);
    let e = c.node(1).engine();
    assert_eq!(e.stats().rejected_messages, n);
    assert_eq!(e.status().ballot, Ballot::ZERO);
    assert_eq!(e.status().last_index, 0);
    assert!(!e.install_snapshot(
        1,
        Snapshot {
            last_slot: 3,
            data: Vec::new()
        }
    ));
    assert!(c.messages().is_empty());
    // A slot far past the window is ignored without keeping any state.
    c.node(1).engine().step(Envelope {
        from: 2,
        to: 1,
        chosen_through: 0,
        body: Body::Prepare {
            slot: 1 << 40,
            ballot: ballot(1, 2),
        },
    });
    c.collect(1);
    assert!(c.messages().is_empty());
    assert_eq!(c.node(1).engine().status().last_index, 0);
}

#[test]
fn a_lagging_node_catches_up_from_a_snapshot() {
    let mut c = cluster(PaxosMutants::default());
    c.crash(3);
    for i in 0..15 {
        c.propose(1 + i % 2, &format!("c{i}")).unwrap();
        c.stabilize();
    }
    assert!(c.compact(1));
    assert!(c.compact(2));
    c.restart(3);
    c.propose(2, "after").unwrap();
    c.stabilize();
    assert_eq!(c.node(3).engine().stats().snapshots_installed, 1);
    assert_eq!(c.nodes[&3].app, c.nodes[&1].app);
    assert_eq!(
        c.applied(3),
        [cmd("after")],
        "only what follows the snapshot"
    );
    // The snapshot replaced every record before it on disk.
    let durable = &c.node(1).durable;
    assert_eq!(durable.snapshot.as_ref().map(|s| s.last_slot), Some(15));
    assert!(durable.records.iter().all(|r| match r {
        Record::Accepted { slot, .. }
        | Record::Chosen { slot, .. }
        | Record::Promised { slot, .. } => *slot > 15,
        Record::Epoch(_) => true,
    }));
    c.oracle.assert_safe();
}

#[test]
fn messages_and_records_round_trip_through_postcard() {
    let b = ballot(2, 3);
    let bodies = [
        Body::Prepare { slot: 4, ballot: b },
        Body::Promise {
            slot: 4,
            ballot: b,
            accepted: Some((ballot(1, 1), cmd("x"))),
        },
        Body::Accept {
            slot: 4,
            ballot: b,
            value: Value::Read {
                node: 1,
                epoch: 2,
                round: 3,
            },
        },
        Body::Accepted { slot: 4, ballot: b },
        Body::Reject {
            slot: 4,
            ballot: b,
            promised: b,
        },
        Body::Prefix,
        Body::CatchUp { from_slot: 2 },
        Body::Chosen {
            first: 2,
            values: vec![Value::Noop, cmd("y")],
        },
    ];
    let messages: Vec<Envelope<Body>> = bodies
        .into_iter()
        .map(|body| Envelope {
            from: 3,
            to: 1,
            chosen_through: 1,
            body,
        })
        .collect();
    assert_round_trips(&messages);
    assert_round_trips(&[
        Record::Epoch(3),
        Record::Promised { slot: 1, ballot: b },
        Record::Accepted {
            slot: 1,
            ballot: b,
            value: cmd("v"),
        },
        Record::Chosen {
            slot: 1,
            value: Value::Noop,
        },
    ]);
}
