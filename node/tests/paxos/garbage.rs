//! Malformed peer messages must be refused at the boundary and counted, never make
//! an engine panic and never stop it: each engine takes thousands of random ones
//! (random kinds, senders, ballots, slots and values, with the edge values mixed
//! in; kept only when they are absurd by the rules below) between ordinary work,
//! and the cluster must still choose new values afterwards.
//!
//! Absurd: an unknown sender, a message to another node or from the receiver
//! itself, a ballot of round 0 or above 2^62 or of an unknown node, a slot of 0 or
//! above 2^62 (or a run of slots that ends there). Well-formed lies from real peers
//! are not injected there (Paxos assumes peers do not lie); a separate run feeds
//! any message at all, lies and snapshots included, and demands only that the
//! engine never panics.

use crate::harness::{Cluster, Engine, OracleExt, cmd};
use node::consensus::rng::SplitMix64;
use node::paxos::basic::{self, BasicPaxos};
use node::paxos::multi::{self, MultiPaxos, PromiseEntry};
use node::paxos::{Ballot, Envelope, NodeId, Role, Slot, Value};

/// Numbers that break careless arithmetic, and small ones that look legitimate.
fn number(rng: &mut SplitMix64) -> u64 {
    const EDGES: [u64; 10] = [
        0,
        1,
        2,
        3,
        1 << 16,
        70_000,
        1 << 40,
        1 << 62,
        (1 << 62) + 1,
        u64::MAX,
    ];
    match rng.next_u64() % 3 {
        0 => EDGES[(rng.next_u64() % EDGES.len() as u64) as usize],
        1 => rng.next_u64() % 8,
        _ => rng.next_u64(),
    }
}

/// Half the time a plausible ballot (a real node, a modest round), so messages get
/// past the first checks and reach the protocol's handlers.
fn ballot(rng: &mut SplitMix64) -> Ballot {
    if rng.next_u64().is_multiple_of(2) {
        Ballot {
            round: 1 + rng.next_u64() % 50,
            node: 1 + rng.next_u64() % 3,
        }
    } else {
        Ballot {
            round: number(rng),
            node: number(rng),
        }
    }
}

fn value(rng: &mut SplitMix64) -> Value {
    match rng.next_u64() % 3 {
        0 => Value::Noop,
        1 => Value::Command(vec![7; (rng.next_u64() % 4) as usize]),
        _ => Value::Read {
            node: number(rng),
            epoch: number(rng),
            round: number(rng),
        },
    }
}

fn values(rng: &mut SplitMix64) -> Vec<Value> {
    (0..rng.next_u64() % 4).map(|_| value(rng)).collect()
}

fn multi_body(rng: &mut SplitMix64) -> multi::Body {
    use multi::Body::*;
    match rng.next_u64() % 9 {
        0 => Prepare {
            ballot: ballot(rng),
            from_slot: number(rng),
        },
        1 => Promise {
            ballot: ballot(rng),
            entries: (0..rng.next_u64() % 3)
                .map(|_| {
                    if rng.next_u64().is_multiple_of(2) {
                        PromiseEntry::Chosen {
                            slot: number(rng),
                            value: value(rng),
                        }
                    } else {
                        PromiseEntry::Accepted {
                            slot: number(rng),
                            ballot: ballot(rng),
                            value: value(rng),
                        }
                    }
                })
                .collect(),
        },
        2 => Reject {
            ballot: ballot(rng),
            promised: ballot(rng),
        },
        3 => Accept {
            ballot: ballot(rng),
            first: number(rng),
            values: values(rng),
        },
        4 => Accepted {
            ballot: ballot(rng),
            first: number(rng),
            last: number(rng),
        },
        5 => Heartbeat {
            ballot: ballot(rng),
            read_ctx: number(rng),
        },
        6 => HeartbeatAck {
            ballot: ballot(rng),
            read_ctx: number(rng),
        },
        7 => CatchUp {
            from_slot: number(rng),
        },
        _ => Chosen {
            first: number(rng),
            values: values(rng),
        },
    }
}

