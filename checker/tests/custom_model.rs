//! A model written only against the public API, as a library user would: a counter
//! with `incr N` and `read`, one per key. The search, the partition by key, the
//! budgets, explanations and the report all work for it.

use checker::check::{CheckOptions, check_model};
use checker::history::{Function, Operation, Outcome};
use checker::model::Model;
use checker::verdict::Validity;
use serde_json::{Value, json};

struct Counter;

impl Model for Counter {
    type State = i64;

    fn name(&self) -> &str {
        "counter"
    }

    fn validate(&self, op: &Operation) -> Result<(), String> {
        match &op.f {
            Function::Other(f) if &**f == "incr" && op.input.is_i64() => Ok(()),
            Function::Read => Ok(()),
            f => Err(format!("the counter takes incr N and read, not {f}")),
        }
    }

    fn init(&self) -> i64 {
        0
    }

    fn step(&self, total: &i64, op: &Operation) -> Option<i64> {
        match &op.f {
            Function::Read if op.outcome == Outcome::Info => Some(*total),
            Function::Read => (op.output.as_i64() == Some(*total)).then_some(*total),
            _ => total.checked_add(op.input.as_i64()?),
        }
    }

    fn is_read_only(&self, op: &Operation) -> bool {
        op.f == Function::Read
    }

    fn describe(&self, total: &i64) -> Value {
        json!({ "total": total })
    }
}

fn ev(p: u64, kind: &str, f: &str, key: &str, value: Value) -> String {
    format!(
        "{}\n",
        json!({"process": p, "type": kind, "f": f, "key": key, "value": value})
    )
}

/// Two keys: on `a` concurrent increments and reads that fit; on `b` a read that sees
/// an increment never made.
fn history(bad: bool) -> String {
    let seen_b = if bad { 5 } else { 3 };
    [
        ev(0, "invoke", "incr", "a", json!(2)),
        ev(1, "invoke", "incr", "a", json!(3)),
        ev(2, "invoke", "read", "a", Value::Null),
        ev(0, "ok", "incr", "a", json!(2)),
        ev(2, "ok", "read", "a", json!(3)),
        ev(1, "ok", "incr", "a", json!(3)),
        ev(3, "invoke", "incr", "a", json!(10)),
        ev(3, "info", "incr", "a", json!(10)),
        ev(2, "invoke", "read", "a", Value::Null),
        ev(2, "ok", "read", "a", json!(15)),
        ev(4, "invoke", "incr", "b", json!(1)),
        ev(4, "ok", "incr", "b", json!(1)),
        ev(4, "invoke", "incr", "b", json!(2)),
        ev(4, "ok", "incr", "b", json!(2)),
        ev(5, "invoke", "read", "b", Value::Null),
        ev(5, "ok", "read", "b", json!(seen_b)),
    ]
    .concat()
}

fn options() -> CheckOptions {
    CheckOptions {
        all_keys: true,
        ..CheckOptions::default()
    }
}

#[test]
fn a_model_written_against_the_public_api_is_checked() {
    let h = checker::parse::parse_str(&history(false), "counter.jsonl").unwrap();
    let v = check_model(&h, &Counter, &options()).unwrap();
    assert_eq!(v.valid, Validity::Linearizable, "{v:?}");
    assert_eq!(v.model, "counter");
    assert_eq!(v.keys.len(), 2, "one partition per key");
}

#[test]
fn its_violations_are_explained_with_its_own_states_and_reported() {
    let h = checker::parse::parse_str(&history(true), "counter.jsonl").unwrap();
    let v = check_model(&h, &Counter, &options()).unwrap();
    assert_eq!(v.valid, Validity::NotLinearizable);
    let bad: Vec<_> = v
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
        .collect();
    assert_eq!(bad.len(), 1);
    assert_eq!(
        bad[0].key.as_ref().map(|k| k.to_string()).as_deref(),
        Some("b")
    );
    let cx = bad[0].counterexample.as_ref().expect("explained");
    assert_eq!(cx.state_before, json!({"total": 3}));
    assert_eq!(cx.states.last(), Some(&json!({"total": 3})));
    let stuck = &h.ops[cx.stuck[0]];
    assert_eq!((stuck.f.name(), &stuck.output), ("read", &json!(5)));
    let dir = tempfile::tempdir().unwrap();
    let page = checker::report::write_report(dir.path(), &h, &v, None).unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("class=\"banner bad\""));
    assert!(html.contains("read → 5"), "the stuck read is drawn");
}

#[test]
fn its_refusals_name_the_line() {
    let text = history(false).replace("\"incr\",\"key\":\"b\"", "\"decr\",\"key\":\"b\"");
    let h = checker::parse::parse_str(&text, "counter.jsonl").unwrap();
    let e = check_model(&h, &Counter, &options()).unwrap_err();
    assert_eq!(e.line, 11, "{e}");
    assert!(e.to_string().contains("not decr"), "{e}");
}

/// Twenty concurrent increments and a read no order explains: the search must look at
/// every subset, far more than a tiny budget allows.
#[test]
fn its_budgets_end_in_unknown() {
    let mut text = String::new();
    for p in 0..20 {
        text.push_str(&ev(p, "invoke", "incr", "a", json!(1 << p)));
    }
    text.push_str(&ev(99, "invoke", "read", "a", Value::Null));
    text.push_str(&ev(99, "ok", "read", "a", json!(-1)));
    for p in 0..20 {
        text.push_str(&ev(p, "ok", "incr", "a", json!(1 << p)));
    }
    let h = checker::parse::parse_str(&text, "counter.jsonl").unwrap();
    let v = check_model(
        &h,
        &Counter,
        &CheckOptions {
            memory_limit_bytes: 0,
            ..options()
        },
    )
    .unwrap();
    assert_eq!(v.valid, Validity::Unknown, "{v:?}");
    assert_eq!(v.keys[0].reason.as_deref(), Some("memory budget exhausted"));
}
