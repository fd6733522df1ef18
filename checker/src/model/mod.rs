//! Sequential specifications: what one object, used by one client at a time, may answer.
//!
//! A [`Model`] is a state machine over [`Operation`]s: an initial state, and a `step`
//! that gives the state after an operation or refuses it. The checker searches for an
//! order of the history's operations, consistent with real time, that the model
//! accepts (Wing & Gong's search with Lowe's memoization, as Porcupine does it). A model
//! written against this trait gets everything the built-in ones get: the search, the
//! split into independent partitions checked in parallel, budgets that end in
//! "unknown", explanations of violations, and reports.
//!
//! ```
//! use checker::check::{check_model, CheckOptions};
//! use checker::history::{Function, Operation, Outcome};
//! use checker::model::Model;
//! use serde_json::{json, Value};
//!
//! /// A counter: `incr` adds its value, `read` returns the total.
//! struct Counter;
//!
//! impl Model for Counter {
//!     type State = i64;
//!     fn name(&self) -> &str { "counter" }
//!     fn validate(&self, op: &Operation) -> Result<(), String> {
//!         match op.f.name() {
//!             "incr" if op.input.is_i64() => Ok(()),
//!             "read" => Ok(()),
//!             f => Err(format!("the counter takes incr N and read, not {f}")),
//!         }
//!     }
//!     fn init(&self) -> i64 { 0 }
//!     fn step(&self, total: &i64, op: &Operation) -> Option<i64> {
//!         match op.f.name() {
//!             "incr" => total.checked_add(op.input.as_i64()?),
//!             // A read that never returned could have seen anything.
//!             _ if op.outcome == Outcome::Info => Some(*total),
//!             _ => (op.output.as_i64() == Some(*total)).then_some(*total),
//!         }
//!     }
//!     fn is_read_only(&self, op: &Operation) -> bool { op.f == Function::Read }
//!     fn describe(&self, total: &i64) -> Value { json!(total) }
//! }
//!
//! let text = r#"{"process":0,"type":"invoke","f":"incr","value":2}
//! {"process":0,"type":"ok","f":"incr","value":2}
//! {"process":1,"type":"invoke","f":"read","value":null}
//! {"process":1,"type":"ok","f":"read","value":2}
//! "#;
//! let history = checker::parse::parse_str(text, "counter.jsonl").unwrap();
//! let verdict = check_model(&history, &Counter, &CheckOptions::default()).unwrap();
//! assert_eq!(verdict.valid, checker::verdict::Validity::Linearizable);
//! ```
//!
//! The built-in models: [`Register`], [`CasRegister`] and [`Kv`] (checked by a faster
//! engine proven to agree with these definitions), and Knossos's [`Mutex`], [`Set`],
//! [`FifoQueue`] and [`UnorderedQueue`].

mod knossos;
pub(crate) mod register;

pub use knossos::{FifoQueue, Mutex, Set, UnorderedQueue};
pub use register::{CasRegister, Kv, Register, ValueState};

use crate::history::{Key, Operation};
use serde_json::Value;
use std::hash::Hash;

/// A sequential specification; see the module documentation.
///
/// The search only ever calls `step` on states `init` or `step` returned, with
/// operations `validate` accepted, from several threads at once (one partition each).
pub trait Model: Sync {
    /// A state of the object. The search remembers the (operations linearized, state)
    /// pairs it has explored by equality and hash, so two states that are equal must
    /// accept and refuse the same operations from then on.
    type State: Clone + Eq + Hash + Send;

    /// The model's name, as verdicts and reports show it.
    fn name(&self) -> &str;

    /// Refuses an operation this model cannot take (an `f` it does not know, a value of
    /// the wrong shape); the reason is reported with the operation's line, and the
    /// check does not run. Every operation is accepted by default.
    fn validate(&self, _op: &Operation) -> Result<(), String> {
        Ok(())
    }

    /// The independent object an operation acts on: operations on different partitions
    /// never constrain each other (linearizability is local), so each partition is
    /// searched on its own, in parallel. By default, the operation's key.
    fn partition(&self, op: &Operation) -> Option<Key> {
        op.key.clone()
    }

    /// The state before the history.
    fn init(&self) -> Self::State;

    /// The state after `op` takes effect in `state`, or `None` if it cannot (or could
    /// not have returned `op.output`). An `info` operation (`op.outcome` is
    /// [`Outcome::Info`](crate::history::Outcome::Info)) never said what it returned:
    /// `op.output` is null, and `step` must accept any result it could have had. A
    /// `fail` operation did not happen and is never stepped.
    fn step(&self, state: &Self::State, op: &Operation) -> Option<Self::State>;

    /// True if `op` leaves every state in which it succeeds unchanged (a read). The
    /// search then places it as soon as it can, without trying other orders, and drops
    /// it when it never returned. Claiming this for an operation that can change the
    /// state gives wrong verdicts. False by default.
    fn is_read_only(&self, _op: &Operation) -> bool {
        false
    }

    /// A state as JSON, for explanations and reports.
    fn describe(&self, state: &Self::State) -> Value;

    /// About how many bytes a state holds, counted against the memory budget. By
    /// default the size of the state itself; override it for states that own heap data.
    fn state_bytes(&self, _state: &Self::State) -> usize {
        std::mem::size_of::<Self::State>()
    }
}

/// The built-in models, by name (as `--model` takes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ModelKind {
    /// read / write on one register per key.
    Register,
    /// read / write / cas on one register per key.
    CasRegister,
    /// per key: read, write, cas, append (get/put aliases).
    Kv,
    /// acquire / release of one lock per key.
    Mutex,
    /// add / read of one set per key.
    Set,
    /// enqueue / dequeue, first in first out, per key.
    FifoQueue,
    /// enqueue / dequeue in any order, per key.
    UnorderedQueue,
}

impl ModelKind {
    pub const ALL: [ModelKind; 7] = [
        ModelKind::Register,
        ModelKind::CasRegister,
        ModelKind::Kv,
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::UnorderedQueue,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::Mutex => "mutex",
            ModelKind::Set => "set",
            ModelKind::FifoQueue => "fifo-queue",
            ModelKind::UnorderedQueue => "unordered-queue",
        }
    }

    pub fn from_name(name: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The names, for messages ("register, cas-register, ...").
    pub fn names() -> String {
        ModelKind::ALL
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The refusal every built-in model gives for a function it does not take.
pub(crate) fn refuse(model: &str, op: &Operation, takes: &str) -> Result<(), String> {
    Err(format!(
        "the {model} model takes {takes}, not {}",
        op.f.name()
    ))
}
