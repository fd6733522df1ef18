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
