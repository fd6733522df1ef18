//! Turns the longest linearizable prefix the search found into a [`Counterexample`],
//! replaying it with the model's own definition so the states shown are the model's.

use crate::engine::{NEVER, SOp};
use crate::history::{Operation, Outcome};
use crate::model::Model;
use crate::verdict::Counterexample;
use std::collections::BTreeMap;

/// Builds the explanation of one failing partition. `ops` are the partition's
/// operations by id; `prefix` indexes `sops`.
pub(crate) fn explain<M: Model>(
    model: &M,
    ops: &BTreeMap<usize, &Operation>,
    sops: &[SOp],
    prefix: &[usize],
) -> Counterexample {
    let mut state = model.init();
    let mut ids = Vec::with_capacity(prefix.len());
    let mut states = Vec::with_capacity(prefix.len());
    for &p in prefix {
        let id = sops[p].id;
        if let Some(op) = ops.get(&id)
            && let Some(next) = model.step(&state, op)
        {
            state = next;
        }
        ids.push(id);
        states.push(model.describe(&state));
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
    let stuck_at = left.iter().map(|o| o.ret).min().unwrap_or(NEVER);
    let stuck: Vec<usize> = left
        .iter()
        .filter(|o| o.call <= stuck_at)
        .map(|o| o.id)
        .collect();
    let window: Vec<usize> = ops
        .values()
        .filter(|o| o.outcome != Outcome::Fail)
        .filter(|o| {
            let ret = match (o.outcome, o.complete_event) {
                (Outcome::Ok, Some(c)) => c as u64,
                _ => NEVER,
            };
            (o.invoke_event as u64) <= stuck_at && ret >= stuck_at
        })
        .map(|o| o.id)
        .collect();
    Counterexample {
        prefix: ids,
        states,
        state_before: model.describe(&state),
        stuck,
        window,
    }
}
