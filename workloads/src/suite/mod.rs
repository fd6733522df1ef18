//! `workloads suite ci`: the gate CI runs.
//!
//! Each scenario runs this same executable as a child (`workloads sim ...`,
//! `workloads run ...`) and is judged by its exit status (docs/design.md, "Exit
//! status": 0 linearizable, 1 anomaly found, 2 unknown, 3 setup error), so the gate
//! exercises exactly what a user types. Correct configurations must exit 0; every
//! mutant must be caught (exit 1) by at least one of its attempts: every mutant of
//! docs/design.md ("Mutants") in the simulator, and the ones a real cluster can show
//! (stale reads under partitions, early acknowledgements under kills) in real runs too.
//! Real runs are not deterministic (real processes, real scheduling), so a real-run
//! mutant gets a few seeds before it counts as missed.
//!
//! etcd is a store we did not write: a faulted etcd run must pass, and etcd with
//! serializable reads must show a stale read under partitions. Those scenarios need
//! etcd and network namespaces (root); without them they are reported as skipped
//! (a JUnit `skipped` case, with the reason), never counted as passed.
//!
//! - `child`: runs one scenario's command, passing its output through.
//! - `page`: the suite's folder `results/suite-<UTC timestamp>/`: one folder per
//!   scenario and the page that links their reports.
//! - `junit`: the result as JUnit XML (`--junit FILE`).

mod child;
mod junit;
mod page;

use crate::args::SeedRange;
use anyhow::{Context, bail};
use clap::Args;
use node::replica::{EngineKind, Mutant};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Args, Clone, Debug)]
pub struct SuiteArgs {
    /// The suite to run: `ci` (simulator seeds, a real faulted run, every mutant).
    pub name: String,
    /// Where the suite's folder (`suite-<UTC timestamp>/`) goes.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// Simulator seeds for the correct configuration and for each core mutant.
    #[arg(long, default_value = "1..2000")]
    pub sim_seeds: SeedRange,
    /// Simulator seeds for each Paxos engine, correct.
    #[arg(long, default_value = "1..300")]
    pub paxos_sim_seeds: SeedRange,
    /// Simulator seeds for each Paxos engine with each Paxos mutant. More than the
    /// correct runs get: Multi-Paxos forgetting its promises is caught in fewer than
    /// 1 seed in 300 (8 of seeds 1..3000).
    #[arg(long, default_value = "1..3000")]
    pub paxos_mutant_seeds: SeedRange,
    /// Length of each real run, in seconds.
    #[arg(long, default_value_t = 20)]
    pub run_seconds: u64,
    /// Seeds tried for each real-run mutant before it counts as not caught.
    #[arg(long, default_value_t = 3)]
    pub mutant_attempts: u64,
    /// Path of the `node` binary (default: beside this executable).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Also write the result as JUnit XML to this file: one test case per scenario.
    /// (The suite's folder always gets a copy, `junit.xml`.)
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Run only the scenarios whose name contains this text (`sim`, `real`, `mutant`,
    /// `stale-read`, ...).
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
    /// Switch this mutant on in the scenarios that expect a clean run, to see the gate
    /// fail and name them (a demonstration of the gate itself, not a user setting).
    #[arg(long, value_name = "MUTANT", value_enum, hide = true)]
    pub force_unsafe: Option<Mutant>,
}

/// What one scenario expects of its child's exit status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expect {
    /// Exit 0: no anomaly.
    Clean,
    /// Exit 1: the mutant is caught.
    Caught,
}

impl Expect {
    fn word(self) -> &'static str {
        match self {
            Expect::Clean => "clean",
            Expect::Caught => "caught",
        }
    }

    fn met_by(self, code: i32) -> bool {
        match self {
            Expect::Clean => code == 0,
            Expect::Caught => code == 1,
        }
    }
}

/// Where a scenario runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `workloads sim`: many seeds in the deterministic simulator.
    Sim,
    /// `workloads run`: a real local cluster.
    Real,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Sim => "sim",
            Kind::Real => "real",
        }
    }
}

/// One scenario of a suite.
#[derive(Clone, Debug)]
pub(crate) struct Step {
    pub name: String,
    pub kind: Kind,
    pub expect: Expect,
    /// Why the scenario cannot run on this machine, if it cannot.
    pub skip: Option<String>,
    /// Each attempt is one argument list; the step passes when any attempt meets
    /// `expect` (for `Clean`, there is exactly one attempt).
    pub attempts: Vec<Vec<String>>,
}

/// One child run of a scenario.
pub(crate) struct Attempt {
    pub args: Vec<String>,
    pub code: i32,
    pub output: String,
    /// The folder holding its files: a real run's run folder, or the folder the
    /// suite wrote for a simulator scenario.
    pub folder: Option<PathBuf>,
    /// Commands that replay what it found (a failing seed, a run), most precise first.
    pub replays: Vec<String>,
}

