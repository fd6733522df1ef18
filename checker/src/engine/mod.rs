//! The search and what it runs on.
//!
//! - [`search`]: the Wing-Gong-Lowe search over one partition, on integer states.
//! - [`Engine`]: a model as the search sees it: `u32` states, operations as [`SOp`]s.
//! - [`generic`]: any [`crate::model::Model`] as an engine (its states interned).
//! - [`prepare`], [`values`], [`trie`]: the fast engines of the register and kv models,
//!   with the cuts that unique written values allow.
//!
//! Real-time order is the order of events in the history: an operation's `call` and
//! `ret` here are the positions of its invoke and completion, never its times.

pub(crate) mod generic;
pub(crate) mod prepare;
pub(crate) mod search;
pub(crate) mod trie;
pub(crate) mod values;

/// The `ret` of an operation that may take effect at any time after its call (it never
/// returned). Event positions are below [`crate::parse::MAX_EVENTS`], so no completion
/// is ever placed here.
pub const NEVER: u64 = u64::MAX;

/// What an operation does, in interned values (the fast engines), or which operation it
/// is ([`F::Op`], the generic engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum F {
    /// A read that returned the value (or, in trie mode, the trie node).
    Read(u32),
    Write(u32),
    /// Compare-and-set `[from, to]`.
    Cas(u32, u32),
    Append(u32),
    /// The generic engine's operation at this index of its partition.
    Op(u32),
}

impl F {
    /// True for an operation that leaves every state it succeeds in unchanged.
    pub fn is_observer(self) -> bool {
        match self {
            F::Read(_) => true,
            F::Cas(a, b) => a == b,
            F::Write(_) | F::Append(_) | F::Op(_) => false,
        }
    }
}

/// One operation of one partition, as the search sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SOp {
    /// Id in `History::ops`.
    pub id: usize,
    /// Position of the invoke event.
    pub call: u64,
    /// Position of the completion, or [`NEVER`].
    pub ret: u64,
    pub f: F,
    /// May be left out of the linearization (an indeterminate operation).
    pub optional: bool,
    /// Leaves every state it succeeds in unchanged (linearized greedily).
    pub observer: bool,
}

/// The sequential specification of one partition, on interned states.
pub trait Engine {
    /// The state before the history.
    fn init(&self) -> u32;
    /// The state after `op`, or `None` if `op` cannot take effect (or return what it
    /// returned) in `state`.
    fn step(&mut self, state: u32, op: &SOp) -> Option<u32>;
    /// Bytes held by the engine's own tables.
    fn bytes(&self) -> usize;
    /// `op` was linearized: it no longer waits (see [`Engine::dead`]).
    fn enter(&mut self, _op: &SOp) {}
    /// `op` was taken back out of the linearization.
    fn leave(&mut self, _op: &SOp) {}
    /// True if moving from `from` to `to` leaves some operation that must still be
    /// linearized with no way to ever succeed: the branch cannot lead to a linearization.
    fn dead(&self, _from: u32, _to: u32) -> bool {
        false
    }
}
