//! Histories at the edges, through the command line: each test pins a wrong verdict or
//! a refusal the checker once gave, with the history that showed it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `text` into `dir/name` and returns the path.
fn file(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// The exit status of `checker check PATH ARGS...`.
fn code(path: &str, args: &[&str]) -> (Option<i32>, Output) {
    let mut all = vec!["check", path];
    all.extend_from_slice(args);
    let o = checker(&all);
    (o.status.code(), o)
}

/// One JSONL event.
fn ev(time: Option<u64>, process: u64, kind: &str, f: &str, value: &str) -> String {
    let time = time.map_or(String::new(), |t| format!("\"time\":{t},"));
    format!("{{{time}\"process\":{process},\"type\":\"{kind}\",\"f\":\"{f}\",\"value\":{value}}}\n")
}

/// Jepsen stamps times from many threads: they may go backwards from one line to the
/// next. Line order is the real-time order; the times are only drawn.
#[test]
fn times_going_backwards_between_lines_are_checked_by_line_order() {
    let dir = tempfile::tempdir().unwrap();
    // Process 2 invokes after process 1 in line order, with an earlier time.
    let lines = |stale: &str| {
        [
            ev(Some(100), 0, "invoke", "write", "1"),
            ev(Some(200), 0, "ok", "write", "1"),
            ev(Some(310), 1, "invoke", "read", "null"),
            ev(Some(305), 2, "invoke", "read", "null"),
            ev(Some(400), 1, "ok", "read", "1"),
            ev(Some(401), 2, "ok", "read", stale),
            ev(Some(390), 3, "invoke", "write", "2"),
            ev(Some(420), 3, "ok", "write", "2"),
            ev(Some(415), 4, "invoke", "read", "null"),
            ev(Some(430), 4, "ok", "read", "2"),
        ]
    };
    for (stale, want) in [("1", 0), ("null", 1)] {
        let backwards: String = lines(stale).concat();
        // The same lines with the times made increasing: the verdict must not change.
        let sorted: String = lines(stale)
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let mut v = v.as_object().unwrap().clone();
                v.insert("time".into(), (1000 * (i as u64 + 1)).into());
                format!("{}\n", serde_json::Value::Object(v))
            })
            .collect();
        let b = file(dir.path(), &format!("backwards-{stale}.jsonl"), &backwards);
        let s = file(dir.path(), &format!("sorted-{stale}.jsonl"), &sorted);
        let (got_b, ob) = code(&b, &["--model", "register"]);
        let (got_s, os) = code(&s, &["--model", "register"]);
        assert_eq!(got_s, Some(want), "sorted times: {}", stderr(&os));
        assert_eq!(got_b, Some(want), "backwards times: {}", stderr(&ob));
        // One warning for the whole file, naming the first line where time went back.
        let warn = stderr(&ob);
        assert_eq!(warn.matches("earlier than").count(), 1, "{warn}");
        assert!(warn.contains(":4:"), "{warn}");
        assert!(!stderr(&os).contains("earlier than"));
    }
}

/// The search once used the largest time as "never returned": an ok read stamped
/// 2^64-1 was treated as indeterminate, and a wrong read passed.
#[test]
fn an_ok_stamped_with_the_largest_time_is_not_indeterminate() {
    let dir = tempfile::tempdir().unwrap();
    let text = [
        ev(Some(4), 2, "invoke", "read", "null"),
        ev(Some(u64::MAX), 2, "ok", "read", "2"),
    ]
    .concat();
    let p = file(dir.path(), "max-time.jsonl", &text);
    let (got, o) = code(&p, &["--model", "register"]);
    assert_eq!(got, Some(1), "{}{}", stdout(&o), stderr(&o));
}

