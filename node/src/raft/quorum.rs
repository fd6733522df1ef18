//! Majority arithmetic over simple and joint configurations.
//!
//! In a joint configuration (C_old,new, Raft paper §6) every decision needs a
//! majority of `voters` AND a majority of `voters_old`.

use super::types::{Index, Membership, NodeId};
use std::collections::{BTreeMap, BTreeSet};

/// The outcome of an election so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VoteResult {
    Won,
    Lost,
    Pending,
}

/// The highest index that a majority of `voters` has reached. An empty set places
/// no constraint (returns `Index::MAX`), so a missing old configuration is neutral.
pub fn committed_index(voters: &BTreeSet<NodeId>, matched: &impl Fn(NodeId) -> Index) -> Index {
    if voters.is_empty() {
        return Index::MAX;
    }
    let mut m: Vec<Index> = voters.iter().map(|&id| matched(id)).collect();
    m.sort_unstable_by(|a, b| b.cmp(a));
    m[voters.len() / 2]
}

/// [`committed_index`] for a possibly joint membership.
pub fn joint_committed_index(ms: &Membership, matched: &impl Fn(NodeId) -> Index) -> Index {
    let new = committed_index(&ms.voters, matched);
    match &ms.voters_old {
        Some(old) => new.min(committed_index(old, matched)),
        None => new,
    }
}

/// Tallies `votes` (true = granted) among `voters`.
pub fn vote_result(voters: &BTreeSet<NodeId>, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0, 0);
    for id in voters {
        match votes.get(id) {
            Some(true) => yes += 1,
            Some(false) => {}
            None => missing += 1,
        }
    }
    let q = voters.len() / 2 + 1;
    if yes >= q {
        VoteResult::Won
    } else if yes + missing >= q {
        VoteResult::Pending
    } else {
        VoteResult::Lost
    }
}

/// [`vote_result`] for a possibly joint membership: both halves must win.
pub fn joint_vote_result(ms: &Membership, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
    let a = vote_result(&ms.voters, votes);
    let b = ms
        .voters_old
        .as_ref()
        .map_or(VoteResult::Won, |old| vote_result(old, votes));
    match (a, b) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

/// Whether the set `acked` contains a majority of every voter set of `ms`.
pub fn has_quorum(ms: &Membership, acked: &impl Fn(NodeId) -> bool) -> bool {
    let votes: BTreeMap<NodeId, bool> = ms
        .voters
        .iter()
        .chain(ms.voters_old.iter().flatten())
        .map(|&id| (id, acked(id)))
        .collect();
    joint_vote_result(ms, &votes) == VoteResult::Won
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn set(ids: &[NodeId]) -> BTreeSet<NodeId> {
        ids.iter().copied().collect()
    }

    /// The obvious oracle: the largest index `i` such that more than half of the
    /// voters have matched at least `i`.
    fn oracle(voters: &BTreeSet<NodeId>, matched: &BTreeMap<NodeId, Index>) -> Index {
        let mut best = 0;
        for &cand in matched.values() {
            let n = voters.iter().filter(|id| matched[id] >= cand).count();
            if 2 * n > voters.len() {
                best = best.max(cand);
            }
        }
        best
    }

    proptest! {
        #[test]
        fn committed_index_matches_oracle(ms in proptest::collection::vec(0u64..20, 1..8)) {
            let voters: BTreeSet<NodeId> = (1..=ms.len() as u64).collect();
            let matched: BTreeMap<NodeId, Index> = voters.iter().copied().zip(ms).collect();
            prop_assert_eq!(committed_index(&voters, &|id| matched[&id]), oracle(&voters, &matched));
        }
    }

    #[test]
    fn joint_needs_both_majorities() {
        let ms = Membership {
            voters: set(&[1, 2, 3]),
            learners: BTreeSet::new(),
            voters_old: Some(set(&[3, 4, 5])),
        };
        let matched = |id: NodeId| match id {
            1 | 2 => 10,
            3 => 5,
            _ => 0,
        };
        // New config has 10 at a majority, old config only 0 at a majority.
        assert_eq!(joint_committed_index(&ms, &matched), 0);
        let votes: BTreeMap<_, _> = [(1, true), (2, true), (4, false), (5, false)].into();
        assert_eq!(joint_vote_result(&ms, &votes), VoteResult::Lost);
        let votes: BTreeMap<_, _> = [(1, true), (2, true), (4, true)].into();
        assert_eq!(joint_vote_result(&ms, &votes), VoteResult::Pending);
    }

    #[test]
    fn votes_decide_as_soon_as_possible() {
        let v = set(&[1, 2, 3]);
        let votes: BTreeMap<_, _> = [(1, true), (2, true)].into();
        assert_eq!(vote_result(&v, &votes), VoteResult::Won);
        let votes: BTreeMap<_, _> = [(1, true), (2, false)].into();
        assert_eq!(vote_result(&v, &votes), VoteResult::Pending);
        let votes: BTreeMap<_, _> = [(1, true), (2, false), (3, false)].into();
        assert_eq!(vote_result(&v, &votes), VoteResult::Lost);
    }
}
