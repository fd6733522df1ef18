//! The append model when every put and append value is distinct: states are nodes of a
//! trie of what the reads observed.
//!
//! When put and append values are unique and each read's string splits in exactly one
//! way into "the value of one put (or the initial value), then appends", a read names the
//! exact sequence of operations that produced what it saw. An *epoch* starts at a put (or
//! at the initial state) and lasts until the next put; the reads of one epoch form a trie
//! rooted at its put. Two facts then decide most of the search:
//!
//! - a put's epoch happens once (the put is one operation), so leaving an epoch while
//!   some read of it is still waiting is a dead end;
//! - inside an epoch every waiting read must extend the current state, so an append that
//!   does not lead towards all of them is a dead end.
//!
//! A state off the trie (appends no read saw) is kept as one state per epoch: once there,
//! no read of that epoch waits any longer (the second fact), so the exact string can no
//! longer matter to anything that follows.

use crate::model::{F, Model, SOp};
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
        id
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
                    c
                }
            };
        }
        node
    }

    /// Registers the required reads (call once, after all inserts).
    pub fn count_waiting(&mut self, ops: &[SOp]) {
        for op in ops {
            self.wait(op, 1);
        }
    }

    fn wait(&mut self, op: &SOp, d: i32) {
        if let F::Read(n) = op.f
            && !op.optional
            && n != IMPOSSIBLE
        {
            let mut n = n;
            loop {
                self.waiting[n as usize] += d;
                let p = self.parent[n as usize];
                if p == n {
                    break;
                }
                n = p;
            }
        }
    }

    pub fn nodes(&self) -> usize {
        self.root.len()
    }
}

impl Model for TrieModel {
    fn init(&self) -> u32 {
        self.init
    }

    fn step(&mut self, state: u32, op: &SOp) -> Option<u32> {
        match op.f {
            F::Read(n) => (n == state).then_some(state),
            F::Write(root) => Some(root),
            F::Append(t) => {
                if self.off[state as usize] {
                    return Some(state);
                }
                match self.children.get(&(state, t)) {
                    Some(&c) => Some(c),
                    None => self.off_of.get(&self.root[state as usize]).copied(),
                }
            }
            F::Cas(..) => None,
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
        let waiting = self.waiting[root as usize];
        if self.root[to as usize] != root || self.off[to as usize] {
            return waiting > 0;
        }
        waiting - self.waiting[to as usize] > 0
    }
}
