//! The Raft consensus core. PURE: no tokio, clock, rand, files or network.
//!
//! [`Raft`] is a state machine in the etcd-io/raft style: feed it [`Raft::tick`],
//! [`Raft::step`] (a peer message), [`Raft::propose`], [`Raft::read_index`] and
//! [`Raft::persisted`]; then call [`Raft::ready`] and carry out what it returns, in
//! order: persist the write, send the messages, apply the committed entries, serve
//! the confirmed reads.
//!
//! The persistence rule is enforced here: every message except a leader's Append
//! (or InstallSnapshot, which carries only committed state) is
//! held back until storage has reported durable the newest write issued when the
//! message was created (votes, append acknowledgements, campaign requests). A leader
//! may send Appends before its own fsync (Raft thesis §10.2.1) but counts itself in
//! the quorum only up to its durable index.
//!
//! A candidate counts its own vote only once its new term and vote are durable, so
//! even a node whose own vote is a majority (a single voter) never sends an Append
//! of a term it might forget in a crash.
//!
//! Responsibilities are split by file: [`log`] (entries, offset, unstable suffix),
//! [`progress`] (one follower seen from the leader), [`quorum`] (simple and joint
//! majorities), `election` (terms, votes, PreVote, CheckQuorum, leader transfer),
//! `replication` (AppendEntries, commit), `read_index` (linearizable reads),
//! `membership` (joint consensus), `identity` (joining a cluster, incarnations,
//! re-admitting a node that lost its state), [`validate`] (peer messages no correct
//! node sends are refused before they touch anything) and `snapshot` (log
//! compaction, InstallSnapshot).

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

mod election;
mod identity;
pub mod log;
mod membership;
pub mod progress;
pub mod quorum;
mod read_index;
mod recovered;
mod replication;
mod snapshot;
pub mod types;
pub mod validate;

use self::log::RaftLog;
use self::progress::Progress;
use self::read_index::ReadIndex;
pub use self::recovered::Recovered;
use self::types::{
    Entry, HardState, Identity, Incarnation, Index, Membership, Message, MessageBody, NodeId,
    Payload, Snapshot, Term,
};
use self::validate::Rejection;
use crate::consensus::rng::SplitMix64;
pub use crate::consensus::{Mutants, ProposeError, ReadState};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};

/// Static parameters of the core. The replica's configuration holds one of these
/// and adds only what is not the core's.
#[derive(Clone, Debug)]
pub struct RaftConfig {
    pub id: NodeId,
    pub peers: Vec<NodeId>,
    pub election_ticks_min: u32,
    pub election_ticks_max: u32,
    pub heartbeat_ticks: u32,
    pub max_entries_per_msg: usize,
    pub max_inflight_msgs: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub seed: u64,
    /// The incarnation to take when storage holds no identity (a new node, or one
    /// that lost its state). Drawn at random by the driver; never 0 with `discover`.
    pub incarnation: Incarnation,
    /// How a node without state joins: `true`, by asking `peers` (the safe rule,
    /// see `identity`); `false`, by taking `peers` as the bootstrap configuration at
    /// once with incarnation 0, for tests that build every node of a cluster
    /// together and never lose a disk.
    pub discover: bool,
    /// Known bugs switched on deliberately (the core reads `commit_old_term`,
    /// `vote_any_log` and `joint_skip`).
    pub mutants: Mutants,
}

/// The role of a Raft node. The replica sees it through the engine interface as a
/// neutral [`crate::consensus::Role`] (a pre-candidate is a candidate there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Follower,
    Candidate,
    PreCandidate,
    Leader,
    Learner,
}

/// One storage write of the Raft engine: the only type for it, from the core through
/// the replica's `Output::Persist` to the server's disk and the simulator's.
/// Make durable, in this order: the identity (if any), the snapshot (if any), then
/// truncate the log at `truncate_from` (drop every entry with index >= it), then
/// append `entries`, then write `hard_state` (if any).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistWrite {
    pub seq: u64,
    /// A snapshot to save before the rest (taken locally or installed from the leader).
    pub snapshot: Option<Snapshot>,
    pub truncate_from: Option<Index>,
    pub entries: Vec<Entry>,
    pub hard_state: Option<HardState>,
    /// The node's identity changed (it joined a cluster): write it before anything.
    pub identity: Option<Identity>,
}

