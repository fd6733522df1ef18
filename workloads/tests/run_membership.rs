//! A short real run under membership faults only: voters are removed and re-added
//! through the admin API while clients keep going; the run must come out
//! linearizable, record each change, and end with every node a voter again.

mod common;

#[test]
fn membership_faults_are_recorded_and_healed() {
    let _serial = common::serial();
    let run = common::run_workloads(&[
        "--time-limit",
        "8",
        "--nemesis",
        "membership",
        "--nemesis-interval",
        "2",
        "--seed",
        "3",
    ]);
    let stderr = &run.stderr;
    let mut starts = 0;
    let mut ends = 0;
    let mut healed = None;
    for v in run.history() {
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
    let run_json = run.run_json();
    assert_eq!(run_json["valid"], true);
    let faults = run_json["faults"].as_array().cloned().unwrap_or_default();
    assert_eq!(faults.len(), starts, "{faults:?}");
    assert!(
        faults.iter().all(|f| f["kind"] == "membership"),
        "{faults:?}"
    );
}
