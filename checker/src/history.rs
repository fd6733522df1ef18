//! The history model shared by the parsers, the models, the search and the report.
//!
//! A history is a list of [`Event`]s in line order, which is the real-time order, and
//! the [`Operation`]s built by pairing each invoke with its completion. The values and
//! keys of client events live in their operation only, so a history of millions of
//! events stays small: an event is its time, line and a reference to its operation.
//! This module only describes a history: `build::Builder` makes one and `write`
//! writes one out, each on top of it.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl EventType {
    pub fn name(self) -> &'static str {
        match self {
            EventType::Invoke => "invoke",
            EventType::Ok => "ok",
            EventType::Fail => "fail",
            EventType::Info => "info",
        }
    }
}

/// What an operation does: Knossos's vocabulary, and any other name for the models
/// library users write.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Function {
    /// Registers and kv keys (`get` is an alias); also the read of a set.
    Read,
    /// Registers and kv keys (`put` is an alias).
    Write,
    /// Compare-and-set, value `[from, to]`.
    Cas,
    /// Append a string (kv keys).
    Append,
    /// Mutex.
    Acquire,
    Release,
    /// Set.
    Add,
    /// Queues.
    Enqueue,
    Dequeue,
    /// Any other name (`"incr"`): the model decides what it means.
    Other(Arc<str>),
}

impl Function {
    /// The function an `f` names, with the aliases `get` = read and `put` = write.
    pub fn from_name(name: &str) -> Function {
        match name {
            "read" | "get" => Function::Read,
            "write" | "put" => Function::Write,
            "cas" => Function::Cas,
            "append" => Function::Append,
            "acquire" => Function::Acquire,
            "release" => Function::Release,
            "add" => Function::Add,
            "enqueue" => Function::Enqueue,
            "dequeue" => Function::Dequeue,
            other => Function::Other(other.into()),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Function::Read => "read",
            Function::Write => "write",
            Function::Cas => "cas",
            Function::Append => "append",
            Function::Acquire => "acquire",
            Function::Release => "release",
            Function::Add => "add",
            Function::Enqueue => "enqueue",
            Function::Dequeue => "dequeue",
            Function::Other(name) => name,
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Function {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Function {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = std::borrow::Cow::<str>::deserialize(d)?;
        Ok(Function::from_name(&name))
    }
}

/// A key as the history writes it. A string key is kept as text; any other value (a
/// number, a vector) is kept in canonical JSON form, so the key `1` and the key `"1"`
/// are two keys. Keys are shared (`Arc`), so a million operations on a thousand keys
/// hold a thousand strings.
#[derive(Clone, Eq, PartialOrd, Ord)]
pub enum Key {
    String(Arc<str>),
    /// Canonical JSON text of a key that is not a string.
    Json(Arc<str>),
}

impl Key {
    /// The key a value names; `None` for null (no key).
    pub fn from_value(v: &Value) -> Option<Key> {
        match v {
            Value::Null => None,
            Value::String(s) => Some(Key::String(s.as_str().into())),
            other => Some(Key::Json(other.to_string().into())),
        }
    }

    /// The key as a JSON value (a string, or the value it was written as).
    pub fn to_value(&self) -> Value {
        match self {
            Key::String(s) => Value::String(s.to_string()),
            Key::Json(text) => serde_json::from_str(text).unwrap_or(Value::Null),
        }
    }

    /// The text of a string key, or the JSON text of any other key.
    pub fn as_str(&self) -> &str {
        match self {
            Key::String(s) | Key::Json(s) => s,
        }
    }
}

/// Content equality, with the shortcut that keys shared from one table are equal.
impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        match (self, other) {
            (Key::String(a), Key::String(b)) | (Key::Json(a), Key::Json(b)) => {
                Arc::ptr_eq(a, b) || a == b
            }
            _ => false,
        }
    }
}

/// Agrees with the equality: the variant and the text.
impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        match self {
            Key::String(s) => (0u8, &**s).hash(h),
            Key::Json(s) => (1u8, &**s).hash(h),
        }
    }
}

impl From<&str> for Key {
    fn from(s: &str) -> Key {
        Key::String(s.into())
    }
}

