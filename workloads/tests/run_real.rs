//! One short real run (about 10 s of workload) against the real node binary: a
//! correct cluster under partitions, kills and pauses must come out linearizable,
//! with a full run folder and no node process left behind.

mod common;

use common::{node_binary, nodes_running};

#[test]
fn short_faulted_run_is_linearizable_and_leaves_nothing_behind() {
    let _serial = common::serial();
    let run = common::run_workloads(&[
        "--time-limit",
        "10",
        "--nemesis-interval",
        "2",
        "--seed",
        "7",
    ]);
    let stderr = &run.stderr;
    let mut ok = 0;
    let mut nemesis = 0;
    for v in run.history() {
        if v["type"] == "ok" {
            ok += 1;
        }
        if v["process"] == "nemesis" {
            nemesis += 1;
        }
    }
    assert!(ok >= 300, "only {ok} ok operations in 10 s:\n{stderr}");
    assert!(nemesis >= 2, "no faults recorded");
    let run_json = run.run_json();
    assert_eq!(run_json["valid"], true);
    assert_eq!(run_json["seed"], 7);
    assert!(
        run_json["summary"]["snapshots_taken"].as_u64() >= Some(1),
        "nodes snapshot every 500 entries: {}",
        run_json["summary"]
    );
    assert!(run.dir.join("checker.json").is_file());
    for i in 1..=5 {
        assert!(run.dir.join(format!("nodes/n{i}.log")).is_file());
    }
}

/// A runner killed outright cannot tear its cluster down; the nodes notice that
/// their parent is gone and shut themselves down.
#[test]
fn nodes_of_a_killed_runner_shut_themselves_down() {
    let _serial = common::serial();
    use std::time::{Duration, Instant};
    let node = node_binary();
    let node_arg = node.display().to_string();
    let (mut runner, results) = common::spawn_runner(&[
        "--time-limit",
        "60",
        "--nemesis",
        "none",
        "--node-bin",
        &node_arg,
    ]);
    let end = Instant::now() + Duration::from_secs(30);
    while nodes_running(&node) < 5 {
        assert!(Instant::now() < end, "the cluster never came up");
        std::thread::sleep(Duration::from_millis(100));
    }
    runner.kill().expect("SIGKILL the runner");
    runner.wait().expect("reap the runner");
    // The runner cannot delete its nodes' data now; it is inside the test's own
    // folder (deleted with it), not left in the system's temporary directory.
    let data = std::fs::read_dir(results.path())
        .expect("results folder")
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("workloads-data-")
        })
        .count();
    assert_eq!(
        data, 1,
        "the killed runner's node data is not in the test's folder"
    );
    let end = Instant::now() + Duration::from_secs(10);
    while nodes_running(&node) > 0 {
        assert!(
            Instant::now() < end,
            "{} node processes outlived their runner by 10 s",
            nodes_running(&node)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
