//! `checker serve`: arguments to [`ServeConfig`], then serve until stopped.

use super::ServeArgs;
use crate::serve::ServeConfig;
use std::process::ExitCode;

pub(super) fn run(args: &ServeArgs) -> anyhow::Result<ExitCode> {
    if !(args.max_time_limit.is_finite() && args.max_time_limit > 0.0) {
        anyhow::bail!(
            "--max-time-limit must be a positive number of seconds, not {}",
            args.max_time_limit
        );
    }
    crate::serve::run(ServeConfig {
        listen: args.listen,
        token: args.token.token.clone(),
        data: args.data.clone(),
        max_body_bytes: args.max_body_bytes,
        queue: args.queue,
        workers: args.workers,
        threads: args.threads,
        max_time_limit_s: args.max_time_limit,
        keep: args.keep,
        max_connections: args.max_connections,
    })?;
    Ok(ExitCode::SUCCESS)
}
