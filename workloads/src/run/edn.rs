//! `history.edn`: the recorded history in Jepsen's format, beside `history.jsonl`, so
//! Jepsen, Knossos and Elle users can take a run into their tools.
//!
//! One op map per line, as Jepsen writes it:
//!
//! ```edn
//! {:f :write, :index 0, :process 0, :time 1203, :type :invoke, :value ["k3" 4]}
//! {:f :partition-start, :index 4, :process :nemesis, :time 9100, :type :info, :value {:grudge "bridge"}}
//! ```
//!
//! Keys travel as jepsen.independent `[key value]` tuples (a cas value is
//! `[key [from to]]`), which is what Knossos's and Elle's independent checkers take.
//! JSON values become EDN: objects maps (keyword keys where the key is a plain
//! identifier), arrays vectors, null `nil`. The maps are printed by edn-format, so
//! strings are escaped as EDN wants.

use super::recorder::{Record, Who};
use checker::history::EventType;
use edn_format::{Keyword, Value as Edn};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

fn kw(name: &str) -> Edn {
    Edn::Keyword(Keyword::from_name(name))
}

/// Whether `s` can be written as a keyword as it is.
fn keyword_safe(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '?' | '!' | '*'))
}

/// A JSON value as EDN (see the module documentation).
pub fn json_to_edn(v: &Value) -> Edn {
    match v {
        Value::Null => Edn::Nil,
        Value::Bool(b) => Edn::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Edn::Integer(i)
            } else if let Some(u) = n.as_u64() {
                edn_format::parse_str(&format!("{u}N")).unwrap_or(Edn::String(u.to_string()))
            } else {
                Edn::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Edn::String(s.clone()),
        Value::Array(xs) => Edn::Vector(xs.iter().map(json_to_edn).collect()),
        Value::Object(m) => Edn::Map(
            m.iter()
                .map(|(k, v)| {
                    let key = if keyword_safe(k) {
                        kw(k)
                    } else {
                        Edn::String(k.clone())
                    };
                    (key, json_to_edn(v))
                })
                .collect(),
        ),
    }
}

fn type_name(t: EventType) -> &'static str {
    match t {
        EventType::Invoke => "invoke",
        EventType::Ok => "ok",
        EventType::Fail => "fail",
        EventType::Info => "info",
    }
}

/// One record as a Jepsen op map.
pub fn to_edn(r: &Record) -> Edn {
    let mut m = BTreeMap::new();
    m.insert(kw("index"), Edn::Integer(r.index as i64));
    m.insert(
        kw("time"),
        Edn::Integer(i64::try_from(r.time_ns).unwrap_or(i64::MAX)),
    );
    m.insert(kw("type"), kw(type_name(r.kind)));
    m.insert(
        kw("process"),
        match r.who {
            Who::Client(p) => Edn::Integer(i64::try_from(p).unwrap_or(i64::MAX)),
            Who::Nemesis => kw("nemesis"),
        },
    );
    m.insert(
        kw("f"),
        if keyword_safe(&r.f) {
            kw(&r.f)
        } else {
            Edn::String(r.f.clone())
        },
    );
    let value = json_to_edn(&r.value);
    m.insert(
        kw("value"),
        match &r.key {
            Some(k) => Edn::Vector(vec![Edn::String(k.clone()), value]),
            None => value,
        },
    );
    if let Some(e) = &r.error {
        m.insert(
            kw("error"),
            if keyword_safe(e) {
                kw(e)
            } else {
                Edn::String(e.clone())
            },
        );
    }
    Edn::Map(m)
}

