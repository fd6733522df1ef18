//! Parsing the reference histories and the validation errors, each named by its line.

use checker::error::{ErrorKind, HistoryError};
use checker::history::{Actor, EventType, Function, History, Key, Outcome};
use checker::parse::{parse_file, parse_str};
use serde_json::json;
use std::path::PathBuf;

fn reference(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/reference")
        .join(rel)
}

fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Every reference history parses; op counts match the invokes in the file, and every
/// completion in the file is paired with its invoke.
#[test]
fn every_reference_history_parses_with_expected_counts() {
    let files = [
        "etcd/etcd_000.edn",
        "etcd/etcd_001.edn",
        "etcd/etcd_002.edn",
        "etcd/etcd_005.edn",
        "etcd/etcd_010.edn",
        "etcd/etcd_018.edn",
        "etcd/etcd_070.edn",
        "etcd/etcd_080.edn",
        "etcd/etcd_090.edn",
        "etcd/etcd_100.edn",
        "kv/c01-bad.edn",
        "kv/c01-ok.edn",
        "kv/c10-bad.edn",
        "kv/c10-ok.edn",
        "kv/c50-bad.edn",
        "kv/c50-ok.edn",
    ];
    for rel in files {
        let path = reference(rel);
        let text = std::fs::read_to_string(&path).unwrap();
        let h = parse_file(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let invokes = count(&text, ":type :invoke");
        let oks = count(&text, ":type :ok");
        let fails = count(&text, ":type :fail");
        let infos = count(&text, ":type :info");
        assert_eq!(h.events.len(), text.lines().count(), "{rel}: events");
        assert_eq!(h.ops.len(), invokes, "{rel}: ops");
        let n = |o: Outcome| h.ops.iter().filter(|op| op.outcome == o).count();
        assert_eq!(n(Outcome::Ok), oks, "{rel}: ok ops");
        assert_eq!(n(Outcome::Fail), fails, "{rel}: fail ops");
        // Info ops: info completions plus invokes never completed.
        assert_eq!(n(Outcome::Info), invokes - oks - fails, "{rel}: info ops");
        assert!(infos <= n(Outcome::Info), "{rel}");
        assert!(
            h.ops
                .windows(2)
                .all(|w| w[0].invoke_event < w[1].invoke_event),
            "{rel}: in invoke order"
        );
        for (i, op) in h.ops.iter().enumerate() {
            assert_eq!(op.id, i);
            assert_eq!(h.events[op.invoke_event].kind, EventType::Invoke);
            assert_eq!(h.events[op.invoke_event].op(), Some(i));
            match op.outcome {
                Outcome::Info => assert!(op.ret.is_none()),
                _ => assert!(op.complete_event.unwrap() > op.invoke_event),
            }
        }
    }
}

#[test]
fn etcd_history_fields() {
    let h = parse_file(&reference("etcd/etcd_000.edn")).unwrap();
    assert!(h.ops.iter().all(|op| op.key.is_none()));
    let cas = h.ops.iter().find(|op| op.f == Function::Cas).unwrap();
    assert!(cas.input.as_array().is_some_and(|a| a.len() == 2));
    let info = h
        .ops
        .iter()
        .find(|op| op.outcome == Outcome::Info && op.complete_event.is_some())
        .unwrap();
    let done = &h.events[info.complete_event.unwrap()];
    assert_eq!(done.kind, EventType::Info);
    assert_eq!(done.op(), Some(info.id));
    assert_eq!(h.events[0].line, 1);
    assert_eq!(h.events[0].index, 0);
}

#[test]
fn kv_history_uses_keys_and_aliases() {
    let h = parse_file(&reference("kv/c10-ok.edn")).unwrap();
    assert!(h.ops.iter().all(|op| op.key.is_some()));
    assert!(h.ops.iter().any(|op| op.f == Function::Read));
    assert!(h.ops.iter().any(|op| op.f == Function::Append));
    assert!(h.ops.iter().all(|op| op.outcome == Outcome::Ok));
}

/// Writes a history as JSONL, the native format.
fn to_jsonl(h: &History) -> String {
    let mut out = Vec::new();
    h.write_jsonl(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn jsonl_and_edn_of_the_same_history_give_the_same_ops() {
    for rel in ["etcd/etcd_001.edn", "kv/c10-bad.edn", "kv/c01-ok.edn"] {
        let edn = parse_file(&reference(rel)).unwrap();
        let jsonl = parse_str(&to_jsonl(&edn), "x.jsonl").unwrap();
        assert_eq!(edn.ops, jsonl.ops, "{rel}");
    }
}

#[test]
fn edn_vector_form_and_tagged_maps_and_independent_tuples() {
    let text = "; Knossos style\n[{:process 0, :type :invoke, :f :write, :value [\"a\" 3N]}\n\
                #jepsen.history.Op{:process 0, :type :ok, :f :write, :value [\"a\" 3]}\n\
                {:process :nemesis, :type :info, :f :start, :value #{:n1 :n2}}\n\
                {:process 1, :type :invoke, :f :cas, :value [\"a\" [3 4]]}\n\
                {:process 1, :type :fail, :f :cas, :value [\"a\" [3 4]], :error :cas-mismatch}\n\
                {:process 2, :type :invoke, :f :read, :value [\"b\" nil]}\n\
                ]\n";
    let h = parse_str(text, "k.edn").unwrap();
    assert_eq!(h.events.len(), 6);
    assert!(matches!(&h.events[2].actor, Actor::Other(o) if o.process == "nemesis"));
    assert_eq!(h.ops.len(), 3);
    assert_eq!(h.ops[0].key, Some(Key::from("a")));
    assert_eq!(h.ops[0].input, json!(3));
    assert_eq!(h.ops[1].input, json!([3, 4]));
    assert_eq!(h.ops[1].outcome, Outcome::Fail);
    assert_eq!(h.ops[2].key, Some(Key::from("b")));
    assert_eq!(h.ops[2].outcome, Outcome::Info);
    assert_eq!(h.ops[2].ret, None);
    assert_eq!(h.events[3].line, 5);
}

#[test]
fn jsonl_with_times_aliases_and_nemesis() {
    let text = r#"{"index":0,"time":1203,"process":0,"type":"invoke","f":"put","key":"k3","value":4}
{"index":1,"time":5120,"process":0,"type":"ok","f":"put","key":"k3","value":4}

{"index":2,"time":5300,"process":1,"type":"invoke","f":"cas","key":"k3","value":[4,7]}
{"index":3,"time":9001,"process":1,"type":"fail","f":"cas","key":"k3","value":[4,7],"error":"cas_mismatch"}
{"index":4,"time":9100,"process":"nemesis","type":"info","f":"partition-start","value":{"grudge":"majorities-ring"}}
{"index":5,"time":9200,"process":2,"type":"invoke","f":"get","key":"k3","value":null}
{"index":6,"time":9300,"process":2,"type":"ok","f":"get","key":"k3","value":4}
"#;
    let h = parse_str(text, "a.jsonl").unwrap();
    assert_eq!(h.events.len(), 7);
    assert_eq!(h.events[4].line, 6);
    assert_eq!(h.ops.len(), 3);
    assert_eq!(
        (&h.ops[0].f, h.ops[0].call, h.ops[0].ret),
        (&Function::Write, 1203, Some(5120))
    );
    assert_eq!(h.ops[1].outcome, Outcome::Fail);
    assert_eq!(h.ops[2].f, Function::Read);
    assert_eq!(h.ops[2].output, json!(4));
    assert_eq!(h.ops[2].invoke_event, 5);
}

fn error_of(text: &str) -> HistoryError {
    match parse_str(text, "h.jsonl") {
        Ok(h) => panic!("accepted: {h:?}"),
        Err(e) => e,
    }
}

const W0: &str = r#"{"process":0,"type":"invoke","f":"write","value":1}"#;
const W0_OK: &str = r#"{"process":0,"type":"ok","f":"write","value":1}"#;

#[test]
fn validation_errors_name_the_line() {
    type Case = (String, usize, fn(&ErrorKind) -> bool);
    let cases: Vec<Case> = vec![
        (format!("{W0}\n{{\"process\":0,"), 2, |k| {
            matches!(k, ErrorKind::BadJson(_))
        }),
        (W0_OK.to_string(), 1, |k| {
            matches!(k, ErrorKind::CompletionWithoutInvoke { process: 0 })
        }),
        (format!("{W0}\n\n{W0}"), 3, |k| {
            matches!(
                k,
                ErrorKind::TwoOutstanding {
                    process: 0,
                    first_line: 1
                }
            )
        }),
        (
            format!("{W0}\n{{\"process\":0,\"type\":\"info\",\"f\":\"write\"}}\n{W0}"),
            3,
            |k| {
                matches!(
                    k,
                    ErrorKind::ReusedAfterInfo {
                        process: 0,
                        info_line: 2
                    }
                )
            },
        ),
        (
            r#"{"process":0,"type":"done","f":"write","value":1}"#.to_string(),
            1,
            |k| matches!(k, ErrorKind::UnknownType(t) if t == "done"),
        ),
        (
            format!(
                "{W0}\n{W0_OK}\n{}",
                r#"{"process":0,"type":"invoke","f":"write","value":18446744073709551616}"#
            ),
            3,
            |k| matches!(k, ErrorKind::BigInteger(n) if n == "18446744073709551616"),
        ),
        (
            r#"{"process":0,"f":"write","value":1}"#.to_string(),
            1,
            |k| matches!(k, ErrorKind::MissingField("type")),
        ),
        (
            r#"{"process":0,"type":"invoke","f":"write"}"#.to_string(),
            1,
            |k| matches!(k, ErrorKind::MissingField("value")),
        ),
        (
            r#"{"process":0,"type":"invoke","f":"cas","value":3}"#.to_string(),
            1,
            |k| matches!(k, ErrorKind::BadField { field: "value", .. }),
        ),
        (
            r#"{"process":0,"type":"invoke","f":"cas","value":[1,2,3]}"#.to_string(),
            1,
            |k| matches!(k, ErrorKind::BadField { field: "value", .. }),
        ),
        (
            r#"{"process":-1,"type":"invoke","f":"read"}"#.to_string(),
            1,
            |k| {
                matches!(
                    k,
                    ErrorKind::BadField {
                        field: "process",
                        ..
                    }
                )
            },
        ),
        (
            format!(
                "{W0}\n{}",
                r#"{"process":0,"type":"ok","f":"read","value":1}"#
            ),
            2,
            |k| matches!(k, ErrorKind::Mismatch { invoke_line: 1, .. }),
        ),
        (
            format!(
                "{}\n{W0_OK}",
                r#"{"time":5,"process":0,"type":"invoke","f":"write","value":1}"#
            ),
            2,
            |k| matches!(k, ErrorKind::MixedTimes(_)),
        ),
        ("hello".to_string(), 1, |k| {
            matches!(k, ErrorKind::UnknownFormat(_))
        }),
        (format!("{W0}\n[1]"), 2, |k| {
            matches!(k, ErrorKind::NotAMap(_))
        }),
    ];
    for (text, line, pred) in cases {
        let e = error_of(&text);
        assert_eq!(e.line, line, "{text:?}: {e}");
        assert!(pred(&e.kind), "{text:?}: {e}");
        assert!(
            e.to_string().starts_with(&format!("h.jsonl:{line}: ")),
            "{e}"
        );
    }
}

#[test]
fn edn_errors_name_the_line() {
    let cases = [
        (
            "{:process 0, :type :invoke, :f :read}\n{:process 0 :type}\n",
            2,
        ),
        (
            "{:process 0, :type :invoke, :f :read}\n{:process 1,\n :type :invoke, :f :write}\n",
            2,
        ),
        (
            "[{:process 0, :type :invoke, :f :read}\n{:process 0, :type :ok, :f :read, :value 1}\n",
            1,
        ),
        (
            "{:process 0, :type :invoke, :f :read}\n{:process 0, :type :invoke, :f :read\n",
            2,
        ),
        (
            "{:process 0, :type :invoke, :f :read}\n\n{:process 0, :type :ok, :f :read, :value \"x}\n",
            3,
        ),
        ("{:process 0, :type :invoke, :f :cas, :value 1}\n", 1),
        ("{:process 0, :type :invoke, :f :read}\n}\n", 2),
        ("[]\n{:process 0, :type :invoke, :f :read}\n", 2),
    ];
    for (text, line) in cases {
        let e = parse_str(text, "h.edn").expect_err(text);
        assert_eq!(e.line, line, "{text:?}: {e}");
    }
    let deep = format!("{}{}", "{:a ".repeat(100), "}".repeat(100));
    let e = parse_str(&deep, "h.edn").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::TooDeep { .. }), "{e}");
}

#[test]
fn empty_input_is_an_empty_history() {
    assert_eq!(parse_str("", "e.jsonl").unwrap(), History::default());
    assert_eq!(parse_str("\n  \n", "e.jsonl").unwrap(), History::default());
}

/// Line order is the real-time order: times that go backwards are read as they are,
/// with one warning for the file.
#[test]
fn times_going_backwards_are_kept_with_one_warning() {
    let text = [
        r#"{"time":5,"process":0,"type":"invoke","f":"read"}"#,
        r#"{"time":4,"process":0,"type":"ok","f":"read","value":1}"#,
        r#"{"time":9,"process":1,"type":"invoke","f":"read"}"#,
        r#"{"time":2,"process":1,"type":"ok","f":"read","value":1}"#,
    ]
    .join("\n");
    let h = parse_str(&text, "t.jsonl").unwrap();
    assert_eq!((h.ops[0].call, h.ops[0].ret), (5, Some(4)));
    assert_eq!(
        (h.ops[1].invoke_event, h.ops[1].complete_event),
        (2, Some(3))
    );
    assert!(h.ops[0].precedes(&h.ops[1]));
    assert_eq!(h.warnings.len(), 1, "{:?}", h.warnings);
    assert_eq!(h.warnings[0].line, 2);
    assert!(
        h.warnings[0].message.contains("2 lines in all"),
        "{:?}",
        h.warnings
    );
}

/// Any `f` is read: the model decides whether it takes it.
#[test]
fn functions_of_every_model_and_any_other_name_are_read() {
    let text = [
        r#"{"process":0,"type":"invoke","f":"acquire","value":null}"#,
        r#"{"process":0,"type":"ok","f":"acquire","value":null}"#,
        r#"{"process":0,"type":"invoke","f":"enqueue","key":"q","value":{"b":1,"a":[2]}}"#,
        r#"{"process":0,"type":"ok","f":"enqueue","key":"q","value":{"b":1,"a":[2]}}"#,
        r#"{"process":0,"type":"invoke","f":"dequeue","key":"q","value":null}"#,
        r#"{"process":0,"type":"ok","f":"dequeue","key":"q","value":{"a":[2],"b":1}}"#,
        r#"{"process":0,"type":"invoke","f":"incr","key":"c","value":2}"#,
        r#"{"process":0,"type":"info","f":"incr","key":"c","value":2}"#,
    ]
    .join("\n");
    let h = parse_str(&text, "f.jsonl").unwrap();
    let fs: Vec<&Function> = h.ops.iter().map(|o| &o.f).collect();
    assert_eq!(
        fs,
        [
            &Function::Acquire,
            &Function::Enqueue,
            &Function::Dequeue,
            &Function::Other("incr".into())
        ]
    );
    assert_eq!(h.ops[2].input, json!(null));
    assert_eq!(h.ops[2].output, json!({"a": [2], "b": 1}));
    assert_eq!(h.ops[3].input, json!(2));
    assert_eq!(h.ops[3].outcome, Outcome::Info);
    // A dequeue's ok must say what it took.
    let e = error_of(&text.replace(
        r#""f":"dequeue","key":"q","value":{"a":[2],"b":1}}"#,
        r#""f":"dequeue","key":"q"}"#,
    ));
    assert!(matches!(e.kind, ErrorKind::MissingField("value")), "{e}");
    assert_eq!(e.line, 6);
}

/// Keys keep their JSON type: 1 and "1" are two keys, and a key that is a list is a key.
#[test]
fn keys_keep_their_type() {
    let text = [
        r#"{"process":0,"type":"invoke","f":"read","key":1,"value":null}"#,
        r#"{"process":0,"type":"ok","f":"read","key":1,"value":null}"#,
        r#"{"process":0,"type":"invoke","f":"read","key":"1","value":null}"#,
        r#"{"process":0,"type":"ok","f":"read","key":"1","value":null}"#,
        r#"{"process":0,"type":"invoke","f":"read","key":[1, "a"],"value":null}"#,
        r#"{"process":0,"type":"ok","f":"read","key":[1,"a"],"value":null}"#,
    ]
    .join("\n");
    let h = parse_str(&text, "k.jsonl").unwrap();
    assert_eq!(h.ops[0].key, Some(Key::Json("1".into())));
    assert_eq!(h.ops[1].key, Some(Key::from("1")));
    assert_eq!(h.ops[2].key, Some(Key::Json("[1,\"a\"]".into())));
    assert_ne!(h.ops[0].key, h.ops[1].key);
    assert_eq!(
        format!(
            "{:?} {:?}",
            h.ops[0].key.as_ref().unwrap(),
            h.ops[1].key.as_ref().unwrap()
        ),
        "1 \"1\""
    );
    // A completion naming the other key is refused.
    let e = error_of(&text.replace(
        r#""type":"ok","f":"read","key":"1""#,
        r#""type":"ok","f":"read","key":1"#,
    ));
    assert!(matches!(e.kind, ErrorKind::Mismatch { .. }), "{e}");
}

#[test]
fn unfinished_invoke_is_info() {
    let h = parse_str(W0, "h.jsonl").unwrap();
    assert_eq!(h.ops[0].outcome, Outcome::Info);
    assert_eq!(h.ops[0].ret, None);
    assert_eq!(h.ops[0].complete_event, None);
}

#[test]
fn value_literals_read_json_or_edn() {
    use checker::parse::value_literal;
    assert_eq!(value_literal("\"\"").unwrap(), json!(""));
    assert_eq!(value_literal("nil").unwrap(), json!(null));
    assert_eq!(value_literal("[1 :a]").unwrap(), json!([1, "a"]));
    assert!(value_literal("[1").is_err());
    assert!(matches!(
        value_literal("18446744073709551616"),
        Err(ErrorKind::BigInteger(_))
    ));
    assert!(matches!(
        value_literal("[1 18446744073709551616N]"),
        Err(ErrorKind::BigInteger(_))
    ));
}

/// A file larger than one read block is read in blocks on several threads; the history
/// is the same as one read whole, and an error deep in it names its line.
#[test]
fn large_inputs_are_read_in_blocks_with_the_same_result() {
    let h = checker::r#gen::generate(&checker::r#gen::GenOptions {
        seed: 9,
        ops: 40_000,
        keys: 50,
        clients: 30,
        ..Default::default()
    });
    let mut text = Vec::new();
    h.write_jsonl(&mut text).unwrap();
    assert!(text.len() > 3 << 20, "{} bytes", text.len());
    let again = checker::parse::parse_reader(&text[..], "big.jsonl").unwrap();
    assert_eq!(again.ops, h.ops);
    assert_eq!(again.events, h.events);
    // Break a line far in: the error names it.
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    let mut broken = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if i == 70_000 {
            broken.extend_from_slice(b"{\"process\":");
        } else {
            broken.extend_from_slice(l);
        }
        broken.push(b'\n');
    }
    let e = checker::parse::parse_reader(&broken[..], "big.jsonl").unwrap_err();
    assert_eq!(e.line, 70_001, "{e}");
    // Same for EDN, written from the same events.
    let mut edn = Vec::new();
    h.write_edn(&mut edn).unwrap();
    let edn = String::from_utf8(edn).unwrap();
    let from_edn = parse_str(&edn, "big.edn").unwrap();
    assert_eq!(from_edn.ops, h.ops);
}
