//! The simulated disk of one node.
//!
//! `Output::Persist` is carried out into a *written* view at once (what the OS page
//! cache would hold) and queued for a simulated fsync; when the fsync completes the
//! write moves into the *durable* view and the replica is told `Input::Persisted`.
//! A crash throws away everything written but not yet durable, which is exactly the
//! failure a real disk twin must be able to produce.
//!
//! A snapshot in a write becomes durable with that write's fsync (real storage
//! saves it at once, which only makes it durable sooner), and a restart recovers
//! from it plus the log after it.
//!
//! The same disk holds either engine family's state ([`Store`]): Raft's log
//! ([`Stored`]) or a Paxos node's records (`PaxosStore`, in `paxos_store`).

pub use node::raft::PersistWrite as Write;
/// What storage holds: the same type a restarted node recovers.
pub use node::raft::Recovered as Stored;
use std::collections::VecDeque;

/// Upper bound on writes waiting for their fsync; a replica that outruns it is a bug.
const MAX_PENDING_WRITES: usize = 100_000;

/// What a disk stores, and how one write changes it.
pub trait Store: Clone + Default {
    type Write;
    /// Carries out `w` (storage's own checks refuse a malformed one).
    fn apply(&mut self, w: &Self::Write) -> Result<(), String>;
    fn seq(w: &Self::Write) -> u64;
}

impl Store for Stored {
    type Write = Write;
    fn apply(&mut self, w: &Write) -> Result<(), String> {
        Stored::apply(self, w)
    }
    fn seq(w: &Write) -> u64 {
        w.seq
    }
}

/// A node's disk: a durable view, a written view, and the writes between them.
#[derive(Debug)]
pub struct Disk<S: Store = Stored> {
    pub durable: S,
    pub written: S,
    /// Writes not yet durable, oldest first, each with the virtual time its fsync ends.
    pending: VecDeque<(u64, S::Write)>,
}

impl<S: Store> Default for Disk<S> {
    fn default() -> Disk<S> {
        Disk::new(S::default())
    }
}

impl<S: Store> Disk<S> {
    /// A disk that holds `stored`, durably.
    pub fn new(stored: S) -> Disk<S> {
        Disk {
            durable: stored.clone(),
            written: stored,
            pending: VecDeque::new(),
        }
    }

    /// Carries out a write into the written view and queues its fsync to end at
    /// `done_ns` (never before an earlier write's fsync: fsyncs complete in order).
    pub fn write(&mut self, w: S::Write, done_ns: u64) -> Result<u64, String> {
        if self.pending.len() >= MAX_PENDING_WRITES {
            return Err(format!(
                "more than {MAX_PENDING_WRITES} writes waiting for fsync"
            ));
        }
        self.written.apply(&w)?;
        let done = self
            .pending
            .back()
            .map_or(done_ns, |(t, _)| done_ns.max(*t));
        self.pending.push_back((done, w));
        Ok(done)
    }

    /// Completes every fsync due by `now_ns`; returns the highest seq made durable.
    pub fn sync_until(&mut self, now_ns: u64) -> Result<Option<u64>, String> {
        self.sync_until_each(now_ns, |_| {})
    }

    /// [`Disk::sync_until`], showing `durable` each write as it becomes durable.
    pub fn sync_until_each(
        &mut self,
        now_ns: u64,
        mut durable: impl FnMut(&S::Write),
    ) -> Result<Option<u64>, String> {
        let mut last = None;
        while let Some((done, _)) = self.pending.front() {
            if *done > now_ns {
                break;
            }
            let Some((_, w)) = self.pending.pop_front() else {
                break;
            };
            self.durable.apply(&w)?;
            durable(&w);
            last = Some(S::seq(&w));
        }
        Ok(last)
    }

    /// A crash: everything not yet durable is lost.
    pub fn crash(&mut self) {
        self.pending.clear();
        self.written = self.durable.clone();
    }

    /// Number of writes waiting for their fsync.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }
}

impl Disk<Stored> {
    /// The disk is lost (the node must be down): everything goes, or everything but
    /// the snapshot file when `keep_snapshot` (the write-ahead log alone is lost).
    pub fn lose(&mut self, keep_snapshot: bool) {
        self.pending.clear();
        let snapshot = if keep_snapshot {
            self.durable.snapshot.take()
        } else {
            None
        };
        self.durable = Stored {
            snapshot,
            ..Stored::default()
        };
        self.written = self.durable.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use node::raft::types::{Entry, Index, Payload, Term};

    fn entry(index: Index, term: Term) -> Entry {
        Entry {
            term,
            index,
            payload: Payload::Noop,
        }
    }

    fn write(seq: u64, truncate_from: Option<Index>, entries: Vec<Entry>) -> Write {
        Write {
            seq,
            identity: None,
            snapshot: None,
            truncate_from,
            entries,
            hard_state: None,
        }
    }

    #[test]
    fn crash_loses_writes_not_yet_synced() {
        let mut d = Disk::<Stored>::default();
        d.write(write(1, None, vec![entry(1, 1), entry(2, 1)]), 10)
            .unwrap();
        d.write(write(2, None, vec![entry(3, 1)]), 5).unwrap();
        // The second fsync cannot finish before the first one.
        assert_eq!(d.sync_until(9).unwrap(), None);
        assert_eq!(d.sync_until(10).unwrap(), Some(2));
        d.write(write(3, Some(3), vec![entry(3, 2)]), 20).unwrap();
        assert_eq!(d.written.term_at(3), Some(2));
        d.crash();
        assert_eq!(d.written.term_at(3), Some(1));
        assert_eq!(d.written.last_index(), 3);
    }

    #[test]
    fn a_gap_in_the_log_is_reported() {
        let mut d = Disk::<Stored>::default();
        let err = d.write(write(1, None, vec![entry(2, 1)]), 1).unwrap_err();
        assert!(err.contains("index 2"), "{err}");
    }
}
