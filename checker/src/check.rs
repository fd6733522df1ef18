//! The entry point of a check: split by key, search each key (in parallel), gather
//! the verdict.
//!
//! Linearizability is compositional (Herlihy & Wing's locality; Horn & Kroening's
//! P-compositionality for maps): a history is linearizable iff the sub-history of every
//! key is. Keys are searched independently on all cores, biggest first, each worker
//! taking the next key from an atomic index.

use crate::explain::explain;
use crate::history::{History, Operation};
use crate::model::SOp;
use crate::prepare::{PrepareOptions, Prepared, prepare};
use crate::search::{Budget, Found, search};
use crate::verdict::{KeyVerdict, Validity, Verdict};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

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

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
        }
    }
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
    /// Use what unique written values allow (the default). Off: the plain search, for
    /// cross-checking; verdicts are the same either way.
    pub fast_path: bool,
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
            fast_path: true,
        }
    }
}

/// Checks a parsed history.
pub fn check(history: &History, options: &CheckOptions) -> Verdict {
    let started = Instant::now();
    let mut by_key: BTreeMap<Option<String>, Vec<&Operation>> = BTreeMap::new();
    for op in &history.ops {
        by_key.entry(op.key.clone()).or_default().push(op);
    }
    let keys: Vec<(Option<String>, Vec<&Operation>)> = by_key.into_iter().collect();
    let mut order: Vec<usize> = (0..keys.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(keys[i].1.len()));

    let budget_stop = AtomicBool::new(false);
    let memory_used = AtomicUsize::new(0);
    let budget = Budget {
        deadline: options.time_limit.map(|t| started + t),
        memory_limit: options.memory_limit_bytes,
        memory_used: &memory_used,
        stop: &budget_stop,
    };
    let prep = PrepareOptions {
        initial: options.initial.clone().unwrap_or(Value::Null),
        knossos: options.knossos,
        fast_path: options.fast_path,
    };
    let results: Mutex<Vec<Option<KeyVerdict>>> = Mutex::new(vec![None; keys.len()]);
    let next = AtomicUsize::new(0);
    let threads = match options.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
    .min(keys.len().max(1));
    let work = || {
        loop {
            let slot = next.fetch_add(1, Ordering::Relaxed);
            let Some(&k) = order.get(slot) else { break };
            let (key, ops) = &keys[k];
            let verdict = if budget_stop.load(Ordering::Relaxed) {
                unknown(key, ops.len(), "stopped after another key failed")
            } else {
                check_key(key, ops, &prep, &budget)
            };
            if verdict.valid == Validity::NotLinearizable && !options.all_keys {
                budget_stop.store(true, Ordering::Relaxed);
            }
            if let Ok(mut r) = results.lock() {
                r[k] = Some(verdict);
            }
        }
    };
    if threads <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(work);
            }
        });
    }
    let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    let key_verdicts: Vec<KeyVerdict> = results
        .into_iter()
        .zip(&keys)
        .map(|(v, (key, ops))| v.unwrap_or_else(|| unknown(key, ops.len(), "not checked")))
        .collect();
    let valid = if key_verdicts
        .iter()
        .any(|k| k.valid == Validity::NotLinearizable)
    {
        Validity::NotLinearizable
    } else if key_verdicts.iter().any(|k| k.valid == Validity::Unknown) {
        Validity::Unknown
    } else {
        Validity::Linearizable
    };
    Verdict {
        valid,
        model: options.model.name().to_string(),
        events: history.events.len(),
        ops: history.ops.len(),
        check_s: started.elapsed().as_secs_f64(),
        keys: key_verdicts,
    }
}

fn unknown(key: &Option<String>, ops: usize, why: &str) -> KeyVerdict {
    KeyVerdict {
        key: key.clone(),
        valid: Validity::Unknown,
        ops,
        counterexample: None,
        reason: Some(why.to_string()),
    }
}

/// Decides one key; on a violation, searches again recording the prefix to explain it.
fn check_key(
    key: &Option<String>,
    ops: &[&Operation],
    prep: &PrepareOptions,
    budget: &Budget,
) -> KeyVerdict {
    let found = run(ops, prep, budget, false).0;
    let mut verdict = KeyVerdict {
        key: key.clone(),
        valid: Validity::Linearizable,
        ops: ops.len(),
        counterexample: None,
        reason: None,
    };
    match found {
        Found::Linearizable => {}
        Found::Unknown(why) => {
            verdict.valid = Validity::Unknown;
            verdict.reason = Some(why.to_string());
        }
        Found::Violation(_) => {
            verdict.valid = Validity::NotLinearizable;
            let (found, sops) = run(ops, prep, budget, true);
            if let Found::Violation(prefix) = found {
                let by_id: BTreeMap<usize, &Operation> = ops.iter().map(|o| (o.id, *o)).collect();
                verdict.counterexample = Some(explain(&by_id, &sops, &prefix, prep));
            } else {
                verdict.reason = Some("the explanation ran out of budget".to_string());
            }
        }
    }
    verdict
}

fn run(
    ops: &[&Operation],
    prep: &PrepareOptions,
    budget: &Budget,
    record: bool,
) -> (Found, Vec<SOp>) {
    match prepare(ops, prep) {
        Prepared::Value(mut m, sops) => (search(&mut m, &sops, budget, record), sops),
        Prepared::Trie(mut m, sops) => (search(&mut m, &sops, budget, record), sops),
    }
}
