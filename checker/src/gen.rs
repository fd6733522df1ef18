//! Generated histories, for tests and benchmarks: linearizable by construction, with an
//! optional injected violation.
//!
//! Clients run one operation at a time against simulated keys. Each operation gets a
//! random latency and a linearization point inside its interval; executing the ops in
//! linearization-point order on a real register gives every read its value and every
//! cas its outcome, so the history is linearizable by construction. An `info` operation
//! may take effect at its point (or never), and its client continues as a new process,
//! as in Jepsen. One seed decides everything.

use crate::build::{Builder, RawEvent};
use crate::history::{EventType, Function, History, Key, Operation, Outcome, Process};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// Which operations the clients issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// read / write.
    Register,
    /// read / write / cas.
    Cas,
    /// read / put / append (strings).
    Append,
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    pub seed: u64,
    pub ops: usize,
    pub keys: usize,
    pub clients: usize,
    pub mix: Mix,
    /// Share of operations that end indeterminate.
    pub info_rate: f64,
    /// Share of writes that fail (certainly not applied).
    pub fail_rate: f64,
    /// Written values are drawn from `0..n` instead of being unique (collisions).
    pub value_domain: Option<u64>,
    /// Make one read stale: it returns a value overwritten before it began.
    pub inject_violation: bool,
    /// Mean latency and think time, in nanoseconds.
    pub latency_ns: u64,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions {
            seed: 1,
            ops: 10_000,
            keys: 10,
            clients: 10,
            mix: Mix::Cas,
            info_rate: 0.05,
            fail_rate: 0.02,
            value_domain: None,
            inject_violation: false,
            latency_ns: 1_000_000,
        }
    }
}

struct Pending {
    op: Operation,
    /// When it takes effect; `None` if never.
    at: Option<u64>,
}

/// Generates a history. Without `inject_violation` it is linearizable.
pub fn generate(o: &GenOptions) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(o.seed);
    let clients = o.clients.max(1);
    let keys = o.keys.max(1);
    let mut free_at = vec![0u64; clients];
    let mut process: Vec<u64> = (0..clients as u64).collect();
    let mut next_process = clients as u64;
    let mut counter = 0u64;
    let mut last_seen: Vec<Value> = vec![Value::Null; keys];
    let mut pending: Vec<Pending> = Vec::with_capacity(o.ops);
    let lat = o.latency_ns.max(2);
    for _ in 0..o.ops {
        let c = rng.random_range(0..clients);
        // Strictly after the client's previous return, so its events never tie.
        let call = free_at[c] + 1 + rng.random_range(0..lat);
        let ret = call + 1 + rng.random_range(0..2 * lat);
        let k = rng.random_range(0..keys);
        counter += 1;
        let fresh = match o.value_domain {
            Some(n) => json!(rng.random_range(0..n.max(1))),
            None => json!(counter),
        };
        let pick: u32 = rng.random_range(0..100);
        let (f, input) = match (o.mix, pick) {
            (_, 0..50) => (Function::Read, Value::Null),
            (Mix::Cas, 75..100) => (Function::Cas, json!([last_seen[k].clone(), fresh])),
            (Mix::Append, _) if o.value_domain.is_some() => {
                // Colliding strings: repeated values, values both put and appended.
                let f = if pick >= 60 {
                    Function::Append
                } else {
                    Function::Write
                };
                (f, json!(format!("v{}", fresh)))
            }
            (Mix::Append, 60..100) => (Function::Append, json!(format!("x{c} {counter} y"))),
            (Mix::Append, _) => (Function::Write, json!(format!("p{c} {counter} y"))),
            _ => (Function::Write, fresh),
        };
        let roll: f64 = rng.random();
        let outcome = if roll < o.info_rate {
            Outcome::Info
        } else if f != Function::Read && roll < o.info_rate + o.fail_rate {
            Outcome::Fail
        } else {
            Outcome::Ok
        };
        let at = match outcome {
            Outcome::Ok => Some(rng.random_range(call..=ret)),
            Outcome::Fail => None,
            Outcome::Info => rng
                .random_bool(0.5)
                .then(|| call + rng.random_range(0..4 * lat)),
        };
        pending.push(Pending {
            op: Operation {
                id: 0,
                process: process[c],
                f,
                key: Some(Key::from(k.to_string().as_str())),
                input,
                output: Value::Null,
                outcome,
                call,
                ret: (outcome != Outcome::Info).then_some(ret),
                error: None,
                invoke_event: 0,
                complete_event: None,
            },
            at,
        });
        free_at[c] = ret;
        if outcome == Outcome::Info {
            process[c] = next_process;
            next_process += 1;
        }
        if let Some(v) = pending.last().and_then(|p| written_value(&p.op)) {
            last_seen[k] = v;
        }
    }
    execute(&mut pending, keys);
    let mut ops: Vec<Operation> = pending.into_iter().map(|p| p.op).collect();
    ops.sort_by_key(|op| op.call);
    if o.inject_violation {
        inject_stale_read(&mut ops, &mut rng);
    }
    events_of(&ops)
}

