//! The simulator driving the real replica: a seed replays exactly, a range of seeds
//! passes with real faults, and both core mutants are caught within a bounded range.

use node::replica::Mutant;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::process::Command;
use workloads::sim::{Options, run_range, run_seed};

fn trace_hash(seed: u64, opts: &Options) -> (u64, usize) {
    let mut o = opts.clone();
    o.trace = true;
    let r = run_seed(seed, &o);
    let mut h = DefaultHasher::new();
    r.trace.hash(&mut h);
    (h.finish(), r.trace.len())
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [1, 2, 77] {
        let a = trace_hash(seed, &Options::default());
        let b = trace_hash(seed, &Options::default());
        assert_eq!(a, b, "seed {seed} did not replay");
        assert!(a.1 > 100, "seed {seed}: trace too short ({} lines)", a.1);
    }
    // Different seeds give different runs.
    assert_ne!(
        trace_hash(1, &Options::default()),
        trace_hash(2, &Options::default())
    );
}

#[test]
fn the_replay_command_prints_byte_identical_traces() {
    let run = || {
        let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
            .args(["sim", "--seed", "5", "--trace"])
            .output()
            .expect("run workloads");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let a = run();
    assert!(a.len() > 1000);
    assert_eq!(a, run());
}

#[test]
fn a_range_of_seeds_passes_with_faults() {
    let o = Options {
        check_linearizability: true,
        ..Options::default()
    };
    let r = run_range(1, 40, &o, 2);
    assert!(r.unknown.is_empty(), "{:?}", r.unknown);
    let msgs: Vec<String> = r
        .failures
        .iter()
        .map(|(s, v)| format!("seed {s}: {} at step {}", v.message, v.step))
        .collect();
    assert!(msgs.is_empty(), "{msgs:#?}");
    let s = &r.stats;
    assert!(s.leader_changes >= 40, "{s:?}");
    assert!(s.crashes > 0 && s.partitions > 0 && s.pauses > 0, "{s:?}");
    assert!(s.ops_ok > 0, "{s:?}");
}

fn mutant(m: Mutant) -> Options {
    Options {
        mutants: m.mutants(),
        ..Options::default()
    }
}

/// Seeds `1..=seeds` that the mutant fails.
fn caught(m: Mutant, seeds: u64) -> Vec<u64> {
    run_range(1, seeds, &mutant(m), 2)
        .failures
        .iter()
        .map(|(s, _)| *s)
        .collect()
}

#[test]
fn commit_old_term_is_caught_and_replays() {
    let seeds = caught(Mutant::CommitOldTerm, 300);
    assert!(
        !seeds.is_empty(),
        "commit-old-term not caught in seeds 1..=300"
    );
    // The failing seed fails again, the same way, on its own.
    let o = mutant(Mutant::CommitOldTerm);
    let seed = seeds[0];
    let a = run_seed(seed, &o).violation.expect("replay fails too");
    let b = run_seed(seed, &o).violation.expect("replay fails too");
    assert_eq!(a, b);
    assert!(
        a.message.contains("leader completeness") || a.message.contains("safety"),
        "{a:?}"
    );
    let ta = trace_hash(seed, &o);
    assert_eq!(ta, trace_hash(seed, &o));
}

#[test]
fn vote_any_log_is_caught() {
    let seeds = caught(Mutant::VoteAnyLog, 20);
    assert!(seeds.len() >= 5, "vote-any-log caught only in {seeds:?}");
}

#[test]
fn history_file_is_jsonl_with_paired_client_operations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("h.jsonl");
    let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .args(["sim", "--seed", "9", "--history"])
        .arg(&path)
        .output()
        .expect("run workloads");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&path).expect("history written");
    let mut open = std::collections::BTreeMap::new();
    let mut last_time = 0;
    let mut completed = 0;
    for (i, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        assert_eq!(v["index"], i as u64);
        let t = v["time"].as_u64().expect("time");
        assert!(t >= last_time, "line {i}: time goes back");
        last_time = t;
        let Some(p) = v["process"].as_u64() else {
            assert_eq!(v["process"], "nemesis");
            continue;
        };
        match v["type"].as_str().expect("type") {
            "invoke" => assert!(open.insert(p, v["f"].clone()).is_none(), "line {i}"),
            "ok" | "fail" | "info" => {
                assert_eq!(open.remove(&p), Some(v["f"].clone()), "line {i}");
                completed += 1;
            }
            other => panic!("line {i}: type {other}"),
        }
    }
    assert!(completed > 50);
}

#[test]
fn bad_arguments_are_rejected_with_exit_3() {
    for args in [
        &["sim", "--seeds", "5..2"][..],
        &["sim", "--unsafe", "no-such-bug"],
        &["sim", "--nemesis", "flood"],
        &["sim", "--seeds", "1..3", "--trace"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
            .args(args)
            .output()
            .expect("run workloads");
        assert_eq!(out.status.code(), Some(3), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn stale_read_is_caught_by_the_linearizability_check() {
    let o = Options {
        check_linearizability: true,
        ..mutant(Mutant::StaleRead)
    };
    let r = run_range(1, 30, &o, 2);
    assert!(
        r.failures
            .iter()
            .any(|(_, v)| v.message.contains("not linearizable")),
        "stale-read not caught in seeds 1..=30"
    );
}

#[test]
fn undecided_seeds_exit_2_and_violations_exit_1() {
    use workloads::sim::{RangeResult, Stats, Violation, exit_status};
    let range = |failures: usize, unknown: usize| RangeResult {
        seeds: 10,
        stats: Stats::default(),
        failures: (0..failures as u64)
            .map(|s| {
                let v = Violation {
                    step: 1,
                    time_ns: 1,
                    message: "x".into(),
                };
                (s, v)
            })
            .collect(),
        unknown: (0..unknown as u64)
            .map(|s| (s, "budget ran out".to_string()))
            .collect(),
        wall_s: 1.0,
    };
    assert_eq!(exit_status(&range(0, 0)), 0);
    assert_eq!(exit_status(&range(0, 1)), 2, "unknown is never a pass");
    assert_eq!(exit_status(&range(1, 1)), 1);
    assert_eq!(exit_status(&range(2, 0)), 1);
}
