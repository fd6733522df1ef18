//! Simulated clients: Jepsen-style processes with one outstanding operation each.
//!
//! A process picks an operation (read, write of a unique value, or cas), sends it to a
//! node, follows `NotLeader` hints a few hops, and ends the operation as `ok`, `fail`
//! (certainly not applied) or `info` (indeterminate: a timeout or `Indeterminate`).
//! After `info` the process is retired and a fresh process id takes its place, as
//! Jepsen requires. This module decides; the world routes messages and keeps time.

use super::history::{Event, Kind, Who};
use node::kv::{KvOp, KvResult};
use node::raft::types::NodeId;
use node::replica::{ClientRequest, Response};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

/// How many `NotLeader` redirects one operation follows before it fails.
pub const MAX_HOPS: u32 = 3;
pub const KEYS: u64 = 3;

/// The operation a process has outstanding.
#[derive(Clone, Debug)]
pub struct Pending {
    pub f: &'static str,
    pub key: String,
    pub value: Value,
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
    /// The operation ended; `retire` when the process must not be used again.
    Done { event: Event, retire: bool },
}

/// The `ClientRequest::client` of a process: never 0, which means "no deduplication".
pub fn client_id(process: u64) -> u64 {
    process + 1
}

/// Picks the next operation. `force_write` makes it a write (the liveness probe).
/// `last_written[k]` is the last value written to key k, so cas often matches.
pub fn next_op(
    rng: &mut ChaCha8Rng,
    client: &mut Client,
    next_value: &mut u64,
    last_written: &mut [Option<u64>],
    force_write: bool,
    op_id: u64,
    now_ns: u64,
) -> Pending {
    let k = rng.random_range(0..KEYS);
    let key = format!("k{k}");
    let roll = if force_write {
        1
    } else {
        rng.random_range(0..3u32)
    };
    client.seq += 1;
    let (f, value, op) = match roll {
        0 => (
            "read",
            Value::Null,
            KvOp::Get {
                key: key.clone(),
                stale: false,
            },
        ),
        1 => {
            *next_value += 1;
            let v = *next_value;
            last_written[k as usize] = Some(v);
            (
                "write",
                json!(v),
                KvOp::Put {
                    key: key.clone(),
                    value: json!(v),
                },
            )
        }
        _ => {
            *next_value += 1;
            let to = *next_value;
            let from = last_written[k as usize];
            last_written[k as usize] = Some(to);
            (
                "cas",
                json!([from, to]),
                KvOp::Cas {
                    key: key.clone(),
                    from: from.map(|v| json!(v)),
                    to: json!(to),
                },
            )
        }
    };
    Pending {
        f,
        key,
        value,
        request: ClientRequest {
            client: client_id(client.process),
            seq: client.seq,
            op,
        },
        op_id,
        hops: 0,
        invoked_ns: now_ns,
    }
}

/// The invoke event of an operation.
pub fn invoke_event(process: u64, p: &Pending) -> Event {
    Event {
        time_ns: p.invoked_ns,
        who: Who::Client(process),
        kind: Kind::Invoke,
        f: p.f,
        key: Some(p.key.clone()),
        value: p.value.clone(),
        error: None,
    }
}

fn end(
    process: u64,
    p: &Pending,
    now_ns: u64,
    kind: Kind,
    value: Value,
    error: Option<&'static str>,
) -> Outcome {
    Outcome::Done {
        event: Event {
            time_ns: now_ns,
            who: Who::Client(process),
            kind,
            f: p.f,
            key: Some(p.key.clone()),
            value,
            error,
        },
        retire: kind == Kind::Info,
    }
}

/// Interprets a node's answer to the pending operation.
pub fn on_response(process: u64, p: &Pending, response: &Response, now_ns: u64) -> Outcome {
    match response {
        Response::Done(KvResult::Value(v)) => {
            let value = if p.f == "read" {
                v.clone().unwrap_or(Value::Null)
            } else {
                p.value.clone()
            };
            end(process, p, now_ns, Kind::Ok, value, None)
        }
        Response::Done(KvResult::CasMismatch { .. }) => end(
            process,
            p,
            now_ns,
            Kind::Fail,
            p.value.clone(),
            Some("cas_mismatch"),
        ),
        Response::NotLeader { leader: Some(l) } if p.hops < MAX_HOPS => Outcome::Redirect(*l),
        Response::NotLeader { .. } => end(
            process,
            p,
            now_ns,
            Kind::Fail,
            p.value.clone(),
            Some("not_leader"),
        ),
        Response::Rejected { .. } | Response::Invalid { .. } => end(
            process,
            p,
            now_ns,
            Kind::Fail,
            p.value.clone(),
            Some("rejected"),
        ),
        Response::Indeterminate => end(
            process,
            p,
            now_ns,
            Kind::Info,
            p.value.clone(),
            Some("indeterminate"),
        ),
    }
}

/// The pending operation timed out: indeterminate.
pub fn on_timeout(process: u64, p: &Pending, now_ns: u64) -> Outcome {
    end(
        process,
        p,
        now_ns,
        Kind::Info,
        p.value.clone(),
        Some("timeout"),
    )
}

/// Whether an `ok` answer acknowledges a write that must be in the log.
pub fn is_acknowledged_write(p: &Pending, response: &Response) -> bool {
    p.f != "read" && matches!(response, Response::Done(KvResult::Value(_)))
}
