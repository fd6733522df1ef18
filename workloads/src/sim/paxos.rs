//! The Paxos engines in the simulator: their writes and their safety invariants.
//! (Their disk is [`super::paxos_store::PaxosStore`].)
//!
//! The invariants are those of `node::paxos::check::Checker`, fed from outside the
//! engines:
//! - what acceptors made durable (each `Accepted` record, at its fsync): at most one
//!   value is chosen per slot, and a chosen value never changes;
//! - what each node applies: the value of its own `Chosen` record for the slot,
//!   which must be the value the acceptors chose, in slot order from slot 1 with no
//!   gap, so the applied prefixes of all nodes agree.
//!
//! On top, as under Raft: no acknowledged write lost, and the client history must be
//! linearizable.

use super::paxos_store::{promise_only, records};
use super::world::{Driven, Ev, MS, World};
use node::engine::DurableWrite;
use node::paxos::{NodeId, Slot};
use rand::RngExt;

impl<R: Driven> World<R> {
    /// Carries out a Paxos write: into the written view now, durable at its fsync.
    pub(super) fn paxos_persist(&mut self, node: NodeId, w: DurableWrite) {
        self.trace_line(|| {
            let snap = match &w {
                DurableWrite::MultiPaxos(w) => w.snapshot.as_ref().map(|s| s.last_slot),
                DurableWrite::BasicPaxos(w) => w.snapshot.as_ref().map(|s| s.last_slot),
                DurableWrite::Raft(_) => None,
            };
            let records = match &w {
                DurableWrite::MultiPaxos(w) => format!("{:?}", w.records),
                DurableWrite::BasicPaxos(w) => format!("{:?}", w.records),
                DurableWrite::Raft(_) => String::new(),
            };
            format!(
                "n{node} persist seq {} snap {snap:?} records {records}",
                w.seq()
            )
        });
        let seq = w.seq();
        let vote = promise_only(&w);
        let delay = self.rng.random_range(50_000..4 * MS);
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        let epoch = n.epoch;
        let done = match n.paxos.write(w, self.now + delay) {
            Ok(done) => done,
            Err(e) => return self.fail(format!("node {node} disk: {e}")),
        };
        self.queue.push(done, Ev::Fsync { node, epoch });
        if self.opts.no_fsync {
            self.queue
                .push(self.now, Ev::FakeSynced { node, epoch, seq });
        }
        self.maybe_power_loss(node, epoch, done, vote);
    }

    /// Completes `node`'s fsyncs due now; the acceptors' durable votes go to the
    /// checker. Returns the highest seq made durable.
    pub(super) fn paxos_sync(&mut self, node: NodeId) -> Result<Option<u64>, String> {
        let now = self.now;
        let Some(n) = self.nodes.get_mut(&node) else {
            return Ok(None);
        };
        let watch = self.paxos.as_mut();
        let mut votes = Vec::new();
        let last = n.paxos.sync_until_each(now, |w| {
            votes.extend(
                records(w)
                    .into_iter()
                    .filter_map(|r| r.accepted().map(|(s, b, v)| (s, b, v.clone()))),
            )
        })?;
        if let Some(watch) = watch {
            for (slot, ballot, value) in &votes {
                watch.checker.on_durable_accept(node, *slot, *ballot, value);
            }
            if let Some(v) = watch.first_violation() {
                self.fail(v);
                return Ok(None);
            }
        }
        Ok(last)
    }

    /// A (re)started Paxos node resumes applying after its stored snapshot.
    pub(super) fn paxos_started(&mut self, node: NodeId) {
        let from = self
            .nodes
            .get(&node)
            .map_or(0, |n| n.paxos.durable.snapshot_slot());
        if let Some(w) = self.paxos.as_mut() {
            w.applied.insert(node, from);
        }
    }

    /// `node` applied `slot`: the value it applied is its own `Chosen` record, which
    /// must be what the acceptors chose, in slot order.
    pub(super) fn paxos_applied(&mut self, node: NodeId, slot: Slot) {
        let Some(n) = self.nodes.get(&node) else {
            return;
        };
        let Some(value) = n.paxos.written.chosen(slot).cloned() else {
            return self.fail(format!(
                "node {node} applied slot {slot}, but its storage records no value chosen there"
            ));
        };
        let Some(w) = self.paxos.as_mut() else {
            return;
        };
        let last = w.applied.get(&node).copied().unwrap_or(0);
        if slot != last + 1 {
            return self.fail(format!(
                "node {node} applied slot {slot} after slot {last}: not in order"
            ));
        }
        w.applied.insert(node, slot);
        w.learned = w.learned.max(slot);
        w.checker.on_learned(node, slot, &value);
        if let Some(v) = w.first_violation() {
            return self.fail(v);
        }
        if let Some(bytes) = value.command() {
            self.inv.on_command_applied(slot, bytes);
        }
    }

    /// `node` restored a snapshot through `slot` from a peer.
    pub(super) fn paxos_restored(&mut self, node: NodeId, slot: Slot) {
        if let Some(w) = self.paxos.as_mut() {
            w.applied.insert(node, slot);
        }
    }
}
