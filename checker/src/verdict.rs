//! What a check decides, as data the CLI prints, `--json` emits and reports draw.

use crate::history::Key;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// true / false / "unknown" in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validity {
    Linearizable,
    NotLinearizable,
    /// A time or memory budget ran out, or the check stopped early. Never a pass.
    Unknown,
}

/// The verdict for one key (or for the whole register when the history has no keys).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyVerdict {
    pub key: Option<Key>,
    pub valid: Validity,
    /// Client operations on this key (fail ops included).
    pub ops: usize,
    /// For a failing key: why.
    pub counterexample: Option<Counterexample>,
    /// For an unknown key: which budget ran out, or that the check stopped early.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// An explanation of a violation, in terms of `History::ops` ids.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Counterexample {
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<usize>,
    /// The model state after each prefix op (same length as `prefix`).
    pub states: Vec<Value>,
    /// The model state at the end of the prefix.
    pub state_before: Value,
    /// Operations that must be linearized next (all invoked before the earliest pending
    /// return) but none of which can be, from `state_before`.
    pub stuck: Vec<usize>,
    /// The smallest failing window: the ops whose intervals overlap the stuck point.
    pub window: Vec<usize>,
}

/// The whole verdict.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub valid: Validity,
    pub model: String,
    pub events: usize,
    pub ops: usize,
    /// Seconds spent checking (parsing excluded).
    pub check_s: f64,
    pub keys: Vec<KeyVerdict>,
}

impl Serialize for Validity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Linearizable => s.serialize_bool(true),
            Validity::NotLinearizable => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str("unknown"),
        }
    }
}

impl<'de> Deserialize<'de> for Validity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(true) => Ok(Validity::Linearizable),
            Value::Bool(false) => Ok(Validity::NotLinearizable),
            Value::String(s) if s == "unknown" => Ok(Validity::Unknown),
            other => Err(serde::de::Error::custom(format!(
                "valid must be true, false or \"unknown\", not {other}"
            ))),
        }
    }
}
