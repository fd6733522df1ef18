//! A short real run under membership faults only: voters are removed and re-added
//! through the admin API while clients keep going; the run must come out
//! linearizable, record each change, and end with every node a voter again.

mod common;

use common::{node_binary, nodes_running};
use std::process::Command;

#[test]
fn membership_faults_are_recorded_and_healed() {
    let node = node_binary();
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