fn basic_body(rng: &mut SplitMix64) -> basic::Body {
    use basic::Body::*;
    let slot: Slot = number(rng);
    match rng.next_u64() % 8 {
        0 => Prepare {
            slot,
            ballot: ballot(rng),
        },
        1 => Promise {
            slot,
            ballot: ballot(rng),
            accepted: rng
                .next_u64()
                .is_multiple_of(2)
                .then(|| (ballot(rng), value(rng))),
        },
        2 => Accept {
            slot,
            ballot: ballot(rng),
            value: value(rng),
        },
        3 => Accepted {
            slot,
            ballot: ballot(rng),
        },
        4 => Reject {
            slot,
            ballot: ballot(rng),
            promised: ballot(rng),
        },
        5 => Prefix,
        6 => CatchUp { from_slot: slot },
        _ => Chosen {
            first: slot,
            values: values(rng),
        },
    }
}

const MAX: u64 = 1 << 62;

fn absurd_ballot(b: &Ballot) -> bool {
    b.round == 0 || b.round > MAX || !(1..=3).contains(&b.node)
}

fn absurd_slot(s: Slot) -> bool {
    s == 0 || s > MAX
}

fn absurd_run(first: Slot, len: usize) -> bool {
    absurd_slot(first) || first.saturating_add(len as u64) > MAX
}

fn multi_absurd(b: &multi::Body) -> bool {
    use multi::Body::*;
    match b {
        Prepare { ballot, from_slot } => absurd_ballot(ballot) || absurd_slot(*from_slot),
        Promise { ballot, entries } => {
            absurd_ballot(ballot) || entries.iter().any(|e| {
                absurd_slot(e.slot())
                    || matches!(e, PromiseEntry::Accepted { ballot, .. } if absurd_ballot(ballot))
            })
        }
        Reject { ballot, promised } => absurd_ballot(ballot) || absurd_ballot(promised),
        Accept {
            ballot,
            first,
            values,
        } => absurd_ballot(ballot) || values.is_empty() || absurd_run(*first, values.len()),
        Accepted { ballot, first, .. } => absurd_ballot(ballot) || absurd_slot(*first),
        Heartbeat { ballot, .. } | HeartbeatAck { ballot, .. } => absurd_ballot(ballot),
        CatchUp { from_slot } => absurd_slot(*from_slot),
        Chosen { first, values } => values.is_empty() || absurd_run(*first, values.len()),
        Snapshot { snapshot } => absurd_slot(snapshot.last_slot),
    }
}

fn basic_absurd(b: &basic::Body) -> bool {
    use basic::Body::*;
    match b {
        Prepare { slot, ballot } | Accept { slot, ballot, .. } | Accepted { slot, ballot } => {
            absurd_slot(*slot) || absurd_ballot(ballot)
        }
        Promise {
            slot,
            ballot,
            accepted,
        } => {
            absurd_slot(*slot)
                || absurd_ballot(ballot)
                || accepted.as_ref().is_some_and(|(b, _)| absurd_ballot(b))
        }
        Reject {
            slot,
            ballot,
            promised,
        } => absurd_slot(*slot) || absurd_ballot(ballot) || absurd_ballot(promised),
        Prefix => false,
        CatchUp { from_slot } => absurd_slot(*from_slot),
        Chosen { first, values } => values.is_empty() || absurd_run(*first, values.len()),
        Snapshot { snapshot } => absurd_slot(snapshot.last_slot),
    }
}

