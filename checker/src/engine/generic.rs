//! Any [`Model`] as an [`Engine`]: its states are interned into a table as the search
//! meets them, so the search hashes and compares `u32`s, and each (state, operation)
//! step is computed once.

use super::{Engine, F, NEVER, SOp};
use crate::history::{Operation, Outcome};
use crate::model::Model;
use rustc_hash::FxHashMap;

pub struct Generic<'a, M: Model> {
    model: &'a M,
    /// The partition's operations, indexed by `F::Op`.
    ops: Vec<&'a Operation>,
    states: Vec<M::State>,
    ids: FxHashMap<M::State, u32>,
    steps: FxHashMap<(u32, u32), Option<u32>>,
    bytes: usize,
}

/// Drops what cannot matter (`fail` operations, read-only ones that never returned)
/// and turns the rest into the search's operations.
pub fn prepare<'a, M: Model>(model: &'a M, ops: &[&'a Operation]) -> (Generic<'a, M>, Vec<SOp>) {
    let kept: Vec<&Operation> = ops
        .iter()
        .copied()
        .filter(|o| match o.outcome {
            Outcome::Fail => false,
            Outcome::Info => !model.is_read_only(o),
            Outcome::Ok => true,
        })
        .collect();
    let sops = kept
        .iter()
        .enumerate()
        .map(|(i, o)| SOp {
            id: o.id,
            call: o.invoke_event as u64,
            ret: match (o.outcome, o.complete_event) {
                (Outcome::Ok, Some(c)) => c as u64,
                _ => NEVER,
            },
            f: F::Op(i as u32),
            optional: o.outcome != Outcome::Ok,
            observer: model.is_read_only(o),
        })
        .collect();
    let mut engine = Generic {
        model,
        ops: kept,
        states: Vec::new(),
        ids: FxHashMap::default(),
        steps: FxHashMap::default(),
        bytes: 0,
    };
    engine.intern(model.init());
    (engine, sops)
}

impl<M: Model> Generic<'_, M> {
    fn intern(&mut self, state: M::State) -> u32 {
        if let Some(&id) = self.ids.get(&state) {
            return id;
        }
        let id = u32::try_from(self.states.len()).unwrap_or(u32::MAX);
        // Held twice (table and index), plus the maps' own entries.
        self.bytes += 2 * self.model.state_bytes(&state) + 32;
        self.ids.insert(state.clone(), id);
        self.states.push(state);
        id
    }
}

impl<M: Model> Engine for Generic<'_, M> {
    fn init(&self) -> u32 {
        0
    }

    fn step(&mut self, state: u32, op: &SOp) -> Option<u32> {
        let F::Op(i) = op.f else { return None };
        if let Some(&next) = self.steps.get(&(state, i)) {
            return next;
        }
        let next = self
            .model
            .step(&self.states[state as usize], self.ops[i as usize])
            .map(|s| self.intern(s));
        self.steps.insert((state, i), next);
        self.bytes += 24;
        next
    }

    fn bytes(&self) -> usize {
        self.bytes
    }
}
