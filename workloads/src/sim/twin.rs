//! A small reference Raft with the replica's contract, used to test the simulator
//! itself: that its invariants catch the known bugs (`Mutants`), that a run replays
//! byte for byte, and that a correct implementation passes. It has none of the real
//! replica's refinements (no pre-vote, leases, snapshots, membership or flow control)
//! and is deliberately simple enough to be obviously right.
//!
//! Persistence rule: every `Send` and `Reply` produced while a `Persist` is not yet
//! durable is held back until `Input::Persisted` covers it, and the leader counts
//! itself in a quorum only for entries durable on its own disk.

use node::engine::{DurableWrite, EngineKind, PeerMessage};
use node::kv::{Command, KvOp, KvResult};
use node::raft::PersistWrite;
use node::raft::types::Membership;
use node::raft::types::{Entry, HardState, Index, Message, MessageBody, NodeId, Payload, Term};
use node::replica::{ClientRequest, Config, Input, Output, Recovered, Response, Role, Status};
use serde_json::Value;
use std::collections::BTreeMap;

use super::world::Driven;

pub struct Twin {
    cfg: Config,
    rng: u64,
    term: Term,
    vote: Option<NodeId>,
    /// `log[i]` has index `i + 1`.
    log: Vec<Entry>,
    commit: Index,
    applied: Index,
    role: Role,
    leader: Option<NodeId>,
    elapsed: u32,
    timeout: u32,
    votes: Vec<NodeId>,
    next: BTreeMap<NodeId, Index>,
    matched: BTreeMap<NodeId, Index>,
    kv: BTreeMap<String, Value>,
    dedup: BTreeMap<u64, (u64, KvResult)>,
    /// Leader: client requests waiting for their entry, by log index.
    waiting: BTreeMap<Index, (u64, ClientRequest)>,
    persist_seq: u64,
    durable_seq: u64,
    /// Highest log index whose Persist is durable.
    durable_index: Index,
    /// Per Persist not yet durable: seq, last index after it, and the index below
    /// which it truncated (entries from there on are not durable until it is).
    unsynced: Vec<(u64, Index, Index)>,
    held: Vec<(u64, Output)>,
    out: Vec<Output>,
}

impl Driven for Twin {
    fn boot(cfg: Config, rec: Recovered) -> Twin {
        // A reference Raft: it reads Raft state only (the simulator gives it no other).
        let rec = match rec {
            Recovered::Raft(r) => r,
            _ => Default::default(),
        };
        let last = rec.entries.last().map_or(0, |e| e.index);
        let mut t = Twin {
            rng: cfg.raft.seed | 1,
            term: rec.hard_state.term,
            vote: rec.hard_state.vote,
            log: rec.entries,
            commit: 0,
            applied: 0,
            role: Role::Follower,
            leader: None,
            elapsed: 0,
            timeout: 0,
            votes: Vec::new(),
            next: BTreeMap::new(),
            matched: BTreeMap::new(),
            kv: BTreeMap::new(),
            dedup: BTreeMap::new(),
            waiting: BTreeMap::new(),
            persist_seq: 0,
            durable_seq: 0,
            durable_index: last,
            unsynced: Vec::new(),
            held: Vec::new(),
            out: Vec::new(),
            cfg,
        };
        t.reset_timeout();
        t
    }

    fn handle(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Tick => self.tick(),
            Input::Message(PeerMessage::Raft(m)) => self.step(m),
            Input::Message(_) => {}
            Input::Client { id, request } => self.propose(id, request),
            Input::Persisted { seq } => self.persisted(seq),
            Input::TransferLeader { .. }
            | Input::ChangeMembership { .. }
            | Input::TakeSnapshot
            | Input::SnapshotReady { .. }
            | Input::SnapshotFailed { .. } => {}
        }
        std::mem::take(&mut self.out)
    }

    fn current_term(&self) -> Term {
        self.term
    }

    fn status(&self) -> Status {
        Status {
            id: self.cfg.raft.id,
            consensus: EngineKind::Raft,
            incarnation: 0,
            cluster: 0,
            role: self.role,
            term: self.term,
            leader: self.leader,
            commit_index: self.commit,
            applied_index: self.applied,
            first_log_index: 1,
            last_log_index: self.last().0,
            snapshot_index: 0,
            membership: Membership {
                voters: self.cfg.raft.peers.iter().copied().collect(),
                ..Membership::default()
            },
        }
    }
}

