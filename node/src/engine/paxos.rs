//! Both Paxos engines behind the engine interface: a translation, no behaviour of
//! its own beyond remembering the term each own proposal was made in.

use super::{
    Committed, Decided, DurableWrite, Engine, EngineCounter, EngineKind, EngineReady, EngineStatus,
    Index, Installed, NodeId, PeerMessage, ProposeError, Role, SnapshotData, SnapshotMeta,
};
use crate::paxos::basic::{self, BasicPaxos};
use crate::paxos::multi::{self, MultiPaxos};
use crate::paxos::{self, Envelope, ProposalId, Ready, Status, Value, Write};
use crate::raft::types::Membership;
use std::collections::BTreeMap;

/// What the adapter needs of an engine; both have this API, and differ only in
/// their message and record types.
pub(super) trait PaxosCore: Send {
    type Body;
    type Record;
    const KIND: EngineKind;
    fn tick(&mut self);
    fn step(&mut self, m: Envelope<Self::Body>);
    fn persisted(&mut self, seq: u64);
    fn propose(&mut self, command: Vec<u8>) -> Result<ProposalId, ProposeError>;
    fn read_index(&mut self) -> Result<u64, ProposeError>;
    fn compact(&mut self, slot: Index, data: Vec<u8>) -> bool;
    /// The message carrying `snapshot` from this node to `to`.
    fn snapshot_message(
        from: NodeId,
        to: NodeId,
        chosen_through: Index,
        snapshot: paxos::Snapshot,
    ) -> PeerMessage;
    fn ready(&mut self) -> Ready<Self::Body, Self::Record>;
    fn status(&self) -> Status;
    fn stats(&self) -> &paxos::Stats;
    fn wrap(m: Envelope<Self::Body>) -> PeerMessage;
    fn unwrap(m: PeerMessage) -> Option<Envelope<Self::Body>>;
    fn durable(w: Write<Self::Record>) -> DurableWrite;
}

macro_rules! paxos_core {
    ($t:ty, $m:ident, $kind:ident) => {
        impl PaxosCore for $t {
            type Body = $m::Body;
            type Record = $m::Record;
            const KIND: EngineKind = EngineKind::$kind;
            fn tick(&mut self) {
                <$t>::tick(self)
            }
            fn step(&mut self, m: Envelope<Self::Body>) {
                <$t>::step(self, m)
            }
            fn persisted(&mut self, seq: u64) {
                <$t>::persisted(self, seq)
            }
            fn propose(&mut self, command: Vec<u8>) -> Result<ProposalId, ProposeError> {
                <$t>::propose(self, command)
            }
            fn read_index(&mut self) -> Result<u64, ProposeError> {
                <$t>::read_index(self)
            }
            fn compact(&mut self, slot: Index, data: Vec<u8>) -> bool {
                <$t>::compact(self, slot, data)
            }
            fn ready(&mut self) -> Ready<Self::Body, Self::Record> {
                <$t>::ready(self)
            }
            fn status(&self) -> Status {
                <$t>::status(self)
            }
            fn stats(&self) -> &paxos::Stats {
                <$t>::stats(self)
            }
            fn snapshot_message(
                from: NodeId,
                to: NodeId,
                chosen_through: Index,
                snapshot: paxos::Snapshot,
            ) -> PeerMessage {
                PeerMessage::$kind(Envelope {
                    from,
                    to,
                    chosen_through,
                    body: $m::Body::Snapshot { snapshot },
                })
            }
            fn wrap(m: Envelope<Self::Body>) -> PeerMessage {
                PeerMessage::$kind(m)
            }
            fn unwrap(m: PeerMessage) -> Option<Envelope<Self::Body>> {
                match m {
                    PeerMessage::$kind(m) => Some(m),
                    _ => None,
                }
            }
            fn durable(w: Write<Self::Record>) -> DurableWrite {
                DurableWrite::$kind(w)
            }
        }
    };
}

paxos_core!(MultiPaxos, multi, MultiPaxos);
paxos_core!(BasicPaxos, basic, BasicPaxos);

/// A Paxos engine as the replica sees it.
pub(super) struct PaxosEngine<E> {
    core: E,
    /// The acceptors (static), for `/status`.
    membership: Membership,
    /// Own proposals not yet decided or abandoned: the term they were made in.
    terms: BTreeMap<ProposalId, u64>,
    /// The newest snapshot this node holds (taken here, installed from a peer, or
    /// recovered), sent to the peers the engine names in `send_snapshot`.
    snapshot: Option<paxos::Snapshot>,
}

impl<E: PaxosCore> PaxosEngine<E> {
    pub(super) fn new(core: E, peers: &[NodeId], snapshot: Option<paxos::Snapshot>) -> Self {
        PaxosEngine {
            snapshot,
            core,
            membership: Membership {
                voters: peers.iter().copied().collect(),
                ..Membership::default()
            },
            terms: BTreeMap::new(),
        }
    }
}

fn neutral_role(r: paxos::Role) -> Role {
    match r {
        paxos::Role::Leader => Role::Leader,
        paxos::Role::Candidate => Role::Candidate,
        paxos::Role::Follower => Role::Follower,
        paxos::Role::Proposer => Role::Proposer,
    }
}

