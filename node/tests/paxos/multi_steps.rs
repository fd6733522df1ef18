//! Multi-Paxos scenarios, driven message by message. Each checks what the protocol
//! promises at that step; the oracle (see `harness`) checks safety throughout.

use crate::harness::{
    Cluster, FORGET_PROMISE, IGNORE_ACCEPTED, OracleExt, Packet, assert_round_trips, cmd, link,
};
use node::paxos::multi::{Body, MultiPaxos, PromiseEntry, Record};
use node::paxos::{Ballot, Envelope, PaxosMutants, Role, Snapshot, Value};

type C = Cluster<MultiPaxos>;

/// Election timeouts are drawn from [10, 110): a follower outlives its 10-tick
/// lease on a silent leader well before it campaigns itself.
fn cluster(n: u64, mutants: PaxosMutants) -> C {
    Cluster::new(n, 1, |cfg| {
        cfg.mutants = mutants;
        cfg.max_values_per_msg = 4;
        cfg.max_inflight_msgs = 2;
        cfg.election_ticks_max = 110;
    })
}

/// Lets the lease of `ids` on a silent leader run out (10 ticks without a message
/// from it), so they consider a new candidate's Prepare.
fn expire_leases(c: &mut C, ids: &[u64]) {
    for _ in 0..10 {
        for &id in ids {
            c.tick(id);
        }
    }
    for &id in ids {
        let role = c.node(id).engine().status().role;
        assert_eq!(role, Role::Follower, "node {id} campaigned early");
    }
}

/// A cluster of three where node 1 leads (ballot 1.1) and every node knows it.
fn led_by_1(mutants: PaxosMutants) -> C {
    let mut c = cluster(3, mutants);
    c.campaign(1);
    c.stabilize();
    assert_eq!(c.node(1).engine().status().role, Role::Leader);
    heartbeat(&mut c, 1);
    c
}

/// Lets the leader's heartbeat period pass and delivers everything.
fn heartbeat(c: &mut C, leader: u64) {
    c.tick(leader);
    c.tick(leader);
    c.stabilize();
}

fn is_accept(b: &Body) -> bool {
    matches!(b, Body::Accept { .. })
}

fn cut_both(c: &mut C, a: u64, b: u64) {
    c.cut.insert((a, b));
    c.cut.insert((b, a));
}

#[test]
fn phase_1_once_then_batched_pipelined_phase_2() {
    let mut c = led_by_1(PaxosMutants::default());
    for id in [2, 3] {
        assert_eq!(c.node(id).engine().status().leader, Some(1));
        assert_eq!(
            c.node(id).engine().status().ballot,
            Ballot { round: 1, node: 1 }
        );
    }
    let prepares_before = c.node(1).engine().stats().prepares;
    let cmds: Vec<String> = (1..=10).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = cmds.iter().map(String::as_str).collect();
    c.propose_many(1, &refs);
    // Batching: 4 values per Accept; pipelining: 2 Accepts in flight per peer
    // before any answer. The rest waits for the pipeline to drain.
    let sizes: Vec<usize> = c
        .messages()
        .iter()
        .filter(|m| m.to == 2)
        .filter_map(|m| match &m.body {
            Body::Accept { values, .. } => Some(values.len()),
            _ => None,
        })
        .collect();
    assert_eq!(sizes, [4, 4]);
    c.stabilize();
    heartbeat(&mut c, 1);
    let expected: Vec<Value> = refs.iter().map(|s| cmd(s)).collect();
    for id in [1, 2, 3] {
        assert_eq!(c.applied(id), expected, "node {id}");
    }
    assert_eq!(
        c.node(1).engine().stats().prepares,
        prepares_before,
        "no phase 1 per command"
    );
    assert_eq!(c.node(1).acked.len(), 10, "every proposal acknowledged");
    c.oracle.assert_safe();
}

