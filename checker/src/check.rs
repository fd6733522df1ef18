//! The entry point of a check: validate the operations against the model, split them
//! into partitions (by key), search each partition (in parallel), gather the verdict.
//!
//! Linearizability is compositional (Herlihy & Wing's locality; Horn & Kroening's
//! P-compositionality for maps): a history is linearizable iff the sub-history of every
//! partition is. Partitions are searched independently on all cores, biggest first,
//! each worker taking the next partition from an atomic index.

use crate::engine::prepare::{PrepareOptions, Prepared, prepare};
use crate::engine::search::{Budget, Found, search};
use crate::engine::{SOp, generic};
use crate::error::{ErrorKind, HistoryError};
use crate::explain::explain;
use crate::history::{History, Key, Operation};
use crate::model::{self, Model};
use crate::verdict::{KeyVerdict, Validity, Verdict};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use crate::model::ModelKind;

/// Options of one check.
#[derive(Clone, Debug)]
pub struct CheckOptions {
    /// The built-in model [`check`] uses ([`check_model`] takes any model instead).
    pub model: ModelKind,
    /// The value of every register or kv key before the history; `None` = absent
    /// (read as null).
    pub initial: Option<Value>,
    /// A read of null constrains nothing (Knossos's register models).
    pub knossos: bool,
    /// Give up with `Unknown` after this long.
    pub time_limit: Option<Duration>,
    /// Give up with `Unknown` when the search's tables pass this many bytes.
    pub memory_limit_bytes: usize,
    /// Decide every partition (for reports); otherwise stop at the first failing one.
    pub all_keys: bool,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Use what unique written values allow (the default). Off: the plain search, for
    /// cross-checking; verdicts are the same either way.
    pub fast_path: bool,
    /// Accept a history without client operations (linearizable). Off by default: a
    /// check of nothing must not pass.
    pub allow_empty: bool,
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
            allow_empty: false,
        }
    }
}

/// Why a history cannot be checked: bad input, not a verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckError {
    /// The line of the operation's invoke; 0 when no line is at fault.
    pub line: usize,
    pub kind: ErrorKind,
}

impl CheckError {
    /// The same problem, named by file and line.
    pub fn in_file(&self, file: &str) -> HistoryError {
        HistoryError::new(file, self.line, self.kind.clone())
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}", self.kind),
            line => write!(f, "line {line}: {}", self.kind),
        }
    }
}

impl std::error::Error for CheckError {}

/// Checks a parsed history against the built-in model `options.model`.
pub fn check(history: &History, options: &CheckOptions) -> Result<Verdict, CheckError> {
    let initial = options.initial.clone().unwrap_or(Value::Null);
    let knossos = options.knossos;
    match options.model {
        ModelKind::Register => fast(history, &model::Register { initial, knossos }, options),
        ModelKind::CasRegister => fast(history, &model::CasRegister { initial, knossos }, options),
        ModelKind::Kv => fast(history, &model::Kv { initial, knossos }, options),
        ModelKind::Mutex => check_model(history, &model::Mutex, options),
        ModelKind::Set => check_model(history, &model::Set, options),
        ModelKind::FifoQueue => check_model(history, &model::FifoQueue, options),
        ModelKind::UnorderedQueue => check_model(history, &model::UnorderedQueue, options),
    }
}

/// Checks a parsed history against any model. `options.model`, `initial`, `knossos`
/// and `fast_path` configure the built-in models and are not used here.
pub fn check_model<M: Model>(
    history: &History,
    model: &M,
    options: &CheckOptions,
) -> Result<Verdict, CheckError> {
    run(history, model, options, |ops, budget, record| {
        let (mut engine, sops) = generic::prepare(model, ops);
        (search(&mut engine, &sops, budget, record), sops)
    })
}

/// The register and kv models, on the fast engines; explanations replay `model`.
fn fast<M: Model>(
    history: &History,
    model: &M,
    options: &CheckOptions,
) -> Result<Verdict, CheckError> {
    let prep = PrepareOptions {
        initial: options.initial.clone().unwrap_or(Value::Null),
        knossos: options.knossos,
        fast_path: options.fast_path,
    };
    run(
        history,
        model,
        options,
        |ops, budget, record| match prepare(ops, &prep) {
            Prepared::Value(mut m, sops) => (search(&mut m, &sops, budget, record), sops),
            Prepared::Trie(mut m, sops) => (search(&mut m, &sops, budget, record), sops),
        },
    )
}

/// Refuses operations the model cannot take, naming the first one's line.
fn validate<M: Model>(history: &History, model: &M) -> Result<(), CheckError> {
    for op in &history.ops {
        if let Err(reason) = model.validate(op) {
            return Err(CheckError {
                line: history.line(op.invoke_event),
                kind: ErrorKind::Unsupported(reason),
            });
        }
    }
    Ok(())
}

/// Validates, partitions and searches; `search_key` runs the search of one partition
/// (recording the longest prefix when asked).
fn run<M, S>(
    history: &History,
    model: &M,
    options: &CheckOptions,
    search_key: S,
) -> Result<Verdict, CheckError>
where
    M: Model,
    S: Fn(&[&Operation], &Budget, bool) -> (Found, Vec<SOp>) + Sync,
{
    validate(history, model)?;
    if history.ops.is_empty() && !options.allow_empty {
        return Err(CheckError {
            line: 0,
            kind: ErrorKind::NoClientOperations,
        });
    }
    let started = Instant::now();
    let mut by_key: FxHashMap<Option<Key>, Vec<&Operation>> = FxHashMap::default();
    for op in &history.ops {
        by_key.entry(model.partition(op)).or_default().push(op);
    }
    let mut keys: Vec<(Option<Key>, Vec<&Operation>)> = by_key.into_iter().collect();
    keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
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
                decide(model, key, ops, &budget, &search_key)
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
    Ok(Verdict {
        valid,
        model: model.name().to_string(),
        events: history.events.len(),
        ops: history.ops.len(),
        check_s: started.elapsed().as_secs_f64(),
        keys: key_verdicts,
    })
}

fn unknown(key: &Option<Key>, ops: usize, why: &str) -> KeyVerdict {
    KeyVerdict {
        key: key.clone(),
        valid: Validity::Unknown,
        ops,
        counterexample: None,
        reason: Some(why.to_string()),
    }
}

/// Decides one partition; on a violation, searches again recording the prefix to
/// explain it.
fn decide<M, S>(
    model: &M,
    key: &Option<Key>,
    ops: &[&Operation],
    budget: &Budget,
    search_key: &S,
) -> KeyVerdict
where
    M: Model,
    S: Fn(&[&Operation], &Budget, bool) -> (Found, Vec<SOp>),
{
    let mut verdict = KeyVerdict {
        key: key.clone(),
        valid: Validity::Linearizable,
        ops: ops.len(),
        counterexample: None,
        reason: None,
    };
    match search_key(ops, budget, false).0 {
        Found::Linearizable => {}
        Found::Unknown(why) => {
            verdict.valid = Validity::Unknown;
            verdict.reason = Some(why.to_string());
        }
        Found::Violation(_) => {
            verdict.valid = Validity::NotLinearizable;
            let (found, sops) = search_key(ops, budget, true);
            if let Found::Violation(prefix) = found {
                let by_id: BTreeMap<usize, &Operation> = ops.iter().map(|o| (o.id, *o)).collect();
                verdict.counterexample = Some(explain(model, &by_id, &sops, &prefix));
            } else {
                verdict.reason = Some("the explanation ran out of budget".to_string());
            }
        }
    }
    verdict
}
