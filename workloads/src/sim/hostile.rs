//! Hostile peer messages in the simulator: well-formed messages no correct peer can
//! send. Raft is not Byzantine-tolerant and a peer holding the cluster token can
//! always lie plausibly; these lies are the ones a node can recognise, and it must:
//! terms far beyond its own (up to 2^64-1), entries that do not follow
//! `prev_index + 1` one by one, acknowledgements of entries the leader never had,
//! read rounds never started, and senders that are not members. Under the Paxos
//! engines: snapshots whose bytes are not a state of the store. The property: no
//! panic, no freeze (the liveness phase still elects a leader and commits), and no
//! safety invariant broken.

use super::world::{Driven, Ev, World};
use node::engine::{EngineKind, PeerMessage};
use node::paxos;
use node::raft::types::{Entry, Index, Message, MessageBody, NodeId, Payload, Term};
use rand::RngExt;

/// Ids no member has: nobody may speak as them.
const UNKNOWN_SENDERS: [NodeId; 3] = [0, 99, NodeId::MAX];

impl<R: Driven> World<R> {
    /// Sends a burst of hostile messages to one node (the leader more often than not).
    pub(super) fn hostile(&mut self) {
        let up = self.up_nodes();
        if up.is_empty() {
            return;
        }
        let to = match self.leader() {
            Some(l) if self.rng.random_bool(0.6) => l,
            _ => up[self.rng.random_range(0..up.len())],
        };
        for _ in 0..self.rng.random_range(1..=4) {
            let t = self.now + self.rng.random_range(0..2_000_000);
            self.queue.push(t, Ev::Hostile { to });
        }
    }

    /// A hostile message reaches `to`: it is made now, from `to`'s state at this
    /// moment, so that what it claims is impossible when it arrives.
    pub(super) fn deliver_hostile(&mut self, to: NodeId) {
        if self.gate(to, Ev::Hostile { to }).is_none() {
            return;
        }
        let msg = match self.opts.engine {
            EngineKind::Raft => self.hostile_message(to).map(PeerMessage::Raft),
            kind => self.hostile_paxos_message(to, kind),
        };
        let Some(msg) = msg else {
            return;
        };
        self.stats.hostile_sent += 1;
        self.trace_line(|| format!("hostile {}", super::describe::describe(&msg)));
        self.feed(to, node::replica::Input::Message(msg));
    }

