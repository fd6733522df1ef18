//! Seeds that found a bug: each one failed with that bug put back into the node
//! (and passes now). They pin the simulator's schedules that reach each bug, so a
//! change that brings one back fails here by name, whatever the range a full run
//! would cover.

use workloads::args::FaultSet;
use workloads::faults::Fault;
use workloads::sim::{Options, run_seed};

fn assert_clean(nemesis: &str, seeds: &[u64]) {
    let o = Options {
        nemesis: nemesis.parse::<FaultSet<Fault>>().expect("valid nemesis"),
        check_linearizability: true,
        ..Options::default()
    };
    for &seed in seeds {
        let r = run_seed(seed, &o);
        assert!(
            r.violation.is_none() && r.unknown.is_none(),
            "seed {seed} ({nemesis}): {:?} {:?}",
            r.violation,
            r.unknown
        );
    }
}

/// A node restarted with a lost disk voted as the node it was (leader
/// completeness, election safety and state machine safety broke).
#[test]
fn a_wiped_node_votes_seeds() {
    assert_clean("partition,crash,pause,loss,disk", &[1, 2, 19, 21, 49]);
}

/// A single voter led a term, crashed before the term was durable, and led it again.
#[test]
fn a_single_voter_reuses_its_term_seeds() {
    assert_clean("partition,crash,pause,loss,membership", &[1, 9, 18, 23, 86]);
}

/// Hostile peer messages: entries that skip an index (storage refused the write:
/// 4, 6; slice panic: 10, 27), terms near 2^64 (the cluster froze: 7, 13), and
/// acknowledgements beyond the leader's log (commits without a quorum: 1, 2).
#[test]
fn hostile_messages_seeds() {
    assert_clean(
        "partition,crash,pause,loss,hostile",
        &[4, 6, 10, 27, 7, 13, 1, 2],
    );
}

/// A snapshot that replaced a conflicting log kept the configurations of the
/// discarded entries in force (1814); a node that an uncommitted C_new removes,
/// holding the longest log, did not campaign and the cluster stalled (983, 1452).
/// (Found with every fault kind of the time: the seven of Raft's default.)
#[test]
fn membership_with_snapshots_and_lost_disks_seeds() {
    assert_clean(
        "partition,kill,pause,membership,wipe,loss,hostile",
        &[1814, 983, 1452],
    );
}
