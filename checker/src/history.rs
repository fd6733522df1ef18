//! The history model shared by the parsers, the search and the report.
//!
//! A history is a list of [`Event`]s in real-time order (as read from JSONL or EDN),
//! and the [`Operation`]s built by pairing each invoke with its completion.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `type` of an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventType {
    Invoke,
    Ok,
    Fail,
    Info,
}

/// The client functions the models understand (`get`/`put` are read as aliases).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Function {
    Read,
    Write,
    Cas,
    Append,
}

/// Who did it: a client process (integer), or anything else (`"nemesis"`), which the
/// checker ignores except to show fault intervals.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Process {
    Client(u64),
    Other(String),
}

/// One line of a history.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the history (the `index` field, or the event's ordinal when absent).
    pub index: u64,
    /// Nanoseconds since the run started, when the history has times.
    pub time: Option<u64>,
    pub process: Process,
    #[serde(rename = "type")]
    pub kind: EventType,
    /// The function as written (`"read"`, `"partition-start"`, ...).
    pub f: String,
    /// The key, as a string (non-string EDN/JSON keys are written in JSON form).
    pub key: Option<String>,
    pub value: Value,
    pub error: Option<String>,
    /// 1-based line in the source file, for error messages and reports.
    pub line: usize,
}

/// How an operation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Took effect; `output` holds what it returned.
    Ok,
    /// Certainly did not take effect.
    Fail,
    /// Indeterminate: may take effect at any time after `call`, or never. Also used for
    /// an invoke the history never completes.
    Info,
}

/// An invoke paired with its completion.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Position in `History::ops` (ops are sorted by `call`).
    pub id: usize,
    pub process: u64,
    pub f: Function,
    pub key: Option<String>,
    /// The invoke's value: write value, `[from, to]` for cas, appended string, null for read.
    pub input: Value,
    /// The completion's value for `Ok` (for a read: the value seen); null otherwise.
    pub output: Value,
    pub outcome: Outcome,
    /// Invocation time: the event's `time` when the history has times, else its position.
    pub call: u64,
    /// Completion time in the same unit; `None` when it never returned (`Info`).
    pub ret: Option<u64>,
    /// Event indexes of the invoke and of the completion: positions in
    /// `History::events` (not the events' `index` fields, which may have gaps).
    pub invoke_event: usize,
    pub complete_event: Option<usize>,
}

/// A parsed, validated history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    pub events: Vec<Event>,
    pub ops: Vec<Operation>,
}