    /// Under Paxos: a snapshot from a member, 1-49 slots ahead of what `to` applied, whose
    /// bytes are not a state of the store. Taking it in would skip every slot it
    /// claims while the store stays as it was, which the applied-prefix check sees.
    fn hostile_paxos_message(&mut self, to: NodeId, kind: EngineKind) -> Option<PeerMessage> {
        let st = self.status_of(to)?;
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&i| i != to).collect();
        let from = *others.get(self.rng.random_range(0..others.len().max(1)))?;
        let last_slot = st.applied_index + self.rng.random_range(1..50);
        let data = match self.rng.random_range(0..3u32) {
            0 => b"not a snapshot".to_vec(),
            1 => b"linkv-s2".iter().copied().chain([0xff; 9]).collect(),
            _ => (0..self.rng.random_range(1..64))
                .map(|_| self.rng.random())
                .collect(),
        };
        let snapshot = paxos::Snapshot { last_slot, data };
        Some(match kind {
            EngineKind::MultiPaxos => PeerMessage::MultiPaxos(paxos::Envelope {
                from,
                to,
                chosen_through: last_slot,
                body: paxos::multi::Body::Snapshot { snapshot },
            }),
            _ => PeerMessage::BasicPaxos(paxos::Envelope {
                from,
                to,
                chosen_through: last_slot,
                body: paxos::basic::Body::Snapshot { snapshot },
            }),
        })
    }

    fn hostile_message(&mut self, to: NodeId) -> Option<Message> {
        let st = self.status_of(to)?;
        let log = &self.nodes.get(&to)?.disk.written;
        let term = st.term;
        let last = st.last_log_index;
        let commit = st.commit_index;
        // The node's own log at its commit index, so a bad Append passes the
        // consistency check and reaches the code that handles its entries.
        let commit_term = log.term_at(commit).unwrap_or(0);
        let last_term = log.term_at(last).unwrap_or(0);
        let others: Vec<NodeId> = self.nodes.keys().copied().filter(|&i| i != to).collect();
        let from = match st.leader.filter(|&l| l != to) {
            Some(l) if self.rng.random_bool(0.5) => l,
            _ if others.is_empty() => 99,
            _ => others[self.rng.random_range(0..others.len())],
        };
        let huge = [
            Term::MAX,
            Term::MAX - 1,
            1 << 63,
            term.saturating_add(1 << 40),
        ][self.rng.random_range(0..4usize)];
        let beyond = [Index::MAX, last + 1, last + self.rng.random_range(2..1000)]
            [self.rng.random_range(0..3usize)];
        let noop = |index: Index, term: Term| Entry {
            index,
            term,
            payload: Payload::Noop,
        };
        let (from, term, body) = match self.rng.random_range(0..10u32) {
            0 => (
                from,
                huge,
                MessageBody::Vote {
                    pre_vote: self.rng.random_bool(0.5),
                    last_log_index: last,
                    last_log_term: last_term,
                    transfer: self.rng.random_bool(0.2),
                },
            ),
            1 => (
                from,
                huge,
                MessageBody::Append {
                    prev_index: commit,
                    prev_term: commit_term,
                    entries: Vec::new(),
                    commit,
                    read_ctx: 0,
                },
            ),
            2 | 3 => {
                // Entries that do not run one by one from prev_index + 1.
                let p = if self.rng.random_bool(0.3) {
                    commit.saturating_sub(self.rng.random_range(1..4))
                } else {
                    commit
                };
                let prev_term = log.term_at(p).unwrap_or(commit_term);
                let t = term.max(prev_term);
                let entries = match self.rng.random_range(0..6u32) {
                    0 => vec![noop(p + 1, t), noop(p + 3, t)],
                    1 => vec![noop(p + 2, t), noop(p + 1, t)],
                    2 => vec![noop(p + 2, t)],
                    3 => vec![noop(p + 1, t), noop(p + 1, t)],
                    4 => vec![noop(p, t), noop(p + 1, t)],
                    _ if t == 0 => vec![noop(p + 1, t), noop(p + 3, t)],
                    _ => vec![noop(p + 1, t), noop(p + 2, t - 1)],
                };
                (
                    from,
                    term,
                    MessageBody::Append {
                        prev_index: p,
                        prev_term,
                        entries,
                        commit,
                        read_ctx: 0,
                    },
                )
            }
            4 => (
                // Indexes that overflow.
                from,
                term,
                MessageBody::Append {
                    prev_index: Index::MAX - 1,
                    prev_term: term,
                    entries: vec![noop(Index::MAX, term), noop(0, term)],
                    commit: Index::MAX,
                    read_ctx: 0,
                },
            ),
            5 => (
                from,
                term,
                MessageBody::AppendResponse {
                    success: true,
                    match_index: beyond,
                    conflict_index: 0,
                    conflict_term: None,
                    read_ctx: 0,
                },
            ),
            6 => (
                from,
                term,
                MessageBody::AppendResponse {
                    success: false,
                    match_index: beyond,
                    conflict_index: beyond,
                    conflict_term: Some(huge),
                    read_ctx: 0,
                },
            ),
            7 => (
                from,
                term,
                MessageBody::InstallSnapshotResponse { last_index: beyond },
            ),
            8 => (from, term, MessageBody::HeartbeatAck { read_ctx: u64::MAX }),
            _ => {
                // A sender that is no member, speaking plausibly.
                let who = UNKNOWN_SENDERS[self.rng.random_range(0..UNKNOWN_SENDERS.len())];
                let body = if self.rng.random_bool(0.5) {
                    MessageBody::Vote {
                        pre_vote: false,
                        last_log_index: last + 10,
                        last_log_term: term + 1,
                        transfer: false,
                    }
                } else {
                    MessageBody::Append {
                        prev_index: commit,
                        prev_term: commit_term,
                        entries: Vec::new(),
                        commit,
                        read_ctx: 0,
                    }
                };
                let t = if matches!(body, MessageBody::Vote { .. }) {
                    term + 1
                } else {
                    term
                };
                (who, t, body)
            }
        };
        // A real id speaks as the incarnation it runs as; a lie about the
        // incarnation itself would be a plausible one (a peer may be new).
        let incarnation = self.status_of(from).map(|s| s.incarnation);
        let (from, incarnation) = match incarnation {
            Some(inc) => (from, inc),
            None if self.nodes.contains_key(&from) => (UNKNOWN_SENDERS[1], 1),
            None => (from, 1),
        };
        Some(Message {
            from,
            to,
            term,
            incarnation,
            body,
        })
    }
}