/// The leader's value reaches one acceptor, both make it durable (so it is chosen),
/// and the leader crashes before anyone learns it. Returns the cluster then.
fn chosen_then_leader_crashes(mutants: PaxosMutants) -> C {
    let mut c = led_by_1(mutants);
    c.propose(1, "v").unwrap();
    c.drop_where(link(1, 2));
    c.deliver(link(1, 3));
    c.sync(3);
    c.sync(1);
    assert_eq!(
        c.oracle.chosen.get(&1),
        Some(&cmd("v")),
        "chosen by 1 and 3"
    );
    c.crash(1);
    c.drop_where(|p| p.from() == 1 || p.to() == 1);
    expire_leases(&mut c, &[2, 3]);
    c
}

#[test]
fn a_new_leader_proposes_again_the_value_its_phase_1_reveals() {
    let mut c = chosen_then_leader_crashes(PaxosMutants::default());
    c.campaign(2);
    c.sync(2);
    c.deliver(link(2, 3));
    c.sync(3);
    // Node 3's promise carries what it accepted in slot 1 under the old ballot.
    let promise = c.messages().into_iter().find(|m| m.from == 3).cloned();
    let Some(Envelope {
        body: Body::Promise { entries, .. },
        ..
    }) = promise
    else {
        panic!("node 3 promised");
    };
    assert_eq!(
        entries,
        [PromiseEntry::Accepted {
            slot: 1,
            ballot: Ballot { round: 1, node: 1 },
            value: cmd("v")
        }]
    );
    c.deliver(link(3, 2));
    assert_eq!(c.node(2).engine().status().role, Role::Leader);
    let accept = c
        .messages()
        .into_iter()
        .find(|m| is_accept(&m.body))
        .cloned();
    assert!(
        matches!(&accept, Some(Envelope { body: Body::Accept { first: 1, values, .. }, .. }) if values == &[cmd("v")]),
        "{accept:?}"
    );
    c.stabilize();
    heartbeat(&mut c, 2);
    assert_eq!(c.applied(2), [cmd("v")]);
    assert_eq!(c.node(2).engine().stats().reproposed, 1);
    c.restart(1);
    heartbeat(&mut c, 2);
    assert_eq!(c.applied(1), [cmd("v")]);
    c.oracle.assert_safe();
}

#[test]
fn ignore_accepted_mutant_overwrites_a_chosen_value() {
    let m = IGNORE_ACCEPTED;
    let mut c = chosen_then_leader_crashes(m);
    c.campaign(2);
    c.stabilize();
    c.oracle.assert_chosen_twice(1);
}

#[test]
fn a_leader_change_fills_holes_with_noops() {
    let mut c: C = Cluster::new(3, 1, |cfg| {
        cfg.max_values_per_msg = 1;
        cfg.election_ticks_max = 110;
    });
    c.campaign(1);
    c.stabilize();
    c.propose_many(1, &["c1", "c2", "c3", "c4"]);
    // One slot per Accept: slots 1-2 reach everyone, slot 3 no one, slot 4 node 3.
    let slot_of = |p: &Packet<Body>| match p {
        Packet::Msg(m) => match &m.body {
            Body::Accept { first, .. } => *first,
            _ => 0,
        },
        Packet::Snapshot { .. } => 0,
    };
    c.sync(1);
    c.deliver(move |p| slot_of(p) == 1 || slot_of(p) == 2);
    c.drop_where(move |p| slot_of(p) == 3 || (slot_of(p) == 4 && p.to() == 2));
    c.deliver(move |p| slot_of(p) == 4);
    for id in [1, 2, 3] {
        c.sync(id);
    }
    c.crash(1);
    c.drop_where(|p| p.from() == 1 || p.to() == 1);
    expire_leases(&mut c, &[2, 3]);
    c.campaign(2);
    c.stabilize();
    heartbeat(&mut c, 2);
    let expected = [cmd("c1"), cmd("c2"), Value::Noop, cmd("c4")];
    assert_eq!(c.applied(2), expected);
    assert_eq!(c.applied(3), expected);
    assert_eq!(c.node(2).engine().stats().holes_filled, 1);
    // The old leader accepted c3 in slot 3 under its ballot; it learns the no-op.
    c.restart(1);
    heartbeat(&mut c, 2);
    assert_eq!(c.applied(1), expected);
    c.oracle.assert_safe();
}

