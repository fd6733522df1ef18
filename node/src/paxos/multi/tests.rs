//! Unit tests of the Multi-Paxos engine on its own (cluster scenarios live in
//! `node/tests/paxos`).

use super::*;
use crate::paxos::testing::{b, cfg, cmd, settle};
use crate::paxos::{Decided, ProposeError, ReadState};

fn msg(from: NodeId, to: NodeId, chosen_through: Slot, body: Body) -> Message {
    Envelope {
        from,
        to,
        chosen_through,
        body,
    }
}

#[test]
fn recovery_replays_promises_acceptances_and_choices() {
    let records = vec![
        Record::Promised(b(2, 3)),
        Record::Accepted {
            slot: 1,
            ballot: b(1, 1),
            value: cmd("v"),
        },
        Record::Accepted {
            slot: 2,
            ballot: b(3, 2),
            value: cmd("w"),
        },
        Record::Chosen {
            slot: 1,
            value: cmd("v"),
        },
    ];
    let recovered = Recovered {
        snapshot: None,
        records,
    };
    let mut e = MultiPaxos::new(cfg(1, &[1, 2, 3]), recovered);
    // Accepting under 3.2 promised it too.
    assert_eq!(e.status().ballot, b(3, 2));
    assert_eq!(e.status().chosen_index, 1);
    let r = e.ready();
    assert_eq!(r.committed.len(), 1);
    assert_eq!(r.committed[0].value, cmd("v"));
    assert!(r.persist.is_none(), "nothing new to write");
    e.step(msg(
        3,
        1,
        0,
        Body::Prepare {
            ballot: b(2, 3),
            from_slot: 1,
        },
    ));
    let r = e.ready();
    assert_eq!(
        r.messages.iter().map(|m| &m.body).collect::<Vec<_>>(),
        [&Body::Reject {
            ballot: b(2, 3),
            promised: b(3, 2)
        }]
    );
}

#[test]
fn nonsense_records_are_skipped_and_counted() {
    let records = vec![
        Record::Accepted {
            slot: 0,
            ballot: b(1, 1),
            value: Value::Noop,
        },
        Record::Promised(b(1, 9)),
        Record::Chosen {
            slot: u64::MAX,
            value: Value::Noop,
        },
    ];
    let recovered = Recovered {
        snapshot: None,
        records,
    };
    let e = MultiPaxos::new(cfg(1, &[1, 2, 3]), recovered);
    assert_eq!(e.stats().bad_records, 3);
    assert_eq!(e.status().ballot, Ballot::ZERO);
}

#[test]
fn a_single_node_decides_alone_once_its_writes_are_durable() {
    let mut e = MultiPaxos::new(cfg(1, &[1]), Recovered::default());
    assert!(matches!(
        e.propose(vec![1]),
        Err(ProposeError::NotLeader { leader: None })
    ));
    for _ in 0..20 {
        e.tick();
    }
    assert_eq!(
        e.status().role,
        Role::Candidate,
        "waits for its own promise"
    );
    settle(&mut e);
    assert_eq!(e.status().role, Role::Leader);
    let id = e.propose(b"x".to_vec()).unwrap();
    let r = e.ready();
    assert!(r.committed.is_empty(), "not before the fsync");
    let seq = r.persist.expect("the acceptance is written").seq;
    e.persisted(seq);
    let decided: Vec<Decided> = settle(&mut e)
        .into_iter()
        .flat_map(|r| r.committed)
        .collect();
    assert_eq!(
        decided,
        [Decided {
            slot: 1,
            value: cmd("x"),
            proposal: Some(id)
        }]
    );
    let round = e.read_index().unwrap();
    let r = e.ready();
    assert_eq!(r.reads, [ReadState { round, index: 1 }]);
}

