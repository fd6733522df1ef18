//! Shared by the real-run tests: the node binary, and the node processes still alive.
//!
//! Tests that count node processes must not overlap with other tests that start nodes
//! from the same binary: `.config/nextest.toml` puts them in one serial test group,
//! and under `cargo test` (which runs one test binary at a time, but the tests of a
//! binary on parallel threads) each takes [`serial`] first.
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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The node binary of this profile: target/<profile>/node beside our binary, built
/// through the workspace when missing (cargo skips the work when it is up to date).
pub fn node_binary() -> PathBuf {
    let workloads = Path::new(env!("CARGO_BIN_EXE_workloads"));
    let dir = workloads
        .parent()
        .expect("the workloads binary has a folder");
    let node = dir.join("node");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "node", "--bin", "node", "--target-dir"])
        .arg(
            dir.parent()
                .expect("the profile folder has a target folder"),
        );
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo to build node");
    assert!(status.success(), "cargo build -p node failed ({status})");
    assert!(node.is_file(), "no node binary at {}", node.display());
    node
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
    let results = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .arg("run")
        .args(args)
        .arg("--results")
        .arg(results.path())
        .arg("--node-bin")
        .arg(&node)
        .output()
        .expect("run workloads");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(0),
        "workloads run failed:\n{stderr}"
    );
    assert_eq!(nodes_running(&node), 0, "node processes left behind");
    FinishedRun {
        dir: results.path().join("latest"),
        _results: results,
        stderr,
    }
}
