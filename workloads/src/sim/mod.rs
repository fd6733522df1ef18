//! The deterministic simulator: N replicas in one process on virtual time, a seeded
//! network and disk, simulated clients, invariant checks on every step.

use clap::Args;
use std::process::ExitCode;

/// `workloads sim` options.
#[derive(Args, Clone, Debug)]
pub struct SimArgs {
    /// Seeds to run, as `A..B` (inclusive) or one number.
    #[arg(long, default_value = "1..100")]
    pub seeds: String,
}

pub fn main(_args: SimArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the simulator is not built yet")
}