#[test]
fn a_compaction_checkpoint_rebuilds_the_same_state() {
    let mut e = MultiPaxos::new(cfg(1, &[1]), Recovered::default());
    e.campaign_now();
    settle(&mut e);
    for i in 0..5 {
        e.propose(format!("c{i}").into_bytes()).unwrap();
    }
    settle(&mut e);
    assert_eq!(e.status().applied_index, 5);
    assert!(!e.compact(6, Vec::new()), "not applied");
    assert!(e.compact(3, b"state@3".to_vec()));
    let r = e.ready();
    let w = r.persist.expect("the snapshot is written");
    assert_eq!(w.snapshot.as_ref().map(|s| s.last_slot), Some(3));
    let mut restarted = MultiPaxos::new(
        cfg(1, &[1]),
        Recovered {
            snapshot: w.snapshot,
            records: w.records,
        },
    );
    assert_eq!(restarted.status().first_index, 4);
    assert_eq!(restarted.status().chosen_index, 5);
    assert_eq!(restarted.status().ballot, e.status().ballot);
    let slots: Vec<Slot> = restarted.ready().committed.iter().map(|d| d.slot).collect();
    assert_eq!(slots, [4, 5]);
}

#[test]
fn a_follower_learns_only_slots_it_accepted_in_the_leaders_ballot() {
    let mut e = MultiPaxos::new(cfg(3, &[1, 2, 3]), Recovered::default());
    let accept = |ballot, first, values| Body::Accept {
        ballot,
        first,
        values,
    };
    e.step(msg(1, 3, 0, accept(b(1, 1), 1, vec![cmd("old")])));
    e.step(msg(2, 3, 0, accept(b(2, 2), 2, vec![cmd("new")])));
    // Leader 2.2 says slots 1-2 are chosen: slot 2 holds its value; slot 1 was
    // accepted under another ballot and must be fetched.
    e.step(msg(
        2,
        3,
        2,
        Body::Heartbeat {
            ballot: b(2, 2),
            read_ctx: 0,
        },
    ));
    assert_eq!(e.status().chosen_index, 0);
    assert_eq!(e.core.slots.chosen(2), Some(&cmd("new")));
    let r = e.ready();
    assert!(
        r.messages
            .iter()
            .any(|m| m.to == 2 && m.body == Body::CatchUp { from_slot: 1 })
    );
    e.step(msg(
        2,
        3,
        2,
        Body::Chosen {
            first: 1,
            values: vec![cmd("x"), cmd("new")],
        },
    ));
    assert_eq!(e.status().chosen_index, 2);
    assert_eq!(e.stats().conflicts, 0);
}

#[test]
fn a_leader_that_learns_another_value_in_its_slot_steps_down() {
    let mut e = MultiPaxos::new(cfg(1, &[1]), Recovered::default());
    e.campaign_now();
    settle(&mut e);
    let id = e.propose(b"mine".to_vec()).unwrap();
    e.ready();
    // Before its own acceptance is durable, a catch-up reveals slot 1 chosen with
    // something else (a higher ballot won it elsewhere).
    e.learn(1, cmd("theirs"));
    assert_eq!(e.status().role, Role::Follower);
    let r = e.ready();
    assert_eq!(r.abandoned, [id]);
    assert_eq!(r.committed[0].proposal, None);
}

#[test]
fn a_ballot_absurdly_far_above_every_round_seen_is_refused() {
    let mut e = MultiPaxos::new(cfg(1, &[1, 2, 3]), Recovered::default());
    let prepare = |round| Body::Prepare {
        ballot: b(round, 2),
        from_slot: 1,
    };
    e.step(msg(2, 1, 0, prepare((1 << 32) + 2)));
    assert_eq!(e.stats().rejected_messages, 1);
    assert_eq!(e.status().ballot, Ballot::ZERO);
    // A step the cluster could legitimately have taken is fine.
    e.step(msg(2, 1, 0, prepare(1 << 32)));
    assert_eq!(e.status().ballot, b(1 << 32, 2));
    e.step(msg(2, 1, 0, prepare(1 << 33)));
    assert_eq!(e.status().ballot, b(1 << 33, 2));
    assert_eq!(e.stats().rejected_messages, 1);
}
