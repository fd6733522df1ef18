//! The Wing-Gong-Lowe search on one key, with Lowe's memoization, as Porcupine does it.
//!
//! Every operation has a call and a return event; the events form a doubly linked list
//! in history order (an operation's call and return are the positions of its invoke and
//! completion events, so no two coincide). The search walks the list from its head: a call is a candidate to
//! linearize next; reaching a return whose operation is not yet linearized means the
//! current prefix cannot be extended, so it backtracks. Linearizing an operation lifts
//! both of its events out of the list; backtracking puts them back (an undo stack).
//!
//! Memoization: a configuration is the set of linearized operations plus the model
//! state; one already explored (it failed, or it is an ancestor) is never explored again.
//! The set is stored as the words of a bitset from the first operation not yet
//! linearized to the last one linearized, since everything below is linearized.
//!
//! Two cuts keep the search small:
//! - an enabled operation that never changes any state (a read, or a cas from a value to
//!   itself) and succeeds now is linearized at once without branching: any
//!   linearization of the rest can be rearranged to start with it, since it changes
//!   nothing wherever it stands and nothing unlinearized must precede it in real time.
//!   (A write of the current value does not qualify: later it may change the state.)
//! - the engine may declare a move dead ([`Engine::dead`]): some required operation can
//!   then never succeed, so the branch is cut before it is explored.
//!
//! Indeterminate operations return at +infinity: their return events sit after every
//! other event, so reaching one means every required operation is linearized and the
//! rest may be left out.

use super::{Engine, NEVER, SOp};
use rustc_hash::FxHashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

/// Limits shared by the searches of one check.
pub struct Budget<'a> {
    pub deadline: Option<Instant>,
    pub memory_limit: usize,
    /// Bytes held by the memo tables of all running searches.
    pub memory_used: &'a AtomicUsize,
    /// Set when the whole check stops (a key failed and not every key is wanted).
    pub stop: &'a AtomicBool,
}

/// What the search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Linearizable,
    /// Not linearizable; with `record`, the longest linearizable prefix found, as
    /// indexes into the key's operations, in order.
    Violation(Vec<usize>),
    /// A budget ran out or the check was stopped.
    Unknown(&'static str),
}

const NONE: u32 = u32::MAX;

struct Frame {
    op: u32,
    state: u32,
    hi: u32,
    forced: bool,
}

struct List {
    next: Vec<u32>,
    prev: Vec<u32>,
    head: u32,
}

impl List {
    /// Entries `2i` (call of op i) and `2i+1` (return of op i) in time order.
    fn new(ops: &[SOp]) -> Self {
        let n = ops.len();
        let mut order: Vec<u32> = (0..2 * n as u32).collect();
        let key = |e: u32| {
            let op = &ops[(e / 2) as usize];
            let t = if is_call(e) { op.call } else { op.ret };
            (t, e % 2, e / 2)
        };
        order.sort_unstable_by_key(|&e| key(e));
        let head = 2 * n as u32;
        let mut next = vec![NONE; 2 * n + 1];
        let mut prev = vec![NONE; 2 * n + 1];
        let mut last = head;
        for &e in &order {
            next[last as usize] = e;
            prev[e as usize] = last;
            last = e;
        }
        List { next, prev, head }
    }

    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NONE {
            self.prev[n as usize] = p;
        }
    }

    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NONE {
            self.prev[n as usize] = e;
        }
    }

    fn lift(&mut self, op: u32) {
        self.unlink(2 * op);
        self.unlink(2 * op + 1);
    }

    fn unlift(&mut self, op: u32) {
        self.relink(2 * op + 1);
        self.relink(2 * op);
    }

    fn first(&self) -> u32 {
        self.next[self.head as usize]
    }
}

