//! Tests of the two Paxos engines in isolation, on a deterministic in-memory network.
//!
//! - `harness`: the cluster (engines, simulated disks that lose unsynced writes on a
//!   crash, a network that can delay, drop, duplicate, reorder and partition) and the
//!   oracle that checks the Paxos invariants on everything that happens.
//! - `sim`: thousands of seeded fault schedules per engine; each mutant must break
//!   an invariant on some of them.
//! - `basic_steps`, `multi_steps`: scenarios driven message by message.
//! - `garbage`: arbitrary peer messages never stop an engine.

mod basic_steps;
mod garbage;
mod harness;
mod multi_steps;
mod sim;
