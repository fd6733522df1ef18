//! The event queue on virtual time. Ties are broken by insertion order, so a run
//! is a pure function of its seed.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

struct Item<E> {
    time_ns: u64,
    seq: u64,
    ev: E,
}

impl<E> PartialEq for Item<E> {
    fn eq(&self, o: &Self) -> bool {
        (self.time_ns, self.seq) == (o.time_ns, o.seq)
    }
}
impl<E> Eq for Item<E> {}
impl<E> PartialOrd for Item<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Item<E> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.time_ns, self.seq).cmp(&(o.time_ns, o.seq))
    }
}

/// A min-queue of events by `(time, insertion order)`.
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<Item<E>>>,
    seq: u64,
}

impl<E> Queue<E> {
    pub fn new() -> Queue<E> {
        Queue {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    pub fn push(&mut self, time_ns: u64, ev: E) {
        self.seq += 1;
        self.heap.push(Reverse(Item {
            time_ns,
            seq: self.seq,
            ev,
        }));
    }

    pub fn pop(&mut self) -> Option<(u64, E)> {
        self.heap.pop().map(|Reverse(i)| (i.time_ns, i.ev))
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_insertion_order() {
        let mut q = Queue::new();
        q.push(5, "b");
        q.push(1, "a");
        q.push(5, "c");
        assert_eq!(q.pop(), Some((1, "a")));
        assert_eq!(q.pop(), Some((5, "b")));
        assert_eq!(q.pop(), Some((5, "c")));
        assert_eq!(q.pop(), None);
    }
}
