//! Knossos's other models: a mutex, a set and two queues, one object per key.
//!
//! Elements are compared as JSON values (in canonical text form, so `1` and `"1"`
//! differ). As in Knossos, a dequeue returns the element it took, and a dequeue from an
//! empty queue cannot succeed (a client that found the queue empty records `fail`).
//! Operations that never returned (`info`) may have taken effect: an acquire may hold
//! the lock, an add may have added, an enqueue may have enqueued, a FIFO dequeue may
//! have taken the head. An unordered dequeue that never returned is left out: whatever
//! it took, a queue that still holds that element accepts every later operation the
//! queue without it accepts (no operation here observes absence), so it can never be
//! what makes a history linearizable.

use super::{Model, refuse};
use crate::history::{Function, Operation, Outcome};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

/// A value in canonical JSON text (object keys sorted), as elements are compared.
type Item = Arc<str>;

fn item(v: &Value) -> Item {
    v.to_string().into()
}

fn value_of(item: &str) -> Value {
    serde_json::from_str(item).unwrap_or(Value::Null)
}

fn items_bytes<'a>(items: impl Iterator<Item = &'a Item>) -> usize {
    items.map(|i| i.len() + 32).sum()
}

/// One lock: `acquire` when free, `release` when held.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutex;

impl Model for Mutex {
    /// Held or not.
    type State = bool;

    fn name(&self) -> &str {
        "mutex"
    }

    fn validate(&self, op: &Operation) -> Result<(), String> {
        match op.f {
            Function::Acquire | Function::Release => Ok(()),
            _ => refuse("mutex", op, "acquire and release"),
        }
    }

    fn init(&self) -> bool {
        false
    }

    fn step(&self, held: &bool, op: &Operation) -> Option<bool> {
        match op.f {
            Function::Acquire => (!held).then_some(true),
            Function::Release => held.then_some(false),
            _ => None,
        }
    }

    fn describe(&self, held: &bool) -> Value {
        Value::String(if *held { "held" } else { "free" }.into())
    }
}

/// A set: `add` a value, `read` the whole set (a list or set of values; order and
/// repeats do not matter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Set;

impl Model for Set {
    type State = BTreeSet<Item>;

    fn name(&self) -> &str {
        "set"
    }

    fn validate(&self, op: &Operation) -> Result<(), String> {
        match op.f {
            Function::Add => Ok(()),
            Function::Read if op.outcome != Outcome::Ok || op.output.is_array() => Ok(()),
            Function::Read => Err(format!(
                "a read of a set returns a list or set of its elements, not {}",
                op.output
            )),
            _ => refuse("set", op, "add and read"),
        }
    }

    fn init(&self) -> Self::State {
        BTreeSet::new()
    }

    fn step(&self, set: &Self::State, op: &Operation) -> Option<Self::State> {
        match op.f {
            Function::Add => {
                let mut next = set.clone();
                next.insert(item(&op.input));
                Some(next)
            }
            Function::Read if op.outcome == Outcome::Info => Some(set.clone()),
            Function::Read => {
                let seen: BTreeSet<Item> = op.output.as_array()?.iter().map(item).collect();
                (seen == *set).then(|| set.clone())
            }
            _ => None,
        }
    }

    fn is_read_only(&self, op: &Operation) -> bool {
        op.f == Function::Read
    }

    fn describe(&self, set: &Self::State) -> Value {
        Value::Array(set.iter().map(|i| value_of(i)).collect())
    }

    fn state_bytes(&self, set: &Self::State) -> usize {
        48 + items_bytes(set.iter())
    }
}

/// A first-in first-out queue: `dequeue` returns the oldest element.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FifoQueue;

impl Model for FifoQueue {
    type State = VecDeque<Item>;

    fn name(&self) -> &str {
        "fifo-queue"
    }

    fn validate(&self, op: &Operation) -> Result<(), String> {
        match op.f {
            Function::Enqueue | Function::Dequeue => Ok(()),
            _ => refuse("fifo-queue", op, "enqueue and dequeue"),
        }
    }

    fn init(&self) -> Self::State {
        VecDeque::new()
    }

    fn step(&self, queue: &Self::State, op: &Operation) -> Option<Self::State> {
        match op.f {
            Function::Enqueue => {
                let mut next = queue.clone();
                next.push_back(item(&op.input));
                Some(next)
            }
            Function::Dequeue => {
                let head = queue.front()?;
                if op.outcome == Outcome::Ok && **head != *op.output.to_string() {
                    return None;
                }
                let mut next = queue.clone();
                next.pop_front();
                Some(next)
            }
            _ => None,
        }
    }

    fn describe(&self, queue: &Self::State) -> Value {
        Value::Array(queue.iter().map(|i| value_of(i)).collect())
    }

    fn state_bytes(&self, queue: &Self::State) -> usize {
        48 + items_bytes(queue.iter())
    }
}

/// A queue that hands out its elements in any order: `dequeue` returns any element it
/// holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UnorderedQueue;

impl Model for UnorderedQueue {
    /// The elements held, with how many times each.
    type State = BTreeMap<Item, u32>;

    fn name(&self) -> &str {
        "unordered-queue"
    }

    fn validate(&self, op: &Operation) -> Result<(), String> {
        match op.f {
            Function::Enqueue | Function::Dequeue => Ok(()),
            _ => refuse("unordered-queue", op, "enqueue and dequeue"),
        }
    }

    fn init(&self) -> Self::State {
        BTreeMap::new()
    }

    fn step(&self, queue: &Self::State, op: &Operation) -> Option<Self::State> {
        match op.f {
            Function::Enqueue => {
                let mut next = queue.clone();
                *next.entry(item(&op.input)).or_default() += 1;
                Some(next)
            }
            // Left out (see the module doc): it changes nothing.
            Function::Dequeue if op.outcome == Outcome::Info => Some(queue.clone()),
            Function::Dequeue => {
                let taken = item(&op.output);
                let mut next = queue.clone();
                let n = next.get_mut(&taken)?;
                *n -= 1;
                if *n == 0 {
                    next.remove(&taken);
                }
                Some(next)
            }
            _ => None,
        }
    }

    fn is_read_only(&self, op: &Operation) -> bool {
        op.f == Function::Dequeue && op.outcome == Outcome::Info
    }

    fn describe(&self, queue: &Self::State) -> Value {
        Value::Array(
            queue
                .iter()
                .flat_map(|(i, n)| std::iter::repeat_n(value_of(i), *n as usize))
                .collect(),
        )
    }

    fn state_bytes(&self, queue: &Self::State) -> usize {
        48 + items_bytes(queue.keys())
    }
}
