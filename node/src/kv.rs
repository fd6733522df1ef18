//! The key-value state machine. PURE and deterministic: `BTreeMap`, no I/O.
//!
//! Values are JSON values. Commands reach it through the log as encoded [`Command`]s.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One key-value operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvOp {
    /// Read `key`. `stale: true` reads local state with no consensus.
    Get {
        key: String,
        stale: bool,
    },
    Put {
        key: String,
        value: Value,
    },
    /// Compare-and-set. `from: None` means "the key is absent".
    Cas {
        key: String,
        from: Option<Value>,
        to: Value,
    },
    Delete {
        key: String,
    },
    /// Appends a string to the key's string value (absent = "").
    Append {
        key: String,
        value: String,
    },
}

/// The result of applying (or reading) one operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum KvResult {
    /// The value after the operation (for a read: the value seen; `None` = absent).
    Value(Option<Value>),
    /// A CAS whose compare did not match; `current` is the value it saw.
    CasMismatch { current: Option<Value> },
}

/// A command as stored in a log entry: the op plus its deduplication id.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Command {
    pub client: u64,
    pub seq: u64,
    pub op: KvOp,
}
