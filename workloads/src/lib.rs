//! Workloads against the Raft key-value node.
//!
//! - [`sim`]: the deterministic simulator (`workloads sim`).
//! - [`run`]: a real local cluster with real faults (`workloads run`, `workloads report`).
//! - [`suite`]: the CI gate (`workloads suite ci`).

pub mod run;
pub mod sim;
pub mod suite;
