//! The in-memory Raft log with a compaction offset.
//!
//! Invariant: `entries[i].index == snapshot_index + 1 + i`, and terms never decrease
//! along the log (a leader only appends entries of its own, newest term), which lets
//! term searches use binary search instead of scans.
//!
//! The log also remembers what storage has not been asked to write yet
//! (`unstable_from`, `truncate_from`), so the core can hand the driver exactly one
//! write per step.

use super::types::{Entry, Index, Term};

/// The log plus its commit and apply cursors.
#[derive(Debug, Default)]
pub struct RaftLog {
    snapshot_index: Index,
    snapshot_term: Term,
    entries: Vec<Entry>,
    /// Highest index known committed. Never decreases.
    pub commit: Index,
    /// Highest index handed to the application for applying.
    pub applied: Index,
    /// First index not yet handed to storage.
    unstable_from: Index,
    /// Lowest index storage must drop before the next append, if any.
    truncate_from: Option<Index>,
}

impl RaftLog {
    /// A log recovered from storage: everything given is already durable.
    pub fn recovered(snapshot_index: Index, snapshot_term: Term, entries: Vec<Entry>) -> Self {
        let mut log = RaftLog {
            snapshot_index,
            snapshot_term,
            entries: Vec::new(),
            commit: snapshot_index,
            applied: snapshot_index,
            unstable_from: 0,
            truncate_from: None,
        };
        // Keep only the contiguous prefix that continues the snapshot: a torn tail
        // would otherwise break the position invariant.
        for e in entries {
            if e.index == log.last_index() + 1 && e.term >= log.last_term() {
                log.entries.push(e);
            } else {
                break;
            }
        }
        log.unstable_from = log.last_index() + 1;
        log
    }

    pub fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    pub fn first_index(&self) -> Index {
        self.snapshot_index + 1
    }