/// 2^64 and 2^64+1 once collapsed into one float and compared equal.
#[test]
fn integers_beyond_64_bits_are_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let big = "18446744073709551616";
    let text = [
        ev(None, 0, "invoke", "write", big),
        ev(None, 0, "ok", "write", big),
        ev(None, 0, "invoke", "read", "null"),
        ev(None, 0, "ok", "read", "18446744073709551617"),
    ]
    .concat();
    let p = file(dir.path(), "bigint.jsonl", &text);
    let (got, o) = code(&p, &["--model", "register"]);
    assert_eq!(got, Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains(&format!("{p}:1:")), "{}", stderr(&o));
    assert!(stderr(&o).contains("64 bits"), "{}", stderr(&o));
    // Inside a cas pair, as a key, and negative too.
    for (name, line) in [
        (
            "cas.jsonl",
            r#"{"process":0,"type":"invoke","f":"cas","value":[1,-9223372036854775809]}"#,
        ),
        (
            "key.jsonl",
            r#"{"process":0,"type":"invoke","f":"read","key":99999999999999999999,"value":null}"#,
        ),
    ] {
        let p = file(dir.path(), name, &format!("{line}\n"));
        let (got, o) = code(&p, &["--model", "kv"]);
        assert_eq!(got, Some(3), "{name}: {}", stdout(&o));
        assert!(stderr(&o).contains("64 bits"), "{name}: {}", stderr(&o));
    }
    // EDN bigints that fit are fine; those that do not are refused.
    let edn = "{:process 0 :type :invoke :f :write :value 12N}\n\
               {:process 0 :type :ok :f :write :value 12N}\n\
               {:process 0 :type :invoke :f :read :value nil}\n\
               {:process 0 :type :ok :f :read :value 12}\n";
    let p = file(dir.path(), "fits.edn", edn);
    assert_eq!(code(&p, &["--model", "register"]).0, Some(0));
    let p = file(
        dir.path(),
        "big.edn",
        &edn.replace("12N}", "18446744073709551616N}"),
    );
    let (got, o) = code(&p, &["--model", "register"]);
    assert_eq!(got, Some(3), "{}", stdout(&o));
    assert!(stderr(&o).contains(":1:"), "{}", stderr(&o));
}

/// The key 1 and the key "1" are two keys.
#[test]
fn keys_1_and_string_1_are_different_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{"process":0,"type":"invoke","f":"write","key":1,"value":5}
{"process":0,"type":"ok","f":"write","key":1,"value":5}
{"process":0,"type":"invoke","f":"read","key":"1","value":null}
{"process":0,"type":"ok","f":"read","key":"1","value":null}
"#;
    let p = file(dir.path(), "key-types.jsonl", text);
    let (got, o) = code(&p, &["--model", "kv", "--json"]);
    assert_eq!(got, Some(0), "{}{}", stdout(&o), stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let mut keys: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["key"].to_string())
        .collect();
    keys.sort();
    assert_eq!(keys, ["\"1\"", "1"], "{v}");
    // And the same read of the number key sees the write.
    let p = file(
        dir.path(),
        "same.jsonl",
        &text.replace("\"key\":\"1\"", "\"key\":1"),
    );
    assert_eq!(code(&p, &["--model", "kv"]).0, Some(1));
}

/// In the kv model a key reads as absent (null) until something is written or
/// appended, whether or not the key is ever appended to; "" is the empty string.
#[test]
fn kv_reads_of_the_empty_string_follow_one_rule_for_every_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = |k: &str, kind: &str, f: &str, value: &str| {
        format!(
            "{{\"process\":0,\"type\":\"{kind}\",\"f\":\"{f}\",\"key\":\"{k}\",\"value\":{value}}}\n"
        )
    };
    // Key a: read "" and never appended. Key b: read "" before its first append.
    let never = [
        key("a", "invoke", "read", "null"),
        key("a", "ok", "read", "\"\""),
    ]
    .concat();
    let before = [
        key("b", "invoke", "read", "null"),
        key("b", "ok", "read", "\"\""),
        key("b", "invoke", "append", "\"x\""),
        key("b", "ok", "append", "\"x\""),
    ]
    .concat();
    let never = file(dir.path(), "never.jsonl", &never);
    let before = file(dir.path(), "before.jsonl", &before);
    for (args, want) in [(vec![], 1), (vec!["--initial", "\"\""], 0)] {
        let mut all = vec!["--model", "kv"];
        all.extend(args.iter().copied());
        let (a, oa) = code(&never, &all);
        let (b, ob) = code(&before, &all);
        assert_eq!(a, Some(want), "never appended, {args:?}: {}", stdout(&oa));
        assert_eq!(b, Some(want), "appended later, {args:?}: {}", stdout(&ob));
    }
}