impl Twin {
    fn random(&mut self) -> u64 {
        // splitmix64: pure and seeded.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn reset_timeout(&mut self) {
        let span =
            (self.cfg.raft.election_ticks_max - self.cfg.raft.election_ticks_min).max(1) as u64;
        self.timeout = self.cfg.raft.election_ticks_min + (self.random() % span) as u32;
        self.elapsed = 0;
    }

    fn last(&self) -> (Index, Term) {
        self.log.last().map_or((0, 0), |e| (e.index, e.term))
    }

    fn term_at(&self, i: Index) -> Option<Term> {
        if i == 0 {
            return Some(0);
        }
        self.log.get(i as usize - 1).map(|e| e.term)
    }

    fn quorum(&self) -> usize {
        self.cfg.raft.peers.len() / 2 + 1
    }

    /// Emits a Persist of the hard state and any log change.
    fn persist(&mut self, truncate_from: Option<Index>, entries: Vec<Entry>) {
        let floor = truncate_from.map_or(Index::MAX, |t| t - 1);
        self.durable_index = self.durable_index.min(floor);
        self.persist_seq += 1;
        self.unsynced.push((self.persist_seq, self.last().0, floor));
        self.out
            .push(Output::Persist(DurableWrite::Raft(PersistWrite {
                seq: self.persist_seq,
                identity: None,
                snapshot: None,
                truncate_from,
                entries,
                hard_state: Some(HardState {
                    term: self.term,
                    vote: self.vote,
                    commit: self.commit,
                }),
            })));
    }

    /// Sends or replies now, or once the latest Persist is durable.
    fn emit(&mut self, o: Output) {
        if self.durable_seq < self.persist_seq {
            self.held.push((self.persist_seq, o));
        } else {
            self.out.push(o);
        }
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        let m = Message {
            from: self.cfg.raft.id,
            to,
            term: self.term,
            incarnation: 0,
            body,
        };
        self.emit(Output::Send(m.into()));
    }

