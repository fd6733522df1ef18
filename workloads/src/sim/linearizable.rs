//! Checks a seed's client history for linearizability with the project's checker
//! (the kv model). The simulator records into the checker's own [`History`] (through
//! [`crate::history::Recording`], as real runs do), so nothing is encoded and parsed
//! back on the way.

use checker::check::{CheckOptions, ModelKind, check};
use checker::history::History;
use checker::verdict::Validity;
use std::time::Duration;

/// What the check of one history found.
#[derive(Clone, Debug, PartialEq)]
pub enum Finding {
    Linearizable,
    /// The first key that is not linearizable, with a short explanation.
    NotLinearizable(String),
    /// The budget ran out, or the history could not be read: never a pass.
    Unknown(String),
}

/// Checks `history` with one thread (seeds already run in parallel) and a budget.
pub fn check_history(history: &History, time_limit: Duration) -> Finding {
    let options = CheckOptions {
        model: ModelKind::Kv,
        time_limit: Some(time_limit),
        memory_limit_bytes: 256 << 20,
        threads: 1,
        ..CheckOptions::default()
    };
    let verdict = match check(history, &options) {
        Ok(v) => v,
        Err(e) => return Finding::Unknown(format!("the checker refused the history: {e}")),
    };
    match verdict.valid {
        Validity::Linearizable => Finding::Linearizable,
        Validity::NotLinearizable => {
            let key = verdict
                .keys
                .iter()
                .find(|k| k.valid == Validity::NotLinearizable);
            let what = key.map_or("a key".to_string(), |k| {
                let window = k.counterexample.as_ref().map_or(0, |c| c.window.len());
                format!(
                    "key {} ({} ops; smallest failing window {} ops)",
                    k.key.as_ref().map_or("-".to_string(), |k| k.to_string()),
                    k.ops,
                    window
                )
            });
            Finding::NotLinearizable(format!("history not linearizable (kv model): {what}"))
        }
        Validity::Unknown => {
            let why = verdict
                .keys
                .iter()
                .find_map(|k| k.reason.clone())
                .unwrap_or_else(|| "budget ran out".to_string());
            Finding::Unknown(why)
        }
    }
}
