//! A linearizability checker for key-value histories.
//!
//! - [`history`]: events and operations; parsers for JSONL and Jepsen EDN.
//! - [`verdict`]: what a check decides, and why.
//! - [`check`]: the search (split by key, in parallel).
//! - [`report`]: the HTML report and plots.

pub mod check;
pub mod history;
pub mod report;
pub mod verdict;
