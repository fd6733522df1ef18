//! Words every consensus engine shares, and nothing engine-specific: which engine
//! runs ([`EngineKind`]), what a node is doing in neutral terms ([`Role`]), why a
//! proposal was refused ([`ProposeError`]), a confirmed read ([`ReadState`]), the
//! known bugs that can be switched on ([`Mutants`]) and the seeded random numbers
//! ([`rng`]). The engines (`raft`, `paxos`) build on this module; the engine
//! interface the replica talks to (`engine`) builds on them.
//!
//! PURE: no tokio, clock, rand, files or network.

// PURE (docs/design.md, "Purity"): clippy rejects clocks, files, sockets, tokio and
// unseeded randomness here (the lists are in clippy.toml).
#![deny(
    clippy::disallowed_types,
    clippy::disallowed_methods,
    clippy::disallowed_macros
)]

pub mod rng;

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A member of the cluster. Ids are chosen by the operator (`--id`), never 0.
pub type NodeId = u64;
/// A log position (a Raft index, a Paxos slot). The first one is 1; 0 is "before
/// the log".
pub type Index = u64;

/// Which consensus engine a node runs (`node --consensus`). Recorded in the data
/// directory: a node never reopens another engine's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineKind {
    #[default]
    Raft,
    MultiPaxos,
    BasicPaxos,
}

impl EngineKind {
    pub const ALL: [EngineKind; 3] = [
        EngineKind::Raft,
        EngineKind::MultiPaxos,
        EngineKind::BasicPaxos,
    ];

    /// The name used on the command line, in `/status`, `/metrics` and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Raft => "raft",
            EngineKind::MultiPaxos => "multi-paxos",
            EngineKind::BasicPaxos => "basic-paxos",
        }
    }
}

impl fmt::Display for EngineKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<EngineKind, String> {
        EngineKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!("unknown consensus engine {s:?}; expected raft, multi-paxos or basic-paxos")
            })
    }
}

/// What a node is doing, in engine-neutral words. Each engine maps its own roles
/// onto these (Raft's pre-candidate is a `Candidate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Proposes with one round trip per value (Raft leader, Multi-Paxos leader).
    Leader,
    /// Follows a leader, or waits for one.
    Follower,
    /// Trying to become leader.
    Candidate,
    /// Receives the log but has no vote.
    Learner,
    /// Basic Paxos: every node proposes, accepts and learns; there is no leader.
    Proposer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Leader,
        Role::Follower,
        Role::Candidate,
        Role::Learner,
        Role::Proposer,
    ];

    /// The name used in `/status` and `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Proposer => "proposer",
        }
    }
}

/// Why a proposal or read was refused. The request certainly did not enter the log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the leader")]
    NotLeader { leader: Option<NodeId> },
    #[error("leadership transfer in progress")]
    Transferring,
    #[error("too many uncommitted entries")]
    Busy,
    #[error("{0}")]
    BadMembership(String),
    /// The engine does not do this at all (e.g. membership changes under Paxos).
    #[error("{0}")]
    Unsupported(String),
}

/// A read round whose confirmation completed: serve it once the state machine has
/// applied `index`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadState {
    pub round: u64,
    pub index: Index,
}

/// Known bugs (docs/design.md, "Mutants"), switched on deliberately so the test
/// pipeline can prove it catches them. All false in a correct node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mutants {
    /// Raft: count replicas for entries of earlier terms (Raft paper figure 8).
    pub commit_old_term: bool,
    /// Raft: grant votes without the §5.4.1 up-to-date check.
    pub vote_any_log: bool,
    /// Raft: change the voters in one step, without the joint configuration.
    pub joint_skip: bool,
    /// Replica: serve linearizable reads from local state with no confirmation round.
    pub stale_read: bool,
    /// Replica: reply to a write as soon as it is proposed.
    pub ack_before_commit: bool,
    /// Paxos: an acceptor answers a Prepare before its promise is durable.
    pub paxos_forget_promise: bool,
    /// Paxos: a proposer proposes its own value even when a promise carried an
    /// accepted one.
    pub paxos_ignore_accepted: bool,
}

/// One known bug `--unsafe` switches on (docs/design.md, "Mutants").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mutant {
    CommitOldTerm,
    VoteAnyLog,
    StaleRead,
    AckBeforeCommit,
    /// Acknowledge writes before they are durable: a storage mutant, carried out by
    /// the driver (the node's disk, the simulator's), not by the replica.
    NoFsync,
    JointSkip,
    /// Paxos: an acceptor answers a Prepare before its promise is durable.
    PaxosForgetPromise,
    /// Paxos: a proposer ignores the values the promises it gathered carried.
    PaxosIgnoreAccepted,
}

impl Mutant {
    pub const ALL: [Mutant; 8] = [
        Mutant::CommitOldTerm,
        Mutant::VoteAnyLog,
        Mutant::StaleRead,
        Mutant::AckBeforeCommit,
        Mutant::NoFsync,
        Mutant::JointSkip,
        Mutant::PaxosForgetPromise,
        Mutant::PaxosIgnoreAccepted,
    ];

