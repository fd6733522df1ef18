//! Workloads against the Raft key-value node. The design (history format, exit
//! statuses, results layout, faults, the CI gate) is in the repository's
//! `docs/design.md`.
//!
//! - [`sim`]: the deterministic simulator (`workloads sim`).
//! - [`run`]: a real local cluster with real faults (`workloads run`, `workloads report`).
//! - [`suite`]: the CI gate (`workloads suite ci`).
//! - [`args`]: command-line values the commands share (seed ranges, fault sets).
//! - [`faults`]: the one fault vocabulary of `--nemesis`, for `sim` and `run`.
//! - [`ops`]: the client operations and their generator, for `sim` and `run`.
//! - [`history`]: recording a history as it happens, for `sim` and `run`.
//! - [`reply`]: how an operation on our node ended, one classifier for `sim` and `run`.

pub mod args;
pub mod faults;
pub mod history;
pub mod ops;
pub mod reply;
pub mod run;
pub mod sim;
pub mod suite;