/// A peer message refused by [`validate`]: no correct node sends it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refused {
    pub from: NodeId,
    pub term: Term,
    pub reason: Rejection,
}

/// Everything the driver must do after a step, in field order.
#[derive(Debug, Default)]
pub struct Ready {
    pub persist: Option<PersistWrite>,
    pub messages: Vec<Message>,
    /// A snapshot installed from the leader: the application must restore its state
    /// from it before applying `committed` (which continue after it).
    pub snapshot: Option<Snapshot>,
    pub committed: Vec<Entry>,
    pub reads: Vec<ReadState>,
    /// Peer messages refused since the last `Ready`, for metrics and logs.
    pub refused: Vec<Refused>,
}

/// Limits that keep every queue bounded.
const MAX_UNCOMMITTED_ENTRIES: u64 = 20_000;
/// Most command bytes in one Append, unless its one entry alone is larger:
/// `max_entries_per_msg` large entries must not add up to a message a follower
/// refuses to read (the node's peer body limit is 256 MiB).
pub const MAX_APPEND_BYTES: usize = 8 << 20;
const MAX_APPLY_PER_READY: usize = 4096;
/// Messages held back for an fsync. Beyond this the oldest are dropped: sends are
/// best effort anyway, and a driver that never syncs must not exhaust memory.
const MAX_WAITING_MSGS: usize = 65_536;
/// Refused messages kept for the next `Ready`; more are dropped uncounted.
const MAX_REFUSED: usize = 1024;

/// The consensus state machine of one node.
pub struct Raft {
    cfg: RaftConfig,
    id: NodeId,
    /// Who this node is (see `identity`); `joined` once it belongs to a cluster.
    identity: Identity,
    joined: bool,
    /// The identity changed since the last write was issued.
    identity_dirty: bool,
    /// While joining: the incarnation each peer answered with, still asking too.
    discover_replies: BTreeMap<NodeId, Incarnation>,
    /// The incarnation each node last spoke as (the leader admits them from here).
    heard: BTreeMap<NodeId, Incarnation>,
    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,
    /// Membership before any configuration entry in the log (snapshot or initial).
    base_membership: Membership,
    /// Configuration entries in the log, by index; the last one is in force (§6:
    /// a server uses the newest configuration in its log, committed or not).
    config_log: Vec<(Index, Membership)>,
    membership: Membership,
    rng: SplitMix64,
    election_elapsed: u32,
    randomized_timeout: u32,
    heartbeat_elapsed: u32,
    /// Votes received in the current (pre-)campaign, with the voter's incarnation.
    votes: BTreeMap<NodeId, (Incarnation, bool)>,
    /// Candidate: its own vote, waiting for the write that makes the new term and
    /// vote durable (`Some(0)` until that write is issued, then its seq).
    own_vote_seq: Option<u64>,
    progress: BTreeMap<NodeId, Progress>,
    transferee: Option<NodeId>,
    /// The hard state changed since the last write was issued.
    hs_dirty: bool,
    /// Last Persist seq issued, and the last one reported durable.
    persist_seq: u64,
    persisted_seq: u64,
    /// `(seq, last log index written by it)`, oldest first.
    persist_marks: VecDeque<(u64, Index)>,
    /// Highest index durable in local storage.
    persisted_index: Index,
    /// Messages that may leave now.
    msgs: Vec<Message>,
    /// Messages created in this step that need the step's write durable first.
    deferred: Vec<Message>,
    /// Messages waiting for a Persist seq to become durable.
    waiting: VecDeque<(u64, Message)>,
    /// Leader: something new to replicate (proposals batch into one Append).
    need_bcast: bool,
    /// Leader: the commit index moved, followers should hear of it.
    commit_moved: bool,
    reads: ReadIndex,
    /// The newest snapshot (taken or installed), sent to followers that lag behind it.
    snapshot: Option<Snapshot>,
    /// A snapshot storage has not been handed yet.
    snapshot_to_persist: Option<Snapshot>,
    /// A snapshot installed from the leader, not yet handed to the application.
    installed: Option<Snapshot>,
    refused: Vec<Refused>,
}

