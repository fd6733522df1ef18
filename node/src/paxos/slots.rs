//! The slot log both engines keep: per slot the acceptor's promise and accepted
//! proposal, and the chosen value once it is known; plus the compaction point, the
//! chosen prefix and the apply cursor.
//!
//! Invariants: `snapshot <= applied <= prefix`; every slot `<= prefix` is chosen (those
//! `<= snapshot` were compacted away, their state lives in the snapshot); no state is
//! kept for a slot `<= snapshot`; a chosen value never changes.

use super::{Ballot, Slot, Value};
use std::collections::BTreeMap;

/// One slot as this node knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SlotState {
    /// Basic Paxos: the highest ballot promised in this slot. (Multi-Paxos keeps one
    /// promise for every slot; this stays zero there.)
    pub promised: Ballot,
    /// The acceptor's accepted proposal, if any.
    pub accepted: Option<(Ballot, Value)>,
    /// The chosen value, once learned.
    pub chosen: Option<Value>,
}

/// The outcome of learning a chosen value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Learned {
    /// Newly chosen here.
    New,
    /// Already known (or compacted).
    Known,
    /// Known chosen with a different value: a safety violation somewhere.
    Conflict,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SlotLog {
    snapshot: Slot,
    slots: BTreeMap<Slot, SlotState>,
    prefix: Slot,
    applied: Slot,
    max_chosen: Slot,
}

impl SlotLog {
    /// An empty log after a snapshot through `snapshot`.
    pub(crate) fn new(snapshot: Slot) -> Self {
        SlotLog {
            snapshot,
            slots: BTreeMap::new(),
            prefix: snapshot,
            applied: snapshot,
            max_chosen: snapshot,
        }
    }

    /// Every slot through this one is compacted into the snapshot.
    pub(crate) fn snapshot(&self) -> Slot {
        self.snapshot
    }

    /// Every slot through this one is chosen and known here.
    pub(crate) fn prefix(&self) -> Slot {
        self.prefix
    }

    /// Every slot through this one was handed to the application.
    pub(crate) fn applied(&self) -> Slot {
        self.applied
    }

    /// The highest slot known chosen.
    pub(crate) fn max_chosen(&self) -> Slot {
        self.max_chosen
    }

    /// The highest slot this node holds any state for (at least the prefix).
    pub(crate) fn max_slot(&self) -> Slot {
        self.slots
            .last_key_value()
            .map_or(self.prefix, |(&s, _)| s.max(self.prefix))
    }

    pub(crate) fn get(&self, slot: Slot) -> Option<&SlotState> {
        self.slots.get(&slot)
    }

    /// The state of `slot` for changing it; `None` when it was compacted away.
    pub(crate) fn state_mut(&mut self, slot: Slot) -> Option<&mut SlotState> {
        if slot <= self.snapshot {
            return None;
        }
        Some(self.slots.entry(slot).or_default())
    }

    /// Slots held, in order, from `lo` on.
    pub(crate) fn from(&self, lo: Slot) -> impl Iterator<Item = (Slot, &SlotState)> {
        self.slots.range(lo..).map(|(&s, st)| (s, st))
    }

    /// Slots held, in order, from `lo` through `hi` (none when `lo > hi`).
    pub(crate) fn between(&self, lo: Slot, hi: Slot) -> impl Iterator<Item = (Slot, &SlotState)> {
        // `BTreeMap::range` panics on a reversed range.
        let held = if lo <= hi {
            self.slots.range(lo..=hi)
        } else {
            self.slots.range(0..0)
        };
        held.map(|(&s, st)| (s, st))
    }

    pub(crate) fn is_chosen(&self, slot: Slot) -> bool {
        slot <= self.prefix || self.chosen(slot).is_some()
    }

    /// The chosen value at `slot`, when known and not compacted.
    pub(crate) fn chosen(&self, slot: Slot) -> Option<&Value> {
        self.slots.get(&slot).and_then(|s| s.chosen.as_ref())
    }

    /// Records that `value` is chosen at `slot`.
    pub(crate) fn learn(&mut self, slot: Slot, value: Value) -> Learned {
        if slot <= self.snapshot {
            return Learned::Known;
        }
        let st = self.slots.entry(slot).or_default();
        match &st.chosen {
            Some(v) if *v == value => return Learned::Known,
            Some(_) => return Learned::Conflict,
            None => st.chosen = Some(value),
        }
        self.max_chosen = self.max_chosen.max(slot);
        while self
            .slots
            .get(&(self.prefix + 1))
            .is_some_and(|s| s.chosen.is_some())
        {
            self.prefix += 1;
        }
        Learned::New
    }

