//! Snapshots in the simulator: a replica's `Output::Snapshot` is serialized at
//! once but its bytes come back a few virtual milliseconds later, as from a
//! driver's blocking thread, so compaction races with replication and crashes. An
//! installed snapshot is checked against what other replicas applied, and every
//! snapshot's bytes (a whole image, or the previous bytes plus a delta) must decode
//! to exactly the state they were taken from.

use super::world::{Driven, Ev, MS, World};
use node::kv::{Kv, SnapshotSource};
use node::raft::types::{Index, NodeId, Term};
use node::replica::Input;
use rand::RngExt;

impl<R: Driven> World<R> {
    pub(super) fn on_snapshot(&mut self, node: NodeId, index: Index, source: &SnapshotSource) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let epoch = n.epoch;
        // A state that does not encode gives no snapshot, as in the driver.
        let data = source.to_bytes().ok();
        if let Some((bytes, layout)) = &data {
            if layout.deltas > 0 {
                self.stats.snapshot_deltas += 1;
            }
            match Kv::from_snapshot(&bytes.contiguous()) {
                Ok(back) if back == *source.kv() => {}
                Ok(_) => self.fail(format!(
                    "n{node}: snapshot through {index} ({} deltas) decodes to another state",
                    layout.deltas
                )),
                Err(e) => self.fail(format!(
                    "n{node}: snapshot through {index} ({} deltas) does not decode: {e}",
                    layout.deltas
                )),
            }
        }
        // Mostly quick; one in eight takes long enough for a snapshot from the leader
        // to be installed meanwhile (the state is replaced under it).
        let slow = self.rng.random_range(0..8) == 0;
        let t = self.now
            + self
                .rng
                .random_range(0..if slow { 400 * MS } else { 5 * MS });
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
                data: Some((data, layout)),
                ..
            }) => {
                self.stats.snapshots_taken += 1;
                self.trace_line(|| format!("n{node} snapshot through {index} ready"));
                self.feed(
                    node,
                    Input::SnapshotReady {
                        index,
                        data,
                        layout,
                    },
                );
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
