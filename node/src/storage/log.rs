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

    /// Raft §7: a snapshot through `last_index` covers every entry up to it. If the log
    /// holds `last_index` with `last_term`, the entries after it stay; otherwise the
    /// whole log is discarded and the next index is `last_index + 1`. A snapshot older
    /// than the log's start changes nothing.
    pub(crate) fn apply_snapshot(&mut self, last_index: Index, last_term: Term) {
        if last_index < self.first {
            return;
        }
        if self.term_at(last_index) == Some(last_term) {
            let drop = (last_index + 1 - self.first) as usize;
            self.items.drain(..drop);
        } else {
            self.items.clear();
        }
        self.first = last_index + 1;
    }

    /// What `apply_snapshot` then `truncate_from` would leave, as `(first, next)`,
    /// without changing anything: lets a write be validated before any I/O.
    pub(crate) fn preview_snapshot(&self, last_index: Index, last_term: Term) -> (Index, Index) {
        if last_index < self.first {
            (self.first, self.next())
        } else if self.term_at(last_index) == Some(last_term) {
            (last_index + 1, self.next())
        } else {
            (last_index + 1, last_index + 1)
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
        assert_eq!(l.preview_snapshot(3, 2), (4, 6));
        l.apply_snapshot(3, 2);
        assert_eq!((l.first(), l.last()), (4, 5));
        assert_eq!(l.term_at(5), Some(3));
        assert_eq!(l.term_at(3), None);
    }

    #[test]
    fn snapshot_with_another_term_or_beyond_the_log_discards_it() {
        let mut l = log_of(1, &[1, 1, 2]);
        assert_eq!(l.preview_snapshot(2, 5), (3, 3));
        l.apply_snapshot(2, 5);
        assert_eq!((l.first(), l.next()), (3, 3));
        let mut l = log_of(1, &[1, 1, 2]);
        l.apply_snapshot(10, 2);
        assert_eq!((l.first(), l.next()), (11, 11));
    }

    #[test]
    fn old_snapshot_changes_nothing_and_truncate_before_first_resets() {
        let mut l = log_of(5, &[1, 1]);
        l.apply_snapshot(3, 1);
        assert_eq!((l.first(), l.last()), (5, 6));
        l.truncate_from(6);
        assert_eq!(l.last(), 5);
        l.truncate_from(2);
        assert_eq!((l.first(), l.next()), (2, 2));
    }
}
