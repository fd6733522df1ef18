//! Raft's safety properties (Raft paper, figure 3), checked after every output a
//! replica produces. Each check is incremental: it looks only at what just happened
//! plus summaries kept here, so a seed's checks cost about as much as its run.
//!
//! - Election safety: at most one leader per term (from `Output::RoleChanged`), and
//!   that leader leads it in one life only: a node that led a term, crashed (or lost
//!   its disk) and came back never leads that term again, since winning a term
//!   requires having made the term and the vote durable first.
//! - Log matching: two logs with an entry of the same index and term hold the same
//!   entries up to it. Checked as: every `(index, term)` ever written anywhere has one
//!   payload and one predecessor term, which by induction on the index is equivalent.
//! - Leader completeness: a new leader's log holds every entry committed so far.
//! - State machine safety: no two replicas apply different entries at one index,
//!   and a snapshot installed from a leader ends with the entry applied there.
//!   Logs may be compacted: checks compare only indexes a log still holds (or the
//!   snapshot's last one).
//! - No acknowledged write lost: a write answered `Done` was applied (so, by state
//!   machine safety, every replica that applies that far applies it too).

use super::disk::Stored;
use node::kv::Command;
use node::raft::types::{Entry, Index, NodeId, Payload, Term};
use std::collections::BTreeMap;

/// What was first applied at one index, by any replica.
#[derive(Debug)]
struct Applied {
    term: Term,
    /// `None` when the first replica to apply it no longer held the entry in its log.
    payload: Option<Payload>,
    node: NodeId,
    /// The lowest current term of any replica when it applied this entry. The entry
    /// was committed in this term or earlier, so every leader of a later term must
    /// hold it (leader completeness speaks of *later* terms: a slow candidate may still
    /// win an older term without it).
    known_in_term: Term,
}

#[derive(Debug, Default)]
pub struct Invariants {
    /// The leader of each term, with the life (restart count) it led it in.
    leaders: BTreeMap<Term, (NodeId, u64)>,
    /// `(index, term)` -> (payload, predecessor term) as first written.
    written: BTreeMap<(Index, Term), (Payload, Option<Term>, NodeId)>,
    applied: BTreeMap<Index, Applied>,
    /// `(client, seq)` of every applied command -> the first index it was applied at.
    applied_commands: BTreeMap<(u64, u64), Index>,
}

impl Invariants {
    /// Election safety, and leader completeness for the new leader's log. `life`
    /// counts the node's restarts.
    pub fn on_leader(
        &mut self,
        node: NodeId,
        life: u64,
        term: Term,
        log: &Stored,
    ) -> Result<(), String> {
        if let Some(&(other, other_life)) = self.leaders.get(&term) {
            if other != node {
                return Err(format!(
                    "election safety: nodes {other} and {node} are both leader in term {term}"
                ));
            }
            if other_life != life {
                return Err(format!(
                    "election safety: node {node} led term {term} again after a restart \
                     (the term or its vote was not durable before it led)"
                ));
            }
            return Ok(());
        }
        self.leaders.insert(term, (node, life));
        let snap = log.snapshot_index();
        for (&index, a) in self.applied.range(snap.max(1)..) {
            if a.known_in_term >= term {
                continue;
            }
            let have = log.term_at(index);
            if have != Some(a.term) {
                return Err(format!(
                    "leader completeness: node {node} became leader of term {term} without \
                     committed entry {index} (term {}, applied first by node {}); its log has {}",
                    a.term,
                    a.node,
                    have.map_or("nothing".to_string(), |t| format!("term {t}"))
                ));
            }
        }
        Ok(())
    }

