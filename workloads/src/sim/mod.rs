//! The deterministic simulator: N replicas in one process on virtual time, a seeded
//! network and disk, simulated clients, invariant checks on every step.
//!
//! - [`world`]: one seeded run (the event loop; how outputs are carried out).
//! - [`nemesis`]: the fault schedule; node crash, restart and pause.
//! - `membership`, `disk_loss`, `hostile`: configuration changes by joint consensus
//!   (with compaction and crashes in the joint phase), lost disks, and peer messages
//!   no correct node sends.
//! - [`net`], [`disk`]: the simulated network and disks.
//! - [`clients`]: Jepsen-style client processes; their history is recorded into the
//!   checker's own history ([`crate::history::Recording`]), as in real runs.
//! - [`invariants`]: Raft's safety properties, checked incrementally.
//! - [`paxos`]: a Paxos node's disk, and the Paxos invariants
//!   (`node::paxos::check::Checker`), under `--consensus multi-paxos|basic-paxos`.
//!
//! One seed decides everything (a `ChaCha8Rng`; only ordered containers), so any
//! failure replays exactly with `workloads sim --seed N --trace`.

// Deterministic (docs/design.md, "Purity"): clippy rejects clocks, files, sockets,
// tokio and unseeded randomness in the simulator; only the entry points below that
// measure its own speed or write a requested file opt out, one function at a time.
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

mod client_io;
pub mod clients;
mod describe;
pub mod disk;
mod disk_loss;
mod hostile;
pub mod invariants;
pub mod linearizable;
mod membership;
pub mod nemesis;
pub mod net;
mod panics;
pub mod paxos;
pub mod paxos_store;
pub mod queue;
mod snapshots;
mod stats;
pub mod twin;
pub mod world;

use crate::args::{ConsensusArg, FaultSet, SeedRange};
use crate::faults::{self, Fault};
use anyhow::{Context, bail};
use clap::Args;
use node::replica::{EngineKind, Mutant};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
pub use world::{Options, SeedReport, Stats, Violation};

/// Budget of the linearizability check of one seed's history.
const CHECK_TIME_LIMIT: std::time::Duration = std::time::Duration::from_secs(10);

/// `workloads sim` options.
#[derive(Args, Clone, Debug)]
pub struct SimArgs {
    /// Seeds to run, as `A..B` (inclusive) or one number.
    #[arg(long, default_value = "1..100")]
    pub seeds: SeedRange,
    /// Run this one seed (overrides `--seeds`); with `--trace`, print its event trace.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Cluster size (default: 3 or 5, chosen by the seed).
    #[arg(long)]
    pub nodes: Option<usize>,
    #[command(flatten)]
    pub consensus: ConsensusArg,
    /// Faults to inject: `all`, `none`, or a comma list of partition, kill (or
    /// crash), pause, membership, wipe (or disk), loss, hostile, power-loss.
    /// Default: under raft every kind but power-loss; under the Paxos engines
    /// partition, kill, pause, loss and power-loss (membership and wipe do
    /// not apply to them and are left out with a note; hostile, undecodable
    /// snapshots under Paxos, is opt-in there).
    #[arg(long)]
    pub nemesis: Option<FaultSet<Fault>>,
    /// Switch on a known bug (docs/design.md, "Mutants"); it must exist under the
    /// chosen engine.
    #[arg(long = "unsafe", value_name = "MUTANT", value_enum)]
    pub mutant: Option<Mutant>,
    /// Print the event trace (deterministic: the same seed prints the same bytes).
    #[arg(long)]
    pub trace: bool,
    /// Write the client history (JSONL) of the single `--seed` run to this file.
    #[arg(long)]
    pub history: Option<PathBuf>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Skip the linearizability check of each seed's history (invariants only).
    #[arg(long)]
    pub no_check: bool,
}

/// The fault kinds asked for: `--nemesis`, or the engine's default.
fn asked_faults(args: &SimArgs) -> FaultSet<Fault> {
    args.nemesis
        .clone()
        .unwrap_or_else(|| faults::sim_default(args.consensus.engine))
}

/// The asked kinds the chosen engine cannot take, each with why (printed as notes).
pub fn left_out(args: &SimArgs) -> Vec<(Fault, &'static str)> {
    let engine = args.consensus.engine;
    asked_faults(args)
        .kinds()
        .into_iter()
        .filter_map(|f| f.sim_blind_spot(engine).map(|why| (f, why)))
        .collect()
}