/// A finished scenario.
pub(crate) struct Outcome {
    pub step: Step,
    /// Met its expectation (false for a skipped scenario).
    pub passed: bool,
    pub attempts: Vec<Attempt>,
    pub time: Duration,
}

impl Outcome {
    fn codes(&self) -> Vec<i32> {
        self.attempts.iter().map(|a| a.code).collect()
    }

    /// Every attempt's output, each headed by its command.
    fn output(&self) -> String {
        let mut s = String::new();
        for a in &self.attempts {
            s.push_str(&format!("$ workloads {}\n", a.args.join(" ")));
            s.push_str(&a.output);
        }
        s
    }

    /// The commands that replay this scenario: what each attempt found, then the
    /// attempts' own commands.
    fn replays(&self) -> Vec<String> {
        let mut r: Vec<String> = Vec::new();
        for a in &self.attempts {
            for c in a
                .replays
                .iter()
                .cloned()
                .chain([format!("workloads {}", a.args.join(" "))])
            {
                if !r.contains(&c) {
                    r.push(c);
                }
            }
        }
        r
    }
}

pub fn main(args: SuiteArgs) -> anyhow::Result<ExitCode> {
    if args.name != "ci" {
        bail!("unknown suite {:?} (known: ci)", args.name);
    }
    let exe = std::env::current_exe().context("finding the workloads executable")?;
    let mut steps = ci_steps(&args);
    if let Some(only) = &args.only {
        steps.retain(|s| s.name.contains(only.as_str()));
        if steps.is_empty() {
            bail!("--only {only:?}: no scenario of suite ci has that in its name");
        }
    }
    let suite_dir = page::make_suite_dir(&args.results)?;
    eprintln!("suite: files in {}", suite_dir.display());
    let started = Instant::now();
    let mut outcomes = Vec::new();
    for step in steps {
        if let Some(why) = &step.skip {
            println!("suite: SKIPPED {} ({why})", step.name);
            outcomes.push(Outcome {
                step,
                passed: false,
                attempts: Vec::new(),
                time: Duration::ZERO,
            });
            continue;
        }
        let t = Instant::now();
        let mut attempts = Vec::new();
        let mut passed = false;
        for (i, argv) in step.attempts.iter().enumerate() {
            eprintln!("suite: {} -> workloads {}", step.name, argv.join(" "));
            let argv = page::with_results(&step, argv, &suite_dir);
            let before = page::folders(&suite_dir);
            let done = child::run(&exe, &argv)
                .with_context(|| format!("running scenario {}", step.name))?;
            passed = step.expect.met_by(done.code);
            let attempt = page::record(&exe, &suite_dir, &before, &step, i, argv, done)?;
            attempts.push(attempt);
            if passed || step.expect == Expect::Clean {
                break;
            }
        }
        let outcome = Outcome {
            step,
            passed,
            attempts,
            time: t.elapsed(),
        };
        page::mark(&outcome);
        println!(
            "suite: {} {} (expected {}; exit codes {:?}; {:.1} s)",
            if outcome.passed { "PASS" } else { "FAIL" },
            outcome.step.name,
            outcome.step.expect.word(),
            outcome.codes(),
            outcome.time.as_secs_f64()
        );
        if !outcome.passed {
            for r in outcome.replays() {
                println!("  replay: {r}");
            }
        }
        outcomes.push(outcome);
    }
    let total = started.elapsed();
    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.passed && o.step.skip.is_none())
        .map(|o| o.step.name.as_str())
        .collect();
    let skipped = outcomes.iter().filter(|o| o.step.skip.is_some()).count();
    let passed = outcomes.len() - failed.len() - skipped;
    let summary = format!(
        "{passed} passed, {} failed, {skipped} skipped in {:.0} s",
        failed.len(),
        total.as_secs_f64()
    );
    let index = page::write(
        &args.results,
        &suite_dir,
        &outcomes,
        &args.name,
        &summary,
        failed.is_empty(),
    )?;
    let report = junit::report(&args.name, &outcomes, total);
    let mut junit_files = vec![suite_dir.join("junit.xml")];
    junit_files.extend(args.junit.clone());
    for f in &junit_files {
        write_junit(&report, f)?;
    }
    println!("suite ci: {summary}");
    println!("suite ci: page {}", index.display());
    if let Some(f) = &args.junit {
        println!("suite ci: JUnit {}", f.display());
    }
    if failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        println!("suite ci: failed scenarios: {}", failed.join(", "));
        Ok(ExitCode::from(1))
    }
}

fn write_junit(report: &quick_junit::Report, path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let xml = report.to_string().context("serializing the JUnit report")?;
    std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}

