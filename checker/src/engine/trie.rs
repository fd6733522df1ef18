//! The append model when reads are unambiguous: states are nodes of a trie of what the
//! reads observed.
//!
//! When each read's string splits in exactly one way into "the value of a put (or the
//! initial value), then appends" (true when put and append values are unique, and
//! usually when a few repeat), a read names the exact sequence of values that produced
//! what it saw. An *epoch* starts at a put (or
//! at the initial state) and lasts until the next put; the reads of one epoch form a trie
//! rooted at its put. Two facts then decide most of the search:
//!
//! - a put's epoch happens once (unless another put writes the same value), so leaving
//!   an epoch while some read of it is still waiting is a dead end;
//! - inside an epoch every waiting read must extend the current state, so an append that
//!   does not lead towards all of them is a dead end;
//! - an append that some read contains must be applied exactly where that read's
//!   sequence puts it (after the same predecessor, in the same epoch): anywhere else the
//!   read can never succeed. Only appends no read saw move freely.
//!
//! A state off the trie (appends no read saw) is kept as one state per epoch: once there,
//! no read of that epoch waits any longer (the second fact), so the exact string can no
//! longer matter to anything that follows.

use super::{Engine, F, SOp};
use rustc_hash::FxHashMap;

/// A read that no sequence of the key's puts and appends can produce.
pub const IMPOSSIBLE: u32 = u32::MAX;

/// The trie-shaped append model of one key.
#[derive(Clone, Debug, Default)]
pub struct TrieModel {
    /// Per node: the root of its epoch.
    root: Vec<u32>,
    /// Per node: parent (roots point to themselves).
    parent: Vec<u32>,
    /// Per node: true for an epoch's off-trie state.
    off: Vec<bool>,
    /// Per root: its off-trie node.
    off_of: FxHashMap<u32, u32>,
    /// Per node: required reads not yet linearized at or below it.
    waiting: Vec<i32>,
    children: FxHashMap<(u32, u32), u32>,
    /// Per append token: true if some read contains it.
    observed: Vec<bool>,
    /// Per node: the token of the edge into it (`u32::MAX` for roots and off nodes).
    label: Vec<u32>,
    /// Per append token: appends of it not yet linearized.
    remaining: Vec<i32>,
    /// Per append token: waiting reads whose sequence contains it.
    waiting_with: Vec<i32>,
    /// Per root: puts of its value not yet linearized (the epoch can start again).
    producers: Vec<i32>,
    init: u32,
}

impl TrieModel {
    /// A model whose initial epoch is rooted at a new node (returned by [`Self::init`]).
    pub fn new() -> Self {
        let mut t = TrieModel::default();
        t.init = t.new_root();
        t
    }

    /// A new epoch (for one put).
    pub fn new_root(&mut self) -> u32 {
        let id = self.push(u32::MAX, false);
        self.root[id as usize] = id;
        self.parent[id as usize] = id;
        let off = self.push(id, true);
        self.off_of.insert(id, off);
        id
    }

    fn push(&mut self, parent: u32, off: bool) -> u32 {
        let id = self.root.len() as u32;
        let root = if parent == u32::MAX {
            id
        } else {
            self.root[parent as usize]
        };
        self.root.push(root);
        self.parent.push(parent);
        self.off.push(off);
        self.waiting.push(0);
        self.label.push(u32::MAX);
        self.producers.push(0);
        id
    }

    fn grow(&mut self, t: u32) {
        let need = t as usize + 1;
        if self.observed.len() < need {
            self.observed.resize(need, false);
            self.remaining.resize(need, 0);
            self.waiting_with.resize(need, 0);
        }
    }

    /// The node reached from `root` by the appends `tokens`, created as needed.
    pub fn insert(&mut self, root: u32, tokens: &[u32]) -> u32 {
        let mut node = root;
        for &t in tokens {
            node = match self.children.get(&(node, t)) {
                Some(&c) => c,
                None => {
                    let c = self.push(node, false);
                    self.children.insert((node, t), c);
                    self.label[c as usize] = t;
                    self.grow(t);
                    self.observed[t as usize] = true;
                    c
                }
            };
        }
        node
    }

    /// Makes appending `token` at `node` lead to `to` (a root standing for the same
    /// string). False if that edge already leads elsewhere.
    pub fn link(&mut self, node: u32, token: u32, to: u32) -> bool {
        self.grow(token);
        match self.children.get(&(node, token)) {
            Some(&c) => c == to,
            None => {
                self.children.insert((node, token), to);
                true
            }
        }
    }

    /// Registers the required reads, puts and appends (call once, after all inserts).
    pub fn count_waiting(&mut self, ops: &[SOp]) {
        for op in ops {
            if let F::Append(t) = op.f {
                self.grow(t);
            }
        }
        for op in ops {
            self.wait(op, 1);
        }
    }

    fn wait(&mut self, op: &SOp, d: i32) {
        match op.f {
            F::Append(t) => self.remaining[t as usize] += d,
            F::Write(root) => self.producers[root as usize] += d,
            _ => {}
        }
        if let F::Read(n) = op.f
            && !op.optional
            && n != IMPOSSIBLE
        {
            let mut n = n;
            loop {
                self.waiting[n as usize] += d;
                let t = self.label[n as usize];
                if t != u32::MAX {
                    self.waiting_with[t as usize] += d;
                }
                let p = self.parent[n as usize];
                if p == n {
                    break;
                }
                n = p;
            }
        }
    }
}

impl Engine for TrieModel {
    fn init(&self) -> u32 {
        self.init
    }

    fn step(&mut self, state: u32, op: &SOp) -> Option<u32> {
        match op.f {
            F::Read(n) => (n == state).then_some(state),
            F::Write(root) => Some(root),
            F::Append(t) => {
                if let Some(&c) = self.children.get(&(state, t)) {
                    return Some(c);
                }
                // A token some (required) read contains must be appended exactly where
                // the reads put it; anywhere else those reads can never succeed.
                // (Unless another append of the same value is left to take that place.)
                let t = t as usize;
                if self.observed[t] && self.waiting_with[t] > 0 && self.remaining[t] <= 1 {
                    return None;
                }
                if self.off[state as usize] {
                    return Some(state);
                }
                self.off_of.get(&self.root[state as usize]).copied()
            }
            F::Cas(..) | F::Op(_) => None,
        }
    }

    fn bytes(&self) -> usize {
        self.root.len() * 16 + self.children.len() * 16
    }

    fn enter(&mut self, op: &SOp) {
        self.wait(op, -1);
    }

    fn leave(&mut self, op: &SOp) {
        self.wait(op, 1);
    }

    fn dead(&self, from: u32, to: u32) -> bool {
        if from == to {
            return false;
        }
        let root = self.root[from as usize];
        if self.producers[root as usize] > 0 {
            // Another put of the same value can start this epoch again.
            return false;
        }
        let waiting = self.waiting[root as usize];
        if self.root[to as usize] != root || self.off[to as usize] {
            return waiting > 0;
        }
        waiting - self.waiting[to as usize] > 0
    }
}
