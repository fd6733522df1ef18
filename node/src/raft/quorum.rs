//! Majority arithmetic over simple and joint configurations.
//!
//! In a joint configuration (C_old,new, Raft paper §6) every decision needs a
//! majority of `voters` AND a majority of `voters_old`. Each set counts a node only
//! as the incarnation it names: the callers' closures receive that incarnation and
//! answer for it (a match index, a vote, an acknowledgement), or say nothing when
//! the node they heard from is another incarnation.

use super::types::{Incarnation, Index, Membership, NodeId};
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

/// [`committed_index`] for a possibly joint membership: `matched(id, incarnation)`
/// is what that incarnation of `id` has matched (0 when another one spoke).
pub fn joint_committed_index(
    ms: &Membership,
    matched: &impl Fn(NodeId, Incarnation) -> Index,
) -> Index {
    let new = committed_index(&ms.voters, &|id| matched(id, ms.admitted(id)));
    match &ms.voters_old {
        Some(old) => new.min(committed_index(old, &|id| matched(id, ms.admitted_old(id)))),
        None => new,
    }
}

/// Tallies the votes among `voters`: `vote(id)` is `Some(true)` for a granted vote,
/// `Some(false)` for a refusal, `None` when nothing (valid) arrived yet.
pub fn vote_result(
    voters: &BTreeSet<NodeId>,
    vote: &impl Fn(NodeId) -> Option<bool>,
) -> VoteResult {
    if voters.is_empty() {
        return VoteResult::Won;
    }
    let (mut yes, mut missing) = (0, 0);
    for &id in voters {
        match vote(id) {
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
/// `vote(id, incarnation)` answers for that incarnation of `id` only.
pub fn joint_vote_result(
    ms: &Membership,
    vote: &impl Fn(NodeId, Incarnation) -> Option<bool>,
) -> VoteResult {
    let a = vote_result(&ms.voters, &|id| vote(id, ms.admitted(id)));
    let b = ms.voters_old.as_ref().map_or(VoteResult::Won, |old| {
        vote_result(old, &|id| vote(id, ms.admitted_old(id)))
    });
    match (a, b) {
        (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
        (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
        _ => VoteResult::Pending,
    }
}

/// Whether the nodes `acked(id, incarnation)` holds for make a majority of every
/// voter set of `ms`.
pub fn has_quorum(ms: &Membership, acked: &impl Fn(NodeId, Incarnation) -> bool) -> bool {
    joint_vote_result(ms, &|id, inc| Some(acked(id, inc))) == VoteResult::Won
}

/// Reads the tallies' closures out of a map of votes recorded with the voter's
/// incarnation: a vote counts only for the incarnation that cast it.
pub fn recorded_vote(
    votes: &BTreeMap<NodeId, (Incarnation, bool)>,
    id: NodeId,
    inc: Incarnation,
) -> Option<bool> {
    votes
        .get(&id)
        .filter(|(cast_by, _)| *cast_by == inc)
        .map(|(_, granted)| *granted)
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

    fn tally(votes: &[(NodeId, bool)]) -> BTreeMap<NodeId, (Incarnation, bool)> {
        votes.iter().map(|&(id, g)| (id, (0, g))).collect()
    }

    #[test]
    fn joint_needs_both_majorities() {
        let ms = Membership {
            voters: set(&[1, 2, 3]),
            voters_old: Some(set(&[3, 4, 5])),
            ..Membership::default()
        };
        let matched = |id: NodeId, _| match id {
            1 | 2 => 10,
            3 => 5,
            _ => 0,
        };
        // New config has 10 at a majority, old config only 0 at a majority.
        assert_eq!(joint_committed_index(&ms, &matched), 0);
        let votes = tally(&[(1, true), (2, true), (4, false), (5, false)]);
        let vote = |id, inc| recorded_vote(&votes, id, inc);
        assert_eq!(joint_vote_result(&ms, &vote), VoteResult::Lost);
        let votes = tally(&[(1, true), (2, true), (4, true)]);
        let vote = |id, inc| recorded_vote(&votes, id, inc);
        assert_eq!(joint_vote_result(&ms, &vote), VoteResult::Pending);
    }

    #[test]
    fn votes_decide_as_soon_as_possible() {
        let v = set(&[1, 2, 3]);
        let votes = tally(&[(1, true), (2, true)]);
        assert_eq!(
            vote_result(&v, &|id| recorded_vote(&votes, id, 0)),
            VoteResult::Won
        );
        let votes = tally(&[(1, true), (2, false)]);
        assert_eq!(
            vote_result(&v, &|id| recorded_vote(&votes, id, 0)),
            VoteResult::Pending
        );
        let votes = tally(&[(1, true), (2, false), (3, false)]);
        assert_eq!(
            vote_result(&v, &|id| recorded_vote(&votes, id, 0)),
            VoteResult::Lost
        );
    }

    /// Replacing a node's incarnation (C_old names 3/a, C_new names 3/b): the new
    /// incarnation counts only in the new set, and the lost one in neither.
    #[test]
    fn a_node_counts_only_as_the_incarnation_each_set_names() {
        let ms = Membership {
            voters: set(&[1, 2, 3]),
            voters_old: Some(set(&[1, 2, 3])),
            incarnations: [(1, 11), (2, 22), (3, 0xb)].into(),
            incarnations_old: Some([(1, 11), (2, 22), (3, 0xa)].into()),
            ..Membership::default()
        };
        // Node 1 and the new incarnation of node 3 acknowledge index 9; node 2 5.
        let matched = |id: NodeId, inc: Incarnation| match (id, inc) {
            (1, 11) => 9,
            (2, 22) => 5,
            (3, 0xb) => 9,
            _ => 0,
        };
        // New set: {1, 3b} at 9. Old set: only node 1 at 9, so 5.
        assert_eq!(joint_committed_index(&ms, &matched), 5);
        let votes: BTreeMap<NodeId, (Incarnation, bool)> =
            [(1, (11, true)), (3, (0xb, true))].into();
        let vote = |id, inc| recorded_vote(&votes, id, inc);
        assert_eq!(joint_vote_result(&ms, &vote), VoteResult::Pending);
        assert!(ms.is_voter(3, 0xb) && ms.is_voter(3, 0xa) && !ms.is_voter(3, 0xc));
    }
}
