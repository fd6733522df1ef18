//! The command line as a user sees it: exit statuses and messages.

use std::path::PathBuf;
use std::process::{Command, Output};

fn checker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(args)
        .output()
        .unwrap()
}

fn testdata(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
        .display()
        .to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn usage_errors_exit_3_not_2() {
    for args in [
        vec![],
        vec!["check"],
        vec!["frobnicate"],
        vec!["check", "x.jsonl", "--model", "btree"],
        vec!["check", "x.jsonl", "--time-limit", "soon"],
        vec!["check", "x.jsonl", "--no-such-flag"],
    ] {
        let o = checker(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).is_empty(), "{args:?}");
    }
}

#[test]
fn help_and_version_exit_0() {
    for flag in ["--help", "--version"] {
        let o = checker(&[flag]);
        assert_eq!(o.status.code(), Some(0), "{flag}");
        assert!(!o.stdout.is_empty());
    }
}

#[test]
fn bad_option_values_exit_3() {
    let h = testdata("reference/kv/c01-ok.edn");
    for args in [
        vec!["check", &h, "--time-limit", "0"],
        vec!["check", &h, "--time-limit", "NaN"],
        vec!["check", &h, "--initial", "[1"],
    ] {
        let o = checker(&args);
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn missing_file_exits_3_naming_it() {
    let o = checker(&["check", "/nonexistent/history.jsonl"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("/nonexistent/history.jsonl"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_history_exits_3_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    std::fs::write(
        &path,
        "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":1}\n\
         {\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":2}\n",
    )
    .unwrap();
    let p = path.display().to_string();
    let o = checker(&["check", &p]);
    assert_eq!(o.status.code(), Some(3));
    let err = stderr(&o);
    assert!(err.contains(&format!("{p}:2: ")), "{err}");
    assert!(err.contains("still outstanding"), "{err}");
}

#[test]
fn bench_of_a_missing_directory_exits_3() {
    let o = checker(&["bench", "/nonexistent/dir"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}

/// The verdicts of the reference README, through the command line.
#[test]
fn reference_verdicts_exit_0_or_1() {
    let cases = [
        ("reference/etcd/etcd_000.edn", "cas-register", None, 1),
        ("reference/etcd/etcd_002.edn", "cas-register", None, 0),
        ("reference/etcd/etcd_090.edn", "cas-register", None, 1),
        ("reference/kv/c01-ok.edn", "kv", Some("\"\""), 0),
        ("reference/kv/c10-bad.edn", "kv", Some("\"\""), 1),
    ];
    for (rel, model, initial, code) in cases {
        let h = testdata(rel);
        let mut args = vec!["check", h.as_str(), "--model", model];
        if let Some(i) = initial {
            args.extend(["--initial", i]);
        }
        let o = checker(&args);
        assert_eq!(o.status.code(), Some(code), "{rel}: {}", stderr(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        if code == 1 {
            assert!(out.contains("NOT linearizable"), "{out}");
            assert!(out.contains("longest linearizable prefix"), "{out}");
            assert!(out.contains("invoke line "), "{out}");
        } else {
            assert!(out.contains("verdict: linearizable"), "{out}");
        }
    }
}

#[test]
fn json_output_has_verdict_and_counts() {
    let h = testdata("reference/etcd/etcd_000.edn");
    let o = checker(&["check", &h, "--model", "cas-register", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["valid"], serde_json::json!(false));
    assert_eq!(v["ops"], serde_json::json!(85));
    assert_eq!(v["counts"]["ops"], serde_json::json!(85));
    assert_eq!(v["counts"]["fail"], serde_json::json!(20));
    assert!(v["check_s"].is_number());
    assert_eq!(v["keys"].as_array().map(Vec::len), Some(1));
}

#[test]
fn jsonl_history_checks_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    // A write of 1 completes, then a read sees 2: not linearizable.
    std::fs::write(
        &path,
        r#"{"process":0,"type":"invoke","f":"write","key":"a","value":1}
{"process":0,"type":"ok","f":"write","key":"a","value":1}
{"process":"nemesis","type":"info","f":"start"}
{"process":1,"type":"invoke","f":"read","key":"a","value":null}
{"process":1,"type":"ok","f":"read","key":"a","value":2}
"#,
    )
    .unwrap();
    let p = path.display().to_string();
    assert_eq!(checker(&["check", &p]).status.code(), Some(1));
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"value\":2", "\"value\":1");
    std::fs::write(&path, text).unwrap();
    assert_eq!(checker(&["check", &p]).status.code(), Some(0));
}

#[test]
fn bench_prints_a_row_per_history() {
    let dir = testdata("reference/etcd");
    let o = checker(&["bench", &dir, "--model", "cas-register"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("etcd_")).count(),
        10,
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.starts_with("etcd_000.edn") && l.contains("false")),
        "{out}"
    );
}

#[test]
fn generated_histories_round_trip_through_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    for (violation, mix, expected) in [
        (false, "cas", 0),
        (true, "cas", 1),
        (false, "append", 0),
        (true, "register", 1),
    ] {
        let path = dir.path().join(format!("{mix}-{violation}.jsonl"));
        let path = path.to_str().unwrap();
        let mut args = vec!["gen", "-o", path, "--ops", "3000", "--keys", "7"];
        args.extend(["--clients", "12", "--mix", mix, "--seed", "5"]);
        if violation {
            args.push("--violation");
        }
        let o = checker(&args);
        assert_eq!(o.status.code(), Some(0), "gen {args:?}: {}", stderr(&o));
        let o = checker(&["check", path]);
        assert_eq!(
            o.status.code(),
            Some(expected),
            "check {path}: {}",
            stderr(&o)
        );
    }
    let o = checker(&["gen", "-o", "/dev/null", "--info", "2"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
}
