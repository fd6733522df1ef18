//! Snapshots in the simulator: a replica's `Output::Snapshot` is serialized at
//! once but its bytes come back a few virtual milliseconds later, as from a
//! driver's blocking thread, so compaction races with replication and crashes. An
//! installed snapshot is checked against what other replicas applied.

use super::world::{Driven, Ev, MS, World};
use node::kv::Kv;
use node::raft::types::{Index, NodeId, Term};
use node::replica::Input;
use rand::RngExt;

impl<R: Driven> World<R> {
    pub(super) fn on_snapshot(&mut self, node: NodeId, index: Index, kv: &Kv) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let epoch = n.epoch;
        // A state that does not encode gives no snapshot, as in the driver.
        let data = kv.to_snapshot().ok();
        let t = self.now + self.rng.random_range(0..5 * MS);
        self.queue.push(
            t,
            Ev::SnapshotReady {
                node,
                epoch,
                index,
                data,
            },
        );
    }

    /// The bytes are back: the replica compacts (unless it crashed meanwhile).
    pub(super) fn on_snapshot_ready(&mut self, ev: Ev) {
        let Ev::SnapshotReady { node, epoch, .. } = ev else {
            return;
        };
        if self.nodes.get(&node).is_none_or(|n| n.epoch != epoch) {
            return;
        }
        match self.gate(node, ev) {
            Some(Ev::SnapshotReady {
                index,
                data: Some(data),
                ..
            }) => {
                self.stats.snapshots_taken += 1;
                self.trace_line(|| format!("n{node} snapshot through {index} ready"));
                self.feed(node, Input::SnapshotReady { index, data });
            }
            Some(Ev::SnapshotReady {
                index, data: None, ..
            }) => {
                self.trace_line(|| format!("n{node} snapshot through {index} failed"));
                self.feed(node, Input::SnapshotFailed { index });
            }
            _ => {}
        }
    }

    pub(super) fn on_restored(&mut self, node: NodeId, index: Index, term: Term) {
        self.stats.snapshots_installed += 1;
        self.trace_line(|| format!("n{node} restored snapshot {index}/{term}"));
        if self.paxos.is_some() {
            return self.paxos_restored(node, index);
        }
        if let Err(e) = self.inv.on_restored(node, index, term) {
            self.fail(e);
        }
    }
}
