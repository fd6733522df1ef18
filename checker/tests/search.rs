//! Budgets end in "unknown", never in a pass; generated histories get the verdict they
//! were built with.

use checker::check::{CheckOptions, check};
use checker::r#gen::{GenOptions, Mix, generate};
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
        )
        .unwrap();
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
    )
    .unwrap();
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
                    )
                    .unwrap();
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

/// A value both put and appended: "append a to the empty state" and "put a" reach the
/// same string, which the trie model must treat as one state.
#[test]
fn a_value_both_put_and_appended_is_one_state() {
    let cases = [
        (vec!["a"], true),
        (vec!["aa"], true),
        (vec!["aa", "a"], false),
        // Both writes are done before the reads: the state can no longer change.
        (vec!["a", "aa"], false),
        (vec!["a", "a"], true),
    ];
    for (reads, ok) in cases {
        // The append and the put are concurrent; the reads follow, one after another.
        let mut text = String::from(
            r#"{"process":0,"type":"invoke","f":"append","value":"a"}
{"process":1,"type":"invoke","f":"write","value":"a"}
{"process":0,"type":"ok","f":"append","value":"a"}
{"process":1,"type":"ok","f":"write","value":"a"}
"#,
        );
        for (i, r) in reads.into_iter().enumerate() {
            let p = 2 + i;
            text.push_str(&format!(
                "{{\"process\":{p},\"type\":\"invoke\",\"f\":\"read\",\"value\":null}}\n\
                 {{\"process\":{p},\"type\":\"ok\",\"f\":\"read\",\"value\":\"{r}\"}}\n"
            ));
        }
        let h = checker::parse::parse_str(&text, "h.jsonl").unwrap();
        for fast_path in [true, false] {
            let v = check(
                &h,
                &CheckOptions {
                    fast_path,
                    ..CheckOptions::default()
                },
            )
            .unwrap();
            let want = if ok {
                Validity::Linearizable
            } else {
                Validity::NotLinearizable
            };
            assert_eq!(v.valid, want, "{:?} fast {fast_path}", h.ops);
        }
    }
}
