//! The brute-force oracle the property tests hold the checker to: every order of every
//! subset of the operations that keeps the real-time order and all the ok ones, tried
//! one by one. Exponential, so only for tiny histories; independent of the checker's
//! search and models (each test states its own sequential specification).

// Each test file uses what it needs of this module.
#![allow(dead_code)]

use checker::history::{History, Key, Operation, Outcome};
use std::collections::BTreeMap;

/// True if some linearization exists: `step(state, op)` is the specification, applied
/// per key from `init`. `fail` operations did not happen; `info` ones may be left out.
pub fn linearizable<S: Clone>(
    h: &History,
    init: &S,
    step: &dyn Fn(&S, &Operation) -> Option<S>,
) -> bool {
    linearizable_any(h, init, &|s, op| step(s, op).into_iter().collect())
}

/// [`linearizable`] for a specification that may reach several states (an operation
/// whose result was never seen may have done any of several things).
pub fn linearizable_any<S: Clone>(
    h: &History,
    init: &S,
    step: &dyn Fn(&S, &Operation) -> Vec<S>,
) -> bool {
    let ops: Vec<&Operation> = h
        .ops
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .collect();
    let mut placed = vec![false; ops.len()];
    let mut states: BTreeMap<Option<Key>, S> = BTreeMap::new();
    dfs(&ops, &mut placed, &mut states, init, step)
}

/// `a` certainly ended before `b` began: its completion line comes before b's invoke.
fn before(a: &Operation, b: &Operation) -> bool {
    a.outcome == Outcome::Ok && a.complete_event.is_some_and(|c| c < b.invoke_event)
}

fn dfs<S: Clone>(
    ops: &[&Operation],
    placed: &mut Vec<bool>,
    states: &mut BTreeMap<Option<Key>, S>,
    init: &S,
    step: &dyn Fn(&S, &Operation) -> Vec<S>,
) -> bool {
    if (0..ops.len()).all(|i| placed[i] || ops[i].outcome == Outcome::Info) {
        return true;
    }
    for b in 0..ops.len() {
        if placed[b] {
            continue;
        }
        let blocked = (0..ops.len()).any(|a| !placed[a] && a != b && before(ops[a], ops[b]));
        if blocked {
            continue;
        }
        let key = ops[b].key.clone();
        let cur = states.get(&key).cloned().unwrap_or_else(|| init.clone());
        for next in step(&cur, ops[b]) {
            placed[b] = true;
            let old = states.insert(key.clone(), next);
            if dfs(ops, placed, states, init, step) {
                return true;
            }
            match old {
                Some(o) => states.insert(key.clone(), o),
                None => states.remove(&key),
            };
            placed[b] = false;
        }
    }
    false
}
