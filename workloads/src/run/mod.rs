//! A real local cluster: member processes, TCP proxies for partitions, signals for
//! kills and pauses, concurrent clients, the history, the verdict and the report.
//!
//! - [`target`]: what runs (our node, etcd, or a target file) and how it is reached.
//! - [`cluster`]: member processes on their [`host`]s and link proxies ([`proxy`]);
//!   teardown on drop.
//! - [`client`]: Jepsen-style clients over [`http`], speaking the target's protocol
//!   ([`api`], [`etcd`]); [`recorder`]: the history (written as JSONL and Jepsen EDN by
//!   `checker::write`).
//! - [`nemesis`]: the fault schedule ([`membership`], [`etcd_members`], [`wipe`]: what
//!   its admin and disk faults ask of the members); [`status`]: leader and term changes.
//! - [`runner`]: one run from start to verdict; [`output`]: the results folder.

pub mod api;
pub mod client;
pub mod cluster;
pub mod etcd;
pub mod etcd_members;
pub mod host;
pub mod http;
pub mod membership;
pub mod nemesis;
pub mod nodebin;
pub mod output;
pub mod proxy;
pub mod recorder;
pub mod report;
pub mod runner;
pub mod status;
pub mod target;
pub mod wipe;

use crate::args::FaultSet;
use crate::faults::Fault;
use clap::Args;
use node::consensus::EngineKind;
use node::replica::Mutant;
use std::path::PathBuf;
use std::process::ExitCode;

/// The built-in targets of `--target`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// This project's Raft node.
    Node,
    /// etcd (3.4 or newer), found on PATH or given with --etcd-bin.
    Etcd,
}

/// `workloads run` options (docs/design.md, "Workloads").
#[derive(Args, Clone, Debug, PartialEq)]
pub struct RunArgs {
    /// The store to test: our node, or etcd.
    #[arg(long, value_enum, default_value = "node")]
    pub target: TargetKind,
    /// A target file describing another store (TOML; see workloads/targets/).
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub target_file: Option<PathBuf>,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long, value_name = "PATH")]
    pub etcd_bin: Option<PathBuf>,
    /// etcd reads are serializable (served from the member's local state) instead of
    /// linearizable.
    #[arg(long)]
    pub etcd_serializable_reads: bool,
    /// Members (processes) in the cluster.
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Concurrent client processes (one outstanding operation each).
    #[arg(long, default_value_t = 10)]
    pub clients: usize,
    /// Keys the clients read, write and cas.
    #[arg(long, default_value_t = 8)]
    pub keys: usize,
    /// Seconds of workload (faults included), before healing and final reads.
    #[arg(long, default_value_t = 30.0)]
    pub time_limit: f64,
    /// Target operations per second over all clients.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Faults: a comma list of partition, kill, pause, membership, wipe; or all
    /// (every kind a real run can inject); or none. The default leaves membership and
    /// wipe out. loss and hostile are the simulator's only (docs/design.md, "Faults").
    #[arg(long, default_value = "partition,kill,pause")]
    pub nemesis: FaultSet<Fault>,
    /// Seconds of each fault and of each quiet period between faults.
    #[arg(long, default_value_t = 5.0)]
    pub nemesis_interval: f64,
    /// Seed of the operation mix and the fault schedule (default: from the clock).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Every node snapshots and compacts its log once per this many applied entries
    /// (`node --snapshot-every`), kept low so that restarted and lagging nodes catch
    /// up through InstallSnapshot during a run; 0 turns automatic snapshots off.
    #[arg(long, default_value_t = 500)]
    pub snapshot_every: u64,
    /// The consensus engine every node runs (`node --consensus`). Paxos membership is
    /// static and an acceptor that loses its disk forgets its promises, so the
    /// membership and wipe faults are refused under the Paxos engines.
    #[arg(long, value_name = "ENGINE", value_enum, default_value = "raft")]
    pub consensus: EngineKind,
    /// A known bug to switch on in every node (`node --unsafe`).
    #[arg(long = "unsafe", value_name = "MUTANT", value_enum)]
    pub unsafe_mutant: Option<Mutant>,
    /// Where run folders go.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
    /// The node binary (default: beside this executable, built with cargo if missing).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// Seconds a client waits for a reply before recording the operation as info.
    #[arg(long, default_value_t = 1.0)]
    pub op_timeout: f64,
    /// Seconds the checker may spend before answering unknown.
    #[arg(long, default_value_t = 120.0)]
    pub check_time_limit: f64,
}

impl RunArgs {
    /// The options of a bare `cargo run -p workloads`.
    pub fn default_run() -> RunArgs {
        RunArgs {
            target: TargetKind::Node,
            target_file: None,
            etcd_bin: None,
            etcd_serializable_reads: false,
            nodes: 5,
            clients: 10,
            keys: 8,
            time_limit: 30.0,
            rate: 200.0,
            nemesis: FaultSet::from([Fault::Partition, Fault::Kill, Fault::Pause]),
            nemesis_interval: 5.0,
            seed: None,
            snapshot_every: 500,
            consensus: EngineKind::Raft,
            unsafe_mutant: None,
            results: PathBuf::from("results"),
            node_bin: None,
            op_timeout: 1.0,
            check_time_limit: 120.0,
        }
    }
}

/// `workloads report DIR` options.
#[derive(Args, Clone, Debug)]
pub struct ReportArgs {
    /// The run folder to re-render.
    pub dir: PathBuf,
}

/// `workloads run`: exit 0 linearizable, 1 anomaly, 2 unknown; errors become 3.
pub fn main(args: RunArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let code = rt.block_on(runner::run(args))?;
    // Connection tasks of the pooled clients may still be parked; do not wait for them.
    rt.shutdown_timeout(std::time::Duration::from_millis(200));
    Ok(ExitCode::from(code))
}

/// `workloads report DIR`: re-renders a run's report from its files.
pub fn report_main(args: ReportArgs) -> anyhow::Result<ExitCode> {
    runner::rerender(&args.dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    #[test]
    fn bare_defaults_match_the_parsed_defaults() {
        let parsed = Cli::try_parse_from(["workloads"]).expect("parse");
        assert_eq!(parsed.run, RunArgs::default_run());
    }
}