    /// The name `--unsafe` takes.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::CommitOldTerm => "commit-old-term",
            Mutant::VoteAnyLog => "vote-any-log",
            Mutant::StaleRead => "stale-read",
            Mutant::AckBeforeCommit => "ack-before-commit",
            Mutant::JointSkip => "joint-skip",
            Mutant::NoFsync => "no-fsync",
            Mutant::PaxosForgetPromise => "paxos-forget-promise",
            Mutant::PaxosIgnoreAccepted => "paxos-ignore-accepted",
        }
    }

    /// Whether the bug exists under `engine`: Raft's own bugs under Raft, the Paxos
    /// bugs under both Paxos engines; the replica's (`stale-read`,
    /// `ack-before-commit`) and the storage one (`no-fsync`) under every engine.
    pub fn applies_to(self, engine: EngineKind) -> bool {
        match self {
            Mutant::CommitOldTerm | Mutant::VoteAnyLog | Mutant::JointSkip => {
                engine == EngineKind::Raft
            }
            Mutant::PaxosForgetPromise | Mutant::PaxosIgnoreAccepted => engine != EngineKind::Raft,
            Mutant::StaleRead | Mutant::AckBeforeCommit | Mutant::NoFsync => true,
        }
    }

    /// The mutants that apply to `engine`, in [`Mutant::ALL`] order.
    pub fn for_engine(engine: EngineKind) -> Vec<Mutant> {
        Mutant::ALL
            .into_iter()
            .filter(|m| m.applies_to(engine))
            .collect()
    }

    /// `Ok` when the bug exists under `engine`; otherwise an error naming the
    /// mutants that do (a switch that changes nothing must not look like a pass).
    pub fn check_engine(self, engine: EngineKind) -> Result<(), String> {
        if self.applies_to(engine) {
            return Ok(());
        }
        let names: Vec<&str> = Mutant::for_engine(engine)
            .into_iter()
            .map(Mutant::name)
            .collect();
        Err(format!(
            "--unsafe {}: no such bug under {engine}; the mutants of {engine} are {}",
            self.name(),
            names.join(", ")
        ))
    }

    /// The engine's and replica's switches for this mutant (none for `no-fsync`).
    pub fn mutants(self) -> Mutants {
        let mut m = Mutants::default();
        match self {
            Mutant::CommitOldTerm => m.commit_old_term = true,
            Mutant::VoteAnyLog => m.vote_any_log = true,
            Mutant::StaleRead => m.stale_read = true,
            Mutant::AckBeforeCommit => m.ack_before_commit = true,
            Mutant::JointSkip => m.joint_skip = true,
            Mutant::PaxosForgetPromise => m.paxos_forget_promise = true,
            Mutant::PaxosIgnoreAccepted => m.paxos_ignore_accepted = true,
            Mutant::NoFsync => {}
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_round_trip_and_unknown_ones_are_refused() {
        for k in EngineKind::ALL {
            assert_eq!(k.as_str().parse::<EngineKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        let e = "paxos".parse::<EngineKind>().unwrap_err();
        assert!(e.contains("multi-paxos"), "{e}");
    }

    #[test]
    fn each_mutant_applies_to_its_engines_and_the_others_are_refused_by_name() {
        let names = |k| -> Vec<&str> {
            Mutant::for_engine(k)
                .into_iter()
                .map(Mutant::name)
                .collect()
        };
        assert_eq!(
            names(EngineKind::Raft),
            [
                "commit-old-term",
                "vote-any-log",
                "stale-read",
                "ack-before-commit",
                "no-fsync",
                "joint-skip"
            ]
        );
        for k in [EngineKind::MultiPaxos, EngineKind::BasicPaxos] {
            assert_eq!(
                names(k),
                [
                    "stale-read",
                    "ack-before-commit",
                    "no-fsync",
                    "paxos-forget-promise",
                    "paxos-ignore-accepted"
                ]
            );
        }
        let e = Mutant::VoteAnyLog
            .check_engine(EngineKind::BasicPaxos)
            .unwrap_err();
        assert!(
            e.contains("vote-any-log")
                && e.contains("basic-paxos")
                && e.contains("paxos-forget-promise"),
            "{e}"
        );
        let e = Mutant::PaxosForgetPromise
            .check_engine(EngineKind::Raft)
            .unwrap_err();
        assert!(e.contains("under raft") && e.contains("joint-skip"), "{e}");
        assert_eq!(
            Mutant::PaxosIgnoreAccepted.check_engine(EngineKind::MultiPaxos),
            Ok(())
        );
        let m = Mutant::PaxosIgnoreAccepted.mutants();
        assert!(m.paxos_ignore_accepted && !m.paxos_forget_promise);
        assert!(Mutant::PaxosForgetPromise.mutants().paxos_forget_promise);
    }
}