    /// Hands out up to `max` chosen values after the apply cursor, in slot order.
    pub(crate) fn take_decided(&mut self, max: usize) -> Vec<(Slot, Value)> {
        let mut out = Vec::new();
        while self.applied < self.prefix && out.len() < max {
            let slot = self.applied + 1;
            let Some(v) = self.chosen(slot) else {
                break;
            };
            out.push((slot, v.clone()));
            self.applied = slot;
        }
        out
    }

    /// The chosen values from `from` on, contiguous, at most `max`.
    pub(crate) fn chosen_run(&self, from: Slot, max: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut slot = from;
        while out.len() < max {
            match self.chosen(slot) {
                Some(v) => out.push(v.clone()),
                None => break,
            }
            slot += 1;
        }
        out
    }

    /// The application captured its state through `through`: drop every slot up to
    /// it. Refused (false) unless `snapshot < through <= applied`.
    pub(crate) fn compact(&mut self, through: Slot) -> bool {
        if through <= self.snapshot || through > self.applied {
            return false;
        }
        self.slots = self.slots.split_off(&(through + 1));
        self.snapshot = through;
        true
    }

    /// A snapshot through `through` from a peer replaces everything up to it. The
    /// slots after it stay (their accepted proposals and chosen values are still
    /// true). Refused (false) unless it is past the chosen prefix.
    pub(crate) fn install(&mut self, through: Slot) -> bool {
        if through <= self.prefix {
            return false;
        }
        self.slots = self.slots.split_off(&(through + 1));
        self.snapshot = through;
        self.applied = through;
        self.prefix = through;
        self.max_chosen = self.max_chosen.max(through);
        while self
            .slots
            .get(&(self.prefix + 1))
            .is_some_and(|s| s.chosen.is_some())
        {
            self.prefix += 1;
        }
        true
    }

    /// Unchosen slots between the prefix and the highest chosen one (holes), at
    /// most `max`, lowest first.
    pub(crate) fn holes(&self, max: usize) -> Vec<Slot> {
        ((self.prefix + 1)..self.max_chosen)
            .filter(|&s| self.chosen(s).is_none())
            .take(max)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(s: &str) -> Value {
        Value::Command(s.as_bytes().to_vec())
    }

    #[test]
    fn the_prefix_advances_over_contiguous_chosen_slots_only() {
        let mut log = SlotLog::new(0);
        assert_eq!(log.learn(2, cmd("b")), Learned::New);
        assert_eq!(log.prefix(), 0);
        assert_eq!(log.holes(10), [1]);
        assert_eq!(log.learn(1, cmd("a")), Learned::New);
        assert_eq!(log.prefix(), 2);
        assert_eq!(log.learn(1, cmd("a")), Learned::Known);
        assert_eq!(log.learn(1, cmd("x")), Learned::Conflict);
        assert_eq!(
            log.take_decided(1),
            vec![(1, cmd("a"))],
            "at most `max` per call"
        );
        assert_eq!(log.take_decided(10), vec![(2, cmd("b"))]);
        assert!(log.take_decided(10).is_empty());
    }

    #[test]
    fn compaction_needs_applied_slots_and_install_needs_a_newer_prefix() {
        let mut log = SlotLog::new(0);
        for s in 1..=3 {
            log.learn(s, cmd("v"));
        }
        assert!(!log.compact(2), "nothing applied yet");
        log.take_decided(2);
        assert!(log.compact(2));
        assert!(log.get(2).is_none());
        assert!(log.state_mut(2).is_none());
        assert!(log.is_chosen(2));
        assert!(!log.install(3), "not past the prefix");
        log.learn(6, cmd("f"));
        assert!(log.install(5));
        assert_eq!((log.snapshot(), log.applied(), log.prefix()), (5, 5, 6));
        assert_eq!(log.chosen_run(6, 5), vec![cmd("f")]);
        assert_eq!(log.between(6, 6).count(), 1);
        assert_eq!(log.between(7, 6).count(), 0, "a reversed range is empty");
        assert_eq!(log.between(u64::MAX, 0).count(), 0);
    }
}
