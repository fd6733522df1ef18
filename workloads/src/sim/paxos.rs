//! The Paxos engines in the simulator: their disk and their safety invariants.
//!
//! A Paxos node's storage is a list of records ([`PaxosStore`], the contract of
//! `node::paxos::Write`): a write with a snapshot replaces every earlier record, the
//! records are appended, and all of it is durable at the write's fsync; a crash
//! loses what was not, exactly as Raft's simulated disk does.
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

use super::disk::Store;
use super::world::{Driven, Ev, MS, World};
use node::engine::{DurableWrite, EngineKind, Recovered};
use node::paxos::check::Checker;
use node::paxos::{self, NodeId, RecordView, Slot, Snapshot, Value, basic, multi};
use rand::RngExt;
use std::collections::BTreeMap;

/// What a Paxos node's disk holds: the newest snapshot and the records after it.
#[derive(Clone, Debug)]
pub enum PaxosStore {
    Multi(paxos::Recovered<multi::Record>),
    Basic(paxos::Recovered<basic::Record>),
}

impl Default for PaxosStore {
    fn default() -> PaxosStore {
        PaxosStore::Multi(paxos::Recovered::default())
    }
}

fn apply_write<R: Clone>(
    stored: &mut paxos::Recovered<R>,
    w: &paxos::Write<R>,
) -> Result<(), String> {
    if let Some(s) = &w.snapshot {
        stored.snapshot = Some(s.clone());
        stored.records.clear();
    }
    stored.records.extend(w.records.iter().cloned());
    Ok(())
}

impl Store for PaxosStore {
    type Write = DurableWrite;

    fn apply(&mut self, w: &DurableWrite) -> Result<(), String> {
        match (self, w) {
            (PaxosStore::Multi(s), DurableWrite::MultiPaxos(w)) => apply_write(s, w),
            (PaxosStore::Basic(s), DurableWrite::BasicPaxos(w)) => apply_write(s, w),
            (s, w) => Err(format!(
                "a {} write on a disk that holds {} state",
                w.kind(),
                s.kind()
            )),
        }
    }

    fn seq(w: &DurableWrite) -> u64 {
        w.seq()
    }
}

impl PaxosStore {
    /// An empty disk for `engine` (a Paxos engine).
    pub fn empty(engine: EngineKind) -> PaxosStore {
        match engine {
            EngineKind::BasicPaxos => PaxosStore::Basic(Default::default()),
            _ => PaxosStore::Multi(Default::default()),
        }
    }

    pub fn kind(&self) -> EngineKind {
        match self {
            PaxosStore::Multi(_) => EngineKind::MultiPaxos,
            PaxosStore::Basic(_) => EngineKind::BasicPaxos,
        }
    }

    /// What a node starting on this disk recovers.
    pub fn recovered(&self) -> Recovered {
        match self {
            PaxosStore::Multi(s) => Recovered::MultiPaxos(s.clone()),
            PaxosStore::Basic(s) => Recovered::BasicPaxos(s.clone()),
        }
    }

    fn snapshot(&self) -> Option<&Snapshot> {
        match self {
            PaxosStore::Multi(s) => s.snapshot.as_ref(),
            PaxosStore::Basic(s) => s.snapshot.as_ref(),
        }
    }

    /// The last slot the stored snapshot covers (0 without one).
    pub fn snapshot_slot(&self) -> Slot {
        self.snapshot().map_or(0, |s| s.last_slot)
    }

    /// The value a `Chosen` record stored for `slot` (the newest, if several).
    pub fn chosen(&self, slot: Slot) -> Option<&Value> {
        fn find<R: RecordView>(records: &[R], slot: Slot) -> Option<&Value> {
            records
                .iter()
                .rev()
                .find_map(|r| r.chosen().filter(|(s, _)| *s == slot).map(|(_, v)| v))
        }
        match self {
            PaxosStore::Multi(s) => find(&s.records, slot),
            PaxosStore::Basic(s) => find(&s.records, slot),
        }
    }
}

