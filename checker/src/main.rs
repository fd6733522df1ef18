//! The `checker` command: parse the arguments, run, map the outcome to an exit status
//! (0 linearizable, 1 not, 2 unknown, 3 bad input or usage).
//!
//! - `cli`: the command line (`check`, `bench`, `gen`, `serve`) and its dispatch.
//! - `serve`: `checker serve`, the checks as an HTTP service with a durable queue.

mod cli;
mod serve;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("checker: {e:#}");
            ExitCode::from(cli::EXIT_BAD_INPUT)
        }
    }
}