    /// Log matching, for entries just written to `node`'s log (`log` is after the write).
    pub fn on_written(
        &mut self,
        node: NodeId,
        entries: &[Entry],
        log: &Stored,
    ) -> Result<(), String> {
        for e in entries {
            let prev = log.term_at(e.index - 1);
            match self.written.get(&(e.index, e.term)) {
                None => {
                    self.written
                        .insert((e.index, e.term), (e.payload.clone(), prev, node));
                }
                Some((payload, prev0, first)) => {
                    if *payload != e.payload {
                        return Err(format!(
                            "log matching: entry {} of term {} differs between node {first} and node {node}",
                            e.index, e.term
                        ));
                    }
                    if let (Some(a), Some(b)) = (prev0, prev)
                        && *a != b
                    {
                        return Err(format!(
                            "log matching: entry {} of term {} follows term {a} on node {first} \
                                 but term {b} on node {node}",
                            e.index, e.term
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// State machine safety, for `node` applying `(index, term)`.
    pub fn on_applied(
        &mut self,
        node: NodeId,
        index: Index,
        term: Term,
        log: &Stored,
        node_term: Term,
    ) -> Result<(), String> {
        let entry = log.entry(index);
        if let Some(e) = entry
            && e.term != term
        {
            return Err(format!(
                "node {node} reports applying entry {index} of term {term}, but its log holds term {}",
                e.term
            ));
        }
        let payload = entry.map(|e| e.payload.clone());
        match self.applied.get_mut(&index) {
            None => {
                if let Some(Payload::Command(bytes)) = &payload
                    && let Some(c) = decode_command(bytes)
                {
                    self.applied_commands
                        .entry((c.client, c.seq))
                        .or_insert(index);
                }
                self.applied.insert(
                    index,
                    Applied {
                        term,
                        payload,
                        node,
                        known_in_term: node_term,
                    },
                );
            }
            Some(a) => {
                a.known_in_term = a.known_in_term.min(node_term);
                if a.term != term {
                    return Err(format!(
                        "state machine safety: node {} applied entry {index} of term {}, \
                         node {node} applied entry {index} of term {term}",
                        a.node, a.term
                    ));
                }
                if let (Some(p0), Some(p1)) = (&a.payload, &payload)
                    && p0 != p1
                {
                    return Err(format!(
                        "state machine safety: nodes {} and {node} applied different \
                             payloads at index {index} (term {term})",
                        a.node
                    ));
                }
            }
        }
        Ok(())
    }

    /// State machine safety for a snapshot installed at `node`: it stands for the
    /// entries through `index`, the last of which has `term`.
    pub fn on_restored(&mut self, node: NodeId, index: Index, term: Term) -> Result<(), String> {
        match self.applied.get(&index) {
            Some(a) if a.term != term => Err(format!(
                "state machine safety: node {node} installed a snapshot through {index} \
                 of term {term}, node {} applied entry {index} of term {}",
                a.node, a.term
            )),
            _ => Ok(()),
        }
    }

    /// A command applied at `index` by an engine whose entries this checker does not
    /// follow (Paxos): recorded for the acknowledged-write check only.
    pub fn on_command_applied(&mut self, index: Index, bytes: &[u8]) {
        if let Some(c) = decode_command(bytes) {
            self.applied_commands
                .entry((c.client, c.seq))
                .or_insert(index);
        }
    }

    /// No acknowledged write lost: `(client, seq)` was answered `Done` by `node`.
    pub fn on_write_acknowledged(&self, node: NodeId, client: u64, seq: u64) -> Result<(), String> {
        if self.applied_commands.contains_key(&(client, seq)) {
            Ok(())
        } else {
            Err(format!(
                "acknowledged write lost: node {node} acknowledged client {client} seq {seq}, \
                 which no replica has applied (so it is not in the committed log)"
            ))
        }
    }

    /// The highest index applied by any replica.
    pub fn applied_len(&self) -> Index {
        self.applied.keys().next_back().copied().unwrap_or(0)
    }
}

/// Reads the `(client, seq)` out of a command payload, with the replica's own codec.
pub fn decode_command(bytes: &[u8]) -> Option<Command> {
    Command::decode(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::disk::Write;
    use node::kv::KvOp;

    fn log(entries: &[(Index, Term)]) -> Stored {
        let mut s = Stored::default();
        let w = Write {
            seq: 1,
            identity: None,
            snapshot: None,
            truncate_from: None,
            entries: entries
                .iter()
                .map(|&(index, term)| Entry {
                    index,
                    term,
                    payload: Payload::Noop,
                })
                .collect(),
            hard_state: None,
        };
        s.apply(&w).unwrap();
        s
    }

    #[test]
    fn two_leaders_in_one_term_break_election_safety() {
        let mut inv = Invariants::default();
        let l = log(&[]);
        inv.on_leader(1, 0, 3, &l).unwrap();
        inv.on_leader(1, 0, 3, &l).unwrap();
        let e = inv.on_leader(2, 0, 3, &l).unwrap_err();
        assert!(e.contains("election safety"), "{e}");
        // The same node leading the same term after a restart breaks it too.
        let e = inv.on_leader(1, 1, 3, &l).unwrap_err();
        assert!(e.contains("again after a restart"), "{e}");
    }

    #[test]
    fn different_entries_applied_at_one_index_break_state_machine_safety() {
        let mut inv = Invariants::default();
        inv.on_applied(1, 1, 1, &log(&[(1, 1)]), 1).unwrap();
        inv.on_applied(2, 1, 1, &log(&[(1, 1)]), 2).unwrap();
        let e = inv.on_applied(3, 1, 2, &log(&[(1, 2)]), 2).unwrap_err();
        assert!(e.contains("state machine safety"), "{e}");
    }

    #[test]
    fn a_leader_without_an_entry_committed_before_its_term_breaks_completeness() {
        let mut inv = Invariants::default();
        // Entry 2 of term 2 was applied while its applier was in term 2.
        inv.on_applied(1, 2, 2, &log(&[(1, 1), (2, 2)]), 2).unwrap();
        // A late leader of term 2 need not hold it: it may have won before the commit.
        inv.on_leader(3, 0, 2, &log(&[(1, 1)])).unwrap();
        // A leader of term 3 must.
        inv.on_leader(2, 0, 3, &log(&[(1, 1), (2, 2)])).unwrap();
        let e = inv.on_leader(3, 0, 4, &log(&[(1, 1), (2, 3)])).unwrap_err();
        assert!(e.contains("leader completeness"), "{e}");
    }

    #[test]
    fn one_index_and_term_with_two_predecessors_breaks_log_matching() {
        let mut inv = Invariants::default();
        let a = log(&[(1, 1), (2, 2)]);
        inv.on_written(1, &a.entries, &a).unwrap();
        let b = log(&[(1, 2), (2, 2)]);
        let e = inv.on_written(2, &b.entries, &b).unwrap_err();
        assert!(e.contains("log matching"), "{e}");
    }

    #[test]
    fn one_index_and_term_written_twice_differently_breaks_log_matching() {
        // Even when the first copy was never durable where it was made: a leader
        // sends its entries before its own fsync, so another node may hold it.
        let mut inv = Invariants::default();
        let a = log(&[(1, 1)]);
        inv.on_written(1, &a.entries, &a).unwrap();
        let mut b = log(&[]);
        b.apply(&Write {
            seq: 2,
            identity: None,
            snapshot: None,
            truncate_from: None,
            entries: vec![Entry {
                index: 1,
                term: 1,
                payload: Payload::Command(vec![1]),
            }],
            hard_state: None,
        })
        .unwrap();
        let e = inv.on_written(1, &b.entries, &b).unwrap_err();
        assert!(e.contains("log matching"), "{e}");
    }

    #[test]
    fn an_acknowledged_write_must_have_been_applied() {
        let mut inv = Invariants::default();
        let cmd = Command {
            client: 7,
            seq: 3,
            op: KvOp::Delete { key: "k".into() },
        };
        let mut l = Stored::default();
        l.apply(&Write {
            seq: 1,
            identity: None,
            snapshot: None,
            truncate_from: None,
            entries: vec![Entry {
                index: 1,
                term: 1,
                payload: Payload::Command(cmd.encode()),
            }],
            hard_state: None,
        })
        .unwrap();
        assert!(inv.on_write_acknowledged(1, 7, 3).is_err());
        inv.on_applied(1, 1, 1, &l, 1).unwrap();
        inv.on_write_acknowledged(1, 7, 3).unwrap();
        assert!(inv.on_write_acknowledged(1, 7, 4).is_err());
    }
}
