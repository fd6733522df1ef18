//! Unit tests of the Basic Paxos engine on its own (cluster scenarios live in
//! `node/tests/paxos`).

use super::proposer::Phase;
use super::*;
use crate::paxos::testing::{b, cfg, cmd, settle};

fn msg(from: NodeId, to: NodeId, body: Body) -> Message {
    Envelope {
        from,
        to,
        chosen_through: 0,
        body,
    }
}

#[test]
fn a_restart_bumps_the_epoch_and_keeps_the_promises() {
    let records = vec![
        Record::Epoch(4),
        Record::Promised {
            slot: 1,
            ballot: b(2, 2),
        },
        Record::Accepted {
            slot: 2,
            ballot: b(1, 3),
            value: cmd("v"),
        },
    ];
    let recovered = Recovered {
        snapshot: None,
        records,
    };
    let mut e = BasicPaxos::new(cfg(1, &[1, 2, 3]), recovered);
    assert_eq!(e.epoch(), 5);
    let w = e.ready().persist.expect("the new epoch is written first");
    assert_eq!(w.records, [Record::Epoch(5)]);
    e.persisted(w.seq);
    e.step(msg(
        3,
        1,
        Body::Prepare {
            slot: 1,
            ballot: b(1, 3),
        },
    ));
    e.step(msg(
        2,
        1,
        Body::Accept {
            slot: 2,
            ballot: b(1, 2),
            value: Value::Noop,
        },
    ));
    let bodies: Vec<Body> = e.ready().messages.into_iter().map(|m| m.body).collect();
    assert_eq!(
        bodies,
        [
            Body::Reject {
                slot: 1,
                ballot: b(1, 3),
                promised: b(2, 2)
            },
            Body::Reject {
                slot: 2,
                ballot: b(1, 2),
                promised: b(1, 3)
            },
        ]
    );
}

#[test]
fn a_single_node_decides_alone_and_reads_through_a_slot() {
    let mut e = BasicPaxos::new(cfg(1, &[1]), Recovered::default());
    let id = e.propose(b"x".to_vec()).unwrap();
    let round = e.read_index().unwrap();
    let readies = settle(&mut e);
    let decided: Vec<(Slot, Option<ProposalId>)> = readies
        .iter()
        .flat_map(|r| r.committed.iter().map(|d| (d.slot, d.proposal)))
        .collect();
    assert_eq!(decided, [(1, Some(id)), (2, None)]);
    let reads: Vec<ReadState> = readies.into_iter().flat_map(|r| r.reads).collect();
    assert_eq!(reads, [ReadState { round, index: 2 }]);
    assert_eq!(e.in_flight(), 0);
}

#[test]
fn backoff_grows_with_failures_in_a_row_up_to_a_cap() {
    let mut e = BasicPaxos::new(cfg(1, &[1, 2, 3]), Recovered::default());
    e.propose(b"x".to_vec()).unwrap();
    e.ready();
    let slot = *e.instances.keys().next().expect("an instance runs");
    let mut widest = Vec::new();
    for streak in 1..=7u32 {
        let mut max = 0;
        for _ in 0..50 {
            e.instances.get_mut(&slot).unwrap().streak = streak - 1;
            e.backoff(slot);
            let Phase::Backoff { until } = e.instances[&slot].phase else {
                panic!("backing off");
            };
            let wait = until - e.core.now;
            assert!(wait >= 1 && wait < 10 << (streak - 1).min(4));
            max = max.max(wait);
        }
        widest.push(max);
    }
    assert!(widest[0] < widest[2] && widest[2] < widest[4], "{widest:?}");
    assert_eq!(widest[4], widest[6], "capped");
}

#[test]
fn a_hole_is_left_alone_while_another_proposer_works_on_it() {
    let mut e = BasicPaxos::new(cfg(1, &[1, 2, 3]), Recovered::default());
    settle(&mut e);
    // Slot 3 is chosen; slots 1 and 2 are holes. Node 2 keeps working on slot 1.
    e.step(msg(
        2,
        1,
        Body::Chosen {
            first: 3,
            values: vec![cmd("c")],
        },
    ));
    for t in 0..60u64 {
        if t % 5 == 0 {
            e.step(msg(
                2,
                1,
                Body::Prepare {
                    slot: 1,
                    ballot: b(t + 1, 2),
                },
            ));
        }
        e.tick();
        settle(&mut e);
    }
    let running: Vec<Slot> = e.instances.keys().copied().collect();
    assert_eq!(running, [2]);
    assert_eq!(e.stats().holes_filled, 1);
}

#[test]
fn a_value_that_loses_its_slot_moves_to_the_next() {
    let mut e = BasicPaxos::new(cfg(1, &[1, 2, 3]), Recovered::default());
    settle(&mut e);
    let id = e.propose(b"mine".to_vec()).unwrap();
    e.ready();
    assert!(e.instances.contains_key(&1));
    e.step(msg(
        3,
        1,
        Body::Chosen {
            first: 1,
            values: vec![cmd("theirs")],
        },
    ));
    e.ready();
    assert!(e.instances.contains_key(&2), "moved on to slot 2");
    assert_eq!(e.instances[&2].own.as_ref().map(|o| o.id), Some(id));
}