    fn persisted(&mut self, seq: u64) {
        self.durable_seq = self.durable_seq.max(seq);
        let mut synced = self.durable_index;
        self.unsynced.retain(|&(s, idx, _)| {
            if s <= seq {
                synced = idx;
                false
            } else {
                true
            }
        });
        let floor = self
            .unsynced
            .iter()
            .map(|u| u.2)
            .min()
            .unwrap_or(Index::MAX);
        self.durable_index = synced.min(floor).min(self.last().0);
        let held = std::mem::take(&mut self.held);
        for (s, o) in held {
            if s <= seq {
                self.out.push(o);
            } else {
                self.held.push((s, o));
            }
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    fn set_role(&mut self, role: Role, leader: Option<NodeId>) {
        if self.role != role || self.leader != leader {
            self.role = role;
            self.leader = leader;
            self.out.push(Output::RoleChanged {
                role,
                term: self.term,
                leader,
            });
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term {
            self.term = term;
            self.vote = None;
            self.persist(None, Vec::new());
        }
        if self.role == Role::Leader {
            for (_, (id, _)) in std::mem::take(&mut self.waiting) {
                self.emit(Output::Reply {
                    id,
                    response: Response::Indeterminate,
                });
            }
        }
        self.set_role(Role::Follower, leader);
    }

    fn tick(&mut self) {
        self.elapsed += 1;
        if self.role == Role::Leader {
            if self.elapsed >= self.cfg.raft.heartbeat_ticks {
                self.elapsed = 0;
                self.broadcast_append();
            }
        } else if self.elapsed >= self.timeout {
            self.campaign();
        }
    }

    fn campaign(&mut self) {
        self.reset_timeout();
        self.term += 1;
        self.vote = Some(self.cfg.raft.id);
        self.votes = vec![self.cfg.raft.id];
        self.persist(None, Vec::new());
        self.set_role(Role::Candidate, None);
        let (li, lt) = self.last();
        for p in self.cfg.raft.peers.clone() {
            if p != self.cfg.raft.id {
                self.send(
                    p,
                    MessageBody::Vote {
                        pre_vote: false,
                        last_log_index: li,
                        last_log_term: lt,
                        transfer: false,
                    },
                );
            }
        }
        if self.votes.len() >= self.quorum() {
            self.become_leader();
        }
    }

    fn become_leader(&mut self) {
        self.set_role(Role::Leader, Some(self.cfg.raft.id));
        let (li, _) = self.last();
        for p in self.cfg.raft.peers.clone() {
            self.next.insert(p, li + 1);
            self.matched.insert(p, 0);
        }
        self.append_local(Payload::Noop);
        self.broadcast_append();
    }

    fn append_local(&mut self, payload: Payload) -> Index {
        let e = Entry {
            term: self.term,
            index: self.last().0 + 1,
            payload,
        };
        self.log.push(e.clone());
        self.persist(None, vec![e]);
        self.last().0
    }

    fn broadcast_append(&mut self) {
        for p in self.cfg.raft.peers.clone() {
            if p != self.cfg.raft.id {
                self.send_append(p);
            }
        }
    }

    fn send_append(&mut self, to: NodeId) {
        let next = self.next.get(&to).copied().unwrap_or(1).max(1);
        let prev_index = next - 1;
        let prev_term = self.term_at(prev_index).unwrap_or(0);
        let max = self.cfg.raft.max_entries_per_msg.max(1);
        let entries: Vec<Entry> = self
            .log
            .iter()
            .skip(prev_index as usize)
            .take(max)
            .cloned()
            .collect();
        let commit = self.commit;
        // Appends are not held: they depend only on the leader's log, not on its
        // durability (the leader counts itself only for durable entries).
        self.out.push(Output::Send(PeerMessage::Raft(Message {
            from: self.cfg.raft.id,
            to,
            term: self.term,
            incarnation: 0,
            body: MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                read_ctx: 0,
            },
        })));
    }

    fn step(&mut self, m: Message) {
        if m.term > self.term {
            let leader = matches!(m.body, MessageBody::Append { .. }).then_some(m.from);
            self.become_follower(m.term, leader);
        }
        match m.body {
            MessageBody::Vote {
                last_log_index,
                last_log_term,
                ..
            } => {
                let (li, lt) = self.last();
                let up_to_date = (last_log_term, last_log_index) >= (lt, li);
                let granted = m.term == self.term
                    && self.vote.is_none_or(|v| v == m.from)
                    && (up_to_date || self.cfg.raft.mutants.vote_any_log);
                if granted {
                    self.vote = Some(m.from);
                    self.elapsed = 0;
                    self.persist(None, Vec::new());
                }
                self.send(
                    m.from,
                    MessageBody::VoteResponse {
                        pre_vote: false,
                        granted,
                    },
                );
            }
            MessageBody::VoteResponse { granted, .. }
                if self.role == Role::Candidate && m.term == self.term && granted =>
            {
                if !self.votes.contains(&m.from) {
                    self.votes.push(m.from);
                }
                if self.votes.len() >= self.quorum() {
                    self.become_leader();
                }
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                commit,
                ..
            } => self.on_append(m.from, m.term, prev_index, prev_term, entries, commit),
            MessageBody::AppendResponse {
                success,
                match_index,
                conflict_index,
                ..
            } => {
                if self.role != Role::Leader || m.term != self.term {
                    return;
                }
                if success {
                    let mi = self.matched.entry(m.from).or_insert(0);
                    *mi = (*mi).max(match_index);
                    let mi = *mi;
                    self.next.insert(m.from, mi + 1);
                    self.maybe_commit();
                    if mi < self.last().0 {
                        self.send_append(m.from);
                    }
                } else {
                    let n = self.next.entry(m.from).or_insert(1);
                    *n = conflict_index.clamp(1, n.saturating_sub(1).max(1));
                    self.send_append(m.from);
                }
            }
            _ => {}
        }
    }

    fn on_append(
        &mut self,
        from: NodeId,
        term: Term,
        prev_index: Index,
        prev_term: Term,
        entries: Vec<Entry>,
        commit: Index,
    ) {
        let reply = |s: &mut Twin, success: bool, match_index: Index, conflict_index: Index| {
            s.send(
                from,
                MessageBody::AppendResponse {
                    success,
                    match_index,
                    conflict_index,
                    conflict_term: None,
                    read_ctx: 0,
                },
            );
        };
        if term < self.term {
            return reply(self, false, 0, 0);
        }
        self.elapsed = 0;
        if self.role != Role::Follower || self.leader != Some(from) {
            self.become_follower(term, Some(from));
        }
        if self.term_at(prev_index) != Some(prev_term) {
            let conflict = prev_index.min(self.last().0 + 1);
            return reply(self, false, 0, conflict.max(1));
        }
        // Every entry of the message matches our log once this is done.
        let match_index = prev_index + entries.len() as u64;
        let mut truncate = None;
        let mut new = Vec::new();
        for e in entries {
            match self.term_at(e.index) {
                Some(t) if t == e.term && new.is_empty() => {}
                Some(_) if new.is_empty() => {
                    truncate = Some(e.index);
                    self.log.truncate(e.index as usize - 1);
                    new.push(e);
                }
                _ => new.push(e),
            }
        }
        self.log.extend(new.iter().cloned());
        if truncate.is_some() || !new.is_empty() {
            self.persist(truncate, new);
        }
        if commit > self.commit {
            self.commit = commit.min(match_index).max(self.commit);
            self.apply();
        }
        reply(self, true, match_index, 0);
    }

    fn maybe_commit(&mut self) {
        let own = self.durable_index;
        let mut n = self.last().0;
        while n > self.commit {
            let votes = self
                .cfg
                .raft
                .peers
                .iter()
                .filter(|&&p| {
                    if p == self.cfg.raft.id {
                        own >= n
                    } else {
                        self.matched.get(&p).copied().unwrap_or(0) >= n
                    }
                })
                .count();
            let current = self.term_at(n) == Some(self.term);
            if votes >= self.quorum() && (current || self.cfg.raft.mutants.commit_old_term) {
                self.commit = n;
                self.apply();
                return;
            }
            n -= 1;
        }
    }

    fn apply(&mut self) {
        while self.applied < self.commit.min(self.last().0) {
            self.applied += 1;
            let e = self.log[self.applied as usize - 1].clone();
            self.out.push(Output::Applied {
                index: e.index,
                term: e.term,
            });
            let Payload::Command(bytes) = &e.payload else {
                continue;
            };
            let Ok(c) = serde_json::from_slice::<Command>(bytes) else {
                continue;
            };
            let result = self.apply_command(&c);
            if let Some((id, req)) = self.waiting.remove(&e.index) {
                let response = if req.client == c.client && req.seq == c.seq {
                    Response::Done(result)
                } else {
                    Response::Indeterminate
                };
                self.emit(Output::Reply { id, response });
            }
        }
    }

    fn apply_command(&mut self, c: &Command) -> KvResult {
        if let Some((seq, r)) = self.dedup.get(&c.client)
            && *seq == c.seq
        {
            return r.clone();
        }
        let r = match &c.op {
            KvOp::Get { key, .. } => KvResult::Value(self.kv.get(key).cloned()),
            KvOp::Put { key, value } => {
                self.kv.insert(key.clone(), value.clone());
                KvResult::Value(Some(value.clone()))
            }
            KvOp::Cas { key, from, to } => {
                let cur = self.kv.get(key).cloned();
                if cur == *from {
                    self.kv.insert(key.clone(), to.clone());
                    KvResult::Value(Some(to.clone()))
                } else {
                    KvResult::CasMismatch { current: cur }
                }
            }
            KvOp::Delete { key } => {
                self.kv.remove(key);
                KvResult::Value(None)
            }
            KvOp::Append { key, value } => {
                let mut s = match self.kv.get(key) {
                    Some(Value::String(s)) => s.clone(),
                    _ => String::new(),
                };
                s.push_str(value);
                self.kv.insert(key.clone(), Value::String(s.clone()));
                KvResult::Value(Some(Value::String(s)))
            }
        };
        if c.client != 0 {
            self.dedup.insert(c.client, (c.seq, r.clone()));
        }
        r
    }

    fn propose(&mut self, id: u64, request: ClientRequest) {
        if self.role != Role::Leader {
            let leader = self.leader;
            self.out.push(Output::Reply {
                id,
                response: Response::NotLeader { leader },
            });
            return;
        }
        let cmd = Command {
            client: request.client,
            seq: request.seq,
            op: request.op.clone(),
        };
        let Ok(bytes) = serde_json::to_vec(&cmd) else {
            self.out.push(Output::Reply {
                id,
                response: Response::Rejected {
                    reason: "cannot encode".into(),
                },
            });
            return;
        };
        let index = self.append_local(Payload::Command(bytes));
        self.waiting.insert(index, (id, request));
        self.broadcast_append();
    }
}
