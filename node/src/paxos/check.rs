//! The Paxos safety invariants, checked from outside the engines: fed what acceptors
//! made durable and what nodes learned and applied, it reports the first violations
//! as text. Shared by the engine tests and the simulator.
//!
//! - At most one value is chosen per slot: a value is chosen once a majority of
//!   acceptors durably accepted it under one ballot, and two ballots may not choose
//!   different values for a slot.
//! - Under one ballot, acceptors accept at most one value per slot.
//! - A node learns only the value the acceptors chose.
//! - The applied prefixes agree: every node's state after a slot is the same.

use super::{Ballot, NodeId, Slot, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Violations kept; more are counted in none.
const MAX_VIOLATIONS: usize = 20;

/// Checks the invariants of one cluster; see the module documentation.
#[derive(Debug, Default)]
pub struct Checker {
    majority: usize,
    /// `(slot, ballot)` -> the value and the acceptors that durably accepted it.
    votes: BTreeMap<(Slot, Ballot), (Value, BTreeSet<NodeId>)>,
    /// The value chosen in each slot, once a majority accepted it.
    pub chosen: BTreeMap<Slot, Value>,
    /// The state after applying each slot (a digest of the state machine), with the
    /// node that reached it first.
    states: BTreeMap<Slot, (u64, NodeId)>,
    /// The highest slot of any acknowledged write (kept for the drivers' checks).
    pub max_acked: Slot,
    pub violations: Vec<String>,
}

/// A value as violations show it: a command as its text (commands are JSON).
fn show(value: &Value) -> String {
    match value {
        Value::Command(c) => format!("command {}", String::from_utf8_lossy(c)),
        other => format!("{other:?}"),
    }
}

impl Checker {
    /// A checker for a cluster of `acceptors` nodes.
    pub fn new(acceptors: usize) -> Checker {
        Checker {
            majority: acceptors / 2 + 1,
            ..Checker::default()
        }
    }

    /// Records a violation found by the driver itself.
    pub fn violation(&mut self, what: String) {
        if self.violations.len() < MAX_VIOLATIONS {
            self.violations.push(what);
        }
    }

    /// `node` made durable that it accepted `value` in `slot` under `ballot`.
    pub fn on_durable_accept(&mut self, node: NodeId, slot: Slot, ballot: Ballot, value: &Value) {
        let entry = self
            .votes
            .entry((slot, ballot))
            .or_insert_with(|| (value.clone(), BTreeSet::new()));
        if entry.0 != *value {
            let what = format!(
                "slot {slot}: two values accepted under ballot {ballot}: {} and {} (node {node})",
                show(&entry.0),
                show(value)
            );
            self.violation(what);
            return;
        }
        entry.1.insert(node);
        if entry.1.len() < self.majority {
            return;
        }
        match self.chosen.get(&slot) {
            None => {
                self.chosen.insert(slot, value.clone());
            }
            Some(v) if v == value => {}
            Some(v) => {
                let what = format!(
                    "slot {slot}: a second value chosen: {} then {} (ballot {ballot})",
                    show(v),
                    show(value)
                );
                self.violation(what);
            }
        }
    }

    /// `node` learned that `value` was chosen in `slot`.
    pub fn on_learned(&mut self, node: NodeId, slot: Slot, value: &Value) {
        match self.chosen.get(&slot) {
            Some(v) if v == value => {}
            other => {
                let what = format!(
                    "slot {slot}: node {node} learned {} but the acceptors chose {}",
                    show(value),
                    other.map_or("nothing yet".to_string(), show)
                );
                self.violation(what);
            }
        }
    }

    /// `node`'s state machine, after applying every slot through `slot`, has the
    /// digest `state`.
    pub fn on_state(&mut self, node: NodeId, slot: Slot, state: u64) {
        match self.states.get(&slot) {
            None => {
                self.states.insert(slot, (state, node));
            }
            Some(&(h, _)) if h == state => {}
            Some(&(_, other)) => {
                let what =
                    format!("slot {slot}: the state machines of nodes {other} and {node} differ");
                self.violation(what);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(round: u64, node: NodeId) -> Ballot {
        Ballot { round, node }
    }

    #[test]
    fn a_value_is_chosen_by_a_majority_and_a_second_one_is_a_violation() {
        let mut c = Checker::new(3);
        let x = Value::Command(b"x".to_vec());
        let y = Value::Command(b"y".to_vec());
        c.on_durable_accept(1, 1, b(1, 1), &x);
        assert!(c.chosen.is_empty());
        c.on_durable_accept(2, 1, b(1, 1), &x);
        assert_eq!(c.chosen.get(&1), Some(&x));
        c.on_learned(3, 1, &x);
        assert!(c.violations.is_empty());
        c.on_durable_accept(2, 1, b(2, 3), &y);
        c.on_durable_accept(3, 1, b(2, 3), &y);
        assert!(
            c.violations[0].contains("a second value chosen"),
            "{:?}",
            c.violations
        );
        c.on_learned(1, 2, &y);
        assert!(c.violations[1].contains("learned"), "{:?}", c.violations);
    }

    #[test]
    fn diverging_states_after_a_slot_are_a_violation() {
        let mut c = Checker::new(3);
        c.on_state(1, 4, 77);
        c.on_state(2, 4, 77);
        assert!(c.violations.is_empty());
        c.on_state(3, 4, 78);
        assert!(c.violations[0].contains("differ"));
    }
}
