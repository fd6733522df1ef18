//! A Raft key-value server. The design (the persistence rule, the HTTP API, the
//! mutants) is in the repository's `docs/design.md`.
//!
//! - [`raft`]: the pure consensus core (no I/O, no clock, no randomness but its seed).
//! - [`kv`]: the pure key-value state machine.
//! - [`replica`]: pure glue: raft + kv + pending client requests, `handle(Input) -> Vec<Output>`.
//! - [`storage`]: the durable log, hard state and snapshots (files + fsync).
//! - [`server`]: the only async code: HTTP API, peer transport, the driver task, the clock.

pub mod consensus;
pub mod engine;
pub mod kv;
pub mod paxos;
pub mod raft;
pub mod replica;
pub mod server;
pub mod storage;