/// Builds the per-seed options from the command line.
pub fn options(args: &SimArgs) -> anyhow::Result<Options> {
    if let Some(n) = args.nodes
        && !(1..=9).contains(&n)
    {
        bail!("--nodes {n}: expected 1 to 9");
    }
    let engine = args.consensus.engine;
    if let Some(m) = args.mutant {
        m.check_engine(engine).map_err(anyhow::Error::msg)?;
    }
    let mut nemesis = asked_faults(args);
    for (f, _) in left_out(args) {
        nemesis.0.remove(&f);
    }
    Ok(Options {
        nodes: args.nodes,
        engine,
        nemesis,
        mutants: args.mutant.map(Mutant::mutants).unwrap_or_default(),
        no_fsync: args.mutant == Some(Mutant::NoFsync),
        trace: args.trace,
        check_linearizability: !args.no_check,
    })
}

/// Runs one seed.
pub fn run_seed(seed: u64, opts: &Options) -> SeedReport {
    run_seed_with::<node::replica::Replica>(seed, opts)
}

/// Runs one seed against any implementation of the replica contract. A panic in
/// the replica (or the world) ends the seed as a violation naming it.
pub fn run_seed_with<R: world::Driven>(seed: u64, opts: &Options) -> SeedReport {
    let run = || world::World::<R>::new(seed, opts.clone()).run(seed);
    let mut r = match panics::catch(run) {
        Ok(r) => r,
        Err(message) => SeedReport::panicked(seed, message),
    };
    if opts.check_linearizability && r.violation.is_none() && r.unknown.is_none() {
        match linearizable::check_history(&r.history, CHECK_TIME_LIMIT) {
            linearizable::Finding::Linearizable => {}
            linearizable::Finding::NotLinearizable(message) => {
                r.violation = Some(Violation {
                    step: r.stats.steps,
                    time_ns: r.stats.virtual_ns,
                    message,
                })
            }
            linearizable::Finding::Unknown(why) => r.unknown = Some(why),
        }
    }
    r
}

/// What a range of seeds found; reports keep no history or trace.
pub struct RangeResult {
    pub seeds: u64,
    pub stats: Stats,
    pub failures: Vec<(u64, Violation)>,
    /// Seeds whose history the checker could not decide, and why.
    pub unknown: Vec<(u64, String)>,
    pub wall_s: f64,
}

/// Runs seeds `a..=b` over `threads` worker threads.
pub fn run_range(a: u64, b: u64, opts: &Options, threads: usize) -> RangeResult {
    run_range_with::<node::replica::Replica>(a, b, opts, threads)
}

/// [`run_range`] against any implementation of the replica contract.
// The wall clock measures the simulator's own speed (`wall_s`); no seed sees it.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
pub fn run_range_with<R: world::Driven>(
    a: u64,
    b: u64,
    opts: &Options,
    threads: usize,
) -> RangeResult {
    let start = std::time::Instant::now();
    let next = AtomicU64::new(a);
    let total = Mutex::new((Stats::default(), Vec::new(), Vec::new()));
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut stats = Stats::default();
                let mut failures = Vec::new();
                let mut unknown = Vec::new();
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed > b {
                        break;
                    }
                    let r = run_seed_with::<R>(seed, opts);
                    stats.add(&r.stats);
                    if let Some(v) = r.violation {
                        failures.push((seed, v));
                    }
                    if let Some(u) = r.unknown {
                        unknown.push((seed, u));
                    }
                }
                let mut t = total.lock().unwrap_or_else(|e| e.into_inner());
                t.0.add(&stats);
                t.1.extend(failures);
                t.2.extend(unknown);
            });
        }
    });
    let (stats, mut failures, mut unknown) = total.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|(s, _)| *s);
    unknown.sort_by_key(|(s, _)| *s);
    RangeResult {
        seeds: b - a + 1,
        stats,
        failures,
        unknown,
        wall_s: start.elapsed().as_secs_f64(),
    }
}

/// The command that replays one seed exactly.
pub fn replay_command(seed: u64, args: &SimArgs) -> String {
    let mut cmd = format!("workloads sim --seed {seed}");
    if let Some(n) = args.nodes {
        cmd.push_str(&format!(" --nodes {n}"));
    }
    let engine = args.consensus.engine;
    if engine != EngineKind::Raft {
        cmd.push_str(&format!(" --consensus {engine}"));
    }
    if let Some(set) = &args.nemesis
        && *set != faults::sim_default(engine)
    {
        cmd.push_str(&format!(" --nemesis {set}"));
    }
    if let Some(m) = args.mutant {
        cmd.push_str(&format!(" --unsafe {}", m.name()));
    }
    cmd.push_str(" --trace");
    cmd
}

