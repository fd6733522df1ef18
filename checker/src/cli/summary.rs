//! The readable verdict: counts, then for each failing key the longest linearizable
//! prefix, the stuck operations with their lines, and the model state before them.

use checker::history::{History, Key, Operation, Outcome};
use checker::verdict::{Validity, Verdict};
use serde::Serialize;
use std::fmt::Write;

/// Counts printed with every verdict.
#[derive(Serialize, Debug, Default)]
pub(crate) struct Counts {
    pub events: usize,
    pub ops: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub keys: usize,
    pub keys_linearizable: usize,
    pub keys_not_linearizable: usize,
    pub keys_unknown: usize,
}

impl Counts {
    pub fn of(history: &History, verdict: &Verdict) -> Counts {
        let mut c = Counts {
            events: history.events.len(),
            ops: history.ops.len(),
            ..Counts::default()
        };
        let mut keys = rustc_hash::FxHashSet::default();
        for op in &history.ops {
            match op.outcome {
                Outcome::Ok => c.ok += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Info => c.info += 1,
            }
            keys.insert(op.key.as_ref());
        }
        c.keys = keys.len();
        for k in &verdict.keys {
            match k.valid {
                Validity::Linearizable => c.keys_linearizable += 1,
                Validity::NotLinearizable => c.keys_not_linearizable += 1,
                Validity::Unknown => c.keys_unknown += 1,
            }
        }
        c
    }
}

fn verdict_word(v: Validity) -> &'static str {
    match v {
        Validity::Linearizable => "linearizable",
        Validity::NotLinearizable => "NOT linearizable",
        Validity::Unknown => "unknown (budget ran out or the check stopped early)",
    }
}

fn key_name(key: Option<&Key>) -> String {
    match key {
        Some(k) => format!("key {k:?}"),
        None => "the register".to_string(),
    }
}

/// One operation with the lines of its invoke and completion.
fn describe(history: &History, op: &Operation) -> String {
    let invoke_line = history.line(op.invoke_event);
    let end = match op.complete_event {
        Some(i) => format!("completion line {}", history.line(i)),
        None => "never completed".to_string(),
    };
    let outcome = match op.outcome {
        Outcome::Ok => format!("ok {}", op.output),
        Outcome::Fail => "fail".to_string(),
        Outcome::Info => "info".to_string(),
    };
    format!(
        "op {} process {} {} {} -> {}  (invoke line {}, {})",
        op.id, op.process, op.f, op.input, outcome, invoke_line, end
    )
}

pub(super) fn text_summary(
    file: &str,
    parse_s: f64,
    history: &History,
    verdict: &Verdict,
    c: &Counts,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "history: {file}");
    let _ = writeln!(
        s,
        "events {}, operations {} (ok {}, fail {}, info {}), keys {}",
        c.events, c.ops, c.ok, c.fail, c.info, c.keys
    );
    let _ = writeln!(
        s,
        "model {}, parse {:.3} s, check {:.3} s",
        verdict.model, parse_s, verdict.check_s
    );
    let _ = writeln!(s, "verdict: {}", verdict_word(verdict.valid));
    if verdict.keys.len() > 1 {
        let _ = writeln!(
            s,
            "keys: {} linearizable, {} not, {} unknown",
            c.keys_linearizable, c.keys_not_linearizable, c.keys_unknown
        );
    }
    for k in verdict
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
    {
        let _ = writeln!(
            s,
            "\n{} ({} ops): NOT linearizable",
            key_name(k.key.as_ref()),
            k.ops
        );
        let Some(cx) = &k.counterexample else {
            let _ = writeln!(s, "  (no counterexample recorded)");
            continue;
        };
        let _ = writeln!(s, "  longest linearizable prefix: {} ops", cx.prefix.len());
        let _ = writeln!(
            s,
            "  model state before the stuck operations: {}",
            cx.state_before
        );
        let _ = writeln!(s, "  stuck operations (none can be linearized next):");
        for id in &cx.stuck {
            match history.ops.get(*id) {
                Some(op) => {
                    let _ = writeln!(s, "    {}", describe(history, op));
                }
                None => {
                    let _ = writeln!(s, "    op {id} (not in the history)");
                }
            }
        }
    }
    s
}
