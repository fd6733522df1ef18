//! Log compaction and InstallSnapshot (Raft §7).
//!
//! - [`Raft::compact`]: the application has a snapshot of everything applied through
//!   an index; the log drops the entries it covers, the core keeps the snapshot (to
//!   send it to lagging followers) and hands it to storage with the next write.
//! - Leader: a follower whose next entry was compacted away gets the snapshot. Its
//!   progress enters the Snapshot state so the (possibly large) message is not resent
//!   every heartbeat; it is resent after an election timeout without an answer.
//! - Follower: a snapshot newer than its commit index replaces the log prefix (the
//!   suffix stays when it continues the snapshot), moves commit and applied to its
//!   index, restores the membership, and goes to the application through
//!   `Ready::snapshot` and to storage through the next write. The answer waits for
//!   that write to be durable, like every follower answer (the persistence rule).

use super::Raft;
use super::progress::ProgressState;
use super::types::{
    Index, Membership, Message, MessageBody, NodeId, Snapshot, SnapshotData, SnapshotMeta,
};

impl Raft {
    /// The application captured its state through `index` as `data`. Drops the log
    /// up to `index` and keeps the snapshot. Returns false (and changes nothing) when
    /// `index` is not applied yet or is not newer than the current snapshot.
    pub fn compact(&mut self, index: Index, data: impl Into<SnapshotData>) -> bool {
        let Some(term) = self.log.term(index) else {
            return false;
        };
        let membership = self.membership_at(index);
        if !self.log.compact(index) {
            return false;
        }
        self.config_log.retain(|(i, _)| *i > index);
        self.base_membership = membership.clone();
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: index,
                last_term: term,
                membership,
            },
            data: data.into(),
        };
        self.snapshot = Some(snapshot.clone());
        self.snapshot_to_persist = Some(snapshot);
        true
    }

    /// The snapshot the core holds (the newest taken or installed), if any.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.snapshot.as_ref()
    }

    /// The membership in force right after `index` was applied.
    fn membership_at(&self, index: Index) -> Membership {
        self.config_log
            .iter()
            .rev()
            .find(|(i, _)| *i <= index)
            .map_or_else(|| self.base_membership.clone(), |(_, m)| m.clone())
    }

    /// Leader: sends `to` the snapshot. Returns whether a message went.
    pub(super) fn send_snapshot(&mut self, to: NodeId) -> bool {
        let Some(snapshot) = self.snapshot.clone() else {
            return false;
        };
        let Some(pr) = self.progress.get_mut(&to) else {
            return false;
        };
        pr.become_snapshot(snapshot.meta.last_index);
        self.send(to, MessageBody::InstallSnapshot { snapshot });
        true
    }

    /// Leader, every tick: a snapshot unanswered for an election timeout is presumed
    /// lost; the peer goes back to probing, which sends it again.
    pub(super) fn tick_snapshots(&mut self) {
        let timeout = self.cfg.election_ticks_min.max(1);
        let mut resend = Vec::new();
        for (&id, pr) in self.progress.iter_mut() {
            if pr.state == ProgressState::Snapshot {
                pr.snapshot_ticks += 1;
                if pr.snapshot_ticks >= timeout {
                    pr.become_probe();
                    resend.push(id);
                }
            }
        }
        for id in resend {
            self.send_append(id, true);
        }
    }

    /// Follower side of InstallSnapshot.
    pub(super) fn handle_install_snapshot(&mut self, m: Message) {
        let MessageBody::InstallSnapshot { snapshot } = m.body else {
            return;
        };
        self.follow(m.from);
        let meta = &snapshot.meta;
        if meta.last_index > self.log.commit {
            let (index, term) = (meta.last_index, meta.last_term);
            let kept = self.log.install_snapshot(index, term);
            if kept {
                self.config_log.retain(|(i, _)| *i > index);
            } else {
                self.persisted_index = self.persisted_index.min(index);
                for mark in self.persist_marks.iter_mut() {
                    mark.1 = mark.1.min(index);
                }
                // The whole log went, and with it every configuration it carried: a
                // configuration from a discarded entry must not stay in force.
                self.config_log.clear();
            }
            self.base_membership = meta.membership.clone();
            self.refresh_membership();
            self.role = self.follower_role();
            self.hs_dirty = true;
            self.snapshot = Some(snapshot.clone());
            self.snapshot_to_persist = Some(snapshot.clone());
            self.installed = Some(snapshot);
        }
        // Either way our log now matches the leader's through our commit index.
        let last_index = self.log.commit;
        self.send(m.from, MessageBody::InstallSnapshotResponse { last_index });
    }

    /// Leader side of an InstallSnapshot answer.
    pub(super) fn handle_snapshot_response(&mut self, from: NodeId, last_index: Index) {
        let Some(pr) = self.heard_from(from) else {
            return;
        };
        let grew = pr.maybe_update(last_index);
        if pr.state == ProgressState::Snapshot && pr.match_index >= pr.pending_snapshot {
            pr.become_probe();
        }
        if grew {
            self.maybe_commit();
        }
        self.send_all_to(from, false);
        self.maybe_finish_transfer(from);
    }
}
