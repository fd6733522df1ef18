//! Knossos's mutex, set, FIFO queue and unordered queue: the checker against a
//! brute-force oracle on thousands of tiny random histories, and the example histories
//! in testdata/models with the verdicts their README gives.
//!
//! The oracle's specifications are written here again, and model what a lost operation
//! may really have done: an `info` dequeue of an unordered queue may have taken any
//! element (the checker leaves such dequeues out, which these tests hold to account).

mod support;

use checker::check::{CheckOptions, ModelKind, check};
use checker::history::{Function, History, Operation, Outcome};
use checker::verdict::Validity;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The four models' states, as the oracle keeps them.
#[derive(Clone, Debug, Default, PartialEq)]
struct Spec {
    held: bool,
    /// Set elements, or queue elements in order.
    items: Vec<Value>,
}

fn spec_step(model: ModelKind, s: &Spec, op: &Operation) -> Vec<Spec> {
    let info = op.outcome == Outcome::Info;
    let with = |f: &dyn Fn(&mut Spec)| {
        let mut n = s.clone();
        f(&mut n);
        vec![n]
    };
    match (model, &op.f) {
        (ModelKind::Mutex, Function::Acquire) if !s.held => with(&|n| n.held = true),
        (ModelKind::Mutex, Function::Release) if s.held => with(&|n| n.held = false),
        (ModelKind::Set, Function::Add) => with(&|n| {
            if !n.items.contains(&op.input) {
                n.items.push(op.input.clone());
            }
        }),
        (ModelKind::Set, Function::Read) if info => vec![s.clone()],
        (ModelKind::Set, Function::Read) => {
            let seen = op.output.as_array().cloned().unwrap_or_default();
            let same = seen.iter().all(|v| s.items.contains(v))
                && s.items.iter().all(|v| seen.contains(v));
            if same { vec![s.clone()] } else { vec![] }
        }
        (ModelKind::FifoQueue | ModelKind::UnorderedQueue, Function::Enqueue) => {
            with(&|n| n.items.push(op.input.clone()))
        }
        (ModelKind::FifoQueue, Function::Dequeue) => match s.items.first() {
            Some(head) if info || *head == op.output => with(&|n| {
                n.items.remove(0);
            }),
            _ => vec![],
        },
        (ModelKind::UnorderedQueue, Function::Dequeue) => (0..s.items.len())
            .filter(|&i| info || s.items[i] == op.output)
            .map(|i| {
                let mut n = s.clone();
                n.items.remove(i);
                n
            })
            .collect(),
        _ => vec![],
    }
}

/// One operation of a generated history, before its events are written.
struct Gen {
    process: u64,
    f: &'static str,
    input: Value,
    output: Value,
    outcome: Outcome,
    call: u64,
    ret: u64,
    /// When it takes effect, if it does.
    at: Option<u64>,
}

/// Draws `0..n` (`0` for `n` = 0): the proptest seed decides the whole history.
fn draw(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    rng.random_range(0..n.max(1))
}

