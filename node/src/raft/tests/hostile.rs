//! Peer messages no correct node sends: refused before they change anything, and
//! the cluster goes on.

use super::*;
use crate::raft::validate::Rejection;

fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        incarnation: 0,
        body,
    }
}

/// A cluster of three (no leader leases) with node 1 leading term 1 and one entry
/// committed everywhere.
fn led_by_1() -> Net {
    let mut net = Net::new(3, |c| c.check_quorum = false);
    net.with(1, |n| n.hup());
    net.stabilize();
    assert_eq!(net.node(1).role(), Role::Leader);
    net.with(1, |n| n.bcast_heartbeat());
    net.stabilize();
    net
}

fn refused(r: &Ready) -> Vec<Rejection> {
    r.refused.iter().map(|x| x.reason).collect()
}

/// A Vote with term 2^64-1 used to move every node to that term for good (and
/// `term + 1` overflowed): it is refused, and elections go on.
#[test]
fn a_vote_with_term_2_pow_64_minus_1_is_refused_and_elections_go_on() {
    let mut net = led_by_1();
    for (to, term) in [(2, Term::MAX), (1, Term::MAX), (2, 1 << 40)] {
        let vote = MessageBody::Vote {
            pre_vote: false,
            last_log_index: 100,
            last_log_term: 1,
            transfer: true,
        };
        let r = net.with(to, |n| n.step(msg(3, to, term, vote)));
        assert_eq!(refused(&r), vec![Rejection::TermTooFar]);
        assert_eq!(net.node(to).term(), 1);
        assert!(
            r.persist.is_none(),
            "a refused message wrote {:?}",
            r.persist
        );
    }
    net.with(2, |n| n.hup());
    net.stabilize();
    assert_eq!(net.node(2).role(), Role::Leader);
    assert_eq!(net.node(2).term(), 2);
}

/// An Append whose entries do not run one by one from prev_index + 1 used to panic
/// the follower (slice bounds) or make storage refuse the write and the node exit.
#[test]
fn an_append_whose_entries_skip_an_index_is_refused_before_it_touches_the_log() {
    let mut net = led_by_1();
    let last = net.node(2).log().last_index();
    let e = |index: Index| Entry {
        term: 1,
        index,
        payload: Payload::Noop,
    };
    let cases = [
        (last, vec![e(last + 1), e(last + 3)]),
        (last, vec![e(last + 2), e(last + 1)]),
        (last, vec![e(last)]),
        (0, vec![e(1), e(3)]),
        (Index::MAX - 1, vec![e(Index::MAX), e(0)]),
    ];
    for (prev_index, entries) in cases {
        let append = MessageBody::Append {
            prev_index,
            prev_term: net.node(2).log().term(prev_index).unwrap_or(1),
            entries,
            commit: last,
            read_ctx: 0,
        };
        let r = net.with(2, |n| n.step(msg(1, 2, 1, append)));
        assert_eq!(refused(&r), vec![Rejection::EntriesNotContiguous]);
        assert!(r.persist.is_none() && r.messages.is_empty());
        assert_eq!(net.node(2).log().last_index(), last);
    }
    let r = net.with(1, |n| {
        let _ = n.propose(Payload::Command(b"x".to_vec()));
    });
    assert!(r.refused.is_empty());
    net.stabilize();
    assert_eq!(net.node(2).log().commit, last + 1);
}

/// An acknowledgement of an index beyond anything the leader has used to freeze its
/// commit index (the follower's progress jumped past the log): it is refused.
#[test]
fn an_acknowledgement_beyond_the_log_is_refused_and_commits_keep_moving() {
    let mut net = led_by_1();
    let last = net.node(1).log().last_index();
    let matched = net.node(1).progress(2).map(|p| p.match_index);
    for (match_index, success) in [(Index::MAX, true), (last + 1, true), (Index::MAX, false)] {
        let ack = MessageBody::AppendResponse {
            success,
            match_index,
            conflict_index: match_index,
            conflict_term: Some(Term::MAX),
            read_ctx: 0,
        };
        let r = net.with(1, |n| n.step(msg(2, 1, 1, ack)));
        assert_eq!(refused(&r), vec![Rejection::AckBeyondLog]);
        assert_eq!(net.node(1).progress(2).map(|p| p.match_index), matched);
    }
    let r = net.with(1, |n| {
        n.step(msg(
            3,
            1,
            1,
            MessageBody::InstallSnapshotResponse {
                last_index: last + 9,
            },
        ))
    });
    assert_eq!(refused(&r), vec![Rejection::AckBeyondLog]);
    let r = net.with(1, |n| {
        n.step(msg(
            3,
            1,
            1,
            MessageBody::HeartbeatAck { read_ctx: u64::MAX },
        ))
    });
    assert_eq!(refused(&r), vec![Rejection::UnknownReadRound]);
    net.with(1, |n| {
        let _ = n.propose(Payload::Command(b"y".to_vec()));
    });
    net.stabilize();
    assert_eq!(net.node(1).log().commit, last + 1);
}

/// A log term later than the message's own term cannot come from a correct peer.
#[test]
fn a_log_term_beyond_the_message_term_is_refused() {
    let mut net = led_by_1();
    let vote = MessageBody::Vote {
        pre_vote: true,
        last_log_index: 1,
        last_log_term: 9,
        transfer: false,
    };
    let r = net.with(2, |n| n.step(msg(3, 2, 2, vote)));
    assert_eq!(refused(&r), vec![Rejection::LogTermBeyondTerm]);
}
