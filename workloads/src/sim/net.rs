//! The simulated network between replicas: per-message delay, loss, duplication and
//! reordering, and partitions (symmetric or one-way) as a set of cut directed links.
//!
//! The network only decides the *fate* of a message (dropped, or delivered once or
//! twice after some delay); the world's event queue does the delivering. A link cut at
//! delivery time drops the message too, as a real partition drops what is in flight.

use node::raft::types::NodeId;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Message faults currently in force. All rates are probabilities per message.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Faults {
    pub drop: f64,
    pub duplicate: f64,
    /// Probability that a message takes a long detour (reordering it past later ones).
    pub long_delay: f64,
}

impl Faults {
    pub const NONE: Faults = Faults {
        drop: 0.0,
        duplicate: 0.0,
        long_delay: 0.0,
    };
}

/// Delays in virtual nanoseconds.
const MIN_DELAY_NS: u64 = 100_000;
const MAX_DELAY_NS: u64 = 3_000_000;
const MAX_LONG_DELAY_NS: u64 = 60_000_000;

#[derive(Debug)]
pub struct Network {
    /// Directed links `(from, to)` that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    pub faults: Faults,
    /// Extra loss on everything one node sends (a flaky NIC), by node.
    lossy: BTreeMap<NodeId, f64>,
}

impl Network {
    pub fn new() -> Network {
        Network {
            cut: BTreeSet::new(),
            faults: Faults::NONE,
            lossy: BTreeMap::new(),
        }
    }

    pub fn is_cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cut.contains(&(from, to))
    }

    pub fn any_cut(&self) -> bool {
        !self.cut.is_empty()
    }

    /// Cuts every link between the two sides, in both directions.
    pub fn partition(&mut self, side_a: &[NodeId], side_b: &[NodeId]) {
        for &a in side_a {
            for &b in side_b {
                self.cut.insert((a, b));
                self.cut.insert((b, a));
            }
        }
    }

    /// Cuts the links from `from` to each of `to` (one-way: replies still flow back).
    pub fn cut_one_way(&mut self, from: NodeId, to: &[NodeId]) {
        for &b in to {
            if b != from {
                self.cut.insert((from, b));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Drops each message `node` sends with probability `p` (0 ends it).
    pub fn set_lossy(&mut self, node: NodeId, p: f64) {
        if p > 0.0 {
            self.lossy.insert(node, p);
        } else {
            self.lossy.remove(&node);
        }
    }

    pub fn clear_lossy(&mut self) {
        self.lossy.clear();
    }

    /// Decides the delivery delays of one message sent now: empty when it is lost,
    /// two entries when it is duplicated.
    pub fn fate(&self, rng: &mut ChaCha8Rng, from: NodeId, to: NodeId) -> Vec<u64> {
        if self.is_cut(from, to) {
            return Vec::new();
        }
        let f = self.faults;
        if f.drop > 0.0 && rng.random_bool(f.drop) {
            return Vec::new();
        }
        if let Some(&p) = self.lossy.get(&from)
            && rng.random_bool(p)
        {
            return Vec::new();
        }
        let mut out = vec![delay(rng, f.long_delay)];
        if f.duplicate > 0.0 && rng.random_bool(f.duplicate) {
            out.push(delay(rng, f.long_delay));
        }
        out
    }
}

impl Default for Network {
    fn default() -> Self {
        Network::new()
    }
}

fn delay(rng: &mut ChaCha8Rng, long_delay: f64) -> u64 {
    if long_delay > 0.0 && rng.random_bool(long_delay) {
        rng.random_range(MAX_DELAY_NS..MAX_LONG_DELAY_NS)
    } else {
        rng.random_range(MIN_DELAY_NS..MAX_DELAY_NS)
    }
}
