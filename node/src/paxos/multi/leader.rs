//! The proposer side of Multi-Paxos: elections (phase 1 over every unchosen slot),
//! replication (batched, pipelined phase 2), failure detection, and reads confirmed
//! by a majority that still honours the leader's ballot.

use super::{Body, MultiPaxos, PromiseEntry};
use crate::paxos::limits::{MAX_PENDING_READS, MAX_UNCHOSEN, MAX_VALUES_PER_MSG};
use crate::paxos::{Ballot, NodeId, ProposalId, ProposeError, ReadState, Role, Slot, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A phase 1 in progress.
#[derive(Debug)]
pub(super) struct Candidate {
    pub ballot: Ballot,
    pub from_slot: Slot,
    /// Each promise: the acceptor's chosen prefix and its entries.
    pub promises: BTreeMap<NodeId, (Slot, Vec<PromiseEntry>)>,
}

/// A slot the leader proposed and has not seen chosen yet.
#[derive(Debug)]
pub(super) struct Pending {
    pub value: Value,
    /// Acceptors that durably accepted it in the leader's ballot (the leader too).
    pub votes: BTreeSet<NodeId>,
    /// When it was last sent to the peers missing from `votes`.
    pub sent_tick: u64,
}

/// The leader's view of one acceptor (itself included).
#[derive(Debug)]
pub(super) struct PeerProgress {
    /// The next slot to send it.
    pub next: Slot,
    /// Accept messages sent and not answered.
    pub inflight: usize,
    /// Answered an Accept since the last heartbeat.
    pub acked: bool,
    /// Heard from (any answer) since the last quorum check.
    pub heard: bool,
    /// The newest read round it echoed.
    pub read_ack: u64,
}

/// Phase 1 done: the leader's state.
#[derive(Debug)]
pub(super) struct Leadership {
    pub ballot: Ballot,
    /// The next slot to give a new value.
    pub next_slot: Slot,
    pub pending: BTreeMap<Slot, Pending>,
    pub peers: BTreeMap<NodeId, PeerProgress>,
    pub heartbeat_elapsed: u32,
    pub quorum_elapsed: u32,
    pub need_heartbeat: bool,
}

impl Leadership {
    /// Drops the pending slots through `through` (a snapshot covers them). Returns
    /// whether there were any.
    pub(super) fn drop_pending_through(&mut self, through: Slot) -> bool {
        let before = self.pending.len();
        self.pending = self.pending.split_off(&(through + 1));
        self.pending.len() != before
    }
}

/// Linearizable reads. Rounds are numbered per node; a round's number is also the
/// `read_ctx` of the heartbeats that confirm it, so an echo of `c` confirms every
/// round `<= c`.
#[derive(Debug, Default)]
pub(super) struct Reads {
    next_round: u64,
    /// Awaiting a majority of echoes, oldest first: `(round, index)`.
    pending: VecDeque<(u64, Slot)>,
    pub ready: Vec<ReadState>,
    pub failed: Vec<u64>,
    need_bcast: bool,
}

impl Reads {
    pub(super) fn fail_all(&mut self) {
        self.failed.extend(self.pending.drain(..).map(|(r, _)| r));
        self.need_bcast = false;
    }
}

impl MultiPaxos {
    /// Starts phase 1 with a ballot above every round seen, promised to ourselves
    /// first: the Prepares leave once that promise is durable.
    pub(super) fn campaign(&mut self) {
        self.core.stats.prepares += 1;
        if self.candidate.is_some() {
            self.core.stats.timeouts += 1;
            self.core.stats.retries += 1;
        }
        let ballot = Ballot::after(self.promised.round.max(self.max_round_seen), self.core.id);
        let from_slot = self.core.slots.prefix() + 1;
        self.role = Role::Candidate;
        self.leader = None;
        self.candidate = Some(Candidate {
            ballot,
            from_slot,
            promises: BTreeMap::new(),
        });
        self.reset_election_timer();
        self.on_prepare(self.core.id, ballot, from_slot);
        for p in self.core.peers.others() {
            self.core
                .send_after_write(p, Body::Prepare { ballot, from_slot });
        }
    }

    /// Starts phase 1 now, as an election timeout would (tests and transcripts).
    pub fn campaign_now(&mut self) {
        if self.role != Role::Leader {
            self.campaign();
        }
    }

    pub(super) fn on_promise(
        &mut self,
        from: NodeId,
        ballot: Ballot,
        chosen_through: Slot,
        entries: Vec<PromiseEntry>,
    ) {
        let majority = self.core.peers.majority();
        let Some(c) = self.candidate.as_mut() else {
            return;
        };
        if c.ballot != ballot {
            return;
        }
        c.promises.insert(from, (chosen_through, entries));
        if c.promises.len() >= majority {
            self.become_leader();
        }
    }

    /// Phase 1 completed. Every slot past the highest chosen prefix reported, up to
    /// the highest slot any promise revealed, is proposed again in our ballot: with
    /// the value accepted under the highest ballot there, or a no-op for a hole.
    fn become_leader(&mut self) {
        let Some(c) = self.candidate.take() else {
            return;
        };
        self.core.stats.leaderships += 1;
        let mut through = self.core.slots.prefix();
        let mut chosen: BTreeMap<Slot, Value> = BTreeMap::new();
        let mut accepted: BTreeMap<Slot, (Ballot, Value)> = BTreeMap::new();
        for (t, entries) in c.promises.into_values() {
            through = through.max(t);
            // Slots before `from_slot` were chosen here when the campaign began.
            for e in entries.into_iter().filter(|e| e.slot() >= c.from_slot) {
                match e {
                    PromiseEntry::Chosen { slot, value } => {
                        chosen.insert(slot, value);
                    }
                    PromiseEntry::Accepted {
                        slot,
                        ballot,
                        value,
                    } => {
                        if accepted.get(&slot).is_none_or(|(b, _)| *b < ballot) {
                            accepted.insert(slot, (ballot, value));
                        }
                    }
                }
            }
        }
        let max_revealed = chosen
            .keys()
            .chain(accepted.keys())
            .max()
            .copied()
            .unwrap_or(0);
        for (&slot, value) in &chosen {
            self.learn(slot, value.clone());
        }
        // Every slot through `through` is chosen (some acceptor knows it); the
        // values this node lacks come by catch-up.
        let start = through.max(self.core.slots.prefix()) + 1;
        let next_slot = start.max(max_revealed + 1);
        let mut pending = BTreeMap::new();
        for slot in start..next_slot {
            // Chosen (maybe too far ahead for this node to keep yet): never
            // proposed again.
            if chosen.contains_key(&slot) || self.core.slots.is_chosen(slot) {
                continue;
            }
            let value = match accepted.remove(&slot) {
                Some((_, v)) if !self.core.cfg.mutants.ignore_accepted => {
                    self.core.stats.reproposed += 1;
                    v
                }
                Some(_) => Value::Noop,
                None => {
                    self.core.stats.holes_filled += 1;
                    Value::Noop
                }
            };
            let sent_tick = self.core.now;
            pending.insert(
                slot,
                Pending {
                    value,
                    votes: BTreeSet::new(),
                    sent_tick,
                },
            );
        }
        let peers = self
            .core
            .peers
            .all()
            .into_iter()
            .map(|p| {
                let pr = PeerProgress {
                    next: start,
                    inflight: 0,
                    acked: false,
                    heard: false,
                    read_ack: 0,
                };
                (p, pr)
            })
            .collect();
        self.role = Role::Leader;
        self.leader = Some(self.core.id);
        self.lead = Some(Leadership {
            ballot: c.ballot,
            next_slot,
            pending,
            peers,
            heartbeat_elapsed: 0,
            quorum_elapsed: 0,
            need_heartbeat: true,
        });
    }

    pub(super) fn on_reject(&mut self, ballot: Ballot, promised: Ballot) {
        self.max_round_seen = self.max_round_seen.max(promised.round);
        if promised <= ballot {
            // An answer to a duplicated Prepare of the ballot already promised.
            return;
        }
        let candidate = self.candidate.as_ref().is_some_and(|c| c.ballot == ballot);
        let leading = self.lead.as_ref().is_some_and(|l| l.ballot == ballot);
        if candidate {
            self.core.stats.duels += 1;
        }
        if candidate || leading {
            self.become_follower(None);
        }
    }

    /// Proposes a state-machine command in the next slot. It leaves with the next
    /// `ready`, batched with the other new values. Returns its proposal id.
    pub fn propose(&mut self, command: Vec<u8>) -> Result<ProposalId, ProposeError> {
        let prefix = self.core.slots.prefix();
        let Some(lead) = self.lead.as_mut() else {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        };
        if (lead.next_slot - 1).saturating_sub(prefix) >= MAX_UNCHOSEN {
            return Err(ProposeError::Busy);
        }
        let slot = lead.next_slot;
        lead.next_slot += 1;
        let value = Value::Command(command);
        lead.pending.insert(
            slot,
            Pending {
                value: value.clone(),
                votes: BTreeSet::new(),
                sent_tick: self.core.now,
            },
        );
        self.next_proposal += 1;
        self.own.insert(slot, (self.next_proposal, value));
        Ok(self.next_proposal)
    }

    /// Sends every acceptor (ourselves included) the slots it has not been sent,
    /// in batches, while its pipeline has room.
    pub(super) fn send_accepts(&mut self) {
        let Some(lead) = &self.lead else {
            return;
        };
        let ballot = lead.ballot;
        let ids: Vec<NodeId> = lead.peers.keys().copied().collect();
        for p in ids {
            while let Some((first, values)) = self.next_batch(p) {
                let last = first + values.len() as Slot - 1;
                if let Some(pr) = self.lead.as_mut().and_then(|l| l.peers.get_mut(&p)) {
                    pr.next = last + 1;
                    pr.inflight += 1;
                }
                self.core.send_now(
                    p,
                    Body::Accept {
                        ballot,
                        first,
                        values,
                    },
                );
            }
        }
    }

    /// The next batch for `p`, if it has room and something is left to send.
    fn next_batch(&self, p: NodeId) -> Option<(Slot, Vec<Value>)> {
        let lead = self.lead.as_ref()?;
        let pr = lead.peers.get(&p)?;
        if pr.inflight >= self.core.cfg.max_inflight_msgs.max(1) {
            return None;
        }
        let per_msg = self
            .core
            .cfg
            .max_values_per_msg
            .clamp(1, MAX_VALUES_PER_MSG) as Slot;
        // Compacted slots are chosen; a peer lacking them catches up from a snapshot.
        let first = pr.next.max(self.core.slots.snapshot() + 1);
        if first >= lead.next_slot {
            return None;
        }
        let last = (first + per_msg - 1).min(lead.next_slot - 1);
        let values: Vec<Value> = (first..=last)
            .map_while(|s| {
                lead.pending
                    .get(&s)
                    .map(|pd| &pd.value)
                    .or_else(|| self.core.slots.chosen(s))
                    .cloned()
            })
            .collect();
        (!values.is_empty()).then_some((first, values))
    }

    /// Counts durable acceptances; a slot accepted by a majority is chosen.
    pub(super) fn on_accepted(&mut self, from: NodeId, ballot: Ballot, first: Slot, last: Slot) {
        let majority = self.core.peers.majority();
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        if lead.ballot != ballot {
            return;
        }
        if let Some(pr) = lead.peers.get_mut(&from) {
            pr.inflight = pr.inflight.saturating_sub(1);
            pr.acked = true;
            pr.heard = true;
        }
        let mut done = Vec::new();
        if first <= last {
            for (&slot, pd) in lead.pending.range_mut(first..=last) {
                pd.votes.insert(from);
                if pd.votes.len() >= majority {
                    done.push(slot);
                }
            }
        }
        for slot in done {
            if let Some(pd) = self.lead.as_mut().and_then(|l| l.pending.remove(&slot)) {
                self.learn(slot, pd.value);
            }
        }
    }

    /// Heartbeats, the resending of lost Accepts, and the quorum check.
    pub(super) fn tick_leader(&mut self) {
        let majority = self.core.peers.majority();
        let (min, hb) = (
            self.core.cfg.election_ticks_min,
            self.core.cfg.heartbeat_ticks.max(1),
        );
        let id = self.core.id;
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        lead.heartbeat_elapsed += 1;
        lead.quorum_elapsed += 1;
        if lead.quorum_elapsed >= min {
            lead.quorum_elapsed = 0;
            let heard = 1 + lead
                .peers
                .iter()
                .filter(|&(&p, pr)| p != id && pr.heard)
                .count();
            for pr in lead.peers.values_mut() {
                pr.heard = false;
            }
            if heard < majority {
                self.become_follower(None);
                return;
            }
        }
        if lead.heartbeat_elapsed >= hb {
            lead.heartbeat_elapsed = 0;
            lead.need_heartbeat = true;
            self.resend_stale();
        }
    }

    /// Every heartbeat period: a peer that answered no Accept gets its pipeline
    /// reopened, and slots pending for two periods are sent again from the first one
    /// a peer has not accepted (its Accept or the answer was lost).
    fn resend_stale(&mut self) {
        let stale_after = 2 * u64::from(self.core.cfg.heartbeat_ticks.max(1));
        let (now, id) = (self.core.now, self.core.id);
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        let Leadership { peers, pending, .. } = lead;
        for (&p, pr) in peers.iter_mut() {
            if p == id {
                continue;
            }
            if !pr.acked {
                pr.inflight = 0;
            }
            pr.acked = false;
            let missing = pending
                .iter()
                .find(|(_, pd)| pd.sent_tick + stale_after <= now && !pd.votes.contains(&p))
                .map(|(&s, _)| s);
            if let Some(s) = missing
                && s < pr.next
            {
                pr.next = s;
                pr.inflight = 0;
            }
        }
        for pd in pending.values_mut() {
            if pd.sent_tick + stale_after <= now {
                pd.sent_tick = now;
            }
        }
    }

    /// Sends heartbeats when one is due or a read round waits for confirmation.
    pub(super) fn maybe_heartbeat(&mut self) {
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        if !lead.need_heartbeat && !self.reads.need_bcast {
            return;
        }
        lead.need_heartbeat = false;
        self.reads.need_bcast = false;
        let ballot = lead.ballot;
        let read_ctx = self.reads.pending.back().map_or(0, |&(r, _)| r);
        for p in self.core.peers.others() {
            self.core.send_now(p, Body::Heartbeat { ballot, read_ctx });
        }
    }

    pub(super) fn on_heartbeat_ack(&mut self, from: NodeId, ballot: Ballot, read_ctx: u64) {
        let Some(lead) = self.lead.as_mut() else {
            return;
        };
        if lead.ballot != ballot {
            return;
        }
        if let Some(pr) = lead.peers.get_mut(&from) {
            pr.heard = true;
            pr.read_ack = pr.read_ack.max(read_ctx);
        }
        self.confirm_reads();
    }

    /// Starts a linearizable read. The index to wait for is the last slot this
    /// leader has proposed: every value chosen before now is at or below it (phase 1
    /// revealed all earlier ones, and this leader proposed them again).
    pub fn read_index(&mut self) -> Result<u64, ProposeError> {
        let Some(lead) = &self.lead else {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        };
        if self.reads.pending.len() >= MAX_PENDING_READS {
            return Err(ProposeError::Busy);
        }
        let index = lead.next_slot - 1;
        self.reads.next_round += 1;
        let round = self.reads.next_round;
        self.reads.pending.push_back((round, index));
        self.reads.need_bcast = true;
        self.confirm_reads();
        Ok(round)
    }

    /// Moves every round that a majority (ourselves included) has echoed to `ready`.
    fn confirm_reads(&mut self) {
        let majority = self.core.peers.majority();
        let id = self.core.id;
        let Some(lead) = &self.lead else {
            return;
        };
        while let Some(&(round, index)) = self.reads.pending.front() {
            let acks = 1 + lead
                .peers
                .iter()
                .filter(|&(&p, pr)| p != id && pr.read_ack >= round)
                .count();
            if acks < majority {
                break;
            }
            self.reads.pending.pop_front();
            self.reads.ready.push(ReadState { round, index });
        }
        if self.reads.pending.is_empty() {
            self.reads.need_bcast = false;
        }
    }
}
