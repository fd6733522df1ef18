//! Simulated clients: Jepsen-style processes with one outstanding operation each.
//!
//! A process takes the next operation from the generator real runs use too
//! ([`crate::ops::Generator`], reads, writes and cas in equal parts), sends it to a
//! node, follows `NotLeader` hints a few hops, and ends the operation as `ok`, `fail`
//! (certainly not applied) or `info` (indeterminate: a timeout or `Indeterminate`),
//! decided by the classifier real runs use ([`crate::reply`]) on the answer the real
//! node would give.
//! After `info` the process is retired and a fresh process id takes its place, as
//! Jepsen requires. This module decides; the world routes messages and keeps time.

use crate::ops::{Generator, Op, OpKind};
use crate::reply::{self, Answer, Completion};
use checker::history::EventType;
use node::raft::types::NodeId;
use node::replica::{ClientRequest, Response};
use rand_chacha::ChaCha8Rng;

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
    /// The operation ended; after `info` the process must not be used again.
    Done(Completion),
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

/// Interprets a node's answer to the pending operation: follows a `NotLeader` hint
/// (the real node forwards to its leader instead), else reads the answer as a client
/// of the real node would receive it ([`reply::replica_answer`]) and decides it with
/// the classifier real runs use ([`reply::classify`]).
pub fn on_response(p: &Pending, response: &Response) -> Outcome {
    if let Response::NotLeader { leader: Some(l) } = response
        && p.hops < MAX_HOPS
    {
        return Outcome::Redirect(*l);
    }
    let (status, body) = reply::replica_answer(&p.request.op, response);
    Outcome::Done(reply::classify(
        &p.op,
        Answer::Reply {
            status,
            body: &body,
        },
    ))
}

/// The pending operation timed out: indeterminate.
pub fn on_timeout(p: &Pending) -> Outcome {
    Outcome::Done(reply::classify(&p.op, Answer::Lost("timeout")))
}

/// Whether an ending acknowledges a write that must be in the log.
pub fn is_acknowledged_write(p: &Pending, done: &Completion) -> bool {
    p.op.kind() != OpKind::Read && done.kind == EventType::Ok
}