/// A history of `n` operations by `clients` clients on one object, linearizable by
/// construction (each operation takes effect at a point inside its interval, on a real
/// object), then perturbed by `perturb` so that some are not.
fn generate(model: ModelKind, seed: u64, n: usize, clients: u64, perturb: u64) -> History {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut free = vec![0u64; clients as usize];
    let mut procs: Vec<u64> = (0..clients).collect();
    let mut next_proc = clients;
    let mut ops: Vec<Gen> = Vec::new();
    for _ in 0..n {
        let c = draw(&mut rng, clients) as usize;
        let call = free[c] + 1 + draw(&mut rng, 10);
        let ret = call + 1 + draw(&mut rng, 20);
        free[c] = ret;
        let v = json!(draw(&mut rng, 3));
        let (f, input) = match (model, draw(&mut rng, 2)) {
            (ModelKind::Mutex, 0) => ("acquire", Value::Null),
            (ModelKind::Mutex, _) => ("release", Value::Null),
            (ModelKind::Set, 0) => ("add", v),
            (ModelKind::Set, _) => ("read", Value::Null),
            (_, 0) => ("enqueue", v),
            (_, _) => ("dequeue", Value::Null),
        };
        let info = draw(&mut rng, 5) == 0;
        let at = if info && draw(&mut rng, 2) == 0 {
            None
        } else {
            Some(call + draw(&mut rng, ret - call + 1))
        };
        ops.push(Gen {
            process: procs[c],
            f,
            input,
            output: Value::Null,
            outcome: if info { Outcome::Info } else { Outcome::Ok },
            call,
            ret,
            at,
        });
        if info {
            procs[c] = next_proc;
            next_proc += 1;
        }
    }
    // Run the operations on a real object at their points.
    let mut order: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].at.is_some()).collect();
    order.sort_by_key(|&i| (ops[i].at, i));
    let mut held = false;
    let mut items: Vec<Value> = Vec::new();
    for i in order {
        let op = &mut ops[i];
        let done = match op.f {
            "acquire" => !std::mem::replace(&mut held, true),
            "release" => std::mem::replace(&mut held, false),
            "add" => {
                if !items.contains(&op.input) {
                    items.push(op.input.clone());
                }
                true
            }
            "read" => {
                op.output = Value::Array(items.clone());
                true
            }
            "enqueue" => {
                items.push(op.input.clone());
                true
            }
            _ => match items.len() {
                0 => false,
                len => {
                    let i = if model == ModelKind::FifoQueue {
                        0
                    } else {
                        (op.call as usize) % len
                    };
                    op.output = items.remove(i);
                    true
                }
            },
        };
        if !done {
            // An acquire of a held lock, a release of a free one, a dequeue from an
            // empty queue: the client is told no, and nothing changed.
            op.outcome = Outcome::Fail;
        }
    }
    // Perturb one completed operation's result.
    let oks: Vec<usize> = (0..ops.len())
        .filter(|&i| ops[i].outcome != Outcome::Info)
        .collect();
    if !perturb.is_multiple_of(3) && !oks.is_empty() {
        let op = &mut ops[oks[(perturb as usize / 3) % oks.len()]];
        match op.f {
            "read" => {
                let mut seen = op.output.as_array().cloned().unwrap_or_default();
                if perturb.is_multiple_of(2) && !seen.is_empty() {
                    seen.pop();
                } else {
                    seen.push(json!(perturb % 4));
                }
                op.output = Value::Array(seen);
            }
            "dequeue" if op.outcome == Outcome::Ok => op.output = json!(perturb % 3),
            _ => {
                op.outcome = match op.outcome {
                    Outcome::Ok => Outcome::Fail,
                    _ => Outcome::Ok,
                };
                if op.f == "dequeue" {
                    op.output = json!(perturb % 3);
                }
            }
        }
    }
    // Events in time order; at one instant invokes first (touching operations overlap).
    let mut events: Vec<(u64, u8, usize)> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        events.push((op.call, 0, i));
        if op.outcome != Outcome::Info || op.at.is_some() {
            events.push((op.ret, 1, i));
        }
    }
    events.sort();
    let mut text = String::new();
    for (_, done, i) in events {
        let op = &ops[i];
        let (kind, value) = match (done, op.outcome) {
            (0, _) => ("invoke", &op.input),
            (_, Outcome::Ok) if matches!(op.f, "read" | "dequeue") => ("ok", &op.output),
            (_, Outcome::Ok) => ("ok", &op.input),
            (_, Outcome::Fail) => ("fail", &op.input),
            (_, Outcome::Info) => ("info", &op.input),
        };
        text.push_str(&format!(
            "{{\"process\":{},\"type\":\"{kind}\",\"f\":\"{}\",\"value\":{value}}}\n",
            op.process, op.f
        ));
    }
    checker::parse::parse_str(&text, "generated.jsonl").expect("generated histories parse")
}

fn model_of(i: u8) -> ModelKind {
    [
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::UnorderedQueue,
    ][(i % 4) as usize]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn knossos_models_agree_with_brute_force(
        model in 0u8..4,
        seed in any::<u64>(),
        n in 1usize..=8,
        clients in 1u64..=3,
        perturb in any::<u64>(),
    ) {
        let model = model_of(model);
        let h = generate(model, seed, n, clients, perturb);
        let expected = support::linearizable_any(&h, &Spec::default(), &|s, op| spec_step(model, s, op));
        let opts = CheckOptions { model, threads: 1, allow_empty: true, ..CheckOptions::default() };
        let v = check(&h, &opts).unwrap();
        let want = if expected { Validity::Linearizable } else { Validity::NotLinearizable };
        prop_assert_eq!(v.valid, want, "{} history {:#?}", model.name(), h.ops);
        if v.valid == Validity::NotLinearizable {
            let cx = v.keys.iter().find_map(|k| k.counterexample.as_ref());
            prop_assert!(cx.is_some_and(|c| !c.stuck.is_empty()), "explained");
        }
    }
}

/// The example histories and their verdicts (testdata/models/README.md).
#[test]
fn example_histories_get_their_verdicts() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/models");
    let mut seen = 0;
    for model in [
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::UnorderedQueue,
    ] {
        for (suffix, want) in [
            ("ok", Validity::Linearizable),
            ("bad", Validity::NotLinearizable),
        ] {
            for ext in ["jsonl", "edn"] {
                let path = dir.join(format!("{}-{suffix}.{ext}", model.name()));
                if !path.exists() {
                    continue;
                }
                let h = checker::parse::parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
                let v = check(
                    &h,
                    &CheckOptions {
                        model,
                        all_keys: true,
                        ..CheckOptions::default()
                    },
                )
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert_eq!(v.valid, want, "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 8, "an ok and a bad history per model, {seen} found");
}

/// A model refuses the functions of the others, naming the line.
#[test]
fn each_model_refuses_functions_it_does_not_take() {
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":1}\n";
    let h = checker::parse::parse_str(text, "w.jsonl").unwrap();
    for model in [
        ModelKind::Mutex,
        ModelKind::Set,
        ModelKind::FifoQueue,
        ModelKind::UnorderedQueue,
    ] {
        let e = check(
            &h,
            &CheckOptions {
                model,
                ..CheckOptions::default()
            },
        )
        .unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(e.to_string().contains(model.name()), "{e}");
    }
    // A read of a set must be a list of its elements.
    let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                {\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":3}\n";
    let h = checker::parse::parse_str(text, "r.jsonl").unwrap();
    let opts = CheckOptions {
        model: ModelKind::Set,
        ..CheckOptions::default()
    };
    assert!(check(&h, &opts).unwrap_err().to_string().contains("list"));
}