/// The history whose events are the invokes and completions of `ops`, in time order.
/// At one instant invokes come first, so operations that touch are concurrent (a
/// client's next invoke always comes strictly after its previous return).
fn events_of(ops: &[Operation]) -> History {
    let mut order: Vec<(u64, u8, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate() {
        order.push((op.call, 0, i));
        if let Some(ret) = op.ret {
            order.push((ret, 1, i));
        }
    }
    order.sort_unstable();
    let mut b = Builder::with_capacity(order.len());
    for (pos, &(time, completion, i)) in order.iter().enumerate() {
        let op = &ops[i];
        let (kind, value) = match (completion, op.outcome) {
            (0, _) => (EventType::Invoke, op.input.clone()),
            (_, Outcome::Ok) if op.f == Function::Read => (EventType::Ok, op.output.clone()),
            (_, Outcome::Ok) => (EventType::Ok, op.input.clone()),
            (_, Outcome::Fail) => (EventType::Fail, op.input.clone()),
            (_, Outcome::Info) => (EventType::Info, op.input.clone()),
        };
        let event = RawEvent {
            line: pos + 1,
            index: Some(pos as u64),
            time: Some(time),
            process: Process::Client(op.process),
            kind,
            f: op.f.clone(),
            key: op.key.clone(),
            value: Some(value),
            error: None,
        };
        if let Err(e) = b.push(event) {
            // The generator keeps one operation per client at a time; anything else is
            // a bug here, not in the input.
            panic!("generated event {pos} does not pair: {e}");
        }
    }
    b.finish()
}

fn written_value(op: &Operation) -> Option<Value> {
    match op.f {
        Function::Write => Some(op.input.clone()),
        Function::Cas => op.input.get(1).cloned(),
        _ => None,
    }
}

/// Applies every op at its point, in order, filling read outputs and cas outcomes.
fn execute(pending: &mut [Pending], keys: usize) {
    let mut order: Vec<usize> = (0..pending.len()).collect();
    order.sort_by_key(|&i| (pending[i].at.unwrap_or(u64::MAX), i));
    let mut state = vec![Value::Null; keys];
    for i in order {
        let Some(_) = pending[i].at else { continue };
        let op = &mut pending[i].op;
        let k: usize = op
            .key
            .as_ref()
            .and_then(|k| k.as_str().parse().ok())
            .unwrap_or(0);
        match op.f {
            Function::Read => op.output = state[k].clone(),
            Function::Write => state[k] = op.input.clone(),
            Function::Append => {
                let s = format!(
                    "{}{}",
                    state[k].as_str().unwrap_or(""),
                    op.input.as_str().unwrap_or("")
                );
                state[k] = json!(s);
            }
            Function::Cas => {
                if op.input.get(0) == Some(&state[k]) {
                    state[k] = op.input.get(1).cloned().unwrap_or(Value::Null);
                } else if op.outcome == Outcome::Ok {
                    op.outcome = Outcome::Fail;
                }
            }
            _ => {}
        }
    }
}

/// Makes one read return a value that a later write, complete before the read began,
/// had replaced; with unique values no linearization explains it.
fn inject_stale_read(ops: &mut [Operation], rng: &mut ChaCha8Rng) {
    let reads: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].f == Function::Read && ops[i].outcome == Outcome::Ok)
        .collect();
    for _ in 0..reads.len().min(1000) {
        let r = reads[rng.random_range(0..reads.len())];
        let key = ops[r].key.clone();
        let done_before = |w: &Operation, t: u64| {
            w.key == key
                && w.f == Function::Write
                && w.outcome == Outcome::Ok
                && w.ret.is_some_and(|x| x < t)
        };
        let Some(w2) = (0..r).rev().find(|&j| done_before(&ops[j], ops[r].call)) else {
            continue;
        };
        let Some(w1) = (0..w2).rev().find(|&j| done_before(&ops[j], ops[w2].call)) else {
            continue;
        };
        ops[r].output = ops[w1].input.clone();
        return;
    }
}