/// A gate must not pass on nothing: no client operation is bad input (exit 3) unless
/// --allow-empty says an empty history is expected.
#[test]
fn a_history_without_client_operations_is_refused_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let empty = file(dir.path(), "empty.jsonl", "");
    let blank = file(dir.path(), "blank.jsonl", "\n \n");
    let nemesis = file(
        dir.path(),
        "nemesis.jsonl",
        "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start\",\"value\":null}\n",
    );
    let named = file(
        dir.path(),
        "named.jsonl",
        "{\"process\":\"a\",\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
         {\"process\":\"a\",\"type\":\"ok\",\"f\":\"read\",\"value\":3}\n",
    );
    let edn = file(dir.path(), "empty.edn", "[]\n");
    for p in [&empty, &blank, &nemesis, &named, &edn] {
        for model in ["register", "kv"] {
            let (got, o) = code(p, &["--model", model]);
            assert_eq!(got, Some(3), "{p} {model}: {}", stdout(&o));
            assert!(
                stderr(&o).contains("no client operations"),
                "{}",
                stderr(&o)
            );
            let (got, o) = code(p, &["--model", model, "--allow-empty"]);
            assert_eq!(got, Some(0), "{p} --allow-empty: {}", stderr(&o));
        }
    }
}

/// `checker check --json | head` once panicked on the closed pipe (exit 101).
#[test]
fn a_reader_that_stops_early_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    // Thousands of keys: far more JSON than a pipe buffers.
    let mut text = String::new();
    for k in 0..6000 {
        text.push_str(&format!(
            "{{\"process\":{k},\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k{k}\",\"value\":{k}}}\n\
             {{\"process\":{k},\"type\":\"ok\",\"f\":\"write\",\"key\":\"k{k}\",\"value\":{k}}}\n"
        ));
    }
    let p = file(dir.path(), "wide.jsonl", &text);
    for extra in [&["--json"][..], &[][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_checker"))
            .args(["check", &p, "--model", "kv"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = child.stdout.take().unwrap();
        let mut first = [0u8; 100];
        out.read_exact(&mut first).unwrap();
        drop(out);
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_ne!(status.code(), Some(101), "{extra:?}: panicked: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
        assert_eq!(
            status.code(),
            Some(0),
            "{extra:?}: the verdict's status: {err}"
        );
    }
}

/// The register model has no cas and no append: such a line is refused, not ignored.
#[test]
fn the_register_model_refuses_cas_and_append_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    for (f, value) in [("cas", "[1,2]"), ("append", "\"x\"")] {
        let text = [
            ev(None, 1, "invoke", "write", "1"),
            ev(None, 1, "ok", "write", "1"),
            ev(None, 0, "invoke", f, value),
            ev(None, 0, "ok", f, value),
        ]
        .concat();
        let p = file(dir.path(), &format!("{f}.jsonl"), &text);
        let (got, o) = code(&p, &["--model", "register"]);
        assert_eq!(got, Some(3), "{f}: {}", stdout(&o));
        let err = stderr(&o);
        assert!(err.contains(&format!("{p}:3:")), "{f}: {err}");
        assert!(err.contains(f) && err.contains("register"), "{f}: {err}");
    }
    // The cas-register model takes cas, not append.
    let p = dir.path().join("append.jsonl").display().to_string();
    assert_eq!(code(&p, &["--model", "cas-register"]).0, Some(3));
    let p = dir.path().join("cas.jsonl").display().to_string();
    assert_eq!(code(&p, &["--model", "cas-register"]).0, Some(0));
}
