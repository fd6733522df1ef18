//! A linearizability checker for histories of concurrent operations.
//!
//! - [`history`]: events and operations; [`build`]: making a history (pairing,
//!   validation); [`parse`]: the JSONL and Jepsen EDN readers.
//! - [`model`]: the sequential specifications, and the [`model::Model`] trait for
//!   writing new ones.
//! - [`check`]: the search, split by partition, in parallel; [`verdict`]: what it
//!   decides, and why.
//! - [`error`]: what is wrong with a history, and where.
//! - [`report`]: the HTML report and plots.

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
