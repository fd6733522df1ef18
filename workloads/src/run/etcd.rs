//! etcd's v3 JSON gateway (`POST /v3/...` on a member's client URL) over plain HTTP:
//! reads, writes, compare-and-set, status and membership. Keys and values travel
//! base64-encoded; a value is the JSON text of what the workload wrote (`17`), so a
//! read gives back exactly the JSON value.
//!
//! - read: `/v3/kv/range`, linearizable (etcd's ReadIndex) unless
//!   `--etcd-serializable-reads`, which reads the member's local state.
//! - write: `/v3/kv/put`.
//! - cas: `/v3/kv/txn` comparing the value (or, for "absent", `create_revision == 0`);
//!   on success it puts the new value, on failure it reads the key so the workload
//!   learns the current value.
//!
//! Outcomes ([`classify_error`]): an answer with a body is `ok` (a cas whose compare
//! failed is `fail` `cas_mismatch`). etcd answers errors with a gRPC code and message.
//! Only errors that etcd raises before a request reaches its Raft log are `fail` for
//! writes and cas; every other error is `info`, because the proposal may still
//! commit. Notably `etcdserver: request timed out` comes with HTTP 503 (gRPC
//! Unavailable), unlike our node, whose 503 means "certainly not applied". A read
//! changes nothing, so every read that did not get an answer is `fail`.

use super::http::{HttpClient, Reply, request};
use crate::ops::Op;
use crate::reply::Completion;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use checker::history::EventType;
use hyper::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// etcd errors raised before the request is proposed to Raft: the operation
/// certainly did not happen. Matched against the start of etcd's message.
pub const NOT_APPLIED: [&str; 10] = [
    // Rejected by the server before proposing (applied index too far behind).
    "etcdserver: too many requests",
    "etcdserver: request is too large",
    "etcdserver: key is not provided",
    "etcdserver: not capable",
    // Only with the require-leader option, checked before the handler runs.
    "etcdserver: no leader",
    // Raft refused the proposal (no leader known, leadership transfer): never in a log.
    "raft proposal dropped",
    "etcdserver: permission denied",
    "etcdserver: invalid auth token",
    "etcdserver: user name is empty",
    "etcdserver: authentication failed",
];

/// gRPC codes that mean the request never reached etcd's handler: InvalidArgument
/// (the gateway could not decode it), Unimplemented, Unauthenticated.
const NOT_APPLIED_CODES: [u64; 3] = [3, 12, 16];

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// A JSON value as etcd stores it (its JSON text, base64).
fn encode_value(v: &Value) -> String {
    b64(&v.to_string())
}

/// A stored value back to JSON; `None` when it is not what we wrote.
fn decode_value(v: &Value) -> Option<Value> {
    let bytes = B64.decode(v.as_str()?).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// etcd's JSON writes 64-bit integers as strings.
pub fn u64_of(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_u64(),
        _ => None,
    }
}

/// The value a range answer holds for its key: `Some(Null)` for absent, `None`
/// when the answer is malformed.
fn range_value(body: &Value) -> Option<Value> {
    match body.get("kvs").and_then(Value::as_array) {
        None => Some(Value::Null),
        Some(kvs) if kvs.is_empty() => Some(Value::Null),
        Some(kvs) => match kvs[0].get("value") {
            // etcd leaves out empty fields; we never write an empty value.
            None => None,
            Some(v) => decode_value(v),
        },
    }
}

/// The request for one operation: (path, body).
pub fn op_request(op: &Op, serializable: bool) -> (&'static str, Value) {
    match op {
        Op::Read { key } => {
            let mut body = json!({ "key": b64(&crate::ops::key_name(*key)) });
            if serializable {
                body["serializable"] = json!(true);
            }
            ("/v3/kv/range", body)
        }
        Op::Write { key, value } => (
            "/v3/kv/put",
            json!({ "key": b64(&crate::ops::key_name(*key)), "value": encode_value(&json!(value)) }),
        ),
        Op::Cas { key, from, to } => {
            let k = b64(&crate::ops::key_name(*key));
            let compare = if from.is_null() {
                json!({ "key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0" })
            } else {
                json!({ "key": k, "target": "VALUE", "result": "EQUAL", "value": encode_value(from) })
            };
            (
                "/v3/kv/txn",
                json!({
                    "compare": [compare],
                    "success": [{ "request_put": { "key": k, "value": encode_value(&json!(to)) } }],
                    "failure": [{ "request_range": { "key": k } }],
                }),
            )
        }
    }
}