/// Feeds node 1 of a three-node cluster absurd messages among ordinary work, checks
/// each one was refused and counted, then demands that a new command is chosen and
/// applied everywhere.
fn survive<E: Engine>(body: fn(&mut SplitMix64) -> E::Body, absurd: fn(&E::Body) -> bool) {
    let mut rng = SplitMix64::new(99, 1);
    let mut c: Cluster<E> = Cluster::new(3, 5, |_| {});
    let mut injected = 0;
    for round in 0..6000u64 {
        let (from, to): (NodeId, NodeId) = match rng.next_u64() % 4 {
            0 => (number(&mut rng), 1),
            1 => (1 + rng.next_u64() % 3, number(&mut rng)),
            _ => (1 + rng.next_u64() % 3, 1),
        };
        let m = Envelope {
            from,
            to,
            chosen_through: rng.next_u64() % 100,
            body: body(&mut rng),
        };
        let bad_envelope = !(2..=3).contains(&from) || to != 1;
        if !bad_envelope && !absurd(&m.body) {
            continue;
        }
        injected += 1;
        let before = c.node(1).engine().stats().rejected_messages;
        c.node(1).engine().step(m);
        let after = c.node(1).engine().stats().rejected_messages;
        assert_eq!(after, before + 1, "refused and counted");
        c.collect(1);
        if round % 20 == 0 {
            let _ = c.propose(1 + round % 3, &format!("c{round}"));
            for id in [1, 2, 3] {
                c.tick(id);
                c.sync(id);
            }
            c.deliver(|_| true);
        }
    }
    assert!(injected > 2000, "{injected}");
    for t in 0..2000 {
        for id in [1, 2, 3] {
            c.tick(id);
        }
        c.stabilize();
        let proposer = [1, 2, 3].into_iter().find(|&id| {
            let role = c.node(id).engine().status().role;
            matches!(role, Role::Leader | Role::Proposer)
        });
        if let Some(id) = proposer
            && t % 50 == 0
        {
            let _ = c.propose(id, "after");
        }
        let everywhere = [1, 2, 3].into_iter().all(|id| {
            let applied: &[(Slot, Value)] = &c.nodes[&id].decided;
            applied.iter().any(|(_, v)| *v == cmd("after"))
        });
        if everywhere {
            c.oracle.assert_safe();
            return;
        }
    }
    let states = [1, 2, 3].map(|id| c.node(id).engine().status());
    panic!("no progress after the garbage stopped: {states:?}");
}

/// Any message at all (lies from real peers included) and any snapshot, among
/// ticks and durable writes: the engine must not panic.
fn never_panics<E: Engine>(body: fn(&mut SplitMix64) -> E::Body) {
    let mut rng = SplitMix64::new(4242, 1);
    let mut c: Cluster<E> = Cluster::new(3, 9, |_| {});
    for round in 0..20_000u64 {
        let from = if rng.next_u64().is_multiple_of(4) {
            number(&mut rng)
        } else {
            1 + rng.next_u64() % 3
        };
        let e = c.node(1).engine();
        if round % 97 == 0 {
            let snapshot = node::paxos::Snapshot {
                last_slot: number(&mut rng),
                data: Vec::new(),
            };
            e.install_snapshot(from, snapshot);
        } else {
            let chosen_through = number(&mut rng);
            let body = body(&mut rng);
            e.step(Envelope {
                from,
                to: 1,
                chosen_through,
                body,
            });
        }
        if round % 10 == 0 {
            let _ = e.propose(vec![1]);
            let _ = e.read_index();
            e.tick();
            c.sync(1);
        }
        c.collect(1);
        c.net.clear();
    }
}

#[test]
fn multi_paxos_never_panics_on_any_message() {
    never_panics::<MultiPaxos>(multi_body);
}

#[test]
fn basic_paxos_never_panics_on_any_message() {
    never_panics::<BasicPaxos>(basic_body);
}

#[test]
fn multi_paxos_refuses_malformed_peer_messages_and_keeps_going() {
    survive::<MultiPaxos>(multi_body, multi_absurd);
}

#[test]
fn basic_paxos_refuses_malformed_peer_messages_and_keeps_going() {
    survive::<BasicPaxos>(basic_body, basic_absurd);
}
