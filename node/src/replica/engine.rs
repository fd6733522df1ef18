//! The narrow interface between the replica and a consensus engine. Raft sits
//! behind it today; a Multi-Paxos engine can sit behind the same one, since the
//! replica only proposes opaque commands, asks for read confirmations and carries
//! out the resulting `Ready`.

pub use crate::raft::Ready;
use crate::raft::types::{Identity, Index, Membership, Message, NodeId, Payload, Term};
use crate::raft::{ProposeError, Raft};
use crate::replica::Role;

pub trait Consensus {
    fn tick(&mut self);
    fn step(&mut self, m: Message);
    fn persisted(&mut self, seq: u64);
    fn transfer_leader(&mut self, to: NodeId);
    /// Appends a state-machine command; returns its log index.
    fn propose_command(&mut self, data: Vec<u8>) -> Result<Index, ProposeError>;
    /// Starts a membership change to `voters` (and `learners`, when given); returns
    /// the index of its first entry.
    fn propose_membership(
        &mut self,
        voters: Vec<NodeId>,
        learners: Option<Vec<NodeId>>,
    ) -> Result<Index, ProposeError>;
    /// Starts a linearizable read; the returned round comes back in `Ready::reads`.
    fn read_index(&mut self) -> Result<u64, ProposeError>;
    fn ready(&mut self) -> Ready;
    /// The application captured its state through `index`: compact the log.
    fn compact(&mut self, index: Index, data: Vec<u8>) -> bool;

    fn role(&self) -> Role;
    fn term(&self) -> Term;
    fn leader(&self) -> Option<NodeId>;
    fn commit_index(&self) -> Index;
    fn applied_index(&self) -> Index;
    fn first_index(&self) -> Index;
    fn last_index(&self) -> Index;
    fn membership(&self) -> &Membership;
    /// This node's cluster and incarnation.
    fn identity(&self) -> &Identity;
}

impl Consensus for Raft {
    fn tick(&mut self) {
        Raft::tick(self)
    }
    fn step(&mut self, m: Message) {
        Raft::step(self, m)
    }
    fn persisted(&mut self, seq: u64) {
        Raft::persisted(self, seq)
    }
    fn transfer_leader(&mut self, to: NodeId) {
        Raft::transfer_leader(self, to)
    }
    fn propose_command(&mut self, data: Vec<u8>) -> Result<Index, ProposeError> {
        self.propose(Payload::Command(data))
    }
    fn read_index(&mut self) -> Result<u64, ProposeError> {
        Raft::read_index(self)
    }
    fn propose_membership(
        &mut self,
        voters: Vec<NodeId>,
        learners: Option<Vec<NodeId>>,
    ) -> Result<Index, ProposeError> {
        let learners = learners.map(|l| l.into_iter().collect());
        Raft::propose_membership(self, voters.into_iter().collect(), learners)
    }
    fn ready(&mut self) -> Ready {
        Raft::ready(self)
    }
    fn compact(&mut self, index: Index, data: Vec<u8>) -> bool {
        Raft::compact(self, index, data)
    }
    fn role(&self) -> Role {
        Raft::role(self)
    }
    fn term(&self) -> Term {
        Raft::term(self)
    }
    fn leader(&self) -> Option<NodeId> {
        Raft::leader(self)
    }
    fn commit_index(&self) -> Index {
        self.log().commit
    }
    fn applied_index(&self) -> Index {
        self.log().applied
    }
    fn first_index(&self) -> Index {
        self.log().first_index()
    }
    fn last_index(&self) -> Index {
        self.log().last_index()
    }
    fn membership(&self) -> &Membership {
        Raft::membership(self)
    }
    fn identity(&self) -> &Identity {
        Raft::identity(self)
    }
}
