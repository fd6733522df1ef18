//! Turns the longest linearizable prefix the search found into a [`Counterexample`].

use crate::history::{Operation, Outcome};
use crate::model::{SOp, apply};
use crate::prepare::{PrepareOptions, append_mode};
use crate::verdict::Counterexample;
use std::collections::BTreeMap;

/// Builds the explanation of one failing key. `prefix` indexes `sops`.
pub fn explain(
    ops: &BTreeMap<usize, &Operation>,
    sops: &[SOp],
    prefix: &[usize],
    prep: &PrepareOptions,
) -> Counterexample {
    let all: Vec<&Operation> = ops.values().copied().collect();
    let append = append_mode(&all);
    let mut state = if append && prep.initial.is_null() {
        serde_json::Value::String(String::new())
    } else {
        prep.initial.clone()
    };
    let mut ids = Vec::with_capacity(prefix.len());
    let mut states = Vec::with_capacity(prefix.len());
    for &p in prefix {
        let id = sops[p].id;
        if let Some(op) = ops.get(&id)
            && let Some(next) = apply(&state, op, append)
        {
            state = next;
        }
        ids.push(id);
        states.push(state.clone());
    }
    // The stuck point: the earliest return among the operations left.
    let mut done = vec![false; sops.len()];
    for &p in prefix {
        done[p] = true;
    }
    let left: Vec<&SOp> = sops
        .iter()
        .zip(&done)
        .filter(|(_, d)| !**d)
        .map(|(o, _)| o)
        .collect();
    let stuck_at = left.iter().map(|o| o.ret).min().unwrap_or(u64::MAX);
    let stuck: Vec<usize> = left
        .iter()
        .filter(|o| o.call <= stuck_at)
        .map(|o| o.id)
        .collect();
    let window: Vec<usize> = all
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .filter(|o| o.call <= stuck_at && o.ret.unwrap_or(u64::MAX) >= stuck_at)
        .map(|o| o.id)
        .collect();
    Counterexample {
        prefix: ids,
        states,
        state_before: state,
        stuck,
        window,
    }
}
