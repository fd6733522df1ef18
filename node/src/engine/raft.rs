//! Raft behind the engine interface: a thin translation, no behaviour of its own.

use super::{
    Committed, Decided, DurableWrite, Engine, EngineKind, EngineReady, EngineStatus, Index,
    Installed, NodeId, PeerMessage, ProposeError, Refused, Role, SnapshotData, SnapshotMeta,
};
use crate::raft::types::{Entry, Payload};
use crate::raft::{self, Raft};

fn neutral_role(r: raft::Role) -> Role {
    match r {
        raft::Role::Leader => Role::Leader,
        raft::Role::Follower => Role::Follower,
        raft::Role::Candidate | raft::Role::PreCandidate => Role::Candidate,
        raft::Role::Learner => Role::Learner,
    }
}

fn committed(e: Entry) -> Committed {
    let value = match e.payload {
        Payload::Noop => Decided::Noop,
        Payload::Command(c) => Decided::Command(c),
        Payload::Config(m) => Decided::Membership {
            voters: m.voters.iter().copied().collect(),
            joint: m.voters_old.is_some(),
        },
    };
    Committed {
        index: e.index,
        term: e.term,
        value,
        proposal: Some(e.index),
    }
}

impl Engine for Raft {
    fn kind(&self) -> EngineKind {
        EngineKind::Raft
    }
    fn tick(&mut self) {
        Raft::tick(self)
    }
    fn step(&mut self, m: PeerMessage) {
        // The replica refuses messages of another engine before they get here.
        if let PeerMessage::Raft(m) = m {
            Raft::step(self, m)
        }
    }
    fn persisted(&mut self, seq: u64) {
        Raft::persisted(self, seq)
    }
    fn propose(&mut self, command: Vec<u8>) -> Result<Index, ProposeError> {
        Raft::propose(self, Payload::Command(command))
    }
    fn change_membership(
        &mut self,
        voters: Vec<NodeId>,
        learners: Option<Vec<NodeId>>,
    ) -> Result<Index, ProposeError> {
        let learners = learners.map(|l| l.into_iter().collect());
        Raft::propose_membership(self, voters.into_iter().collect(), learners)
    }
    fn read(&mut self) -> Result<u64, ProposeError> {
        Raft::read_index(self)
    }
    fn transfer_leader(&mut self, to: NodeId) {
        Raft::transfer_leader(self, to)
    }
    fn compact(&mut self, index: Index, data: SnapshotData) -> bool {
        Raft::compact(self, index, data)
    }
    fn snapshot_received(&mut self, _from: NodeId, _meta: SnapshotMeta) -> bool {
        // Raft's snapshots still travel inside InstallSnapshot.
        false
    }
    fn ready(&mut self) -> EngineReady {
        let r = Raft::ready(self);
        EngineReady {
            refused: r
                .refused
                .into_iter()
                .map(|x| Refused {
                    from: x.from,
                    term: x.term,
                    reason: x.reason.as_str(),
                    detail: x.reason.describe(),
                })
                .collect(),
            persist: r.persist.map(DurableWrite::Raft),
            messages: r.messages.into_iter().map(PeerMessage::Raft).collect(),
            send_snapshot: Vec::new(),
            installed: r.snapshot.map(|s| Installed {
                meta: SnapshotMeta {
                    index: s.meta.last_index,
                    term: s.meta.last_term,
                },
                data: s.data,
            }),
            committed: r.committed.into_iter().map(committed).collect(),
            reads: r.reads,
            failed_reads: Vec::new(),
            abandoned: Vec::new(),
        }
    }
    fn role(&self) -> Role {
        neutral_role(Raft::role(self))
    }
    fn term(&self) -> u64 {
        Raft::term(self)
    }
    fn leader(&self) -> Option<NodeId> {
        Raft::leader(self)
    }
    fn applied_index(&self) -> Index {
        self.log().applied
    }
    fn status(&self) -> EngineStatus {
        let log = self.log();
        let identity = self.identity();
        EngineStatus {
            role: Engine::role(self),
            term: Raft::term(self),
            leader: Raft::leader(self),
            commit_index: log.commit,
            applied_index: log.applied,
            first_index: log.first_index(),
            last_index: log.last_index(),
            membership: self.membership().clone(),
            incarnation: identity.incarnation,
            cluster: identity.cluster,
        }
    }
}