#[test]
fn reads_need_a_majority_that_still_honours_the_ballot() {
    let mut c = led_by_1(PaxosMutants::default());
    c.propose(1, "w").unwrap();
    c.stabilize();
    let round = c.read(1).unwrap();
    assert!(
        c.node(1).confirmed.is_empty(),
        "not before a majority answered"
    );
    c.stabilize();
    assert_eq!(c.node(1).confirmed, [(round, 1)]);
    assert!(matches!(
        c.read(2),
        Err(node::paxos::ProposeError::NotLeader { leader: Some(1) })
    ));
    // Cut off from the others, the leader never confirms; when it steps down the
    // round fails (it observed nothing).
    cut_both(&mut c, 1, 2);
    cut_both(&mut c, 1, 3);
    let round = c.read(1).unwrap();
    for _ in 0..30 {
        c.tick(1);
        c.stabilize();
    }
    assert_eq!(c.node(1).engine().status().role, Role::Follower);
    assert!(!c.node(1).confirmed.iter().any(|&(r, _)| r == round));
    assert!(c.node(1).reads.is_empty(), "the round was failed");
}

#[test]
fn promises_and_acceptances_wait_for_the_disk() {
    let mut c = cluster(3, PaxosMutants::default());
    c.campaign(1);
    assert!(
        c.messages().is_empty(),
        "Prepare waits for the candidate's own promise"
    );
    c.sync(1);
    c.deliver(|_| true);
    assert!(
        c.messages().is_empty(),
        "no Promise before the acceptor's write is durable"
    );
    c.sync(2);
    c.sync(3);
    c.deliver(|_| true);
    assert_eq!(c.node(1).engine().status().role, Role::Leader);
    c.stabilize();
    // With node 3 cut off, slot 1 needs node 1's own acceptance: it counts only
    // once durable.
    cut_both(&mut c, 1, 3);
    c.propose(1, "x").unwrap();
    c.deliver(link(1, 2));
    c.sync(2);
    c.deliver(link(2, 1));
    assert!(c.oracle.chosen.is_empty());
    assert_eq!(c.node(1).engine().status().chosen_index, 0);
    c.sync(1);
    assert_eq!(c.node(1).engine().status().chosen_index, 1);
}

/// Node 3, cut off from leader 1, gets node 2's promise for a higher ballot; node 2
/// crashes before that promise is durable, then accepts the old leader's value.
fn forgotten_promise(mutants: PaxosMutants) -> C {
    let mut c = led_by_1(mutants);
    cut_both(&mut c, 1, 3);
    // A restarted node has heard from no leader, so it considers a Prepare at once.
    c.crash(2);
    c.restart(2);
    c.campaign(3);
    c.sync(3);
    c.deliver(link(3, 2));
    // With the mutant the promise is out before it is durable: node 3 leads.
    c.deliver(link(2, 3));
    c.drop_where(link(3, 2));
    c.crash(2);
    c.restart(2);
    c.propose(1, "old").unwrap();
    c.stabilize();
    if c.node(3).engine().status().role == Role::Leader {
        c.propose(3, "new").unwrap();
        c.stabilize();
    }
    c
}

#[test]
fn forget_promise_mutant_lets_an_old_ballot_win_a_slot_twice() {
    forgotten_promise(FORGET_PROMISE)
        .oracle
        .assert_chosen_twice(1);
}

#[test]
fn a_promise_lost_in_a_crash_was_never_sent() {
    let mut c = forgotten_promise(PaxosMutants::default());
    assert_ne!(c.node(3).engine().status().role, Role::Leader);
    assert_eq!(c.oracle.chosen.get(&1), Some(&cmd("old")));
    c.oracle.assert_safe();
}

