//! A Paxos node's simulated disk ([`PaxosStore`], the contract of
//! `node::paxos::Write`): a write with a snapshot replaces every earlier record, the
//! records are appended, and all of it is durable at the write's fsync; a crash
//! loses what was not, exactly as Raft's simulated disk does. And what a run of
//! Paxos nodes is watched with (`PaxosWatch`): the invariant oracle and what each
//! node applied.

use super::disk::Store;
use node::engine::{DurableWrite, EngineKind, Recovered};
use node::paxos::check::Checker;
use node::paxos::{self, NodeId, RecordView, Slot, Snapshot, Value, basic, multi};
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
pub(super) fn records(w: &DurableWrite) -> Vec<&dyn RecordView> {
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
pub(super) fn promise_only(w: &DurableWrite) -> bool {
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
    pub(super) applied: BTreeMap<NodeId, Slot>,
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

    pub(super) fn first_violation(&self) -> Option<String> {
        self.checker.violations.first().cloned()
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
