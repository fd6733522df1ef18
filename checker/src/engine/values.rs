//! Registers and kv keys in small integer form: a key's values are interned into a
//! per-key table, so the search compares and hashes `u32` states only.
//!
//! - register, cas-register and kv keys without appends: the state is the id of the
//!   value held (`null` = absent), with the overwritten-value rule ([`Waits`]);
//! - kv keys with appends: the state is the id of a string (or null), a put replaces
//!   it, an append concatenates; new strings are interned as the search builds them.
//!   (Keys whose reads split unambiguously use [`super::trie`] instead.)

use super::{Engine, F, SOp};
use crate::model::ValueState;
use crate::model::register::state_bytes;
use rustc_hash::FxHashMap;
use serde_json::Value;

/// The id of `null` (absent) in every value table.
pub const NULL: u32 = 0;

/// Interned values of one key, and the append transitions computed so far.
#[derive(Clone, Debug, Default)]
pub struct Values {
    table: Vec<Value>,
    index: FxHashMap<ValueState, u32>,
    concat: FxHashMap<(u32, u32), Option<u32>>,
    /// Bytes held by the table and caches (counted against the memory budget).
    pub bytes: usize,
}

impl Values {
    pub fn new() -> Self {
        let mut v = Values::default();
        v.intern(&Value::Null);
        v
    }

    /// The id of `value`, adding it when new.
    pub fn intern(&mut self, value: &Value) -> u32 {
        let key = ValueState(value.clone());
        if let Some(&id) = self.index.get(&key) {
            return id;
        }
        let id = u32::try_from(self.table.len()).unwrap_or(u32::MAX);
        self.bytes += 2 * state_bytes(value) + 64;
        self.index.insert(key, id);
        self.table.push(value.clone());
        id
    }

    pub fn value(&self, id: u32) -> &Value {
        &self.table[id as usize]
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// `state ++ suffix` for the append model (absent reads as ""); `None` when either
    /// side is not a string (the append cannot take effect).
    pub fn append(&mut self, state: u32, suffix: u32) -> Option<u32> {
        if let Some(&r) = self.concat.get(&(state, suffix)) {
            return r;
        }
        let text = |v: &Value| match v {
            Value::Null => Some(String::new()),
            Value::String(s) => Some(s.clone()),
            _ => None,
        };
        let r = match (text(self.value(state)), text(self.value(suffix))) {
            (Some(mut a), Some(b)) => {
                a.push_str(&b);
                Some(self.intern(&Value::String(a)))
            }
            _ => None,
        };
        self.bytes += 32;
        self.concat.insert((state, suffix), r);
        r
    }
}

/// Registers, cas-registers, and kv keys with appends in general (string) form.
pub struct ValueModel {
    pub values: Values,
    pub init: u32,
    /// Counts for the overwritten-value rule, when enabled (register keys).
    pub waits: Option<Waits>,
}

/// The overwritten-value rule: once the state leaves value `v`, an operation that still
/// needs `v` (a read of `v`, a cas from `v`) can only succeed if some operation not yet
/// linearized can write `v` again. With unique written values that is never the case,
/// so a read tells exactly which write it saw and every branch that overwrites a value
/// before all of its readers are placed is cut at once. The rule holds for any history:
/// it only counts, it assumes nothing.
#[derive(Clone, Debug, Default)]
pub struct Waits {
    /// Per value: required operations not yet linearized that need the state to be it.
    observers: Vec<i32>,
    /// Per value: operations not yet linearized (required or not) that can produce it.
    producers: Vec<i32>,
}

impl Waits {
    pub fn new(values: usize, ops: &[SOp]) -> Self {
        let mut w = Waits {
            observers: vec![0; values],
            producers: vec![0; values],
        };
        for op in ops {
            w.count(op, 1);
        }
        w
    }

    fn count(&mut self, op: &SOp, d: i32) {
        match op.f {
            F::Read(v) if !op.optional => self.observers[v as usize] += d,
            F::Read(_) => {}
            F::Write(v) => self.producers[v as usize] += d,
            F::Cas(from, to) => {
                if !op.optional {
                    self.observers[from as usize] += d;
                }
                self.producers[to as usize] += d;
            }
            F::Append(_) | F::Op(_) => {}
        }
    }

    fn dead(&self, from: u32, to: u32) -> bool {
        from != to && self.observers[from as usize] > 0 && self.producers[from as usize] == 0
    }
}

impl Engine for ValueModel {
    fn init(&self) -> u32 {
        self.init
    }

    fn step(&mut self, state: u32, op: &SOp) -> Option<u32> {
        match op.f {
            F::Read(v) => (v == state).then_some(state),
            F::Write(v) => Some(v),
            F::Cas(from, to) => (from == state).then_some(to),
            F::Append(s) => self.values.append(state, s),
            F::Op(_) => None,
        }
    }

    fn bytes(&self) -> usize {
        self.values.bytes
    }

    fn enter(&mut self, op: &SOp) {
        if let Some(w) = &mut self.waits {
            w.count(op, -1);
        }
    }

    fn leave(&mut self, op: &SOp) {
        if let Some(w) = &mut self.waits {
            w.count(op, 1);
        }
    }

    fn dead(&self, from: u32, to: u32) -> bool {
        self.waits.as_ref().is_some_and(|w| w.dead(from, to))
    }
}
