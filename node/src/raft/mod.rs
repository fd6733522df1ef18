//! The Raft consensus core. PURE: no tokio, clock, rand, files or network.

pub mod types;
