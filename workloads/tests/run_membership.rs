//! A short real run under membership faults only: voters are removed and re-added
//! through the admin API while clients keep going; the run must come out
//! linearizable, record each change, and end with every node a voter again.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The node binary of this profile: target/<profile>/node beside our binary, built
/// through the workspace when missing. `None` only if cargo cannot build it.
fn node_binary() -> Option<PathBuf> {
    let workloads = Path::new(env!("CARGO_BIN_EXE_workloads"));
    let dir = workloads.parent()?;
    let node = dir.join("node");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "node", "--bin", "node", "--target-dir"])
        .arg(dir.parent()?);
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    match cmd.status() {
        Ok(s) if s.success() && node.is_file() => Some(node),
        Ok(s) => {
            eprintln!("skipping: cargo build -p node failed ({s})");
            None
        }
        Err(e) => {
            eprintln!("skipping: cannot run cargo to build node: {e}");
            None
        }
    }
}

fn nodes_running(node: &Path) -> usize {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(node.as_os_str())
        .output();
    match out {
        Ok(o) => String::from_utf8_lossy(&o.stdout).lines().count(),
        Err(_) => 0,
    }
}

#[test]
fn membership_faults_are_recorded_and_healed() {
    let Some(node) = node_binary() else { return };
    let results = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .args([
            "run",
            "--time-limit",
            "8",
            "--nemesis",
            "membership",
            "--nemesis-interval",
            "2",
            "--seed",
            "3",
            "--results",
        ])
        .arg(results.path())
        .arg("--node-bin")
        .arg(&node)
        .output()
        .expect("run workloads");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "workloads run failed:\n{stderr}"
    );
    assert_eq!(nodes_running(&node), 0, "node processes left behind");

    let run = results.path().join("latest");
    let history = std::fs::read_to_string(run.join("history.jsonl")).expect("history");
    let mut starts = 0;
    let mut ends = 0;
    let mut healed = None;
    for line in history.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("JSONL line");
        if v["process"] != "nemesis" {
            continue;
        }
        match v["f"].as_str() {
            Some("membership-start") => {
                starts += 1;
                assert_eq!(
                    v["value"]["voters"].as_array().map(Vec::len),
                    Some(4),
                    "{v}"
                );
            }
            Some("membership-end") => ends += 1,
            Some("membership-heal") => healed = Some(v["value"]["whole"].clone()),
            _ => {}
        }
    }
    assert!(starts >= 1, "no membership fault recorded:\n{stderr}");
    assert_eq!(starts, ends, "every membership fault is ended");
    assert_eq!(
        healed,
        Some(serde_json::json!(true)),
        "final heal:\n{stderr}"
    );
    let run_json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).expect("run.json"))
            .expect("run.json parses");
    assert_eq!(run_json["valid"], true);
    let faults = run_json["faults"].as_array().cloned().unwrap_or_default();
    assert_eq!(faults.len(), starts, "{faults:?}");
    assert!(
        faults.iter().all(|f| f["kind"] == "membership"),
        "{faults:?}"
    );
}
