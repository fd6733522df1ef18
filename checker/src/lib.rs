//! A linearizability checker for key-value histories.
//!
//! - [`history`]: events and operations.
//! - [`parse`]: the JSONL and Jepsen EDN readers, pairing and validation.
//! - [`error`]: what is wrong with a history, and where.
//! - [`verdict`]: what a check decides, and why.
//! - [`check`]: the search (split by key, in parallel).
//! - [`report`]: the HTML report and plots.

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
