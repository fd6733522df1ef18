//! A real local cluster: node processes, TCP proxies for partitions, signals for
//! kills and pauses, concurrent clients, the history, the verdict and the report.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// `workloads run` options (DESIGN.md).
#[derive(Args, Clone, Debug)]
pub struct RunArgs {
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

impl RunArgs {
    /// The options of a bare `cargo run -p workloads`.
    pub fn default_run() -> RunArgs {
        RunArgs {
            nodes: 5,
            results: PathBuf::from("results"),
        }
    }
}

/// `workloads report DIR` options.
#[derive(Args, Clone, Debug)]
pub struct ReportArgs {
    /// The run folder to re-render.
    pub dir: PathBuf,
}

pub fn main(_args: RunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the real-cluster runner is not built yet")
}

pub fn report_main(_args: ReportArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("report re-rendering is not built yet")
}
