//! `workloads`: run a faulted cluster (default), the simulator, or the CI suite.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "workloads",
    version,
    about = "Is this key-value store linearizable under faults?"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Start a local cluster, drive clients, inject faults, check the history, write a report.
    Run(workloads::run::RunArgs),
    /// Run the replicas (Raft, Multi-Paxos or Basic Paxos) in the deterministic simulator over many seeds.
    Sim(workloads::sim::SimArgs),
    /// Re-render a run's report from its files.
    Report(workloads::run::ReportArgs),
    /// The CI gate: correct runs must pass, mutants must be caught.
    Suite(workloads::suite::SuiteArgs),
}

/// Setup errors and bad command lines (docs/design.md, "Exit status"; clap's own
/// status would be 2, which means "unknown" here).
const EXIT_SETUP: u8 = 3;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            // Help and version go to stdout and succeed; every other usage problem is 3.
            let ok = matches!(e.kind(), K::DisplayHelp | K::DisplayVersion);
            let _ = e.print();
            return ExitCode::from(if ok { 0 } else { EXIT_SETUP });
        }
    };
    let result = match cli.command {
        None => workloads::run::main(workloads::run::RunArgs::default_run()),
        Some(Command::Run(args)) => workloads::run::main(args),
        Some(Command::Sim(args)) => workloads::sim::main(args),
        Some(Command::Report(args)) => workloads::run::report_main(args),
        Some(Command::Suite(args)) => workloads::suite::main(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("workloads: {e:#}");
            ExitCode::from(EXIT_SETUP)
        }
    }
}
