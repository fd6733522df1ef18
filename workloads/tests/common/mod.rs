//! Shared by the real-run tests: the node binary, and the node processes still alive.
//!
//! Tests that count node processes must not overlap with other tests that start nodes
//! from the same binary: `.config/nextest.toml` puts them in one serial test group,
//! and under `cargo test` (which runs one test binary at a time, but the tests of a
//! binary on parallel threads) each takes [`serial`] first.
// Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard};

/// Held for the whole of a test that starts nodes, so the tests of one binary run
/// one at a time. A test that panicked while holding it does not block the rest.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The node binary of this profile: target/<profile>/node beside our binary.
pub fn node_binary() -> PathBuf {
    built_binary("node")
}

/// Binary `bin` of another package of the workspace, in this profile. Cargo gives a
/// test the path of its own package's binaries only, and a test must not run cargo:
/// `cargo nextest run --workspace` and `cargo test --workspace` build every binary of
/// the workspace before any test runs; with `-p workloads`, build it first
/// (`cargo build -p node -p checker`, with `--release` for release tests).
fn built_binary(bin: &str) -> PathBuf {
    let workloads = Path::new(env!("CARGO_BIN_EXE_workloads"));
    let dir = workloads
        .parent()
        .expect("the workloads binary has a folder");
    let path = dir.join(bin);
    assert!(
        path.is_file(),
        "no {bin} binary at {}: build the workspace first (cargo build --workspace, or \
         cargo nextest run --workspace, which builds it)",
        path.display()
    );
    path
}

/// How many processes run this exact node binary.
pub fn nodes_running(node: &Path) -> usize {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(node.as_os_str())
        .output()
        .expect("running pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// A finished `workloads run`: its results folder (deleted on drop), the run's own
/// folder and what the runner printed.
pub struct FinishedRun {
    _results: tempfile::TempDir,
    pub dir: PathBuf,
    pub stderr: String,
    pub code: Option<i32>,
}

impl FinishedRun {
    /// The history's events, one JSON value per line.
    pub fn history(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(self.dir.join("history.jsonl")).expect("history");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("JSONL line"))
            .collect()
    }

    /// `run.json`, parsed.
    pub fn run_json(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join("run.json")).expect("run.json");
        serde_json::from_str(&text).expect("run.json parses")
    }
}

/// Runs `workloads run ARGS` against the real node binary into a temporary results
/// folder, and checks that it exited 0 and left no node process behind.
pub fn run_workloads(args: &[&str]) -> FinishedRun {
    let node = node_binary();
    let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    all.push("--node-bin".into());
    all.push(node.display().to_string());
    let run = run_any(&all);
    assert_eq!(run.code, Some(0), "workloads run failed:\n{}", run.stderr);
    assert_eq!(nodes_running(&node), 0, "node processes left behind");
    run
}

/// Runs `workloads run ARGS` into a temporary results folder, whatever it exits with.
pub fn run_any<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> FinishedRun {
    let results = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .arg("run")
        .args(args)
        .arg("--results")
        .arg(results.path())
        .output()
        .expect("run workloads");
    FinishedRun {
        dir: results.path().join("latest"),
        _results: results,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        code: out.status.code(),
    }
}

/// Starts `workloads run ARGS` in the background (its output dropped), with a
/// temporary results folder that lives as long as the returned guard. The runner's
/// own temporary folders (its nodes' data) go inside it too: a test that kills the
/// runner leaves nothing behind in the system's temporary directory.
pub fn spawn_runner(args: &[&str]) -> (std::process::Child, tempfile::TempDir) {
    let results = tempfile::tempdir().expect("temp dir");
    let child = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .env("TMPDIR", results.path())
        .arg("run")
        .args(args)
        .arg("--results")
        .arg(results.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start workloads");
    (child, results)
}

/// The checker binary of this profile.
pub fn checker_binary() -> PathBuf {
    built_binary("checker")
}

/// `checker check FILE --model kv`: its exit code and output.
pub fn checker_check(file: &Path) -> (Option<i32>, String) {
    let out = Command::new(checker_binary())
        .arg("check")
        .arg(file)
        .args(["--model", "kv"])
        .output()
        .expect("run checker");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// `etcd` on PATH, or `None` after saying on stderr why the test is skipped. With
/// `WORKLOADS_REQUIRE_ETCD=1` (CI, where ci/setup.sh installs it) a missing etcd
/// fails the test instead.
pub fn etcd_or_skip(test: &str) -> Option<PathBuf> {
    let why = match workloads::run::target::find_etcd(None) {
        Ok(p) => match workloads::run::host::Host::start("probe", true) {
            Ok(_) => return Some(p),
            Err(e) => format!("{e:#}"),
        },
        Err(e) => format!("{e:#}"),
    };
    if std::env::var_os("WORKLOADS_REQUIRE_ETCD").is_some_and(|v| v == "1") {
        panic!("{test}: WORKLOADS_REQUIRE_ETCD=1 but: {why}");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}
