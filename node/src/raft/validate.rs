//! Peer messages no correct node sends, refused at the door.
//!
//! Raft is not Byzantine-tolerant: a peer holding the cluster token can always lie
//! plausibly. But some lies cannot be plausible, and a node must neither panic, nor
//! freeze, nor wrap around on them: they are refused before they change anything,
//! and the driver counts them (`/metrics`) and logs the first of each kind.
//!
//! - The sender is id 0, or (for a node that joins by discovery, whose `peers` are
//!   its whole address book: it can answer no one else) a node neither in its
//!   address book nor in its configuration.
//! - The term is more than [`MAX_TERM_STEP`] ahead of the receiver's, or above
//!   [`MAX_TERM`]. A correct peer's term runs ahead only by the elections it started
//!   on its own; with PreVote (on by default) that is none, and without it one per
//!   election timeout: 2^32 of them is about 20 years at 150 ms. Refusing such terms
//!   (rather than adopting them) keeps one message from pinning the cluster at
//!   2^64-1, where `term + 1` no longer exists.
//! - A log term above the message's term (a candidate's last term, an Append's
//!   entries or previous term, a snapshot's last term): no log holds entries of a
//!   term later than its owner's.
//! - Append entries that are not `prev_index + 1, prev_index + 2, ...` one by one
//!   with terms that never decrease.
//! - At a leader, in its term: an acknowledgement (Append answer, snapshot answer)
//!   of an index beyond its log, or an echo of a read round it never started. Only
//!   its own log can have been sent in its term, a leader never shortens its log
//!   while it leads, and a node never leads a term twice (a restarted node, whose
//!   log and read rounds may be shorter than what its earlier life sent, is no
//!   leader in that term).

use super::types::{Entry, Index, Message, MessageBody, NodeId, Term};
use super::{Raft, Role};

/// The furthest a message may move the receiver's term forward.
pub const MAX_TERM_STEP: Term = 1 << 32;
/// No term above this is accepted or reached; counting up to it from 0 would take
/// billions of years of elections.
pub const MAX_TERM: Term = 1 << 62;

/// Why a peer message was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rejection {
    UnknownSender,
    TermTooFar,
    LogTermBeyondTerm,
    EntriesNotContiguous,
    EntryTermsDecrease,
    AckBeyondLog,
    UnknownReadRound,
}

impl Rejection {
    pub const ALL: [Rejection; 7] = [
        Rejection::UnknownSender,
        Rejection::TermTooFar,
        Rejection::LogTermBeyondTerm,
        Rejection::EntriesNotContiguous,
        Rejection::EntryTermsDecrease,
        Rejection::AckBeyondLog,
        Rejection::UnknownReadRound,
    ];

    /// A short name, for metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::UnknownSender => "unknown_sender",
            Rejection::TermTooFar => "term_too_far",
            Rejection::LogTermBeyondTerm => "log_term_beyond_term",
            Rejection::EntriesNotContiguous => "entries_not_contiguous",
            Rejection::EntryTermsDecrease => "entry_terms_decrease",
            Rejection::AckBeyondLog => "ack_beyond_log",
            Rejection::UnknownReadRound => "unknown_read_round",
        }
    }

    /// What the peer did, for logs.
    pub fn describe(self) -> &'static str {
        match self {
            Rejection::UnknownSender => "the sender is not a known node",
            Rejection::TermTooFar => "its term is too far beyond ours",
            Rejection::LogTermBeyondTerm => "it names a log term later than its own term",
            Rejection::EntriesNotContiguous => "its entries do not follow prev_index one by one",
            Rejection::EntryTermsDecrease => "the terms of its entries decrease",
            Rejection::AckBeyondLog => "it acknowledges an index beyond our log",
            Rejection::UnknownReadRound => "it echoes a read round we never started",
        }
    }
}

