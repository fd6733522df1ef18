//! The `node` binary: parse the command line, open storage, serve until SIGTERM or
//! ctrl-c. Exit status 0 after a clean shutdown, 1 on a runtime failure, 2 on a bad
//! command line or a data directory that cannot be opened.

use clap::Parser;
use node::engine::Recovered;
use node::server::config::{Args, NodeConfig};
use node::server::disk::NodeDisk;
use node::storage::StorageOptions;
use std::process::ExitCode;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::prelude::*;

/// glibc's allocator took a fifth of the leader's CPU under load (arena locks,
/// consolidation of freed chunks); jemalloc's per-thread caches avoid both.
#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let mut args = Args::parse();
    init_logging();
    // An inherited socket is taken first: its address stands for --listen.
    let inherited = if args.listen_inherited {
        match node::server::listen::inherited().and_then(|l| Ok((l.local_addr()?, l))) {
            Ok((addr, l)) => {
                args.listen = Some(addr);
                Some(l)
            }
            Err(e) => {
                eprintln!("node: --listen-inherited: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        None
    };
    let workers = args.worker_threads.clamp(1, 64);
    let parent = args.exit_with_parent.then(nix::unistd::getppid);
    let config = match NodeConfig::from_args(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("node: {e}");
            return ExitCode::from(2);
        }
    };
    let built = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    let runtime = match built {
        Ok(r) => r,
        Err(e) => {
            eprintln!("node: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(run(config, inherited, parent))
}

async fn run(
    config: NodeConfig,
    inherited: Option<std::net::TcpListener>,
    parent: Option<nix::unistd::Pid>,
) -> ExitCode {
    let opts = StorageOptions {
        no_fsync: config.no_fsync,
        segment_max_bytes: config.wal_segment_bytes,
        defer_segment_deletion: true,
        ..StorageOptions::default()
    };
    let (storage, recovered) = match NodeDisk::open(&config.data_dir, config.consensus, opts) {
        Ok(x) => x,
        Err(e) => {
            tracing::error!("cannot open data directory: {e}");
            eprintln!("node: cannot open data directory: {e}");
            return ExitCode::from(2);
        }
    };
    match &recovered {
        Recovered::Raft(r) => tracing::info!(
            consensus = %config.consensus,
            entries = r.entries.len(),
            term = r.hard_state.term,
            snapshot = r.snapshot.as_ref().map(|s| s.meta.last_index),
            "recovered"
        ),
        Recovered::MultiPaxos(r) => tracing::info!(
            consensus = %config.consensus,
            records = r.records.len(),
            snapshot = r.snapshot.as_ref().map(|s| s.last_slot),
            "recovered"
        ),
        Recovered::BasicPaxos(r) => tracing::info!(
            consensus = %config.consensus,
            records = r.records.len(),
            snapshot = r.snapshot.as_ref().map(|s| s.last_slot),
            "recovered"
        ),
    }
    let listener = match inherited.map_or_else(
        || node::server::bind(config.listen),
        tokio::net::TcpListener::from_std,
    ) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {}: {e}", config.listen);
            return ExitCode::from(2);
        }
    };
    match node::server::run(
        config,
        listener,
        storage,
        recovered,
        shutdown_signal(parent),
    )
    .await
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

/// Completes on SIGTERM or ctrl-c (SIGINT), or once `parent` is no longer this
/// process's parent (it exited and the process was re-parented).
async fn shutdown_signal(parent: Option<nix::unistd::Pid>) {
    let orphaned = async {
        let Some(parent) = parent else {
            return std::future::pending::<()>().await;
        };
        let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
        loop {
            every.tick().await;
            if nix::unistd::getppid() != parent {
                return;
            }
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch SIGTERM: {e}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupted"),
        _ = term => tracing::info!("terminated"),
        _ = orphaned => tracing::info!("the parent process exited"),
    }
}

/// Logs to stderr; `RUST_LOG` may name one level (error, warn, info, debug, trace).
fn init_logging() {
    let level = std::env::var("RUST_LOG")
        .ok()
        .and_then(|l| l.parse::<LevelFilter>().ok())
        .unwrap_or(LevelFilter::INFO);
    let filter = Targets::new()
        .with_default(level)
        .with_target("hyper", LevelFilter::WARN)
        .with_target("hyper_util", LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(false),
        )
        .with(filter)
        .init();
}
