//! Simulated clients: Jepsen-style processes with one outstanding operation each.
//!
//! A process takes the next operation from the generator real runs use too
//! ([`crate::ops::Generator`], reads, writes and cas in equal parts), sends it to a
//! node, follows `NotLeader` hints a few hops, and ends the operation as `ok`, `fail`
//! (certainly not applied) or `info` (indeterminate: a timeout or `Indeterminate`).
//! After `info` the process is retired and a fresh process id takes its place, as
//! Jepsen requires. This module decides; the world routes messages and keeps time.

use crate::ops::{Generator, Op, OpKind};
use checker::history::EventType;
use node::kv::KvResult;
use node::raft::types::NodeId;
use node::replica::{ClientRequest, Response};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

/// How many `NotLeader` redirects one operation follows before it fails.
pub const MAX_HOPS: u32 = 3;
pub const KEYS: u64 = 3;

/// The operation a process has outstanding.
#[derive(Clone, Debug)]
pub struct Pending {
    pub op: Op,
    pub request: ClientRequest,
    /// Distinguishes this operation's replies and timeout from older ones.
    pub op_id: u64,
    pub hops: u32,
    pub invoked_ns: u64,
}

/// One client slot; `process` changes when the old process is retired.
#[derive(Debug)]
pub struct Client {
    pub process: u64,
    pub seq: u64,
    pub pending: Option<Pending>,
}

/// The end of one operation, for the world to record and act on.
pub enum Outcome {
    /// Resend the same request (same `(client, seq)`, so retries deduplicate) to `node`.
    Redirect(NodeId),
    /// The operation ended as `kind` with `value` (and why, for fail and info);
    /// `retire` when the process must not be used again.
    Done {
        kind: EventType,
        value: Value,
        error: Option<&'static str>,
        retire: bool,
    },
}

/// The `ClientRequest::client` of a process: never 0, which means "no deduplication".
pub fn client_id(process: u64) -> u64 {
    process + 1
}

/// Picks the next operation. `force_write` makes it a write (the liveness probe).
pub fn next_op(
    rng: &mut ChaCha8Rng,
    client: &mut Client,
    generator: &Generator,
    force_write: bool,
    op_id: u64,
    now_ns: u64,
) -> Pending {
    let op = generator.next(rng, force_write.then_some(OpKind::Write));
    client.seq += 1;
    Pending {
        request: ClientRequest {
            client: client_id(client.process),
            seq: client.seq,
            op: op.kv_op(),
        },
        op,
        op_id,
        hops: 0,
        invoked_ns: now_ns,
    }
}

fn end(kind: EventType, value: Value, error: Option<&'static str>) -> Outcome {
    Outcome::Done {
        kind,
        value,
        error,
        retire: kind == EventType::Info,
    }
}

/// Interprets a node's answer to the pending operation.
pub fn on_response(p: &Pending, response: &Response) -> Outcome {
    match response {
        Response::Done(KvResult::Value(v)) => {
            let value = if p.op.kind() == OpKind::Read {
                v.clone().unwrap_or(Value::Null)
            } else {
                p.op.input()
            };
            end(EventType::Ok, value, None)
        }
        Response::Done(KvResult::CasMismatch { .. }) => {
            end(EventType::Fail, p.op.input(), Some("cas_mismatch"))
        }
        Response::NotLeader { leader: Some(l) } if p.hops < MAX_HOPS => Outcome::Redirect(*l),
        Response::NotLeader { .. } => end(EventType::Fail, p.op.input(), Some("not_leader")),
        Response::Rejected { .. } | Response::Invalid { .. } => {
            end(EventType::Fail, p.op.input(), Some("rejected"))
        }
        Response::Indeterminate => end(EventType::Info, p.op.input(), Some("indeterminate")),
    }
}

/// The pending operation timed out: indeterminate.
pub fn on_timeout(p: &Pending) -> Outcome {
    end(EventType::Info, p.op.input(), Some("timeout"))
}

/// Whether an `ok` answer acknowledges a write that must be in the log.
pub fn is_acknowledged_write(p: &Pending, response: &Response) -> bool {
    p.op.kind() != OpKind::Read && matches!(response, Response::Done(KvResult::Value(_)))
}
