//! A target file that runs our own node (workloads/targets/node.toml, its program
//! pointed at this profile's node binary) reproduces the built-in target's verdicts:
//! a correct cluster comes out linearizable both ways, and a node with a known bug
//! switched on is caught both ways.

mod common;

use std::path::{Path, PathBuf};

/// The example node.toml with its program replaced by this profile's node binary
/// and `extra` arguments appended to the command.
fn node_file(dir: &Path, extra: &[&str]) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets/node.toml");
    let text = std::fs::read_to_string(example).expect("node.toml");
    let node = common::node_binary();
    let mut text = text.replacen(
        "\"../../target/release/node\"",
        &format!("{:?}", node.display().to_string()),
        1,
    );
    let anchor = "\"--snapshot-every\", \"500\",";
    assert!(text.contains(anchor), "node.toml changed shape");
    let extra: String = extra.iter().map(|a| format!(" {a:?},")).collect();
    text = text.replacen(anchor, &format!("{anchor}{extra}"), 1);
    let path = dir.join("my-node.toml");
    std::fs::write(&path, text).expect("write target file");
    path
}

fn args<'a>(file: Option<&'a str>, rest: &[&'a str]) -> Vec<String> {
    let mut v: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    if let Some(f) = file {
        v.push("--target-file".into());
        v.push(f.into());
    } else {
        v.push("--node-bin".into());
        v.push(common::node_binary().display().to_string());
    }
    v
}

#[test]
fn a_correct_node_is_linearizable_from_the_file_as_built_in() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().expect("tmp");
    let file = node_file(dir.path(), &[]);
    let file = file.display().to_string();
    let rest = [
        "--time-limit",
        "10",
        "--nemesis-interval",
        "2",
        "--seed",
        "7",
    ];
    let from_file = common::run_any(&args(Some(&file), &rest));
    assert_eq!(from_file.code, Some(0), "{}", from_file.stderr);
    let run_json = from_file.run_json();
    assert_eq!(run_json["target"], "node");
    assert_eq!(run_json["config"]["target_file"], file.as_str());
    assert!(
        run_json["command"]
            .as_str()
            .is_some_and(|c| c.contains("--target-file")),
        "{}",
        run_json["command"]
    );
    assert!(
        from_file
            .history()
            .iter()
            .any(|v| v["process"] == "nemesis"),
        "no faults"
    );
    let built_in = common::run_any(&args(None, &rest));
    assert_eq!(built_in.code, Some(0), "{}", built_in.stderr);
    assert_eq!(common::nodes_running(&common::node_binary()), 0);
}

#[test]
fn a_node_with_stale_reads_is_caught_from_the_file_as_built_in() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().expect("tmp");
    let file = node_file(dir.path(), &["--unsafe", "stale-read"]);
    let file = file.display().to_string();
    let caught = |target_file: Option<&str>, mutant: &[&str]| -> Vec<Option<i32>> {
        let mut codes = Vec::new();
        for seed in 1..=3 {
            let seed = seed.to_string();
            let mut rest = vec![
                "--time-limit",
                "10",
                "--nemesis",
                "partition",
                "--nemesis-interval",
                "2",
                "--seed",
                &seed,
            ];
            rest.extend(mutant);
            let run = common::run_any(&args(target_file, &rest));
            codes.push(run.code);
            if run.code == Some(1) {
                break;
            }
            assert_eq!(run.code, Some(0), "{}", run.stderr);
        }
        codes
    };
    let from_file = caught(Some(&file), &[]);
    assert_eq!(
        from_file.last(),
        Some(&Some(1)),
        "file target: {from_file:?}"
    );
    let built_in = caught(None, &["--unsafe", "stale-read"]);
    assert_eq!(
        built_in.last(),
        Some(&Some(1)),
        "built-in target: {built_in:?}"
    );
    assert_eq!(common::nodes_running(&common::node_binary()), 0);
}