/// The text of a string key, the JSON of any other (`k3`, `1`, `[1,2]`).
impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// As in messages: a string key quoted, any other key as JSON (`"1"` vs `1`).
impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::String(s) => write!(f, "{:?}", &**s),
            Key::Json(text) => f.write_str(text),
        }
    }
}

impl Serialize for Key {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Key::String(text) => s.serialize_str(text),
            Key::Json(_) => self.to_value().serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Key::from_value(&v).ok_or_else(|| serde::de::Error::custom("a key cannot be null"))
    }
}

/// Who did an event, as the history names it: a client process (a non-negative
/// integer), or anything else (`"nemesis"`), which the checker does not pair.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Process {
    Client(u64),
    Other(String),
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// The `index` field, or the event's position when absent.
    pub index: u64,
    /// Nanoseconds since the run started, when the history has times. Only drawn:
    /// the order of events is their line order.
    pub time: Option<u64>,
    /// 1-based line in the source file (the first line of a multi-line EDN form).
    pub line: usize,
    pub kind: EventType,
    pub actor: Actor,
}

/// What an event is about.
#[derive(Clone, Debug, PartialEq)]
pub enum Actor {
    /// A client invoking or completing `History::ops[op]` (which holds its function,
    /// key and values).
    Client { process: u64, op: usize },
    /// Any other process (a nemesis): kept for reports, never checked.
    Other(Box<OtherEvent>),
}

/// The fields of an event the checker does not pair.
#[derive(Clone, Debug, PartialEq)]
pub struct OtherEvent {
    pub process: String,
    pub f: String,
    pub value: Value,
    /// The event's `error`, when it has one.
    pub error: Option<Arc<str>>,
}

impl Event {
    /// The client operation this event invokes or completes.
    pub fn op(&self) -> Option<usize> {
        match self.actor {
            Actor::Client { op, .. } => Some(op),
            Actor::Other(_) => None,
        }
    }

    /// The details of a non-client event.
    pub fn other(&self) -> Option<&OtherEvent> {
        match &self.actor {
            Actor::Other(o) => Some(o),
            Actor::Client { .. } => None,
        }
    }
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect; `output` holds what it returned.
    Ok,
    /// Certainly did not take effect.
    Fail,
    /// Indeterminate: may take effect at any time after its invocation, or never. Also
    /// used for an invoke the history never completes.
    Info,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        }
    }
}

/// An invoke paired with its completion.
#[derive(Clone, Debug, PartialEq)]
pub struct Operation {
    /// Position in `History::ops` (ops are in the order of their invokes).
    pub id: usize,
    pub process: u64,
    pub f: Function,
    pub key: Option<Key>,
    /// The invoke's value: write value, `[from, to]` for cas, appended string, null for
    /// a read.
    pub input: Value,
    /// The completion's value for `Ok` (for a read: the value seen); null otherwise.
    pub output: Value,
    pub outcome: Outcome,
    /// Invocation time, for plots and latencies: the event's `time` when the history
    /// has times, else its position. Times may disagree with the real-time order (they
    /// come from many clocks); [`Operation::precedes`] is the order.
    pub call: u64,
    /// Completion time in the same unit; `None` when it never returned (`Info`).
    pub ret: Option<u64>,
    /// The completion's `error` (why it failed, or why its outcome is unknown), when
    /// it gave one. Only kept and written back; no model reads it.
    pub error: Option<Arc<str>>,
    /// Positions in `History::events` of the invoke and of the completion (an `info`
    /// completion included). Event positions are the real-time order.
    pub invoke_event: usize,
    pub complete_event: Option<usize>,
}

impl Operation {
    /// True if this operation certainly ended before `other` began: its `ok` or `fail`
    /// completion comes before `other`'s invoke in the history.
    pub fn precedes(&self, other: &Operation) -> bool {
        self.outcome != Outcome::Info && self.complete_event.is_some_and(|c| c < other.invoke_event)
    }
}

/// Something odd but harmless in a history, reported once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A parsed, validated history.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    pub events: Vec<Event>,
    pub ops: Vec<Operation>,
    pub warnings: Vec<Warning>,
}

impl History {
    /// True if any event carries a time.
    pub fn timed(&self) -> bool {
        self.events.iter().any(|e| e.time.is_some())
    }

    /// The line of an event, 0 if there is no such event.
    pub fn line(&self, event: usize) -> usize {
        self.events.get(event).map_or(0, |e| e.line)
    }
}