fn print_summary(
    out: &mut impl std::io::Write,
    r: &RangeResult,
    engine: EngineKind,
) -> std::io::Result<()> {
    let s = &r.stats;
    let sim_s = s.virtual_ns as f64 / 1e9;
    writeln!(
        out,
        "seeds run: {}  violations: {}  undecided histories: {}  wall: {:.2} s  ({:.0} seeds/s)",
        r.seeds,
        r.failures.len(),
        r.unknown.len(),
        r.wall_s,
        r.seeds as f64 / r.wall_s.max(1e-9)
    )?;
    writeln!(
        out,
        "client ops: {} (ok {}, fail {}, info {})  messages: {}  steps: {}",
        s.ops_ok + s.ops_fail + s.ops_info,
        s.ops_ok,
        s.ops_fail,
        s.ops_info,
        s.messages,
        s.steps
    )?;
    writeln!(
        out,
        "faults: crashes {}, partitions {}, pauses {}  leader changes: {}",
        s.crashes, s.partitions, s.pauses, s.leader_changes
    )?;
    writeln!(
        out,
        "snapshots: taken {} ({} encoded as a delta), installed from a leader {} (in {} seeds)",
        s.snapshots_taken, s.snapshot_deltas, s.snapshots_installed, s.seeds_with_install
    )?;
    writeln!(
        out,
        "membership changes: {} asked ({} done, {} refused); joint entries applied {}, final {}",
        s.membership_changes,
        s.membership_done,
        s.membership_refused,
        s.joint_entries,
        s.final_entries
    )?;
    writeln!(
        out,
        "disk losses: {} whole, {} write-ahead log only  hostile peer messages: {} ({} refused)",
        s.disk_wipes, s.wal_losses, s.hostile_sent, s.hostile_rejected
    )?;
    if engine != EngineKind::Raft || s.power_losses > 0 {
        write!(
            out,
            "consensus: {engine}  power losses with a write in flight: {}",
            s.power_losses
        )?;
        if engine != EngineKind::Raft {
            write!(out, "  slots chosen: {}", s.slots_chosen)?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "simulated: {:.1} s in {:.2} s wall ({:.0} simulated s per wall s)",
        sim_s,
        r.wall_s,
        sim_s / r.wall_s.max(1e-9)
    )
}

// The wall clock measures the simulator's own speed; `--history` writes a file.
#[allow(clippy::disallowed_types, clippy::disallowed_methods)]
pub fn main(args: SimArgs) -> anyhow::Result<ExitCode> {
    let opts = options(&args)?;
    for (f, why) in left_out(&args) {
        eprintln!(
            "note: --consensus {}: fault {f} left out ({why})",
            args.consensus.engine
        );
    }
    let (a, b) = match args.seed {
        Some(s) => (s, s),
        None => (args.seeds.first, args.seeds.last),
    };
    if (args.trace || args.history.is_some()) && a != b {
        bail!("--trace and --history need a single seed (--seed N)");
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let result = if a == b {
        let start = std::time::Instant::now();
        let r = run_seed(a, &opts);
        for line in &r.trace {
            writeln!(out, "{line}")?;
        }
        if let Some(path) = &args.history {
            r.history
                .save(path, checker::parse::Format::Jsonl)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        RangeResult {
            seeds: 1,
            stats: r.stats,
            failures: r.violation.map(|v| (a, v)).into_iter().collect(),
            unknown: r.unknown.map(|u| (a, u)).into_iter().collect(),
            wall_s: start.elapsed().as_secs_f64(),
        }
    } else {
        let threads = args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        run_range(a, b, &opts, threads)
    };
    // With --trace, stdout carries only the trace (byte-identical for one seed); the
    // summary, which includes wall-clock figures, goes to stderr.
    let mut summary = Vec::new();
    print_summary(&mut summary, &result, opts.engine)?;
    for (seed, v) in &result.failures {
        writeln!(
            summary,
            "FAIL seed {seed}: {} (step {}, {:.3} s virtual)\n  replay: {}",
            v.message,
            v.step,
            v.time_ns as f64 / 1e9,
            replay_command(*seed, &args)
        )?;
    }
    for (seed, why) in &result.unknown {
        writeln!(
            summary,
            "UNKNOWN seed {seed}: linearizability undecided: {why}"
        )?;
    }
    if args.trace {
        out.flush()?;
        std::io::stderr().write_all(&summary)?;
    } else {
        out.write_all(&summary)?;
    }
    Ok(ExitCode::from(exit_status(&result)))
}

/// The exit status of a run of seeds: 1 when a seed found a violation, else 2 when
/// a seed's history was left undecided (unknown is never a pass), else 0.
pub fn exit_status(r: &RangeResult) -> u8 {
    if !r.failures.is_empty() {
        1
    } else if !r.unknown.is_empty() {
        2
    } else {
        0
    }
}