/// The records of a Paxos write, seen through [`RecordView`].
fn records(w: &DurableWrite) -> Vec<&dyn RecordView> {
    fn view<R: RecordView>(w: &paxos::Write<R>) -> Vec<&dyn RecordView> {
        w.records.iter().map(|r| r as &dyn RecordView).collect()
    }
    match w {
        DurableWrite::MultiPaxos(w) => view(w),
        DurableWrite::BasicPaxos(w) => view(w),
        DurableWrite::Raft(_) => Vec::new(),
    }
}

/// Whether a write records nothing but promises (an acceptor answering a Prepare).
fn promise_only(w: &DurableWrite) -> bool {
    let snapshot = match w {
        DurableWrite::MultiPaxos(w) => w.snapshot.is_some(),
        DurableWrite::BasicPaxos(w) => w.snapshot.is_some(),
        DurableWrite::Raft(_) => true,
    };
    let records = records(w);
    !snapshot && !records.is_empty() && records.iter().all(|r| r.is_promise())
}

/// The Paxos invariants of one run, and what each node applied so far.
#[derive(Debug, Default)]
pub(super) struct PaxosWatch {
    pub(super) checker: Checker,
    /// The last slot each running node applied (or restored a snapshot through).
    applied: BTreeMap<NodeId, Slot>,
    /// Slots chosen (learned by some node), for the summary.
    pub(super) learned: Slot,
}

impl PaxosWatch {
    pub(super) fn new(nodes: usize) -> PaxosWatch {
        PaxosWatch {
            checker: Checker::new(nodes),
            ..PaxosWatch::default()
        }
    }

    fn first_violation(&self) -> Option<String> {
        self.checker.violations.first().cloned()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::disk::Disk;

    fn write(seq: u64, snapshot: Option<Slot>, records: Vec<multi::Record>) -> DurableWrite {
        DurableWrite::MultiPaxos(paxos::Write {
            seq,
            snapshot: snapshot.map(|last_slot| Snapshot {
                last_slot,
                data: Vec::new(),
            }),
            records,
        })
    }

    fn chosen(slot: Slot, c: &str) -> multi::Record {
        multi::Record::Chosen {
            slot,
            value: Value::Command(c.as_bytes().to_vec()),
        }
    }

    #[test]
    fn a_crash_loses_the_unsynced_records_and_a_snapshot_replaces_earlier_ones() {
        let mut d = Disk::<PaxosStore>::default();
        d.write(write(1, None, vec![chosen(1, "a")]), 10).unwrap();
        d.write(write(2, None, vec![chosen(2, "b")]), 20).unwrap();
        assert_eq!(d.sync_until(10).unwrap(), Some(1));
        assert!(d.written.chosen(2).is_some());
        d.crash();
        assert_eq!(d.written.chosen(1), Some(&Value::Command(b"a".to_vec())));
        assert_eq!(d.written.chosen(2), None);
        d.write(write(3, Some(1), vec![chosen(2, "c")]), 30)
            .unwrap();
        assert_eq!(d.sync_until(30).unwrap(), Some(3));
        assert_eq!(d.durable.chosen(1), None);
        assert_eq!(d.durable.snapshot_slot(), 1);
        assert_eq!(d.durable.chosen(2), Some(&Value::Command(b"c".to_vec())));
        let Recovered::MultiPaxos(r) = d.durable.recovered() else {
            panic!("a multi-paxos disk recovers multi-paxos state");
        };
        assert_eq!(r.records.len(), 1);
    }

    #[test]
    fn a_write_of_another_engine_is_refused() {
        let mut d = Disk::new(PaxosStore::empty(EngineKind::BasicPaxos));
        let e = d.write(write(1, None, Vec::new()), 1).unwrap_err();
        assert!(
            e.contains("multi-paxos write") && e.contains("basic-paxos"),
            "{e}"
        );
    }
}