/// Decides one key. `record` keeps the longest linearizable prefix (for explanations).
pub fn search<M: Engine>(model: &mut M, ops: &[SOp], budget: &Budget, record: bool) -> Found {
    let n = ops.len();
    let mut list = List::new(ops);
    let mut bits = vec![0u64; n.div_ceil(64) + 1];
    let mut memo: FxHashSet<Box<[u64]>> = FxHashSet::default();
    let mut memo_bytes = 0usize;
    let mut flushed = 0usize;
    let mut stack: Vec<Frame> = Vec::new();
    let mut best: Vec<usize> = Vec::new();
    let mut state = model.init();
    let mut hi = 0u32;
    let mut fresh = true;
    let mut entry = list.first();
    let mut steps = 0u64;
    let result = loop {
        steps += 1;
        if steps.is_multiple_of(1024) {
            budget
                .memory_used
                .fetch_add(memo_bytes - flushed, Ordering::Relaxed);
            flushed = memo_bytes;
            if budget.memory_used.load(Ordering::Relaxed) + model.bytes() > budget.memory_limit {
                break Found::Unknown("memory budget exhausted");
            }
            if budget.stop.load(Ordering::Relaxed) {
                break Found::Unknown("stopped after another key failed");
            }
            if budget.deadline.is_some_and(|d| Instant::now() >= d) {
                break Found::Unknown("time limit reached");
            }
        }
        if record && stack.len() > best.len() {
            best = stack.iter().map(|f| f.op as usize).collect();
        }
        let mut backtrack = false;
        if fresh {
            fresh = false;
            entry = list.first();
            if entry == NONE {
                break Found::Linearizable;
            }
            // Greedy: a candidate that leaves the state unchanged.
            let mut e = entry;
            while e != NONE && is_call(e) {
                let i = (e / 2) as usize;
                if ops[i].observer && model.step(state, &ops[i]) == Some(state) {
                    break;
                }
                e = list.next[e as usize];
            }
            if e != NONE && is_call(e) {
                let i = e / 2;
                model.enter(&ops[i as usize]);
                set(&mut bits, i, true);
                let new_hi = hi.max(i + 1);
                if insert(&mut memo, &mut memo_bytes, &bits, &list, n, new_hi, state) {
                    stack.push(Frame {
                        op: i,
                        state,
                        hi,
                        forced: true,
                    });
                    hi = new_hi;
                    list.lift(i);
                    fresh = true;
                    continue;
                }
                set(&mut bits, i, false);
                model.leave(&ops[i as usize]);
                backtrack = true;
            }
        }
        if !backtrack {
            if entry == NONE {
                break Found::Linearizable;
            }
            let i = entry / 2;
            let op = &ops[i as usize];
            if is_call(entry) {
                if let Some(next_state) = model.step(state, op) {
                    model.enter(op);
                    if !model.dead(state, next_state) {
                        set(&mut bits, i, true);
                        let new_hi = hi.max(i + 1);
                        if insert(
                            &mut memo,
                            &mut memo_bytes,
                            &bits,
                            &list,
                            n,
                            new_hi,
                            next_state,
                        ) {
                            stack.push(Frame {
                                op: i,
                                state,
                                hi,
                                forced: false,
                            });
                            hi = new_hi;
                            state = next_state;
                            list.lift(i);
                            fresh = true;
                            continue;
                        }
                        set(&mut bits, i, false);
                    }
                    model.leave(op);
                }
                entry = list.next[entry as usize];
                continue;
            }
            if op.ret == NEVER {
                // Only indeterminate operations remain.
                break Found::Linearizable;
            }
        }
        // Backtrack: undo the last choice; a forced choice fails its parent too.
        let mut failed = true;
        while let Some(f) = stack.pop() {
            list.unlift(f.op);
            state = f.state;
            hi = f.hi;
            set(&mut bits, f.op, false);
            model.leave(&ops[f.op as usize]);
            if !f.forced {
                entry = list.next[(2 * f.op) as usize];
                failed = false;
                break;
            }
        }
        if failed {
            break Found::Violation(best.clone());
        }
    };
    budget.memory_used.fetch_sub(flushed, Ordering::Relaxed);
    result
}

fn set(bits: &mut [u64], i: u32, on: bool) {
    let (w, b) = ((i / 64) as usize, i % 64);
    if on {
        bits[w] |= 1 << b;
    } else {
        bits[w] &= !(1 << b);
    }
}

/// Adds a configuration to the memo; false if it was there.
fn insert(
    memo: &mut FxHashSet<Box<[u64]>>,
    bytes: &mut usize,
    bits: &[u64],
    list: &List,
    n: usize,
    hi: u32,
    state: u32,
) -> bool {
    // The first operation not linearized; every op below it is.
    let mut lo = n;
    let mut e = list.first();
    while e != NONE {
        let i = (e / 2) as usize;
        if bits[i / 64] & (1 << (i % 64)) == 0 {
            lo = i;
            break;
        }
        e = list.next[e as usize];
    }
    let lo_w = lo / 64;
    let end_w = lo_w.max((hi as usize).div_ceil(64));
    let mut key = Vec::with_capacity(1 + end_w - lo_w);
    key.push(u64::from(state) | ((lo_w as u64) << 32));
    key.extend_from_slice(&bits[lo_w..end_w]);
    let len = key.len();
    let fresh = memo.insert(key.into_boxed_slice());
    if fresh {
        *bytes += 8 * len + 40;
    }
    fresh
}

/// Even entries are calls, odd entries returns.
fn is_call(e: u32) -> bool {
    e & 1 == 0
}
