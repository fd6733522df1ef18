//! The logical log: which indexes exist and with what terms. One set of rules serves
//! both recovery (replaying records, holding whole entries) and the live writer
//! (holding only terms, to validate writes and to apply the snapshot rule).

use crate::raft::types::{Entry, Index, Term};
use std::collections::VecDeque;

/// Something stored per log index that knows its term.
pub(crate) trait Termed {
    fn term(&self) -> Term;
}

impl Termed for Term {
    fn term(&self) -> Term {
        *self
    }
}

impl Termed for Entry {
    fn term(&self) -> Term {
        self.term
    }
}

/// A contiguous run of log positions. Invariant: `items[i]` is index `first + i`,
/// and `first >= 1`. Empty means `last() == first - 1`.
#[derive(Clone, Debug)]
pub(crate) struct Log<T> {
    first: Index,
    items: VecDeque<T>,
}

impl<T: Termed> Log<T> {
    /// An empty log whose next entry will have index `next` (>= 1).
    pub(crate) fn empty(next: Index) -> Log<T> {
        Log {
            first: next.max(1),
            items: VecDeque::new(),
        }
    }

    pub(crate) fn first(&self) -> Index {
        self.first
    }

    pub(crate) fn next(&self) -> Index {
        self.first + self.items.len() as Index
    }

    pub(crate) fn last(&self) -> Index {
        self.next() - 1
    }

    pub(crate) fn term_at(&self, index: Index) -> Option<Term> {
        let offset = index.checked_sub(self.first)?;
        self.items
            .get(usize::try_from(offset).ok()?)
            .map(Termed::term)
    }

    /// Appends the item for index `next()`; the caller checked the index.
    pub(crate) fn push(&mut self, item: T) {
        self.items.push_back(item);
    }

    /// Drops every index >= `from`. Requires `from <= next()`. A point before `first`
    /// empties the log and makes `from` the next index.
    pub(crate) fn truncate_from(&mut self, from: Index) {
        debug_assert!(from <= self.next());
        if from <= self.first {
            self.items.clear();
            self.first = from.max(1);
        } else {
            self.items.truncate((from - self.first) as usize);
        }
    }

    /// Raft §7: whether a snapshot through `last_index` with `last_term` leaves the
    /// entries after it in place (the log holds `last_index` with that term, or the
    /// snapshot is not newer than the log's start) rather than discarding the log.
    pub(crate) fn snapshot_keeps_tail(&self, last_index: Index, last_term: Term) -> bool {
        last_index < self.first || self.term_at(last_index) == Some(last_term)
    }

    /// Applies a snapshot through `last_index` whose effect was decided by
    /// [`Log::snapshot_keeps_tail`]: with `keep_tail`, entries up to `last_index` go
    /// (nothing, if it is before `first`); without, the whole log goes and the next
    /// index is `last_index + 1`. Recording the decision, not re-deciding it, lets
    /// replay start from a segment that does not hold the entries the decision saw.
    /// `Err` if `keep_tail` claims an entry the log does not hold.
    pub(crate) fn install_snapshot(
        &mut self,
        last_index: Index,
        keep_tail: bool,
    ) -> Result<(), String> {
        if !keep_tail {
            self.items.clear();
            self.first = last_index + 1;
        } else if last_index >= self.first {
            if last_index >= self.next() {
                return Err(format!(
                    "snapshot through index {last_index} keeps a log that ends at {}",
                    self.last()
                ));
            }
            let drop = (last_index + 1 - self.first) as usize;
            self.items.drain(..drop);
            self.first = last_index + 1;
        }
        Ok(())
    }

    /// What `install_snapshot` would leave, as `(first, next)`, without changing
    /// anything: lets a write be validated before any I/O.
    pub(crate) fn preview_snapshot(&self, last_index: Index, keep_tail: bool) -> (Index, Index) {
        if !keep_tail {
            (last_index + 1, last_index + 1)
        } else if last_index >= self.first {
            (last_index + 1, self.next())
        } else {
            (self.first, self.next())
        }
    }

    pub(crate) fn into_items(self) -> VecDeque<T> {
        self.items
    }

    pub(crate) fn map<U>(&self, f: impl Fn(&T) -> U) -> Log<U> {
        Log {
            first: self.first,
            items: self.items.iter().map(f).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_of(first: Index, terms: &[Term]) -> Log<Term> {
        let mut l = Log::empty(first);
        for &t in terms {
            l.push(t);
        }
        l
    }

    #[test]
    fn snapshot_inside_a_matching_log_keeps_the_tail() {
        let mut l = log_of(1, &[1, 1, 2, 2, 3]);
        assert!(l.snapshot_keeps_tail(3, 2));
        assert_eq!(l.preview_snapshot(3, true), (4, 6));
        l.install_snapshot(3, true).unwrap();
        assert_eq!((l.first(), l.last()), (4, 5));
        assert_eq!(l.term_at(5), Some(3));
        assert_eq!(l.term_at(3), None);
    }

    #[test]
    fn snapshot_with_another_term_or_beyond_the_log_discards_it() {
        let mut l = log_of(1, &[1, 1, 2]);
        assert!(!l.snapshot_keeps_tail(2, 5));
        assert_eq!(l.preview_snapshot(2, false), (3, 3));
        l.install_snapshot(2, false).unwrap();
        assert_eq!((l.first(), l.next()), (3, 3));
        let mut l = log_of(1, &[1, 1, 2]);
        assert!(!l.snapshot_keeps_tail(10, 2));
        l.install_snapshot(10, false).unwrap();
        assert_eq!((l.first(), l.next()), (11, 11));
        // A discarding snapshot may move the next index backwards.
        let mut l = log_of(20, &[1, 1]);
        l.install_snapshot(11, false).unwrap();
        assert_eq!((l.first(), l.next()), (12, 12));
    }

    #[test]
    fn old_snapshot_changes_nothing_and_truncate_before_first_resets() {
        let mut l = log_of(5, &[1, 1]);
        assert!(l.snapshot_keeps_tail(3, 1));
        l.install_snapshot(3, true).unwrap();
        assert_eq!((l.first(), l.last()), (5, 6));
        assert!(l.install_snapshot(9, true).is_err());
        l.truncate_from(6);
        assert_eq!(l.last(), 5);
        l.truncate_from(2);
        assert_eq!((l.first(), l.next()), (2, 2));
    }
}
