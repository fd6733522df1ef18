//! The search against a brute-force oracle on thousands of tiny random histories, and
//! the fast register/kv engine against the plain definition of the model (the public
//! [`Model`](checker::model::Model) implementation on the generic engine).

mod support;

use checker::check::{CheckOptions, ModelKind, check, check_model};
use checker::r#gen::{GenOptions, Mix, generate};
use checker::history::{Function, History, Operation, Outcome};
use checker::model::Kv;
use checker::verdict::Validity;
use proptest::prelude::*;
use serde_json::{Value, json};

/// The kv specification, written out again independently of the checker's: null is
/// absent; an append to absent starts from ""; an append to a non-string fails.
fn step(state: &Value, op: &Operation, knossos: bool) -> Option<Value> {
    match op.f {
        Function::Read if op.outcome == Outcome::Info => Some(state.clone()),
        Function::Read if knossos && op.output.is_null() => Some(state.clone()),
        Function::Read => (op.output == *state).then(|| state.clone()),
        Function::Write => Some(op.input.clone()),
        Function::Cas => (op.input[0] == *state).then(|| op.input[1].clone()),
        Function::Append => match (state, op.input.as_str()) {
            (Value::Null, Some(b)) => Some(json!(b)),
            (Value::String(a), Some(b)) => Some(json!(format!("{a}{b}"))),
            _ => None,
        },
        _ => None,
    }
}

fn oracle(h: &History, initial: &Value, knossos: bool) -> bool {
    support::linearizable(h, initial, &|s, op| step(s, op, knossos))
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
            Mix::Append => match perturb % 7 {
                6 => Value::Null,
                i => json!(["", "x0 1 y", "v1", "v0v1", "v2v0", "x1 3 y"][i as usize]),
            },
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

prop_compose! {
    /// Generated kv histories of at most `max_ops` operations, a read of about half of
    /// them perturbed.
    fn kv_history(max_ops: usize, max_clients: usize, max_keys: usize)(
        seed in any::<u64>(),
        n in 1usize..=max_ops,
        clients in 1usize..=max_clients,
        keys in 1usize..=max_keys,
        mix in 0u8..3,
        unique in any::<bool>(),
        info in prop_oneof![Just(0.0), Just(0.2), Just(0.4)],
        perturb in any::<u64>(),
    ) -> History {
        let domain = if unique { None } else { Some(3) };
        history(seed, &Shape { n, clients, keys, mix: mix_of(mix), domain, info }, perturb)
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn search_agrees_with_brute_force(
        h in kv_history(7, 3, 2),
        knossos in any::<bool>(),
        init in 0u8..3,
    ) {
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
                let v = check(&h, &opts).unwrap();
                let want = if expected { Validity::Linearizable } else { Validity::NotLinearizable };
                prop_assert_eq!(v.valid, want, "fast_path {} all_keys {} history {:#?}", fast_path, all_keys, h.ops);
            }
        }
    }
}

proptest! {
    // Larger histories, each searched twice: fewer cases keep a debug run short.
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    /// The fast engine and the generic search on the plain `Kv` definition agree, on
    /// histories a little larger than the brute force can take.
    #[test]
    fn fast_engine_agrees_with_the_plain_model(
        h in kv_history(24, 4, 3),
        knossos in any::<bool>(),
        init in 0u8..3,
    ) {
        let initial = match init { 0 => Value::Null, 1 => json!(1), _ => json!("") };
        let opts = CheckOptions {
            model: ModelKind::Kv,
            initial: Some(initial.clone()),
            knossos,
            all_keys: true,
            threads: 1,
            ..CheckOptions::default()
        };
        let fast = check(&h, &opts).unwrap();
        let plain = check_model(&h, &Kv { initial, knossos }, &opts).unwrap();
        prop_assert_eq!(fast.valid, plain.valid, "history {:#?}", h.ops);
        for (f, p) in fast.keys.iter().zip(&plain.keys) {
            prop_assert_eq!(&f.key, &p.key);
            prop_assert_eq!(f.valid, p.valid);
        }
    }
}