impl Raft {
    /// Whether `m` could come from a correct peer; see the module documentation.
    pub(super) fn check_message(&self, m: &Message) -> Result<(), Rejection> {
        if !self.known_sender(m.from) {
            return Err(Rejection::UnknownSender);
        }
        if m.term > MAX_TERM || m.term > self.term.saturating_add(MAX_TERM_STEP) {
            return Err(Rejection::TermTooFar);
        }
        let leading = self.role == Role::Leader && m.term == self.term;
        let last = self.log.last_index();
        match &m.body {
            MessageBody::Vote { last_log_term, .. } if *last_log_term > m.term => {
                Err(Rejection::LogTermBeyondTerm)
            }
            MessageBody::Append {
                prev_index,
                prev_term,
                entries,
                ..
            } => check_entries(m.term, *prev_index, *prev_term, entries),
            MessageBody::InstallSnapshot { snapshot } if snapshot.meta.last_term > m.term => {
                Err(Rejection::LogTermBeyondTerm)
            }
            MessageBody::AppendResponse {
                match_index,
                read_ctx,
                ..
            } if leading => {
                if *match_index > last {
                    Err(Rejection::AckBeyondLog)
                } else if *read_ctx > self.reads.last_round() {
                    Err(Rejection::UnknownReadRound)
                } else {
                    Ok(())
                }
            }
            MessageBody::InstallSnapshotResponse { last_index }
                if leading && *last_index > last =>
            {
                Err(Rejection::AckBeyondLog)
            }
            MessageBody::HeartbeatAck { read_ctx }
                if leading && *read_ctx > self.reads.last_round() =>
            {
                Err(Rejection::UnknownReadRound)
            }
            _ => Ok(()),
        }
    }

    /// Not id 0; with discovery, a node of the address book or of the current
    /// configuration. (Without discovery `peers` are only the initial voters, and
    /// a node added later may speak before the receiver's configuration names it.)
    fn known_sender(&self, id: NodeId) -> bool {
        let m = &self.membership;
        id != 0
            && (!self.cfg.discover
                || self.cfg.peers.contains(&id)
                || m.voters.contains(&id)
                || m.learners.contains(&id)
                || m.voters_old.as_ref().is_some_and(|o| o.contains(&id)))
    }
}

/// The entries of an Append run `prev_index + 1, prev_index + 2, ...` with terms that
/// never decrease, from `prev_term`, and never pass the message's term.
fn check_entries(
    term: Term,
    prev_index: Index,
    prev_term: Term,
    entries: &[Entry],
) -> Result<(), Rejection> {
    if prev_term > term {
        return Err(Rejection::LogTermBeyondTerm);
    }
    let mut want = prev_index;
    let mut last_term = prev_term;
    for e in entries {
        want = want.checked_add(1).ok_or(Rejection::EntriesNotContiguous)?;
        if e.index != want {
            return Err(Rejection::EntriesNotContiguous);
        }
        if e.term > term {
            return Err(Rejection::LogTermBeyondTerm);
        }
        if e.term < last_term {
            return Err(Rejection::EntryTermsDecrease);
        }
        last_term = e.term;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Payload;

    fn e(index: Index, term: Term) -> Entry {
        Entry {
            index,
            term,
            payload: Payload::Noop,
        }
    }

    #[test]
    fn entries_must_follow_prev_index_one_by_one() {
        assert_eq!(check_entries(3, 5, 2, &[e(6, 2), e(7, 3)]), Ok(()));
        assert_eq!(check_entries(3, 5, 2, &[]), Ok(()));
        let gap = Err(Rejection::EntriesNotContiguous);
        assert_eq!(check_entries(3, 5, 2, &[e(6, 2), e(8, 2)]), gap);
        assert_eq!(check_entries(3, 5, 2, &[e(7, 2), e(6, 2)]), gap);
        assert_eq!(check_entries(3, 5, 2, &[e(5, 2)]), gap);
        assert_eq!(check_entries(3, 5, 2, &[e(6, 2), e(6, 2)]), gap);
        assert_eq!(
            check_entries(3, Index::MAX - 1, 2, &[e(Index::MAX, 2), e(0, 2)]),
            gap
        );
        assert_eq!(
            check_entries(3, 5, 2, &[e(6, 3), e(7, 2)]),
            Err(Rejection::EntryTermsDecrease)
        );
        assert_eq!(
            check_entries(3, 5, 2, &[e(6, 4)]),
            Err(Rejection::LogTermBeyondTerm)
        );
        assert_eq!(
            check_entries(3, 5, 4, &[]),
            Err(Rejection::LogTermBeyondTerm)
        );
    }

    #[test]
    fn every_rejection_has_a_distinct_name() {
        let names: std::collections::BTreeSet<&str> =
            Rejection::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), Rejection::ALL.len());
    }
}