/// Writes records as Jepsen's `history.edn`, one op map per line.
pub fn write_edn(path: &Path, records: &[Record]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    for r in records {
        out.write_all(edn_format::emit_str(&to_edn(r)).as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::recorder::{Recorder, write_jsonl};
    use checker::check::{CheckOptions, ModelKind, check};
    use serde_json::json;
    use std::time::Instant;

    fn record(rec: &Recorder, p: u64, t: EventType, f: &str, key: &str, v: Value) {
        let err = (t == EventType::Fail).then_some("cas_mismatch");
        rec.record(Who::Client(p), t, f, Some(key), v, err);
    }

    /// A history with one stale read on `b` and a clean key `a`, with a nemesis
    /// event, an info and a cas mismatch.
    fn history() -> Recorder {
        let rec = Recorder::new(Instant::now());
        record(&rec, 0, EventType::Invoke, "write", "a", json!(1));
        record(&rec, 0, EventType::Ok, "write", "a", json!(1));
        rec.record(
            Who::Nemesis,
            EventType::Info,
            "partition-start",
            None,
            json!({"grudge": "isolate-leader", "cut": [[1, 2]], "minority": [1], "odd key": "x \"q\""}),
            None,
        );
        record(&rec, 1, EventType::Invoke, "write", "b", json!(5));
        record(&rec, 1, EventType::Ok, "write", "b", json!(5));
        record(&rec, 2, EventType::Invoke, "write", "b", json!(6));
        record(&rec, 2, EventType::Ok, "write", "b", json!(6));
        record(&rec, 3, EventType::Invoke, "read", "b", Value::Null);
        record(&rec, 3, EventType::Ok, "read", "b", json!(5));
        record(&rec, 4, EventType::Invoke, "cas", "a", json!([null, 3]));
        record(&rec, 4, EventType::Fail, "cas", "a", json!([null, 3]));
        record(&rec, 5, EventType::Invoke, "cas", "a", json!([1, 2]));
        rec.record(
            Who::Client(5),
            EventType::Info,
            "cas",
            Some("a"),
            json!([1, 2]),
            Some("etcdserver: request timed out"),
        );
        record(&rec, 6, EventType::Invoke, "read", "a", Value::Null);
        record(&rec, 6, EventType::Ok, "read", "a", json!(2));
        rec
    }

    #[test]
    fn lines_are_jepsen_op_maps() {
        let rec = history();
        let lines: Vec<String> = rec
            .snapshot()
            .iter()
            .map(|r| edn_format::emit_str(&to_edn(r)))
            .collect();
        assert_eq!(
            lines[0],
            "{:f :write :index 0 :process 0 :time TIME :type :invoke :value [\"a\" 1]}"
                .replace("TIME", &rec.snapshot()[0].time_ns.to_string())
        );
        assert!(lines[2].contains(":process :nemesis"), "{}", lines[2]);
        assert!(
            lines[2].contains(":grudge \"isolate-leader\""),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains("\"odd key\" \"x \\\"q\\\"\""),
            "{}",
            lines[2]
        );
        assert!(lines[9].contains(":value [\"a\" [nil 3]]"), "{}", lines[9]);
        assert!(lines[10].contains(":error :cas_mismatch"), "{}", lines[10]);
        assert!(
            lines[12].contains(":error \"etcdserver: request timed out\""),
            "{}",
            lines[12]
        );
    }

    #[test]
    fn the_checker_reads_it_back_to_the_same_verdict() {
        let dir = tempfile::tempdir().expect("tmp");
        let rec = history();
        let (jsonl, edn) = (
            dir.path().join("history.jsonl"),
            dir.path().join("history.edn"),
        );
        write_jsonl(&jsonl, &rec.snapshot()).expect("jsonl");
        write_edn(&edn, &rec.snapshot()).expect("edn");
        let opts = CheckOptions {
            model: ModelKind::Kv,
            all_keys: true,
            ..CheckOptions::default()
        };
        let from_jsonl = checker::parse::parse_file(&jsonl).expect("jsonl parses");
        let from_edn = checker::parse::parse_file(&edn).expect("edn parses");
        assert_eq!(from_edn.ops.len(), from_jsonl.ops.len());
        for (a, b) in from_edn.ops.iter().zip(&from_jsonl.ops) {
            assert_eq!(
                (&a.key, &a.input, &a.output, a.outcome, a.call, a.ret),
                (&b.key, &b.input, &b.output, b.outcome, b.call, b.ret)
            );
        }
        let (v1, v2) = (
            check(&from_jsonl, &opts).expect("jsonl checks"),
            check(&from_edn, &opts).expect("edn checks"),
        );
        assert_eq!(v1.valid, checker::verdict::Validity::NotLinearizable);
        assert_eq!(v2.valid, v1.valid);
        let keys = |v: &checker::verdict::Verdict| {
            v.keys
                .iter()
                .map(|k| (k.key.clone(), k.valid))
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&v2), keys(&v1));
    }
}
