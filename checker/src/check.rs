//! The entry point of a check: split by key, search each key (in parallel), gather
//! the verdict.

use crate::history::History;
use crate::verdict::Verdict;
use serde_json::Value;
use std::time::Duration;

/// Which sequential specification to check against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// read / write on one register per key.
    Register,
    /// read / write / cas on one register per key.
    CasRegister,
    /// per key: read, write, cas, append (get/put aliases).
    Kv,
}

/// Options of one check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    pub model: ModelKind,
    /// The value of every key before the history; `None` = absent (read as null).
    pub initial: Option<Value>,
    /// A read of null constrains nothing (Knossos's register models).
    pub knossos: bool,
    /// Give up with `Unknown` after this long.
    pub time_limit: Option<Duration>,
    /// Give up with `Unknown` when the search's memo tables pass this many bytes.
    pub memory_limit_bytes: usize,
    /// Decide every key (for reports); otherwise stop at the first failing key.
    pub all_keys: bool,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            model: ModelKind::Kv,
            initial: None,
            knossos: false,
            time_limit: None,
            memory_limit_bytes: 1 << 30,
            all_keys: false,
            threads: 0,
        }
    }
}

/// Checks a parsed history.
pub fn check(_history: &History, _options: &CheckOptions) -> Verdict {
    todo!("search implementation")
}