impl Raft {
    /// Builds the core from what storage recovered. Without an identity the node
    /// has no state it may trust: it takes `cfg.incarnation` and asks its peers
    /// before it takes part in anything (unless `cfg.discover` is off).
    pub fn new(
        cfg: RaftConfig,
        hard_state: HardState,
        identity: Option<&Identity>,
        snapshot: Option<&Snapshot>,
        entries: Vec<Entry>,
    ) -> Raft {
        let static_bootstrap = Membership {
            voters: cfg.peers.iter().copied().collect(),
            ..Membership::default()
        };
        let (identity, joined, identity_dirty) = match identity {
            Some(i) => (i.clone(), i.cluster != 0, false),
            None if !cfg.discover => (
                Identity {
                    cluster: 0,
                    incarnation: 0,
                    bootstrap: static_bootstrap,
                },
                true,
                false,
            ),
            None => (
                Identity {
                    cluster: 0,
                    incarnation: cfg.incarnation,
                    bootstrap: Membership::default(),
                },
                false,
                true,
            ),
        };
        let (snap_index, snap_term, base_membership) = match snapshot {
            Some(s) => (
                s.meta.last_index,
                s.meta.last_term,
                s.meta.membership.clone(),
            ),
            None => (0, 0, identity.bootstrap.clone()),
        };
        let mut log = RaftLog::recovered(snap_index, snap_term, entries);
        log.commit_to(hard_state.commit);
        let config_log: Vec<(Index, Membership)> = log
            .slice(log.first_index(), log.last_index())
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Config(m) => Some((e.index, m.clone())),
                _ => None,
            })
            .collect();
        let persisted_index = log.last_index();
        let mut raft = Raft {
            id: cfg.id,
            identity,
            joined,
            identity_dirty,
            discover_replies: BTreeMap::new(),
            heard: BTreeMap::new(),
            rng: SplitMix64::new(cfg.seed, cfg.id),
            term: hard_state.term,
            vote: hard_state.vote,
            role: Role::Follower,
            leader: None,
            log,
            base_membership,
            config_log,
            membership: Membership::default(),
            election_elapsed: 0,
            randomized_timeout: 0,
            heartbeat_elapsed: 0,
            votes: BTreeMap::new(),
            own_vote_seq: None,
            progress: BTreeMap::new(),
            transferee: None,
            hs_dirty: false,
            persist_seq: 0,
            persisted_seq: 0,
            persist_marks: VecDeque::new(),
            persisted_index,
            msgs: Vec::new(),
            deferred: Vec::new(),
            waiting: VecDeque::new(),
            need_bcast: false,
            commit_moved: false,
            reads: ReadIndex::default(),
            snapshot: snapshot.cloned(),
            snapshot_to_persist: None,
            installed: None,
            refused: Vec::new(),
            cfg,
        };
        raft.refresh_membership();
        raft.role = raft.follower_role();
        raft.reset_election_timer();
        raft
    }

    /// Builds the core from what storage recovered (see [`Raft::new`]).
    pub fn recover(cfg: RaftConfig, r: Recovered) -> Raft {
        Raft::new(
            cfg,
            r.hard_state,
            r.identity.as_ref(),
            r.snapshot.as_ref(),
            r.entries,
        )
    }

    pub fn id(&self) -> NodeId {
        self.id
    }
    pub fn term(&self) -> Term {
        self.term
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    pub fn vote(&self) -> Option<NodeId> {
        self.vote
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn membership(&self) -> &Membership {
        &self.membership
    }
    pub fn persisted_index(&self) -> Index {
        self.persisted_index
    }
    /// Who this node is: its cluster (0 while joining) and incarnation.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
    /// The leader's view of a peer, for tests and status pages.
    pub fn progress(&self, id: NodeId) -> Option<&Progress> {
        self.progress.get(&id)
    }

    /// One unit of logical time.
    pub fn tick(&mut self) {
        if !self.joined {
            self.tick_discover();
        } else if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.tick_election();
        }
    }

    /// Feeds one message from a peer. A message no correct peer sends is refused
    /// before it changes anything (see [`validate`]).
    pub fn step(&mut self, m: Message) {
        if m.to != self.id || m.from == self.id {
            return;
        }
        if let Err(reason) = self.check_message(&m) {
            if self.refused.len() < MAX_REFUSED {
                self.refused.push(Refused {
                    from: m.from,
                    term: m.term,
                    reason,
                });
            }
            return;
        }
        self.heard_incarnation(m.from, m.incarnation);
        match m.body {
            MessageBody::Discover => return self.handle_discover(&m),
            MessageBody::DiscoverReply { .. } => return self.handle_discover_reply(m),
            _ if !self.joined => return,
            _ => {}
        }
        if !self.step_term(&m) {
            return;
        }
        match m.body {
            MessageBody::Vote { .. } => self.handle_vote(&m),
            MessageBody::VoteResponse { pre_vote, granted } => {
                self.handle_vote_response(m.from, m.incarnation, pre_vote, granted)
            }
            MessageBody::Append { .. } => self.handle_append(m),
            MessageBody::AppendResponse { .. } => self.handle_append_response(&m),
            MessageBody::HeartbeatAck { read_ctx } => self.handle_heartbeat_ack(m.from, read_ctx),
            MessageBody::TimeoutNow => self.handle_timeout_now(),
            MessageBody::InstallSnapshot { .. } => self.handle_install_snapshot(m),
            MessageBody::InstallSnapshotResponse { last_index } => {
                self.handle_snapshot_response(m.from, last_index)
            }
            MessageBody::Discover | MessageBody::DiscoverReply { .. } => {}
        }
    }

    /// Storage made every write with `seq <= seq` durable.
    pub fn persisted(&mut self, seq: u64) {
        let seq = seq.min(self.persist_seq);
        if seq <= self.persisted_seq {
            return;
        }
        self.persisted_seq = seq;
        while let Some(&(s, index)) = self.persist_marks.front() {
            if s > seq {
                break;
            }
            self.persisted_index = index;
            self.persist_marks.pop_front();
        }
        while self.waiting.front().is_some_and(|(s, _)| *s <= seq) {
            if let Some((_, m)) = self.waiting.pop_front() {
                self.msgs.push(m);
            }
        }
        if self.own_vote_seq.is_some_and(|s| s != 0 && s <= seq) {
            self.own_vote_seq = None;
            self.count_own_vote();
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Collects what the driver must do now. Call after every batch of inputs.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader {
            if self.commit_moved {
                self.maybe_finish_joint();
            }
            if self.need_bcast || self.commit_moved {
                self.bcast_append(self.commit_moved);
            }
            if self.reads.need_bcast {
                self.bcast_heartbeat();
            }
            if self.commit_moved {
                self.maybe_leave();
            }
        }
        self.need_bcast = false;
        self.commit_moved = false;
        self.reads.need_bcast = false;

        let persist = if self.log.has_unstable()
            || self.hs_dirty
            || self.identity_dirty
            || self.snapshot_to_persist.is_some()
        {
            self.persist_seq += 1;
            let snapshot = self.snapshot_to_persist.take();
            let (truncate_from, entries) = self.log.take_unstable();
            let hard_state = self.hs_dirty.then(|| self.hard_state());
            self.hs_dirty = false;
            let identity = self.identity_dirty.then(|| self.identity.clone());
            self.identity_dirty = false;
            if hard_state.is_some() && self.own_vote_seq == Some(0) {
                // This write makes the campaign's term and vote durable.
                self.own_vote_seq = Some(self.persist_seq);
            }
            self.persist_marks
                .push_back((self.persist_seq, self.log.last_index()));
            Some(PersistWrite {
                seq: self.persist_seq,
                snapshot,
                truncate_from,
                entries,
                hard_state,
                identity,
            })
        } else {
            None
        };
        let pending_write = self.persist_seq > self.persisted_seq;
        for m in self.deferred.drain(..) {
            if pending_write {
                self.waiting.push_back((self.persist_seq, m));
            } else {
                self.msgs.push(m);
            }
        }
        while self.waiting.len() > MAX_WAITING_MSGS {
            self.waiting.pop_front();
        }
        let committed = self
            .log
            .take_committed(self.persisted_index, MAX_APPLY_PER_READY)
            .to_vec();
        Ready {
            persist,
            messages: std::mem::take(&mut self.msgs),
            snapshot: self.installed.take(),
            committed,
            reads: std::mem::take(&mut self.reads.ready),
            refused: std::mem::take(&mut self.refused),
        }
    }

    pub fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
            commit: self.log.commit,
        }
    }

    /// Queues a message. Only a leader's Appends may leave before the current write
    /// is durable; everything else waits for it (the persistence rule).
    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_with_term(to, self.term, body);
    }

    fn send_with_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        // A snapshot holds only committed state, so like an Append it does not
        // depend on the leader's own pending write.
        let immediate = self.role == Role::Leader
            && matches!(
                body,
                MessageBody::Append { .. } | MessageBody::InstallSnapshot { .. }
            );
        let m = Message {
            from: self.id,
            to,
            term,
            incarnation: self.identity.incarnation,
            body,
        };
        if immediate {
            self.msgs.push(m);
        } else {
            self.deferred.push(m);
        }
    }

    /// Queues a message that depends on nothing waiting for the disk, so it leaves
    /// with the next Ready even while a write is pending.
    fn send_now(&mut self, to: NodeId, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term: self.term,
            incarnation: self.identity.incarnation,
            body,
        });
    }

    /// Is a disk write pending, or about to be created by the next Ready?
    fn write_pending(&self) -> bool {
        self.persist_seq > self.persisted_seq
            || self.log.has_unstable()
            || self.hs_dirty
            || self.identity_dirty
            || self.snapshot_to_persist.is_some()
    }

    /// Whether `p`, counted as incarnation `admitted` (as a configuration names it),
    /// is this node.
    fn is_me(&self, p: NodeId, admitted: Incarnation) -> bool {
        p == self.id && admitted == self.identity.incarnation
    }

    /// The leader's progress of `p`, when it tracks incarnation `admitted` of it:
    /// what another incarnation acknowledged counts for nothing.
    fn tracked(&self, p: NodeId, admitted: Incarnation) -> Option<&Progress> {
        self.progress
            .get(&p)
            .filter(|pr| pr.incarnation == admitted)
    }

    /// Every voter of the current (possibly joint) configuration.
    fn voter_ids(&self) -> Vec<NodeId> {
        let mut ids: Vec<NodeId> = self.membership.voters.iter().copied().collect();
        if let Some(old) = &self.membership.voters_old {
            ids.extend(old.iter().copied());
        }
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Whether this node, as the incarnation it is, votes in its configuration.
    fn is_voter(&self) -> bool {
        self.joined && self.membership.is_voter(self.id, self.identity.incarnation)
    }

    /// Whether this node may campaign: it votes in its newest configuration, or in
    /// the one before while the newest is not committed yet (a node that a pending
    /// C_new removes may hold the longest log, and the voters that remain may need
    /// it to lead until C_new commits; votes are still counted by the newest
    /// configuration, so this only lets it try).
    fn promotable(&self) -> bool {
        if self.is_voter() {
            return true;
        }
        match self.config_log.last() {
            Some((i, _)) if self.joined && *i > self.log.commit => {
                let previous = self
                    .config_log
                    .iter()
                    .rev()
                    .nth(1)
                    .map_or(&self.base_membership, |(_, m)| m);
                previous.is_voter(self.id, self.identity.incarnation)
            }
            _ => false,
        }
    }

    /// A node that votes is a follower; one that is still joining, a learner, or a
    /// voter id whose configuration names another incarnation (it lost its state
    /// and waits to be re-admitted) is a learner. A node no configuration names at
    /// all (removed, or not added yet) stays a follower, as it always was.
    fn follower_role(&self) -> Role {
        if self.is_voter() {
            Role::Follower
        } else if !self.joined
            || self.membership.learners.contains(&self.id)
            || self.membership.has_voter_id(self.id)
        {
            Role::Learner
        } else {
            Role::Follower
        }
    }

    fn refresh_membership(&mut self) {
        self.membership = self
            .config_log
            .last()
            .map_or_else(|| self.base_membership.clone(), |(_, m)| m.clone());
        if matches!(self.role, Role::Follower | Role::Learner) {
            // A configuration that (re-)admits this incarnation makes it a voter.
            self.role = self.follower_role();
        }
        self.sync_progress();
    }

    /// Bookkeeping after the log dropped every entry from `from` on.
    fn on_truncate(&mut self, from: Index) {
        let cap = from - 1;
        self.persisted_index = self.persisted_index.min(cap);
        for mark in self.persist_marks.iter_mut() {
            mark.1 = mark.1.min(cap);
        }
        let before = self.config_log.len();
        self.config_log.retain(|(i, _)| *i < from);
        if self.config_log.len() != before {
            self.refresh_membership();
        }
    }

    /// Records configuration entries just added to the log.
    fn on_appended(&mut self, entries: &[Entry]) {
        let mut changed = false;
        for e in entries {
            if let Payload::Config(m) = &e.payload {
                self.config_log.push((e.index, m.clone()));
                changed = true;
            }
        }
        if changed {
            self.refresh_membership();
        }
    }
}

#[cfg(test)]
mod tests;
