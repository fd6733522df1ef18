//! A linearizability checker for histories of concurrent operations.
//!
//! Read a history ([`parse`]), check it ([`check::check`]), print or store the
//! [`verdict::Verdict`], render it ([`report::write_report`]). The `checker` binary
//! (`check`, `bench`, `gen`, `serve`, `submit`) is a thin layer over these modules.
//! The design (formats, verdicts, exit statuses) is in the repository's
//! `docs/design.md`.
//!
//! - [`history`]: events and operations, the model every other module shares.
//! - [`build`]: making a history from raw events (pairing, validation).
//! - [`parse`]: the JSONL and Jepsen EDN readers, streamed and parsed on every core.
//! - [`write`](mod@write): the JSONL and Jepsen EDN writers, the one way to write a history.
//! - [`error`]: what is wrong with a history input, and where (file, line, reason).
//! - [`model`]: the sequential specifications (register, cas-register, kv, Knossos's
//!   mutex, set, fifo-queue and unordered-queue), and the [`model::Model`] trait for
//!   writing new ones.
//! - `engine`: the searches: the generic Wing-Gong-Lowe search with memoization that
//!   runs any model, and the faster engine of the built-in register models.
//! - [`check`]: the entry point: split by partition, search each in parallel, gather.
//! - `explain`: the longest linearizable prefix turned into a counterexample.
//! - [`verdict`]: what a check decides, and why.
//! - [`report`]: the HTML report, its plots and the results index.
//! - [`gen`](mod@gen): generated histories (linearizable by construction) for tests
//!   and benchmarks.
//! - [`bench`](mod@bench): the table behind `checker bench DIR`.
//! - `serve` (in the binary): the checker as an HTTP service.

pub mod bench;
pub mod build;
pub mod check;
mod engine;
pub mod error;
mod explain;
pub mod r#gen;
pub mod history;
pub mod model;
pub mod parse;
pub mod report;
pub mod verdict;
pub mod write;