#[test]
fn malformed_messages_are_dropped_and_counted() {
    let mut c = led_by_1(PaxosMutants::default());
    let b = |round, node| Ballot { round, node };
    let bad = [
        (
            9,
            Body::Heartbeat {
                ballot: b(5, 9),
                read_ctx: 0,
            },
        ), // unknown sender
        (
            2,
            Body::Prepare {
                ballot: b(u64::MAX, 2),
                from_slot: 1,
            },
        ), // absurd round
        (
            2,
            Body::Prepare {
                ballot: b(5, 3),
                from_slot: 1,
            },
        ), // someone else's ballot
        (
            2,
            Body::Accept {
                ballot: b(5, 2),
                first: 0,
                values: vec![Value::Noop],
            },
        ), // slot 0
        (
            2,
            Body::Accept {
                ballot: b(5, 2),
                first: u64::MAX - 1,
                values: vec![Value::Noop],
            },
        ),
        (
            2,
            Body::Accept {
                ballot: b(5, 2),
                first: 1,
                values: Vec::new(),
            },
        ),
        (
            2,
            Body::Chosen {
                first: 1 << 63,
                values: vec![Value::Noop],
            },
        ),
        (
            2,
            Body::Promise {
                ballot: b(1, 1),
                entries: vec![
                    PromiseEntry::Chosen {
                        slot: 5,
                        value: Value::Noop,
                    },
                    PromiseEntry::Chosen {
                        slot: 4,
                        value: Value::Noop,
                    },
                ],
            },
        ), // out of order
        (
            2,
            Body::Accepted {
                ballot: b(1, 1),
                first: 1,
                last: 1 << 40,
            },
        ),
    ];
    let before = c.node(1).engine().status().ballot;
    let n = bad.len() as u64;
    for (from, body) in bad {
        c.node(1).engine().step(Envelope {
            from,
            to: 1,
            chosen_through: 0,
            body,
        });
    }
    // Addressed to another node, or claiming an absurd prefix.
    let hb = Body::Heartbeat {
        ballot: b(5, 2),
        read_ctx: 0,
    };
    c.node(1).engine().step(Envelope {
        from: 2,
        to: 3,
        chosen_through: 0,
        body: hb.clone(),
    });
    c.node(1).engine().step(Envelope {
        from: 2,
        to: 1,
        chosen_through: u64::MAX,
        body: hb,
    });
    c.collect(1);
    let e = c.node(1).engine();
    assert_eq!(e.stats().rejected_messages, n + 2);
    assert_eq!(e.status().ballot, before);
    assert_eq!(e.status().role, Role::Leader);
    assert!(!e.install_snapshot(
        7,
        Snapshot {
            last_slot: 5,
            data: Vec::new()
        }
    ));
    assert!(c.messages().is_empty());
}

#[test]
fn a_lagging_follower_catches_up_from_a_snapshot() {
    let mut c = led_by_1(PaxosMutants::default());
    c.crash(3);
    for i in 0..20 {
        c.propose(1, &format!("c{i}")).unwrap();
        c.stabilize();
    }
    heartbeat(&mut c, 1);
    assert!(c.compact(1));
    assert!(c.compact(2));
    assert_eq!(c.node(1).engine().status().first_index, 21);
    c.restart(3);
    heartbeat(&mut c, 1);
    heartbeat(&mut c, 1);
    assert_eq!(c.nodes[&3].app, c.nodes[&1].app);
    assert_eq!(c.node(3).engine().stats().snapshots_installed, 1);
    c.propose(1, "after").unwrap();
    c.stabilize();
    heartbeat(&mut c, 1);
    assert_eq!(c.applied(3).last(), Some(&cmd("after")));
    assert_eq!(c.nodes[&3].app, c.nodes[&1].app);
    c.oracle.assert_safe();
}

