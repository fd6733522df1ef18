//! Helpers for the engines' unit tests.

use super::core::{self, Machine};
use super::{Ballot, NodeId, PaxosConfig, PaxosMutants, Ready, Value};

pub(crate) fn cfg(id: NodeId, peers: &[NodeId]) -> PaxosConfig {
    PaxosConfig {
        id,
        peers: peers.to_vec(),
        election_ticks_min: 10,
        election_ticks_max: 20,
        heartbeat_ticks: 2,
        max_values_per_msg: 4,
        max_inflight_msgs: 2,
        seed: 3,
        mutants: PaxosMutants::default(),
    }
}

pub(crate) fn b(round: u64, node: NodeId) -> Ballot {
    Ballot { round, node }
}

pub(crate) fn cmd(s: &str) -> Value {
    Value::Command(s.as_bytes().to_vec())
}

/// Runs `ready` and makes each write durable at once, until nothing moves.
pub(crate) fn settle<M: Machine>(m: &mut M) -> Vec<Ready<M::Body, M::Record>> {
    let mut out = Vec::new();
    for _ in 0..20 {
        let r = core::ready(m);
        let seq = r.persist.as_ref().map(|w| w.seq);
        let idle = seq.is_none() && r.messages.is_empty() && r.committed.is_empty();
        out.push(r);
        match seq {
            Some(seq) => m.core().outbox.persisted(seq),
            None if idle => break,
            None => {}
        }
    }
    out
}