/// Whether an etcd error reply certainly means "not applied".
pub fn classify_error(status: u16, body: &Value) -> bool {
    let message = body
        .get("message")
        .or_else(|| body.get("error"))
        .and_then(Value::as_str);
    match message {
        Some(m) => {
            NOT_APPLIED.iter().any(|p| m.starts_with(p))
                || body
                    .get("code")
                    .and_then(Value::as_u64)
                    .is_some_and(|c| NOT_APPLIED_CODES.contains(&c))
        }
        // No gRPC error body: the gateway's own router refused it (unknown path or
        // method), so etcd never saw it.
        None => status == 404 || status == 405,
    }
}

fn error_text(status: u16, body: &Value) -> String {
    body.get("message")
        .or_else(|| body.get("error"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("http_{status}"))
}

/// Maps a reply to the completion (see the module documentation).
pub fn classify(op: &Op, input: &Value, reply: &Reply) -> Completion {
    let done = Completion::new;
    let is_read = matches!(op, Op::Read { .. });
    match reply {
        Reply::Response { status: 200, body } => match op {
            Op::Read { .. } => match range_value(body) {
                Some(v) => done(EventType::Ok, v, None),
                None => done(EventType::Fail, Value::Null, Some("bad_response".into())),
            },
            Op::Write { .. } => done(EventType::Ok, input.clone(), None),
            Op::Cas { .. } => {
                if body.get("succeeded").and_then(Value::as_bool) == Some(true) {
                    done(EventType::Ok, input.clone(), None)
                } else {
                    let current = body
                        .pointer("/responses/0/response_range")
                        .and_then(range_value);
                    Completion {
                        kind: EventType::Fail,
                        value: input.clone(),
                        error: Some("cas_mismatch".into()),
                        current,
                    }
                }
            }
        },
        Reply::Response { status, body } => {
            let kind = if is_read || classify_error(*status, body) {
                EventType::Fail
            } else {
                EventType::Info
            };
            done(kind, input.clone(), Some(error_text(*status, body)))
        }
        Reply::NotSent(_) | Reply::Indeterminate(_) => {
            let kind = if is_read || matches!(reply, Reply::NotSent(_)) {
                EventType::Fail
            } else {
                EventType::Info
            };
            done(
                kind,
                input.clone(),
                reply.transport_error().map(str::to_string),
            )
        }
    }
}

/// What the runner remembers about an etcd cluster: how to read, and which of its
/// member ids is which of our members (etcd names members by 64-bit ids).
#[derive(Debug)]
pub struct Etcd {
    pub serializable: bool,
    /// Our member id by its peer address (what etcd's member list shows).
    by_peer: BTreeMap<SocketAddr, u64>,
    ids: Mutex<BTreeMap<u64, u64>>,
}

/// A status timeout: status never waits on consensus.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);
/// Membership calls go through consensus.
const MEMBER_TIMEOUT: Duration = Duration::from_secs(3);

impl Etcd {
    pub fn new(serializable: bool, peers: &BTreeMap<u64, SocketAddr>) -> Etcd {
        Etcd {
            serializable,
            by_peer: peers.iter().map(|(&id, &a)| (a, id)).collect(),
            ids: Mutex::new(BTreeMap::new()),
        }
    }

    fn ids(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, u64>> {
        match self.ids.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Our id of an etcd member id, asking `addr` for the member list when unknown.
    async fn ours(&self, http: &HttpClient, addr: SocketAddr, etcd_id: u64) -> Option<u64> {
        if let Some(&id) = self.ids().get(&etcd_id) {
            return Some(id);
        }
        let members = self.member_list(http, addr).await?;
        let mut ids = self.ids();
        for (eid, id) in members {
            ids.insert(eid, id);
        }
        ids.get(&etcd_id).copied()
    }

    /// The member list as (etcd id, our id), from `addr`.
    pub async fn member_list(
        &self,
        http: &HttpClient,
        addr: SocketAddr,
    ) -> Option<Vec<(u64, u64)>> {
        let body = query(http, addr, "/v3/cluster/member/list").await?;
        Some(self.parse_members(&body))
    }

    /// Reads (etcd id, our id) pairs out of a member list answer.
    pub fn parse_members(&self, body: &Value) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        for m in body
            .get("members")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(eid) = u64_of(m.get("ID")) else {
                continue;
            };
            let ours = m
                .get("peerURLs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .filter_map(|u| u.trim_start_matches("http://").parse::<SocketAddr>().ok())
                .find_map(|a| self.by_peer.get(&a).copied());
            if let Some(id) = ours {
                out.push((eid, id));
            }
        }
        out
    }

    /// `/v3/maintenance/status` in the node's `/status` shape: role (leader or
    /// follower; etcd does not report candidates), term and leader (our ids).
    pub async fn status(&self, http: &HttpClient, addr: SocketAddr) -> Option<Value> {
        let body = query(http, addr, "/v3/maintenance/status").await?;
        let me = u64_of(body.pointer("/header/member_id"))?;
        let term = u64_of(body.get("raftTerm")).unwrap_or(0);
        let leader = u64_of(body.get("leader")).filter(|&l| l != 0);
        let leader_ours = match leader {
            Some(l) => self.ours(http, addr, l).await,
            None => None,
        };
        let role = if leader == Some(me) {
            "leader"
        } else {
            "follower"
        };
        Some(json!({ "role": role, "term": term, "leader": leader_ours }))
    }

    /// The member list for a membership call; none is a call not made.
    async fn members_for_call(
        &self,
        http: &HttpClient,
        addr: SocketAddr,
    ) -> Result<Vec<(u64, u64)>, MemberError> {
        self.member_list(http, addr)
            .await
            .ok_or_else(|| MemberError::NotApplied(format!("no member list from {addr}")))
    }

    /// Removes our member `victim` from the cluster, asking `addr`.
    pub async fn remove_member(
        &self,
        http: &HttpClient,
        addr: SocketAddr,
        victim: u64,
    ) -> Result<(), MemberError> {
        let members = self.members_for_call(http, addr).await?;
        let Some((eid, _)) = members.iter().find(|(_, id)| *id == victim) else {
            return Ok(());
        };
        let body = json!({ "ID": eid.to_string() });
        member_call(http, addr, "/v3/cluster/member/remove", &body).await
    }

    /// Adds our member `id` (by its peer address) back, asking `addr`; returns
    /// without a call when it is already a member.
    pub async fn add_member(
        &self,
        http: &HttpClient,
        addr: SocketAddr,
        id: u64,
    ) -> Result<(), MemberError> {
        let members = self.members_for_call(http, addr).await?;
        if members.iter().any(|(_, ours)| *ours == id) {
            return Ok(());
        }
        let Some(peer) = self
            .by_peer
            .iter()
            .find(|(_, v)| **v == id)
            .map(|(a, _)| *a)
        else {
            return Err(MemberError::NotApplied(format!(
                "no peer address for n{id}"
            )));
        };
        let body = json!({ "peerURLs": [format!("http://{peer}")] });
        member_call(http, addr, "/v3/cluster/member/add", &body).await
    }
}

/// A query that does not wait on consensus (`{}` posted to `path`): its answer, or
/// `None` when there is no 200.
async fn query(http: &HttpClient, addr: SocketAddr, path: &str) -> Option<Value> {
    match request(
        http,
        Method::POST,
        addr,
        path,
        Some(&json!({})),
        STATUS_TIMEOUT,
    )
    .await
    {
        Reply::Response { status: 200, body } => Some(body),
        _ => None,
    }
}

/// Why a membership call did not (certainly) succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberError {
    /// Certainly not applied.
    NotApplied(String),
    /// Perhaps applied.
    Unknown(String),
}

async fn member_call(
    http: &HttpClient,
    addr: SocketAddr,
    path: &str,
    body: &Value,
) -> Result<(), MemberError> {
    match request(http, Method::POST, addr, path, Some(body), MEMBER_TIMEOUT).await {
        Reply::Response { status: 200, .. } => Ok(()),
        Reply::Response { status, body } => {
            let e = format!("{path}: {}", error_text(status, &body));
            // etcd refuses a change while the cluster is unhealthy or a member is
            // not started yet, before proposing it.
            let refused = classify_error(status, &body)
                || [
                    "etcdserver: unhealthy cluster",
                    "etcdserver: re-configuration failed due to not enough started members",
                    "etcdserver: member not found",
                    "etcdserver: Peer URLs already exists",
                    "etcdserver: member ID already exist",
                ]
                .iter()
                .any(|p| error_text(status, &body).starts_with(p));
            Err(if refused {
                MemberError::NotApplied(e)
            } else {
                MemberError::Unknown(e)
            })
        }
        Reply::NotSent(e) => Err(MemberError::NotApplied(format!("{path}: {e}"))),
        Reply::Indeterminate(e) => Err(MemberError::Unknown(format!("{path}: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: Value) -> Reply {
        Reply::Response { status, body }
    }

    fn grpc_error(status: u16, code: u64, message: &str) -> Reply {
        resp(
            status,
            json!({ "error": message, "code": code, "message": message }),
        )
    }

    const WRITE: Op = Op::Write { key: 0, value: 7 };

    #[test]
    fn requests_are_base64_and_cas_compares_value_or_absence() {
        let (path, body) = op_request(&Op::Read { key: 3 }, false);
        assert_eq!(path, "/v3/kv/range");
        assert_eq!(body, json!({ "key": "azM=" }));
        let (_, body) = op_request(&Op::Read { key: 3 }, true);
        assert_eq!(body["serializable"], true);
        let (path, body) = op_request(&WRITE, false);
        assert_eq!(path, "/v3/kv/put");
        assert_eq!(body, json!({ "key": "azA=", "value": "Nw==" }));
        let (path, body) = op_request(
            &Op::Cas {
                key: 0,
                from: json!(1),
                to: 2,
            },
            false,
        );
        assert_eq!(path, "/v3/kv/txn");
        assert_eq!(body["compare"][0]["target"], "VALUE");
        assert_eq!(body["compare"][0]["value"], "MQ==");
        assert_eq!(body["success"][0]["request_put"]["value"], "Mg==");
        let (_, body) = op_request(
            &Op::Cas {
                key: 0,
                from: Value::Null,
                to: 2,
            },
            false,
        );
        assert_eq!(body["compare"][0]["target"], "CREATE");
        assert_eq!(body["compare"][0]["create_revision"], "0");
    }

    #[test]
    fn answers_become_ok_or_cas_mismatch() {
        let read = Op::Read { key: 0 };
        // Shapes as etcd 3.4's gateway sends them (64-bit integers as strings, empty
        // fields left out).
        let found = json!({"header":{"revision":"2"},"kvs":[{"key":"azA=","create_revision":"2","mod_revision":"2","version":"1","value":"MTc="}],"count":"1"});
        let c = classify(&read, &Value::Null, &resp(200, found));
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(17)));
        let absent = json!({"header":{"revision":"2"}});
        let c = classify(&read, &Value::Null, &resp(200, absent));
        assert_eq!((c.kind, c.value), (EventType::Ok, Value::Null));
        let garbage = json!({"kvs":[{"key":"azA=","value":"!!"}]});
        assert_eq!(
            classify(&read, &Value::Null, &resp(200, garbage)).kind,
            EventType::Fail
        );
        let c = classify(&WRITE, &json!(7), &resp(200, json!({"header":{}})));
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(7)));
        let cas = Op::Cas {
            key: 0,
            from: json!(1),
            to: 2,
        };
        let c = classify(
            &cas,
            &json!([1, 2]),
            &resp(200, json!({"succeeded":true,"responses":[]})),
        );
        assert_eq!(c.kind, EventType::Ok);
        let mismatch = json!({"header":{},"responses":[{"response_range":{"kvs":[{"key":"azA=","value":"NQ=="}],"count":"1"}}]});
        let c = classify(&cas, &json!([1, 2]), &resp(200, mismatch));
        assert_eq!(c.kind, EventType::Fail);
        assert_eq!(c.error.as_deref(), Some("cas_mismatch"));
        assert_eq!(c.current, Some(json!(5)));
        let gone = json!({"responses":[{"response_range":{}}]});
        assert_eq!(
            classify(&cas, &json!([1, 2]), &resp(200, gone)).current,
            Some(Value::Null)
        );
    }

    #[test]
    fn only_errors_raised_before_proposing_are_fail() {
        let input = json!(7);
        let kind = |r: Reply| classify(&WRITE, &input, &r).kind;
        // Indeterminate: the proposal may commit later.
        for (status, code, msg) in [
            (503, 14, "etcdserver: request timed out"),
            (
                503,
                14,
                "etcdserver: request timed out, possibly due to previous leader failure",
            ),
            (
                503,
                14,
                "etcdserver: request timed out, possibly due to connection lost",
            ),
            (503, 14, "etcdserver: leader changed"),
            (503, 14, "etcdserver: server stopped"),
            (503, 14, "transport is closing"),
            (504, 4, "context deadline exceeded"),
            (500, 2, "something new"),
        ] {
            assert_eq!(
                kind(grpc_error(status, code, msg)),
                EventType::Info,
                "{msg}"
            );
        }
        // Certainly not applied.
        for (status, code, msg) in [
            (429, 8, "etcdserver: too many requests"),
            (429, 8, "etcdserver: request is too large"),
            (400, 3, "etcdserver: key is not provided"),
            (500, 2, "raft proposal dropped"),
            (503, 14, "etcdserver: no leader"),
            (400, 3, "unexpected EOF"),
        ] {
            assert_eq!(
                kind(grpc_error(status, code, msg)),
                EventType::Fail,
                "{msg}"
            );
        }
        assert_eq!(kind(resp(404, Value::Null)), EventType::Fail);
        assert_eq!(kind(resp(502, Value::Null)), EventType::Info);
        assert_eq!(kind(Reply::NotSent("refused".into())), EventType::Fail);
        let c = classify(&WRITE, &input, &Reply::Indeterminate("timeout".into()));
        assert_eq!(
            (c.kind, c.error.as_deref()),
            (EventType::Info, Some("timeout"))
        );
        // A read changes nothing: whatever went wrong, it did not happen.
        let read = Op::Read { key: 0 };
        let r = classify(
            &read,
            &Value::Null,
            &grpc_error(503, 14, "etcdserver: request timed out"),
        );
        assert_eq!(
            (r.kind, r.error.as_deref()),
            (EventType::Fail, Some("etcdserver: request timed out"))
        );
        assert_eq!(
            classify(&read, &Value::Null, &Reply::Indeterminate("timeout".into())).kind,
            EventType::Fail
        );
    }

    #[test]
    fn member_ids_map_to_ours_by_peer_address() {
        let peers: BTreeMap<u64, SocketAddr> = [
            (1, "127.0.0.11:2380".parse().expect("a")),
            (2, "127.0.0.12:2380".parse().expect("a")),
        ]
        .into();
        let e = Etcd::new(false, &peers);
        let list = json!({"members":[
            {"ID":"8645782499530242234","name":"n2","peerURLs":["http://127.0.0.12:2380"],"clientURLs":["http://127.0.0.12:2379"]},
            {"ID":"77","peerURLs":["http://127.0.0.11:2380"]},
            {"ID":"5","peerURLs":["http://10.0.0.1:2380"]}
        ]});
        assert_eq!(e.parse_members(&list), [(8645782499530242234, 2), (77, 1)]);
    }
}
