//! AppendEntries (§5.3), fast backtracking, pipelining and the commit rule (§5.4.2).

use super::progress::{Progress, ProgressState};
use super::quorum::joint_committed_index;
use super::types::{Entry, Index, Message, MessageBody, NodeId, Payload};
use super::{MAX_APPEND_BYTES, MAX_UNCOMMITTED_ENTRIES, ProposeError, Raft, Role};

impl Raft {
    /// Appends a new entry to the leader's log. It is sent with the next
    /// [`Raft::ready`], so many proposals in one batch travel in one Append.
    pub fn propose(&mut self, payload: Payload) -> Result<Index, ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transferee.is_some() {
            return Err(ProposeError::Transferring);
        }
        if self.log.last_index() - self.log.commit >= MAX_UNCOMMITTED_ENTRIES {
            return Err(ProposeError::Busy);
        }
        let entry = Entry {
            term: self.term,
            index: self.log.last_index() + 1,
            payload,
        };
        let index = entry.index;
        self.on_appended(std::slice::from_ref(&entry));
        self.log.append(entry);
        self.need_bcast = true;
        // A single-voter leader commits on its own fsync; nothing else to wait for.
        Ok(index)
    }

    /// Sends `to` the next batch of entries it lacks. An empty Append goes only when
    /// `allow_empty` (to carry the commit index). Returns whether a message went.
    pub(super) fn send_append(&mut self, to: NodeId, allow_empty: bool) -> bool {
        let max_inflight = self.cfg.max_inflight_msgs.max(1);
        let max_entries = self.cfg.max_entries_per_msg.max(1) as Index;
        let last = self.log.last_index();
        let Some(pr) = self.progress.get_mut(&to) else {
            return false;
        };
        if pr.is_paused(max_inflight) {
            return false;
        }
        let prev_index = pr.next_index - 1;
        let Some(prev_term) = self.log.term(prev_index) else {
            // The entries were compacted away: only the snapshot can help.
            return self.send_snapshot(to);
        };
        let hi = last.min(prev_index + max_entries);
        let entries = self.log.slice(prev_index + 1, hi);
        let mut bytes = 0;
        let fit = entries
            .iter()
            .take_while(|e| {
                bytes += e.payload.size();
                bytes <= MAX_APPEND_BYTES
            })
            .count()
            .max(1)
            .min(entries.len());
        let entries = entries[..fit].to_vec();
        let hi = prev_index + fit as Index;
        if entries.is_empty() && !allow_empty {
            return false;
        }
        pr.sent(hi, !entries.is_empty());
        let body = MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit: self.log.commit,
            read_ctx: 0,
        };
        self.send(to, body);
        true
    }

    /// Sends every peer what it lacks, filling the pipeline of peers in Replicate.
    pub(super) fn bcast_append(&mut self, include_empty: bool) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for p in peers {
            self.send_all_to(p, include_empty);
        }
    }

    pub(super) fn send_all_to(&mut self, to: NodeId, include_empty: bool) {
        let mut first = true;
        while self.send_append(to, include_empty && first) {
            first = false;
            let probing = self
                .progress
                .get(&to)
                .is_none_or(|pr| pr.state == ProgressState::Probe);
            if probing
                || self
                    .progress
                    .get(&to)
                    .is_some_and(|pr| pr.next_index > self.log.last_index())
            {
                break;
            }
        }
    }

    /// Heartbeats: an empty Append just before the next entry to send. It keeps
    /// followers' leases, carries the commit index and the latest read round, and
    /// doubles as a probe: a lost Append shows up as a rejection with a hint.
    pub(super) fn bcast_heartbeat(&mut self) {
        let read_ctx = self.reads.latest_ctx();
        let targets: Vec<(NodeId, Index)> = self
            .progress
            .iter()
            .map(|(&id, pr)| (id, pr.next_index - 1))
            .collect();
        for (to, prev_index) in targets {
            let Some(prev_term) = self.log.term(prev_index) else {
                // The peer's next entry was compacted away (perhaps while its
                // pipeline was full, which no answer would ever unblock): start
                // over from what is known to match, which sends the snapshot.
                if let Some(pr) = self.progress.get_mut(&to) {
                    pr.become_probe();
                }
                self.send_append(to, true);
                continue;
            };
            let body = MessageBody::Append {
                prev_index,
                prev_term,
                entries: Vec::new(),
                commit: self.log.commit,
                read_ctx,
            };
            self.send(to, body);
        }
    }

    /// Follower side of AppendEntries.
    pub(super) fn handle_append(&mut self, m: Message) {
        let MessageBody::Append {
            mut prev_index,
            mut prev_term,
            mut entries,
            commit,
            read_ctx,
        } = m.body
        else {
            return;
        };
        self.follow(m.from);
        let heartbeat = entries.is_empty();

        // Entries at or below our commit index are known equal: skip them.
        if prev_index < self.log.commit {
            let skip = (self.log.commit - prev_index).min(entries.len() as Index) as usize;
            entries.drain(..skip);
            prev_index = self.log.commit;
            // The commit index is never below the snapshot, so its term is known.
            prev_term = self.log.term(prev_index).unwrap_or(0);
        }

        let body = if self.log.matches(prev_index, prev_term) {
            let last_new = prev_index + entries.len() as Index;
            let old_last = self.log.last_index();
            if let Some(t) = self.log.append_after_match(&entries) {
                self.on_truncate(t);
                let from = (t - prev_index - 1) as usize;
                self.on_appended(&entries[from..]);
            } else if last_new > old_last {
                let from = (old_last - prev_index) as usize;
                self.on_appended(&entries[from..]);
            }
            self.log.commit_to(commit.min(last_new));
            MessageBody::AppendResponse {
                success: true,
                match_index: last_new,
                conflict_index: 0,
                conflict_term: None,
                read_ctx,
            }
        } else {
            // Fast backtracking hints (thesis §5.3 optimisation): the first index of
            // the conflicting term, or our log end when we are too short.
            let (conflict_index, conflict_term) = if prev_index > self.log.last_index() {
                (self.log.last_index() + 1, None)
            } else {
                let t = self.log.term(prev_index).unwrap_or(0);
                (self.log.first_index_of_term(prev_index, t), Some(t))
            };
            MessageBody::AppendResponse {
                success: false,
                match_index: prev_index,
                conflict_index,
                conflict_term,
                read_ctx,
            }
        };
        if heartbeat && self.write_pending() {
            // The answer below waits for the disk; the leader hears from us now.
            self.send_now(m.from, MessageBody::HeartbeatAck { read_ctx });
        }
        self.send(m.from, body);
    }

    /// A message from the leader of our term: follow it, and its lease holds.
    pub(super) fn follow(&mut self, leader: NodeId) {
        if self.role != Role::Follower && self.role != Role::Learner {
            self.become_follower(self.term, Some(leader));
        }
        self.leader = Some(leader);
        self.election_elapsed = 0;
    }

    /// Leader side of any answer from `from`: the peer counts as active for
    /// CheckQuorum. `None` when we are not the leader or do not track `from`.
    pub(super) fn heard_from(&mut self, from: NodeId) -> Option<&mut Progress> {
        if self.role != Role::Leader {
            return None;
        }
        let pr = self.progress.get_mut(&from)?;
        pr.recent_active = true;
        Some(pr)
    }

    /// Leader side of a HeartbeatAck: the follower is alive and follows this term.
    pub(super) fn handle_heartbeat_ack(&mut self, from: NodeId, read_ctx: u64) {
        let Some(pr) = self.heard_from(from) else {
            return;
        };
        if read_ctx > pr.read_ack {
            pr.read_ack = read_ctx;
            self.confirm_reads();
        }
    }

    /// Leader side of an AppendEntries answer. On failure `match_index` is the
    /// rejected `prev_index`.
    pub(super) fn handle_append_response(&mut self, m: &Message) {
        let MessageBody::AppendResponse {
            success,
            match_index,
            conflict_index,
            conflict_term,
            read_ctx,
        } = m.body
        else {
            return;
        };
        let max_inflight = self.cfg.max_inflight_msgs.max(1);
        let hint_next = match conflict_term {
            Some(t) => {
                let i = self.log.last_index_with_term_at_most(t);
                if i > 0 && self.log.term(i) == Some(t) {
                    i + 1
                } else {
                    conflict_index
                }
            }
            None => conflict_index,
        };
        let Some(pr) = self.heard_from(m.from) else {
            return;
        };
        if read_ctx > pr.read_ack {
            pr.read_ack = read_ctx;
        }
        if success {
            let grew = pr.maybe_update(match_index);
            if pr.state == ProgressState::Snapshot && pr.match_index >= pr.pending_snapshot {
                // The snapshot arrived (its answer may have been lost): probe on.
                pr.become_probe();
            }
            if grew || (pr.match_index == match_index && pr.state == ProgressState::Probe) {
                if pr.state == ProgressState::Probe {
                    pr.become_replicate();
                }
                if grew {
                    self.maybe_commit();
                }
                self.send_all_to(m.from, false);
                self.maybe_finish_transfer(m.from);
            } else if pr.state == ProgressState::Replicate
                && pr.inflight.len() >= max_inflight
                && match_index == pr.match_index
            {
                // An answer to a heartbeat while the pipeline is full: an Append
                // may have been lost; free a slot so replication can move on.
                pr.inflight.pop_front();
                self.send_all_to(m.from, false);
            }
        } else if match_index > 0 && pr.maybe_decrease(match_index, hint_next) {
            self.send_all_to(m.from, true);
        }
        if read_ctx > 0 {
            self.confirm_reads();
        }
    }

    /// Commits the highest index a quorum has durably replicated, but only if it
    /// belongs to the current term (§5.4.2, figure 8): older entries commit
    /// indirectly. The `commit_old_term` mutant drops that check.
    pub(super) fn maybe_commit(&mut self) -> bool {
        let idx = joint_committed_index(&self.membership, &|p, inc| {
            if self.is_me(p, inc) {
                self.persisted_index
            } else {
                self.tracked(p, inc).map_or(0, |pr| pr.match_index)
            }
        });
        if idx <= self.log.commit || idx == Index::MAX {
            return false;
        }
        if !self.cfg.mutants.commit_old_term && self.log.term(idx) != Some(self.term) {
            return false;
        }
        let first_in_term = self.log.term(self.log.commit) != Some(self.term);
        if self.log.commit_to(idx) {
            self.commit_moved = true;
            if first_in_term && self.log.term(self.log.commit) == Some(self.term) {
                self.start_waiting_reads();
            }
            return true;
        }
        false
    }
}