#[test]
fn duelling_candidates_settle_on_one_leader() {
    let mut c = cluster(3, PaxosMutants::default());
    c.campaign(1);
    c.campaign(2);
    c.sync(1);
    c.sync(2);
    // Each Prepare reaches the other candidate first: 1.1 is refused by node 2
    // (which promised 1.2 to itself); 1.2 preempts node 1's own promise.
    c.deliver(|p| p.to() != 3);
    c.stabilize();
    let leaders: Vec<u64> = [1, 2, 3]
        .into_iter()
        .filter(|&id| c.node(id).engine().status().role == Role::Leader)
        .collect();
    assert_eq!(leaders, [2]);
    assert_eq!(c.node(1).engine().stats().duels, 1);
    c.propose(2, "x").unwrap();
    c.stabilize();
    heartbeat(&mut c, 2);
    for id in [1, 2, 3] {
        assert_eq!(c.applied(id), [cmd("x")]);
    }
}

#[test]
fn a_deposed_leader_gives_up_its_unchosen_proposals() {
    let mut c = led_by_1(PaxosMutants::default());
    cut_both(&mut c, 1, 2);
    cut_both(&mut c, 1, 3);
    let pid = c.propose(1, "lost").unwrap();
    c.stabilize();
    for _ in 0..120 {
        c.tick(2);
        c.tick(3);
        c.stabilize();
    }
    let leader = c.node(2).engine().status().leader;
    assert!(matches!(leader, Some(2 | 3)), "{leader:?}");
    c.cut.clear();
    heartbeat(&mut c, leader.unwrap());
    assert_eq!(c.node(1).engine().status().role, Role::Follower);
    assert!(!c.node(1).proposals.contains_key(&pid), "abandoned");
    assert!(!c.node(1).acked.contains_key(&pid));
    c.oracle.assert_safe();
}

#[test]
fn messages_round_trip_through_postcard() {
    let b = Ballot { round: 3, node: 2 };
    let bodies = [
        Body::Prepare {
            ballot: b,
            from_slot: 4,
        },
        Body::Promise {
            ballot: b,
            entries: vec![
                PromiseEntry::Accepted {
                    slot: 4,
                    ballot: b,
                    value: cmd("x"),
                },
                PromiseEntry::Chosen {
                    slot: 5,
                    value: Value::Noop,
                },
            ],
        },
        Body::Reject {
            ballot: b,
            promised: b,
        },
        Body::Accept {
            ballot: b,
            first: 1,
            values: vec![cmd("a"), Value::Noop],
        },
        Body::Accepted {
            ballot: b,
            first: 1,
            last: 2,
        },
        Body::Heartbeat {
            ballot: b,
            read_ctx: 7,
        },
        Body::HeartbeatAck {
            ballot: b,
            read_ctx: 7,
        },
        Body::CatchUp { from_slot: 9 },
        Body::Chosen {
            first: 9,
            values: vec![cmd("z")],
        },
    ];
    let messages: Vec<Envelope<Body>> = bodies
        .into_iter()
        .map(|body| Envelope {
            from: 1,
            to: 2,
            chosen_through: 8,
            body,
        })
        .collect();
    assert_round_trips(&messages);
    assert_round_trips(&[
        Record::Promised(b),
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

#[test]
fn a_restarted_acceptor_keeps_its_promise() {
    let mut c = led_by_1(PaxosMutants::default());
    expire_leases(&mut c, &[2]);
    c.campaign(3);
    c.stabilize();
    let promised = Ballot { round: 2, node: 3 };
    c.crash(2);
    c.restart(2);
    assert_eq!(c.node(2).engine().status().ballot, promised);
    // A Prepare below the durable promise is refused, with the promise.
    let low = Ballot { round: 2, node: 1 };
    c.node(2).engine().step(Envelope {
        from: 1,
        to: 2,
        chosen_through: 0,
        body: Body::Prepare {
            ballot: low,
            from_slot: 1,
        },
    });
    c.collect(2);
    let refused = c.messages().into_iter().any(|m| {
        m.from == 2
            && m.body
                == Body::Reject {
                    ballot: low,
                    promised,
                }
    });
    assert!(refused);
}