impl<E: PaxosCore> Engine for PaxosEngine<E> {
    fn kind(&self) -> EngineKind {
        E::KIND
    }
    fn tick(&mut self) {
        self.core.tick()
    }
    fn step(&mut self, m: PeerMessage) {
        // The replica refuses messages of another engine before they get here.
        if let Some(m) = E::unwrap(m) {
            self.core.step(m)
        }
    }
    fn persisted(&mut self, seq: u64) {
        self.core.persisted(seq)
    }
    fn propose(&mut self, command: Vec<u8>) -> Result<Index, ProposeError> {
        let id = self.core.propose(command)?;
        let term = self.term();
        self.terms.insert(id, term);
        Ok(id)
    }
    fn change_membership(
        &mut self,
        _voters: Vec<NodeId>,
        _learners: Option<Vec<NodeId>>,
    ) -> Result<Index, ProposeError> {
        Err(ProposeError::Unsupported(format!(
            "membership is static under {}",
            E::KIND
        )))
    }
    fn read(&mut self) -> Result<u64, ProposeError> {
        self.core.read_index()
    }
    fn transfer_leader(&mut self, _to: NodeId) {}
    fn compact(&mut self, index: Index, data: SnapshotData) -> bool {
        let data = Vec::from(data.contiguous());
        let kept = data.clone();
        let compacted = self.core.compact(index, data);
        if compacted {
            self.snapshot = Some(paxos::Snapshot {
                last_slot: index,
                data: kept,
            });
        }
        compacted
    }
    fn snapshot_received(&mut self, _from: NodeId, _meta: SnapshotMeta) -> bool {
        false
    }
    fn ready(&mut self) -> EngineReady {
        let r = self.core.ready();
        let status = self.core.status();
        if let Some(s) = &r.installed
            && self
                .snapshot
                .as_ref()
                .is_none_or(|k| k.last_slot < s.last_slot)
        {
            self.snapshot = Some(s.clone());
        }
        let mut messages: Vec<PeerMessage> = r.messages.into_iter().map(E::wrap).collect();
        // The engine names the peers that asked for compacted slots; the snapshot
        // travels as a message of its own.
        if let Some(s) = &self.snapshot {
            for &to in &r.send_snapshot {
                messages.push(E::snapshot_message(
                    status.id,
                    to,
                    status.chosen_index,
                    s.clone(),
                ));
            }
        }
        let mut committed = Vec::with_capacity(r.committed.len());
        for d in r.committed {
            let term = d.proposal.and_then(|p| self.terms.remove(&p)).unwrap_or(0);
            let value = match d.value {
                Value::Command(c) => Decided::Command(c),
                Value::Noop | Value::Read { .. } => Decided::Noop,
            };
            committed.push(Committed {
                index: d.slot,
                term,
                value,
                proposal: d.proposal,
            });
        }
        for p in &r.abandoned {
            self.terms.remove(p);
        }
        EngineReady {
            refused: Vec::new(),
            persist: r.persist.map(E::durable),
            messages,
            // Sent above, inside the engine's own message.
            send_snapshot: Vec::new(),
            installed: r.installed.map(|s| Installed {
                meta: SnapshotMeta {
                    index: s.last_slot,
                    term: 0,
                },
                data: s.data.into(),
            }),
            committed,
            reads: r.reads,
            failed_reads: r.failed_reads,
            abandoned: r.abandoned,
        }
    }
    fn role(&self) -> Role {
        neutral_role(self.core.status().role)
    }
    fn term(&self) -> u64 {
        self.core.status().ballot.round
    }
    fn leader(&self) -> Option<NodeId> {
        self.core.status().leader
    }
    fn applied_index(&self) -> Index {
        self.core.status().applied_index
    }
    fn status(&self) -> EngineStatus {
        let s = self.core.status();
        EngineStatus {
            role: neutral_role(s.role),
            term: s.ballot.round,
            leader: s.leader,
            commit_index: s.chosen_index,
            applied_index: s.applied_index,
            first_index: s.first_index,
            last_index: s.last_index,
            membership: self.membership.clone(),
            incarnation: 0,
            cluster: 0,
        }
    }
    fn metrics(&self) -> Vec<EngineCounter> {
        let s = self.core.stats();
        let c = |name, help, value| EngineCounter { name, help, value };
        vec![
            c(
                "node_paxos_prepares",
                "Phase 1 attempts started (Basic Paxos: per slot; Multi-Paxos: per election)",
                s.prepares,
            ),
            c(
                "node_paxos_duels",
                "Attempts preempted by another proposer's higher ballot",
                s.duels,
            ),
            c(
                "node_paxos_retries",
                "Attempts started again after a rejection or a timeout",
                s.retries,
            ),
            c(
                "node_paxos_timeouts",
                "Attempts a majority did not answer in time",
                s.timeouts,
            ),
            c(
                "node_paxos_leader_elections",
                "Multi-Paxos: times this node completed phase 1 and became leader",
                s.leaderships,
            ),
            c(
                "node_paxos_holes_filled",
                "Slots filled with a no-op",
                s.holes_filled,
            ),
            c(
                "node_paxos_reproposed",
                "Values proposed again because a promise carried them",
                s.reproposed,
            ),
            c("node_paxos_decided", "Slots learned chosen here", s.decided),
            c(
                "node_paxos_catch_up_requests",
                "Catch-up requests sent to peers ahead",
                s.catch_up_requests,
            ),
            c(
                "node_paxos_snapshots_sent",
                "Snapshots offered to lagging peers",
                s.snapshots_sent,
            ),
            c(
                "node_paxos_snapshots_installed",
                "Snapshots installed from peers",
                s.snapshots_installed,
            ),
            c(
                "node_paxos_rejected_messages",
                "Peer messages dropped at the boundary",
                s.rejected_messages,
            ),
            c(
                "node_paxos_conflicts",
                "Slots learned chosen with two different values (a safety violation; always 0)",
                s.conflicts,
            ),
        ]
    }
}
