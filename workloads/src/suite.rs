//! `workloads suite ci`: the gate CI runs.

use clap::Args;
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct SuiteArgs {
    /// The suite to run (`ci`).
    pub name: String,
}

pub fn main(_args: SuiteArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("the CI suite is not built yet")
}
