//! A linearizability checker for key-value histories.
//!
//! - [`history`]: events and operations; parsers for JSONL and Jepsen EDN.
//! - [`verdict`]: what a check decides, and why.

pub mod history;
pub mod verdict;