fn ci_steps(args: &SuiteArgs) -> Vec<Step> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    // The demonstration of a failing gate: a mutant in the scenarios that expect clean.
    let forced = |mut v: Vec<String>| {
        if let Some(m) = args.force_unsafe {
            v.extend(s(&["--unsafe", m.name()]));
        }
        v
    };
    let seeds = args.sim_seeds.to_string();
    let mut steps = vec![Step {
        name: format!("sim {} correct", args.sim_seeds),
        kind: Kind::Sim,
        expect: Expect::Clean,
        skip: None,
        attempts: vec![forced(s(&["sim", "--seeds", &seeds]))],
    }];
    for mutant in Mutant::for_engine(EngineKind::Raft)
        .into_iter()
        .map(Mutant::name)
    {
        steps.push(Step {
            name: format!("sim mutant {mutant}"),
            kind: Kind::Sim,
            expect: Expect::Caught,
            skip: None,
            attempts: vec![s(&["sim", "--seeds", &seeds, "--unsafe", mutant])],
        });
    }
    // The Paxos engines in the simulator: clean, and each Paxos bug caught. (Their
    // real-run scenarios belong after the real Raft runs below.)
    let paxos_seeds = args.paxos_sim_seeds.to_string();
    let mutant_seeds = args.paxos_mutant_seeds.to_string();
    for engine in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
        let sim = |seeds: &str, extra: &[&str]| {
            let mut v = s(&["sim", "--consensus", engine.as_str(), "--seeds", seeds]);
            v.extend(s(extra));
            v
        };
        steps.push(Step {
            name: format!("sim {engine} {paxos_seeds} correct"),
            kind: Kind::Sim,
            expect: Expect::Clean,
            skip: None,
            attempts: vec![forced(sim(&paxos_seeds, &[]))],
        });
        for mutant in [Mutant::PaxosForgetPromise, Mutant::PaxosIgnoreAccepted].map(Mutant::name) {
            steps.push(Step {
                name: format!("sim {engine} mutant {mutant}"),
                kind: Kind::Sim,
                expect: Expect::Caught,
                skip: None,
                attempts: vec![sim(&mutant_seeds, &["--unsafe", mutant])],
            });
        }
    }
    let secs = args.run_seconds.to_string();
    let real_on = |extra: &[&str], seed: u64, node: bool| {
        let mut v = s(&["run", "--time-limit", &secs]);
        v.extend(s(&["--seed", &seed.to_string()]));
        if let (Some(bin), true) = (&args.node_bin, node) {
            v.extend(s(&["--node-bin", &bin.display().to_string()]));
        }
        v.extend(s(extra));
        v
    };
    let real = |extra: &[&str], seed: u64| real_on(extra, seed, true);
    steps.push(Step {
        name: "real run, all faults".into(),
        kind: Kind::Real,
        expect: Expect::Clean,
        skip: None,
        attempts: vec![forced(real(&["--nemesis", "all"], 1))],
    });
    for (mutant, nemesis) in [
        (Mutant::StaleRead.name(), "partition"),
        (Mutant::AckBeforeCommit.name(), "kill"),
    ] {
        steps.push(Step {
            name: format!("real mutant {mutant} under {nemesis}"),
            kind: Kind::Real,
            expect: Expect::Caught,
            skip: None,
            attempts: (1..=args.mutant_attempts)
                .map(|seed| real(&["--nemesis", nemesis, "--unsafe", mutant], seed))
                .collect(),
        });
    }
    // Real runs of the Paxos engines: real processes, faults the engines take.
    for engine in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
        steps.push(Step {
            name: format!("real {engine} run under partitions, kills and pauses"),
            kind: Kind::Real,
            expect: Expect::Clean,
            skip: None,
            attempts: vec![forced(real(
                &[
                    "--consensus",
                    engine.as_str(),
                    "--nemesis",
                    "partition,kill,pause",
                ],
                1,
            ))],
        });
    }
    let etcd_skip = etcd_unavailable();
    steps.push(Step {
        name: "real etcd run under partitions, kills and pauses".into(),
        kind: Kind::Real,
        expect: Expect::Clean,
        skip: etcd_skip.clone(),
        attempts: vec![real_on(
            &["--target", "etcd", "--nemesis", "partition,kill,pause"],
            1,
            false,
        )],
    });
    steps.push(Step {
        name: "real etcd with serializable reads under partitions (stale reads)".into(),
        kind: Kind::Real,
        expect: Expect::Caught,
        skip: etcd_skip,
        attempts: (1..=args.mutant_attempts)
            .map(|seed| {
                real_on(
                    &[
                        "--target",
                        "etcd",
                        "--etcd-serializable-reads",
                        "--nemesis",
                        "partition",
                    ],
                    seed,
                    false,
                )
            })
            .collect(),
    });
    steps
}

/// Why the etcd scenarios cannot run here (no etcd, or no network namespaces), if so.
fn etcd_unavailable() -> Option<String> {
    if let Err(e) = crate::run::target::find_etcd(None) {
        return Some(format!("{e:#}"));
    }
    crate::run::host::Host::start("probe", true)
        .err()
        .map(|e| format!("{e:#}"))
}
