//! The search against a brute-force oracle on thousands of tiny random histories.

use checker::check::{CheckOptions, ModelKind, check};
use checker::r#gen::{GenOptions, Mix, generate};
use checker::history::{Function, History, Operation, Outcome};
use checker::verdict::Validity;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The sequential spec, written out again independently of the checker's.
fn step(state: &Value, op: &Operation, append: bool, knossos: bool) -> Option<Value> {
    let norm = |v: &Value| {
        if append && v.is_null() {
            json!("")
        } else {
            v.clone()
        }
    };
    let s = norm(state);
    match op.f {
        Function::Read if knossos && op.output.is_null() => Some(s),
        Function::Read => (norm(&op.output) == s).then_some(s),
        Function::Write => Some(norm(&op.input)),
        Function::Cas => (norm(&op.input[0]) == s).then(|| norm(&op.input[1])),
        Function::Append => match (s.as_str(), norm(&op.input).as_str()) {
            (Some(a), Some(b)) => Some(json!(format!("{a}{b}"))),
            _ => None,
        },
    }
}

/// Tries every order of every subset that keeps all ok ops: exhaustive.
fn oracle(h: &History, initial: &Value, knossos: bool) -> bool {
    let ops: Vec<&Operation> = h
        .ops
        .iter()
        .filter(|o| o.outcome != Outcome::Fail)
        .collect();
    let append: BTreeMap<Option<String>, bool> = ops.iter().fold(BTreeMap::new(), |mut m, o| {
        *m.entry(o.key.clone()).or_default() |= o.f == Function::Append;
        m
    });
    let ret = |o: &Operation| {
        if o.outcome == Outcome::Info {
            u64::MAX
        } else {
            o.ret.unwrap_or(u64::MAX)
        }
    };
    struct Ctx<'a> {
        append: &'a BTreeMap<Option<String>, bool>,
        initial: &'a Value,
        knossos: bool,
        ret: &'a dyn Fn(&Operation) -> u64,
    }
    fn dfs(
        ops: &[&Operation],
        placed: &mut Vec<bool>,
        states: &mut BTreeMap<Option<String>, Value>,
        ctx: &Ctx,
    ) -> bool {
        let Ctx {
            append,
            initial,
            knossos,
            ret,
        } = ctx;
        if (0..ops.len()).all(|i| placed[i] || ops[i].outcome == Outcome::Info) {
            return true;
        }
        for b in 0..ops.len() {
            if placed[b] {
                continue;
            }
            let blocked = (0..ops.len()).any(|a| !placed[a] && a != b && ret(ops[a]) < ops[b].call);
            if blocked {
                continue;
            }
            let key = ops[b].key.clone();
            let cur = states
                .get(&key)
                .cloned()
                .unwrap_or_else(|| (*initial).clone());
            let ap = append.get(&key).copied().unwrap_or(false);
            if let Some(next) = step(&cur, ops[b], ap, *knossos) {
                placed[b] = true;
                states.insert(key.clone(), next);
                if dfs(ops, placed, states, ctx) {
                    return true;
                }
                states.insert(key, cur);
                placed[b] = false;
            }
        }
        false
    }
    // Info ops may also never happen: an unplaced info op never blocks anything (its
    // return is at infinity), so leaving it out is covered by stopping early.
    let mut placed = vec![false; ops.len()];
    let mut states = BTreeMap::new();
    dfs(
        &ops,
        &mut placed,
        &mut states,
        &Ctx {
            append: &append,
            initial,
            knossos,
            ret: &ret,
        },
    )
}

struct Shape {
    n: usize,
    clients: usize,
    keys: usize,
    mix: Mix,
    domain: Option<u64>,
    info: f64,
}

fn history(seed: u64, shape: &Shape, perturb: u64) -> History {
    let Shape {
        n,
        clients,
        keys,
        mix,
        domain,
        info,
    } = *shape;
    let mut h = generate(&GenOptions {
        seed,
        ops: n,
        keys,
        clients,
        mix,
        info_rate: info,
        fail_rate: 0.15,
        value_domain: domain,
        inject_violation: false,
        latency_ns: 10,
    });
    // Perturb a read so that about half the histories are not linearizable.
    let reads: Vec<usize> = (0..h.ops.len())
        .filter(|&i| h.ops[i].f == Function::Read && h.ops[i].outcome == Outcome::Ok)
        .collect();
    if !perturb.is_multiple_of(3) && !reads.is_empty() {
        let r = reads[(perturb as usize / 3) % reads.len()];
        h.ops[r].output = match mix {
            Mix::Append => {
                json!(["", "x0 1 y", "v1", "v0v1", "v2v0", "x1 3 y"][(perturb % 6) as usize])
            }
            _ => match perturb % 4 {
                0 => Value::Null,
                v => json!(v),
            },
        };
    }
    h
}

fn mix_of(i: u8) -> Mix {
    [Mix::Register, Mix::Cas, Mix::Append][(i % 3) as usize]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn search_agrees_with_brute_force(
        seed in any::<u64>(),
        n in 1usize..=7,
        clients in 1usize..=3,
        keys in 1usize..=2,
        mix in 0u8..3,
        unique in any::<bool>(),
        info in prop_oneof![Just(0.0), Just(0.2), Just(0.4)],
        perturb in any::<u64>(),
        knossos in any::<bool>(),
        init in 0u8..3,
    ) {
        let domain = if unique { None } else { Some(3) };
        let h = history(seed, &Shape { n, clients, keys, mix: mix_of(mix), domain, info }, perturb);
        let initial = match init { 0 => Value::Null, 1 => json!(1), _ => json!("x0 1 y") };
        let expected = oracle(&h, &initial, knossos);
        for fast_path in [true, false] {
            for all_keys in [true, false] {
                let opts = CheckOptions {
                    model: ModelKind::Kv,
                    initial: Some(initial.clone()),
                    knossos,
                    fast_path,
                    all_keys,
                    threads: 1,
                    ..CheckOptions::default()
                };
                let v = check(&h, &opts);
                let want = if expected { Validity::Linearizable } else { Validity::NotLinearizable };
                prop_assert_eq!(v.valid, want, "fast_path {} all_keys {} history {:#?}", fast_path, all_keys, h.ops);
            }
        }
    }
}
