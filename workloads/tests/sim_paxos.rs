//! The simulator driving the Paxos engines: seeds run clean under their faults
//! (power loss included), each Paxos mutant is caught on a known seed, a seed
//! replays exactly, and a mutant of another engine is refused.

use node::replica::{EngineKind, Mutant};
use std::process::Command;
use workloads::faults;
use workloads::sim::{Options, run_seed};

fn options(engine: EngineKind) -> Options {
    Options {
        engine,
        nemesis: faults::sim_default(engine),
        check_linearizability: true,
        ..Options::default()
    }
}

fn with(engine: EngineKind, m: Mutant) -> Options {
    Options {
        mutants: m.mutants(),
        ..options(engine)
    }
}

/// Runs `seed`, which must end with no violation and nothing undecided.
fn clean(engine: EngineKind, seed: u64, o: &Options) -> workloads::sim::Stats {
    let r = run_seed(seed, o);
    assert!(
        r.violation.is_none() && r.unknown.is_none(),
        "{engine} seed {seed}: {:?} {:?}",
        r.violation,
        r.unknown
    );
    r.stats
}

#[test]
fn paxos_seeds_run_clean_with_power_loss() {
    for engine in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
        let o = options(engine);
        let mut power_losses = 0;
        let mut chosen = 0;
        for seed in 1..=6 {
            let s = clean(engine, seed, &o);
            assert!(s.ops_ok > 0, "{engine} seed {seed}: {s:?}");
            power_losses += s.power_losses;
            chosen += s.slots_chosen;
        }
        assert!(
            power_losses > 0 && chosen > 0,
            "{engine}: {power_losses} {chosen}"
        );
    }
}

#[test]
fn hostile_paxos_snapshots_are_refused() {
    // Snapshots whose bytes are not a state of the store. Before the replica
    // refused them, a node installed one, skipped the slots it claimed and kept its
    // old store: 225 of seeds 1..300 failed under Multi-Paxos, 286 under Basic
    // Paxos, these three among them (but Basic Paxos seed 2).
    for engine in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
        let o = Options {
            nemesis: "hostile".parse().expect("a fault list"),
            ..options(engine)
        };
        for seed in 1..=3 {
            let s = clean(engine, seed, &o);
            assert!(s.hostile_sent > 0, "{engine} seed {seed}: {s:?}");
            assert_eq!(s.hostile_rejected, s.hostile_sent, "{engine} seed {seed}");
        }
    }
}

#[test]
fn a_paxos_seed_replays_exactly() {
    let o = Options {
        trace: true,
        ..options(EngineKind::MultiPaxos)
    };
    let a = run_seed(3, &o).trace;
    assert!(a.len() > 100);
    assert_eq!(a, run_seed(3, &o).trace);
}

/// Each mutant fails the seed named (found by `workloads sim --seeds 1..2000`).
#[test]
fn each_paxos_mutant_is_caught_on_a_known_seed() {
    for (engine, m, seed) in CAUGHT {
        let v = run_seed(seed, &with(engine, m))
            .violation
            .unwrap_or_else(|| panic!("{engine} {} not caught on seed {seed}", m.name()));
        assert!(
            v.message.contains("a second value chosen") || v.message.contains("learned"),
            "{engine} {} seed {seed}: {v:?}",
            m.name()
        );
        // The same seed without the mutant is clean.
        let r = run_seed(seed, &options(engine));
        assert!(
            r.violation.is_none(),
            "{engine} seed {seed}: {:?}",
            r.violation
        );
    }
}

const CAUGHT: [(EngineKind, Mutant, u64); 4] = [
    (EngineKind::MultiPaxos, Mutant::PaxosForgetPromise, 1097),
    (EngineKind::BasicPaxos, Mutant::PaxosForgetPromise, 7),
    (EngineKind::MultiPaxos, Mutant::PaxosIgnoreAccepted, 1),
    (EngineKind::BasicPaxos, Mutant::PaxosIgnoreAccepted, 1),
];

#[test]
fn a_mutant_of_another_engine_is_refused_with_the_ones_that_apply() {
    let sim = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_workloads"))
            .arg("sim")
            .args(args)
            .output()
            .expect("run workloads")
    };
    let out = sim(&[
        "--consensus",
        "basic-paxos",
        "--unsafe",
        "vote-any-log",
        "--seed",
        "1",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("vote-any-log") && err.contains("paxos-forget-promise"),
        "{err}"
    );
    let out = sim(&["--unsafe", "paxos-ignore-accepted", "--seed", "1"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("under raft") && err.contains("joint-skip"),
        "{err}"
    );
    let out = sim(&["--consensus", "paxos", "--seed", "1"]);
    assert_eq!(out.status.code(), Some(3));
}

#[test]
fn faults_that_do_not_apply_to_paxos_are_left_out_with_a_note() {
    let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .args(["sim", "--consensus", "multi-paxos", "--seed", "2"])
        .args(["--nemesis", "partition,membership,wipe"])
        .output()
        .expect("run workloads");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    for f in ["membership", "wipe"] {
        assert!(err.contains(&format!("fault {f} left out")), "{err}");
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("membership changes: 0 asked"), "{stdout}");
    assert!(stdout.contains("consensus: multi-paxos"), "{stdout}");
}
