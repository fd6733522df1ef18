//! Command-line arguments and dispatch. Usage errors exit 3 (clap's own status would
//! be 2, which means "unknown" here).

mod bench;
pub(crate) mod check_cmd;
mod gen_cmd;
mod out;
mod serve_cmd;
mod submit;
pub(crate) mod summary;

use anyhow::{Context, bail};
use checker::check::{CheckOptions, ModelKind};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub const EXIT_LINEARIZABLE: u8 = 0;
pub const EXIT_NOT_LINEARIZABLE: u8 = 1;
pub const EXIT_UNKNOWN: u8 = 2;
pub const EXIT_BAD_INPUT: u8 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "checker",
    version,
    about = "Decides whether a key-value history is linearizable"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check one history (JSONL or Jepsen EDN, detected from the content).
    Check(CheckArgs),
    /// Time reading and checking a history, or every history in a directory.
    Bench(BenchArgs),
    /// Write a generated history (linearizable by construction) as JSONL.
    Gen(GenArgs),
    /// Offer `check` as an HTTP service until SIGTERM or ctrl-c (loopback only,
    /// unless a bearer token is set).
    Serve(ServeArgs),
    /// Send a history to a `checker serve` and, with --wait, exit with its verdict.
    Submit(SubmitArgs),
}

/// Options shared by `check` and `bench`.
#[derive(Args, Debug)]
struct ModelArgs {
    /// The sequential specification to check against.
    #[arg(long, value_enum, default_value = "kv")]
    model: ModelKind,
    /// The value of every key before the history (a JSON or EDN literal); default absent.
    #[arg(long, value_name = "VALUE")]
    initial: Option<String>,
    /// A read of null constrains nothing, as in Knossos's register models.
    #[arg(long)]
    knossos: bool,
    /// Give up with "unknown" (exit 2) after this many seconds of checking.
    #[arg(long, value_name = "SECONDS")]
    time_limit: Option<f64>,
    /// Accept a history without client operations (otherwise bad input, exit 3).
    #[arg(long)]
    allow_empty: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// The history file.
    history: PathBuf,
    #[command(flatten)]
    model: ModelArgs,
    /// Write an HTML report into this directory (decides every key).
    #[arg(long, value_name = "DIR")]
    report: Option<PathBuf>,
    /// Print the verdict as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// A history, or a directory of histories (*.jsonl, *.edn).
    path: PathBuf,
    /// Times each history is read and checked (the median and the largest are shown).
    #[arg(long, value_name = "N", default_value_t = 1)]
    repeat: usize,
    #[command(flatten)]
    model: ModelArgs,
    /// A JSON object of file name -> Porcupine's check time in ms, shown as a column.
    #[arg(long, value_name = "FILE")]
    compare: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct GenArgs {
    /// Where to write the history.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    #[arg(long, default_value_t = 1_000_000)]
    ops: usize,
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Share of operations that end indeterminate (`info`).
    #[arg(long, default_value_t = 0.05)]
    info: f64,
    /// register (read/write), cas (read/write/cas) or append (read/put/append).
    #[arg(long, default_value = "cas")]
    mix: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Make one read stale, so the history is not linearizable.
    #[arg(long)]
    violation: bool,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The address to listen on (port 0 picks a free port). Loopback only, unless a
    /// --token is set.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    listen: std::net::SocketAddr,
    /// Every request but /healthz must carry `Authorization: Bearer TOKEN`; needed to
    /// listen beyond loopback.
    #[command(flatten)]
    token: TokenArg,
    /// Where checks are kept (one folder each), and reloaded from at start.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// The largest history accepted (413 beyond).
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20)]
    max_body_bytes: u64,
    /// Checks waiting for a worker; a submission beyond gets 503.
    #[arg(long, value_name = "N", default_value_t = 64)]
    queue: usize,
    /// Checks run at once, each on its own blocking thread.
    #[arg(long, value_name = "N", default_value_t = 1)]
    workers: usize,
    /// Threads of one check (0 = one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// The longest time budget of one check, and the budget when a submission gives none.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    max_time_limit: f64,
    /// Finished checks kept in DIR; the oldest beyond are deleted.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    keep: usize,
    /// Open connections at most; more are closed at once.
    #[arg(long, value_name = "N", default_value_t = 256)]
    max_connections: usize,
}

/// The service's bearer token (`serve` asks for it, `submit` sends it).
#[derive(Args, Debug)]
struct TokenArg {
    /// Bearer token: `serve` asks every request but /healthz for it (and may then listen
    /// beyond loopback); `submit` sends it. At least 16 characters; also read from
    /// CHECKER_TOKEN, which keeps it out of `ps`.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "CHECKER_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
}

#[derive(Args, Debug)]
struct SubmitArgs {
    /// The history file.
    history: PathBuf,
    /// The service, e.g. http://checker.internal:7070.
    #[arg(long, value_name = "URL")]
    server: String,
    /// Wait for the verdict and exit with its status (0, 1, 2; 3 when the check
    /// ended in error, such as a history that does not parse).
    #[arg(long)]
    wait: bool,
    /// The bearer token the service asks for.
    #[command(flatten)]
    token: TokenArg,
    #[command(flatten)]
    model: ModelArgs,
    /// Print the check (with --wait: the whole verdict) as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// How long to keep trying while the service is unreachable or its queue is full.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    retry_for: f64,
    /// The longest wait for the verdict (default: none).
    #[arg(long, value_name = "SECONDS")]
    wait_limit: Option<f64>,
}

/// Parses the command line and runs the command; the `Ok` value is the exit status.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            // Help and version go to stdout and succeed; every other usage problem is 3.
            let ok = matches!(e.kind(), K::DisplayHelp | K::DisplayVersion);
            e.print().context("printing usage")?;
            return Ok(ExitCode::from(if ok { 0 } else { EXIT_BAD_INPUT }));
        }
    };
    match cli.command {
        Command::Check(args) => check_cmd::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Gen(args) => gen_cmd::run(&args),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::Submit(args) => submit::run(&args),
    }
}

impl ModelArgs {
    /// The check options these arguments describe.
    fn options(&self) -> anyhow::Result<CheckOptions> {
        let initial = match &self.initial {
            None => None,
            Some(text) => Some(
                checker::parse::value_literal(text)
                    .map_err(|e| anyhow::anyhow!("--initial {text:?}: {e}"))?,
            ),
        };
        let time_limit = match self.time_limit {
            None => None,
            Some(s) if s.is_finite() && s > 0.0 => Some(
                Duration::try_from_secs_f64(s)
                    .map_err(|e| anyhow::anyhow!("--time-limit {s}: {e}"))?,
            ),
            Some(s) => bail!("--time-limit must be a positive number of seconds, not {s}"),
        };
        Ok(CheckOptions {
            model: self.model,
            initial,
            knossos: self.knossos,
            time_limit,
            allow_empty: self.allow_empty,
            ..CheckOptions::default()
        })
    }
}
