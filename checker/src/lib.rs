//! A linearizability checker for key-value histories.
//!
//! Read a history ([`parse`]), check it ([`check::check`]), print or store the
//! [`verdict::Verdict`], render it ([`report::write_report`]). The `checker` binary
//! (`check`, `bench`, `gen`, `serve`) is a thin layer over these modules. The design
//! (formats, verdicts, exit statuses) is in the repository's `docs/design.md`.
//!
//! - [`history`]: events and operations, the model every other module shares.
//! - [`parse`]: the JSONL and Jepsen EDN readers, pairing and validation.
//! - [`error`]: what is wrong with a history input, and where (file, line, reason).
//! - [`model`]: the sequential specifications (register, cas-register, kv).
//! - [`prepare`]: one key's operations turned into what the search runs on.
//! - [`search`]: the Wing-Gong-Lowe search with memoization, on one key.
//! - [`trie`]: the append model when reads are unambiguous.
//! - [`check`]: the entry point: split by key, search each key in parallel, gather.
//! - [`explain`]: the longest linearizable prefix turned into a counterexample.
//! - [`verdict`]: what a check decides, and why.
//! - [`report`]: the HTML report, its plots and the results index.
//! - [`gen`]: generated histories (linearizable by construction) for tests and benchmarks.
//! - [`bench`](mod@bench): the table behind `checker bench DIR`.

pub mod bench;
pub mod check;
pub mod error;
pub mod explain;
pub mod r#gen;
pub mod history;
pub mod model;
pub mod parse;
pub mod prepare;
pub mod report;
pub mod search;
pub mod trie;
pub mod verdict;
