//! What a Raft node's storage holds, as plain data: what a restart recovers, and
//! what a write does to it. Storage, the simulator's disk and tests share it.

use super::PersistWrite;
use super::types::{Entry, HardState, Identity, Index, Snapshot, Term};

/// What storage holds of a Raft node, and what it recovers at start-up (empty on
/// first boot): a log with an optional snapshot before it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// `None` when storage holds no identity: a new node, or one that lost its state.
    pub identity: Option<Identity>,
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The log after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl Recovered {
    /// Index of the last entry covered by the snapshot (0 when none).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot.as_ref().map_or(0, |s| s.meta.last_index)
    }

    /// Index of the last entry (or of the snapshot when the log is empty).
    pub fn last_index(&self) -> Index {
        self.entries
            .last()
            .map_or(self.snapshot_index(), |e| e.index)
    }

    /// The entry at `index`, when the log (not the snapshot) holds it.
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        let first = self.entries.first()?.index;
        if index < first {
            return None;
        }
        self.entries.get((index - first) as usize)
    }

    /// The term at `index`: from the log, or from the snapshot's last entry.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == 0 {
            return Some(0);
        }
        if let Some(e) = self.entry(index) {
            return Some(e.term);
        }
        match &self.snapshot {
            Some(s) if s.meta.last_index == index => Some(s.meta.last_term),
            _ => None,
        }
    }

    /// Applies one write in the documented order: identity, snapshot, truncate,
    /// append, hard state. Returns an error when the write breaks the log's
    /// contiguity, which would be a bug in the replica (or in this driver).
    pub fn apply(&mut self, w: &PersistWrite) -> Result<(), String> {
        if let Some(identity) = &w.identity {
            self.identity = Some(identity.clone());
        }
        if let Some(snap) = &w.snapshot {
            let keep_tail = self.term_at(snap.meta.last_index) == Some(snap.meta.last_term);
            if keep_tail {
                self.entries.retain(|e| e.index > snap.meta.last_index);
            } else {
                self.entries.clear();
            }
            self.snapshot = Some(snap.clone());
        }
        if let Some(from) = w.truncate_from {
            if from <= self.snapshot_index() {
                return Err(format!(
                    "persist {}: truncate_from {from} is inside the snapshot (index {})",
                    w.seq,
                    self.snapshot_index()
                ));
            }
            self.entries.retain(|e| e.index < from);
        }
        for e in &w.entries {
            let expect = self.last_index() + 1;
            if e.index != expect {
                return Err(format!(
                    "persist {}: entry index {} appended where {expect} was expected",
                    w.seq, e.index
                ));
            }
            self.entries.push(e.clone());
        }
        if let Some(hs) = w.hard_state {
            self.hard_state = hs;
        }
        Ok(())
    }
}
