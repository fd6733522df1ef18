//! Command-line arguments and dispatch. Usage errors exit 3 (clap's own status would
//! be 2, which means "unknown" here).

mod bench;
pub(crate) mod check_cmd;
mod gen_cmd;
mod serve_cmd;
pub(crate) mod summary;

use anyhow::{Context, bail};
use checker::check::{CheckOptions, ModelKind};
use clap::{Args, Parser, Subcommand, ValueEnum};
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
    /// Time the check of every history in a directory (parsing excluded).
    Bench(BenchArgs),
    /// Write a generated history (linearizable by construction) as JSONL.
    Gen(GenArgs),
    /// Offer `check` as an HTTP service (loopback only) until SIGTERM or ctrl-c.
    Serve(ServeArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModelArg {
    Register,
    CasRegister,
    Kv,
}

/// Options shared by `check` and `bench`.
#[derive(Args, Debug)]
struct ModelArgs {
    /// The sequential specification to check against.
    #[arg(long, value_enum, default_value = "kv")]
    model: ModelArg,
    /// The value of every key before the history (a JSON or EDN literal); default absent.
    #[arg(long, value_name = "VALUE")]
    initial: Option<String>,
    /// A read of null constrains nothing, as in Knossos's register models.
    #[arg(long)]
    knossos: bool,
    /// Give up with "unknown" (exit 2) after this many seconds of checking.
    #[arg(long, value_name = "SECONDS")]
    time_limit: Option<f64>,
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
    /// A directory of histories (*.jsonl, *.edn).
    dir: PathBuf,
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
    /// The address to listen on (loopback only; port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7070")]
    listen: std::net::SocketAddr,
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
            model: match self.model {
                ModelArg::Register => ModelKind::Register,
                ModelArg::CasRegister => ModelKind::CasRegister,
                ModelArg::Kv => ModelKind::Kv,
            },
            initial,
            knossos: self.knossos,
            time_limit,
            ..CheckOptions::default()
        })
    }
}
