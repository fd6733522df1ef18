//! One-line descriptions of peer messages for event traces.

use node::engine::PeerMessage;
use node::raft::types::{Message, MessageBody};

/// A short description of a message for traces.
pub(super) fn describe(m: &PeerMessage) -> String {
    match m {
        PeerMessage::Raft(m) => describe_raft(m),
        PeerMessage::MultiPaxos(m) => format!("{} -> {}: {:?}", m.from, m.to, m.body),
        PeerMessage::BasicPaxos(m) => format!("{} -> {}: {:?}", m.from, m.to, m.body),
    }
}

fn describe_raft(m: &Message) -> String {
    let body = match &m.body {
        MessageBody::Vote {
            pre_vote,
            last_log_index,
            last_log_term,
            ..
        } => format!("vote pre={pre_vote} last=({last_log_index},{last_log_term})"),
        MessageBody::VoteResponse { pre_vote, granted } => {
            format!("vote-resp pre={pre_vote} granted={granted}")
        }
        MessageBody::Append {
            prev_index,
            prev_term,
            entries,
            commit,
            ..
        } => format!(
            "append prev=({prev_index},{prev_term}) n={} commit={commit}",
            entries.len()
        ),
        MessageBody::AppendResponse {
            success,
            match_index,
            ..
        } => format!("append-resp ok={success} match={match_index}"),
        MessageBody::InstallSnapshot { snapshot } => {
            format!("snapshot last={}", snapshot.meta.last_index)
        }
        MessageBody::InstallSnapshotResponse { last_index } => {
            format!("snapshot-resp last={last_index}")
        }
        MessageBody::TimeoutNow => "timeout-now".to_string(),
        MessageBody::HeartbeatAck { read_ctx } => format!("heartbeat-ack ctx={read_ctx}"),
        MessageBody::Discover => "discover".to_string(),
        MessageBody::DiscoverReply { asker, cluster, .. } => {
            format!("discover-reply asker={asker:x} cluster={cluster:x}")
        }
    };
    format!(
        "{}->{} t{} i{:x} {body}",
        m.from, m.to, m.term, m.incarnation
    )
}
