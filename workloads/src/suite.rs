//! `workloads suite ci`: the gate CI runs.
//!
//! Each step runs this same executable as a child (`workloads sim ...`,
//! `workloads run ...`) and judges it by its exit status (DESIGN.md: 0 linearizable,
//! 1 anomaly found, 2 unknown, 3 setup error), so the gate exercises exactly what a
//! user types. Correct configurations must exit 0; every mutant must be caught (exit 1)
//! by at least one of its attempts: every mutant of DESIGN.md in the simulator, and the
//! ones a real cluster can show (stale reads under partitions, early acknowledgements
//! under kills) in real runs too. Real runs are not deterministic (real processes,
//! real scheduling), so a real-run mutant gets a few seeds before it counts as missed.

use anyhow::{Context, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

#[derive(Args, Clone, Debug)]
pub struct SuiteArgs {
    /// The suite to run: `ci` (simulator seeds, a real faulted run, every mutant).
    pub name: String,
    /// Where the real runs write their results.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Simulator seeds for the correct configuration and for each core mutant.
    #[arg(long, default_value = "1..2000")]
    pub sim_seeds: String,
    /// Length of each real run, in seconds.
    #[arg(long, default_value_t = 20)]
    pub run_seconds: u64,
    /// Seeds tried for each real-run mutant before it counts as not caught.
    #[arg(long, default_value_t = 3)]
    pub mutant_attempts: u64,
    /// Path of the `node` binary (default: beside this executable).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
}

/// What one step expects of its child's exit status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Exit 0: no anomaly.
    Clean,
    /// Exit 1: the mutant is caught.
    Caught,
}

struct Step {
    name: String,
    expect: Expect,
    /// Each attempt is one argument list; the step passes when any attempt meets `expect`
    /// (for `Clean`, there is exactly one attempt).
    attempts: Vec<Vec<String>>,
}

pub fn main(args: SuiteArgs) -> anyhow::Result<ExitCode> {
    if args.name != "ci" {
        bail!("unknown suite {:?} (known: ci)", args.name);
    }
    let exe = std::env::current_exe().context("finding the workloads executable")?;
    let steps = ci_steps(&args);
    let started = Instant::now();
    let mut failed = Vec::new();
    for step in &steps {
        let t = Instant::now();
        let mut codes = Vec::new();
        let mut ok = false;
        for attempt in &step.attempts {
            eprintln!("suite: {} -> workloads {}", step.name, attempt.join(" "));
            let status = Command::new(&exe)
                .args(attempt)
                .status()
                .with_context(|| format!("running step {}", step.name))?;
            let code = status.code().unwrap_or(-1);
            codes.push(code);
            ok = match step.expect {
                Expect::Clean => code == 0,
                Expect::Caught => code == 1,
            };
            if ok || step.expect == Expect::Clean {
                break;
            }
        }
        let what = match step.expect {
            Expect::Clean => "clean",
            Expect::Caught => "caught",
        };
        let verdict = if ok { "PASS" } else { "FAIL" };
        println!(
            "suite: {verdict} {} (expected {what}; exit codes {codes:?}; {:.1} s)",
            step.name,
            t.elapsed().as_secs_f64()
        );
        if !ok {
            failed.push(step.name.clone());
        }
    }
    let passed = steps.len() - failed.len();
    println!(
        "suite ci: {passed} passed, {} failed in {:.0} s",
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("suite ci: failed steps: {}", failed.join(", "));
        Ok(ExitCode::from(1))
    }
}

fn ci_steps(args: &SuiteArgs) -> Vec<Step> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let mut steps = vec![Step {
        name: format!("sim {} correct", args.sim_seeds),
        expect: Expect::Clean,
        attempts: vec![s(&["sim", "--seeds", &args.sim_seeds])],
    }];
    for mutant in [
        "commit-old-term",
        "vote-any-log",
        "stale-read",
        "ack-before-commit",
        "no-fsync",
        "joint-skip",
    ] {
        steps.push(Step {
            name: format!("sim mutant {mutant}"),
            expect: Expect::Caught,
            attempts: vec![s(&["sim", "--seeds", &args.sim_seeds, "--unsafe", mutant])],
        });
    }
    let secs = args.run_seconds.to_string();
    let results = args.results.display().to_string();
    let real = |extra: &[&str], seed: u64| {
        let mut v = s(&["run", "--time-limit", &secs, "--results", &results]);
        v.extend(s(&["--seed", &seed.to_string()]));
        if let Some(bin) = &args.node_bin {
            v.extend(s(&["--node-bin", &bin.display().to_string()]));
        }
        v.extend(s(extra));
        v
    };
    steps.push(Step {
        name: "real run, all faults".into(),
        expect: Expect::Clean,
        attempts: vec![real(&["--nemesis", "all"], 1)],
    });
    for (mutant, nemesis) in [("stale-read", "partition"), ("ack-before-commit", "kill")] {
        steps.push(Step {
            name: format!("real mutant {mutant} under {nemesis}"),
            expect: Expect::Caught,
            attempts: (1..=args.mutant_attempts)
                .map(|seed| real(&["--nemesis", nemesis, "--unsafe", mutant], seed))
                .collect(),
        });
    }
    steps
}