    pub fn last_index(&self) -> Index {
        self.snapshot_index + self.entries.len() as Index
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot_term, |e| e.term)
    }

    /// The term of the entry at `index`, if the log still knows it.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.get(index).map(|e| e.term)
    }

    pub fn get(&self, index: Index) -> Option<&Entry> {
        if index <= self.snapshot_index {
            return None;
        }
        self.entries.get((index - self.snapshot_index - 1) as usize)
    }

    /// Entries `[lo, hi]` (inclusive), clipped to what the log holds.
    pub fn slice(&self, lo: Index, hi: Index) -> &[Entry] {
        let lo = lo.max(self.first_index());
        let hi = hi.min(self.last_index());
        if lo > hi {
            return &[];
        }
        let base = self.snapshot_index + 1;
        &self.entries[(lo - base) as usize..=(hi - base) as usize]
    }

    /// §5.4.1: a candidate's log is at least as up-to-date as ours.
    pub fn is_up_to_date(&self, last_index: Index, last_term: Term) -> bool {
        last_term > self.last_term()
            || (last_term == self.last_term() && last_index >= self.last_index())
    }

    /// Whether the log holds an entry at `index` with `term` (the AppendEntries check).
    pub fn matches(&self, index: Index, term: Term) -> bool {
        self.term(index) == Some(term)
    }

    /// The first index of the run of entries with the same term as `index`, at or
    /// after the snapshot. Binary search: terms never decrease along the log.
    pub fn first_index_of_term(&self, index: Index, term: Term) -> Index {
        let upto = ((index - self.snapshot_index) as usize).min(self.entries.len());
        let pos = self.entries[..upto].partition_point(|e| e.term < term);
        self.snapshot_index + 1 + pos as Index
    }

    /// The last index whose term is `<= term`, for the leader's side of fast
    /// backtracking. Returns the snapshot index when no entry qualifies.
    pub fn last_index_with_term_at_most(&self, term: Term) -> Index {
        let pos = self.entries.partition_point(|e| e.term <= term);
        self.snapshot_index + pos as Index
    }

    /// Appends entries that follow the last one (the leader's own proposals).
    pub fn append(&mut self, entry: Entry) {
        debug_assert_eq!(entry.index, self.last_index() + 1);
        self.entries.push(entry);
    }

    /// Follower side of AppendEntries after the consistency check passed at
    /// `entries[0].index - 1`: skips entries already present, truncates at the first
    /// conflict (§5.3) and appends the rest. Returns the truncation point, if any.
    pub fn append_after_match(&mut self, entries: &[Entry]) -> Option<Index> {
        let mut truncated = None;
        for (i, e) in entries.iter().enumerate() {
            if e.index <= self.snapshot_index {
                // Inside the snapshot: committed, hence equal.
                continue;
            }
            match self.term(e.index) {
                Some(t) if t == e.term => continue,
                Some(_) => {
                    // With a correct core this is always above the commit index
                    // (committed entries never conflict); the commit_old_term and
                    // vote_any_log mutants break exactly that, observably.
                    self.truncate(e.index);
                    truncated = Some(e.index);
                    self.entries.extend_from_slice(&entries[i..]);
                    break;
                }
                None if e.index > self.last_index() => {
                    self.entries.extend_from_slice(&entries[i..]);
                    break;
                }
                None => continue,
            }
        }
        truncated
    }

    /// Drops every entry with index >= `from` and records it for storage.
    fn truncate(&mut self, from: Index) {
        let keep = (from - self.snapshot_index - 1) as usize;
        self.entries.truncate(keep);
        if from < self.unstable_from {
            self.unstable_from = from;
            self.truncate_from = Some(self.truncate_from.map_or(from, |t| t.min(from)));
        }
    }

    /// Drops the entries up to `index`, which a local snapshot now covers. Refused
    /// (false) when `index` is not applied yet, is already compacted, or lies at or
    /// after a truncation storage has not been told of: storage must still hold the
    /// entry at `index` so it keeps the log after it.
    pub fn compact(&mut self, index: Index) -> bool {
        if index <= self.snapshot_index
            || index > self.applied
            || index >= self.unstable_from
            || self.truncate_from.is_some_and(|t| t <= index)
        {
            return false;
        }
        let Some(term) = self.term(index) else {
            return false;
        };
        self.entries.drain(..(index - self.snapshot_index) as usize);
        self.snapshot_index = index;
        self.snapshot_term = term;
        true
    }

    /// Replaces the log's prefix with a snapshot through `(index, term)` received
    /// from the leader (Raft §7). When the log holds that entry, and storage already
    /// holds it too (handed over and not about to be truncated), the entries after it
    /// stay; otherwise the whole log goes, and a truncation right after the snapshot
    /// makes storage drop whatever tail it still has. Storage applies the same rule
    /// to its own log, so both agree. Returns whether the tail was kept.
    pub fn install_snapshot(&mut self, index: Index, term: Term) -> bool {
        let keep = self.matches(index, term)
            && index < self.unstable_from
            && self.truncate_from.is_none_or(|t| t > index);
        if keep {
            self.entries.drain(..(index - self.snapshot_index) as usize);
        } else {
            self.entries.clear();
            self.unstable_from = index + 1;
            self.truncate_from = Some(index + 1);
        }
        self.snapshot_index = index;
        self.snapshot_term = term;
        self.commit = self.commit.max(index);
        self.applied = self.applied.max(index);
        keep
    }

    /// Whether storage has a write to do.
    pub fn has_unstable(&self) -> bool {
        self.truncate_from.is_some() || self.unstable_from <= self.last_index()
    }

    /// Takes the pending storage write: `(truncate_from, entries to append)`.
    pub fn take_unstable(&mut self) -> (Option<Index>, Vec<Entry>) {
        let entries = self.slice(self.unstable_from, self.last_index()).to_vec();
        self.unstable_from = self.last_index() + 1;
        (self.truncate_from.take(), entries)
    }

    /// Committed entries not yet applied, but never past `limit` (what is durable
    /// locally), at most `max` of them.
    pub fn take_committed(&mut self, limit: Index, max: usize) -> &[Entry] {
        let hi = self.commit.min(limit).min(self.applied + max as Index);
        if hi <= self.applied {
            return &[];
        }
        let lo = self.applied + 1;
        self.applied = hi;
        self.slice(lo, hi)
    }

    /// Advances the commit index; never moves it back.
    pub fn commit_to(&mut self, index: Index) -> bool {
        let index = index.min(self.last_index());
        if index > self.commit {
            self.commit = index;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Payload;

    fn ent(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    fn log_of(terms: &[Term]) -> RaftLog {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| ent(i as Index + 1, t))
            .collect();
        RaftLog::recovered(0, 0, entries)
    }

    #[test]
    fn up_to_date_compares_term_then_index() {
        let log = log_of(&[1, 1, 2]);
        assert!(log.is_up_to_date(3, 2));
        assert!(log.is_up_to_date(1, 3));
        assert!(!log.is_up_to_date(2, 2));
        assert!(!log.is_up_to_date(9, 1));
    }

    #[test]
    fn conflicting_suffix_is_truncated_and_recorded() {
        let mut log = log_of(&[1, 1, 1, 1]);
        let t = log.append_after_match(&[ent(3, 1), ent(4, 2), ent(5, 2)]);
        assert_eq!(t, Some(4));
        assert_eq!(log.last_index(), 5);
        assert_eq!(log.term(4), Some(2));
        let (trunc, entries) = log.take_unstable();
        assert_eq!(trunc, Some(4));
        assert_eq!(entries.len(), 2);
        assert!(!log.has_unstable());
    }

    #[test]
    fn duplicate_append_changes_nothing() {
        let mut log = log_of(&[1, 2]);
        assert_eq!(log.append_after_match(&[ent(1, 1), ent(2, 2)]), None);
        assert!(!log.has_unstable());
    }

    #[test]
    fn term_searches_use_run_boundaries() {
        let log = log_of(&[1, 1, 3, 3, 3, 5]);
        assert_eq!(log.first_index_of_term(5, 3), 3);
        assert_eq!(log.first_index_of_term(2, 1), 1);
        assert_eq!(log.last_index_with_term_at_most(3), 5);
        assert_eq!(log.last_index_with_term_at_most(2), 2);
        assert_eq!(log.last_index_with_term_at_most(0), 0);
    }

    #[test]
    fn committed_entries_stop_at_the_durable_limit() {
        let mut log = log_of(&[1, 1, 1]);
        log.commit_to(3);
        assert_eq!(log.take_committed(2, 100).len(), 2);
        assert_eq!(log.take_committed(3, 100).len(), 1);
        assert_eq!(log.take_committed(3, 100).len(), 0);
    }

    #[test]
    fn compaction_offset_shifts_positions() {
        let log = RaftLog::recovered(10, 4, vec![ent(11, 4), ent(12, 5)]);
        assert_eq!(log.first_index(), 11);
        assert_eq!(log.term(10), Some(4));
        assert_eq!(log.term(9), None);
        assert_eq!(log.slice(1, 20).len(), 2);
        assert_eq!(log.first_index_of_term(12, 5), 12);
    }
}
