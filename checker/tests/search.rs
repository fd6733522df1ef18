//! Budgets end in "unknown", never in a pass; generated histories get the verdict they
//! were built with.

use checker::check::{CheckOptions, check};
use checker::r#gen::{GenOptions, Mix, generate};
use checker::history::{Function, History, Operation, Outcome};
use checker::verdict::Validity;
use std::time::Duration;

/// A hard history: one key, many clients, colliding values, many indeterminate ops.
fn hard(violation: bool) -> checker::history::History {
    generate(&GenOptions {
        seed: 3,
        ops: 3000,
        keys: 1,
        clients: 40,
        mix: Mix::Register,
        info_rate: 0.3,
        value_domain: Some(4),
        inject_violation: violation,
        ..GenOptions::default()
    })
}

#[test]
fn a_tiny_memory_budget_never_passes() {
    for violation in [false, true] {
        let v = check(
            &hard(violation),
            &CheckOptions {
                memory_limit_bytes: 1,
                fast_path: false,
                ..CheckOptions::default()
            },
        );
        assert_ne!(v.valid, Validity::Linearizable);
        if v.valid == Validity::Unknown {
            assert!(v.keys[0].reason.is_some());
        }
    }
}

#[test]
fn a_tiny_time_limit_never_passes() {
    let v = check(
        &hard(false),
        &CheckOptions {
            time_limit: Some(Duration::from_nanos(1)),
            fast_path: false,
            ..CheckOptions::default()
        },
    );
    assert_ne!(v.valid, Validity::Linearizable);
}

#[test]
fn generated_histories_get_their_verdicts() {
    for mix in [Mix::Register, Mix::Cas, Mix::Append] {
        for seed in 0..5 {
            for violation in [false, true] {
                let h = generate(&GenOptions {
                    seed,
                    ops: 4000,
                    keys: 20,
                    clients: 30,
                    mix,
                    inject_violation: violation,
                    ..GenOptions::default()
                });
                for fast_path in [true, false] {
                    let v = check(
                        &h,
                        &CheckOptions {
                            fast_path,
                            all_keys: true,
                            ..CheckOptions::default()
                        },
                    );
                    let want = if violation {
                        Validity::NotLinearizable
                    } else {
                        Validity::Linearizable
                    };
                    assert_eq!(v.valid, want, "{mix:?} seed {seed} fast {fast_path}");
                    let failing = v
                        .keys
                        .iter()
                        .filter(|k| k.valid == Validity::NotLinearizable)
                        .count();
                    assert_eq!(failing, usize::from(violation));
                }
            }
        }
    }
}

fn op(
    id: usize,
    f: Function,
    input: serde_json::Value,
    output: serde_json::Value,
    call: u64,
    ret: u64,
) -> Operation {
    Operation {
        id,
        process: id as u64,
        f,
        key: None,
        input,
        output,
        outcome: Outcome::Ok,
        call,
        ret: Some(ret),
        invoke_event: 2 * id,
        complete_event: Some(2 * id + 1),
    }
}

/// A value both put and appended: "append a to the empty state" and "put a" reach the
/// same string, which the trie model must treat as one state.
#[test]
fn a_value_both_put_and_appended_is_one_state() {
    use serde_json::{Value, json};
    let cases = [
        (vec![json!("a")], true),
        (vec![json!("aa")], true),
        (vec![json!("aa"), json!("a")], false),
        // Both writes are done before the reads: the state can no longer change.
        (vec![json!("a"), json!("aa")], false),
        (vec![json!("a"), json!("a")], true),
    ];
    for (reads, ok) in cases {
        let mut ops = vec![
            op(0, Function::Append, json!("a"), Value::Null, 0, 10),
            op(1, Function::Write, json!("a"), Value::Null, 0, 10),
        ];
        for (i, r) in reads.into_iter().enumerate() {
            let t = 11 + 2 * i as u64;
            ops.push(op(2 + i, Function::Read, Value::Null, r, t, t + 1));
        }
        let h = History {
            events: Vec::new(),
            ops,
        };
        for fast_path in [true, false] {
            let v = check(
                &h,
                &CheckOptions {
                    fast_path,
                    ..CheckOptions::default()
                },
            );
            let want = if ok {
                Validity::Linearizable
            } else {
                Validity::NotLinearizable
            };
            assert_eq!(v.valid, want, "{:?} fast {fast_path}", h.ops);
        }
    }
}
