//! The client API as plain functions: route a request line, decode a body into a
//! [`KvOp`], encode a replica [`Response`] as HTTP status + JSON. No I/O here, so
//! every error case is unit tested.
//!
//! Errors say whether the operation certainly did not happen (docs/design.md, "HTTP API"): every
//! 4xx and 503 means "not applied", 504 means "indeterminate".

use crate::kv::{KvOp, KvResult};
use crate::raft::types::Membership;
use crate::replica::Response;
use hyper::{Method, StatusCode};
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::LazyLock;

/// Longest key accepted, in bytes after percent-decoding.
pub const MAX_KEY_BYTES: usize = 1024;

/// A JSON error answer: `{"error": code, "message": ..., ["current": x]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Only for `cas_mismatch`: the value the compare saw (`null` = absent).
    pub current: Option<Value>,
    /// Only for 405: the methods the path allows.
    pub allow: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            current: None,
            allow: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(StatusCode::GATEWAY_TIMEOUT, "timeout", message)
    }
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds {limit} bytes"),
        )
    }
    /// The request body did not arrive in time; the connection is closed.
    pub fn body_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong x-cluster-token",
        )
    }
    fn method(allow: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this path allows {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    pub fn body(&self) -> Value {
        let mut v = json!({"error": self.code, "message": self.message});
        if let Some(c) = &self.current {
            v["current"] = c.clone();
        }
        v
    }
}

/// What a request asks for, after routing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Get {
        key: String,
        stale: bool,
    },
    Put {
        key: String,
    },
    Cas {
        key: String,
    },
    Delete {
        key: String,
    },
    Status,
    Metrics,
    RaftMsg,
    RaftSnapshot,
    TransferLeader,
    MembershipGet,
    MembershipChange,
    /// Take a snapshot of this node's state now and compact its log.
    Snapshot,
}

impl Route {
    /// Client operations that only the leader may carry out.
    pub fn needs_leader(&self) -> bool {
        matches!(
            self,
            Route::Get { stale: false, .. }
                | Route::Put { .. }
                | Route::Cas { .. }
                | Route::Delete { .. }
                | Route::TransferLeader
                | Route::MembershipChange
        )
    }
    pub fn has_body(&self) -> bool {
        matches!(
            self,
            Route::Put { .. } | Route::Cas { .. } | Route::TransferLeader | Route::MembershipChange
        )
    }
    pub fn needs_token(&self) -> bool {
        matches!(
            self,
            Route::RaftMsg
                | Route::RaftSnapshot
                | Route::TransferLeader
                | Route::MembershipGet
                | Route::MembershipChange
                | Route::Snapshot
        )
    }
}

/// What a path names, before the method is looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Key,
    Cas,
    Status,
    Metrics,
    RaftMsg,
    RaftSnapshot,
    TransferLeader,
    Snapshot,
    Membership,
}

/// Every path the node serves (docs/design.md, "HTTP API"). `/kv/` names the empty
/// key, which [`decode_key`] refuses with a 400 rather than a 404.
const PATHS: [(&str, Resource); 10] = [
    ("/kv/", Resource::Key),
    ("/kv/{key}", Resource::Key),
    ("/kv/{key}/cas", Resource::Cas),
    ("/status", Resource::Status),
    ("/metrics", Resource::Metrics),
    ("/raft/msg", Resource::RaftMsg),
    ("/raft/snapshot", Resource::RaftSnapshot),
    ("/admin/transfer-leader", Resource::TransferLeader),
    ("/admin/snapshot", Resource::Snapshot),
    ("/admin/membership", Resource::Membership),
];

/// [`PATHS`] as a matchit tree. The table is constant, and a test checks that every
/// entry was inserted (an insert that failed would show there as a path not found).
static ROUTER: LazyLock<matchit::Router<Resource>> = LazyLock::new(|| {
    let mut router = matchit::Router::new();
    for (path, resource) in PATHS {
        let _ = router.insert(path, resource);
    }
    router
});

/// Maps method + path + query to a [`Route`], or the 400/404/405 that explains why not.
pub fn route(method: &Method, path: &str, query: Option<&str>) -> Result<Route, ApiError> {
    let found = ROUTER
        .at(path)
        .map_err(|_| ApiError::not_found(format!("no such path: {path}")))?;
    let key = || decode_key(found.params.get("key").unwrap_or(""));
    let only = |allowed: Method, allow: &'static str, r: Route| {
        if *method == allowed {
            Ok(r)
        } else {
            Err(ApiError::method(allow))
        }
    };
    match *found.value {
        Resource::Key => {
            let key = key()?;
            match *method {
                Method::GET => Ok(Route::Get {
                    key,
                    stale: stale_param(query)?,
                }),
                Method::PUT => Ok(Route::Put { key }),
                Method::DELETE => Ok(Route::Delete { key }),
                _ => Err(ApiError::method("GET, PUT, DELETE")),
            }
        }
        Resource::Cas => only(Method::POST, "POST", Route::Cas { key: key()? }),
        Resource::Status => only(Method::GET, "GET", Route::Status),
        Resource::Metrics => only(Method::GET, "GET", Route::Metrics),
        Resource::RaftMsg => only(Method::POST, "POST", Route::RaftMsg),
        Resource::RaftSnapshot => only(Method::POST, "POST", Route::RaftSnapshot),
        Resource::TransferLeader => only(Method::POST, "POST", Route::TransferLeader),
        Resource::Snapshot => only(Method::POST, "POST", Route::Snapshot),
        Resource::Membership => match *method {
            Method::GET => Ok(Route::MembershipGet),
            Method::POST => Ok(Route::MembershipChange),
            _ => Err(ApiError::method("GET, POST")),
        },
    }
}

/// `?stale=true` (or `1`, or a bare `stale`) asks for a local read.
fn stale_param(query: Option<&str>) -> Result<bool, ApiError> {
    let mut stale = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        if k == "stale" {
            stale = match &*v {
                "true" | "1" | "" => true,
                "false" | "0" => false,
                other => {
                    return Err(ApiError::bad_request(format!(
                        "stale must be true or false, not {other:?}"
                    )));
                }
            };
        }
    }
    Ok(stale)
}

/// Percent-decodes one path segment into a UTF-8 key. A `%` that does not start an
/// escape of two hex digits is refused: `percent_decode` would pass it through as
/// it is, and `/kv/100%` and `/kv/100%25` would name the same key.
pub fn decode_key(raw: &str) -> Result<String, ApiError> {
    let well_formed = raw.split('%').skip(1).all(|rest| {
        rest.as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(ApiError::bad_request("bad percent-encoding in key"));
    }
    let key = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::bad_request("key is not UTF-8"))?
        .into_owned();
    if key.is_empty() {
        return Err(ApiError::bad_request("empty key"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(ApiError::bad_request(format!(
            "key longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(key)
}

/// Refuses bodies that do not say they are JSON. A missing content type is accepted
/// (plain `curl -d` clients); a wrong one is a 415.
pub fn check_content_type(ct: Option<&str>) -> Result<(), ApiError> {
    let Some(ct) = ct else { return Ok(()) };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("expected application/json, got {mime}"),
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PutBody {
    value: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CasBody {
    from: Value,
    to: Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    pub to: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipBody {
    pub voters: Vec<u64>,
}

/// Checks a leader transfer target against the current configuration: only a
/// voter can lead.
pub fn check_transfer(to: u64, membership: &Membership) -> Result<(), ApiError> {
    if membership.voters.contains(&to) {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "node {to} is not a voter (voters: {:?})",
            membership.voters
        )))
    }
}

/// Checks the voters of a membership change: a non-empty set of distinct nodes
/// this node knows an address for (`--peers`). A voter nobody can reach would
/// count toward every quorum and could stop the cluster from committing.
pub fn check_voters(voters: &[u64], known: &BTreeMap<u64, SocketAddr>) -> Result<(), ApiError> {
    if voters.is_empty() {
        return Err(ApiError::bad_request("voters must not be empty"));
    }
    let distinct: BTreeSet<u64> = voters.iter().copied().collect();
    if distinct.len() != voters.len() {
        return Err(ApiError::bad_request("voters must not repeat an id"));
    }
    if let Some(unknown) = voters.iter().find(|v| !known.contains_key(v)) {
        return Err(ApiError::bad_request(format!(
            "node {unknown} is not in --peers (known: {:?}): it could not be reached",
            known.keys().collect::<Vec<_>>()
        )));
    }
    Ok(())
}

/// Decodes a JSON body into `T`, with serde's line/column reason on failure.
/// Bodies must be JSON objects: serde would otherwise also accept a struct written
/// as an array (`[1]`), which no client means.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("body must be a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(format!("body: {e}")))
}

/// The KV operation a client route asks for: the body decoded and the operation
/// validated in full (no `null` value, no value nested too deep), so that nothing
/// consensus commits can fail when it is applied.
pub fn kv_op(route: &Route, body: &[u8]) -> Result<KvOp, ApiError> {
    let op = match route {
        Route::Get { key, stale } => KvOp::Get {
            key: key.clone(),
            stale: *stale,
        },
        Route::Put { key } => {
            let b: PutBody = parse_json(body)?;
            KvOp::Put {
                key: key.clone(),
                value: b.value,
            }
        }
        Route::Cas { key } => {
            let b: CasBody = parse_json(body)?;
            KvOp::Cas {
                key: key.clone(),
                from: (!b.from.is_null()).then_some(b.from),
                to: b.to,
            }
        }
        Route::Delete { key } => KvOp::Delete { key: key.clone() },
        _ => return Err(ApiError::bad_request("not a key-value operation")),
    };
    op.validate()
        .map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    Ok(op)
}

/// Header naming the client, for exactly-once retries (with [`SEQ_HEADER`]).
pub const CLIENT_HEADER: &str = "client-id";
/// Header numbering a client's requests, for exactly-once retries.
pub const SEQ_HEADER: &str = "request-seq";

/// The `(client, seq)` a request names with `Client-Id` and `Request-Seq` (both
/// positive decimal integers below 2^64, given together), or `None` without them.
/// A write whose `(client, seq)` was already applied answers with the first result
/// instead of applying again.
pub fn request_identity(
    client: Option<&[u8]>,
    seq: Option<&[u8]>,
) -> Result<Option<(u64, u64)>, ApiError> {
    let parse = |name: &str, raw: &[u8]| -> Result<u64, ApiError> {
        let n = std::str::from_utf8(raw)
            .ok()
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|t| t.parse::<u64>().ok())
            .filter(|n| *n > 0);
        n.ok_or_else(|| {
            ApiError::bad_request(format!(
                "{name} must be a positive decimal integer below 2^64, not {:?}",
                String::from_utf8_lossy(raw)
            ))
        })
    };
    match (client, seq) {
        (None, None) => Ok(None),
        (Some(c), Some(s)) => Ok(Some((parse("Client-Id", c)?, parse("Request-Seq", s)?))),
        _ => Err(ApiError::bad_request(
            "Client-Id and Request-Seq go together: give both or neither",
        )),
    }
}

/// The HTTP status and JSON body a client receives for the replica's answer to `op`,
/// errors included: [`kv_answer`], with an error as the server sends it (its status
/// and [`ApiError::body`]). The simulator's clients read a simulated replica's
/// answers through it, so they see what a client of the server sees.
pub fn kv_reply(op: &KvOp, response: Response) -> (StatusCode, Value) {
    kv_answer(op, response).unwrap_or_else(|e| (e.status, e.body()))
}

/// The HTTP status and JSON body for the replica's answer to `op`, an error as an
/// [`ApiError`]. `Response::NotLeader` is handled by the caller (it forwards); here
/// it is a 503.
pub fn kv_answer(op: &KvOp, response: Response) -> Result<(StatusCode, Value), ApiError> {
    match response {
        Response::Done(KvResult::Value(v)) => match op {
            KvOp::Get { key, .. } => match v {
                Some(v) => Ok((StatusCode::OK, json!({"key": key, "value": v}))),
                None => Err(ApiError::not_found(format!("key {key:?} not found"))),
            },
            KvOp::Delete { key } => Ok((StatusCode::OK, json!({"key": key, "deleted": true}))),
            KvOp::Put { key, .. } | KvOp::Cas { key, .. } | KvOp::Append { key, .. } => {
                Ok((StatusCode::OK, json!({"key": key, "value": v})))
            }
        },
        Response::Done(KvResult::CasMismatch { current }) => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "cas_mismatch",
                "the current value differs from `from`",
            );
            e.current = Some(current.unwrap_or(Value::Null));
            Err(e)
        }
        Response::NotLeader { leader } => Err(ApiError::unavailable(match leader {
            Some(l) => format!("not the leader; node {l} is"),
            None => "no leader known".to_string(),
        })),
        Response::Indeterminate => Err(ApiError::timeout(
            "leadership changed before the operation committed; it may or may not take effect",
        )),
        Response::Rejected { reason } => Err(ApiError::unavailable(reason)),
        Response::Invalid { reason } => Err(ApiError::bad_request(format!(
            "not applied: the committed command was skipped ({reason})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(m: Method, p: &str) -> Result<Route, ApiError> {
        route(&m, p, None)
    }

    #[test]
    fn routes_the_documented_paths() {
        assert_eq!(
            route(&Method::GET, "/kv/a%20b", Some("stale=true")),
            Ok(Route::Get {
                key: "a b".into(),
                stale: true
            })
        );
        assert_eq!(r(Method::PUT, "/kv/k"), Ok(Route::Put { key: "k".into() }));
        assert_eq!(
            r(Method::POST, "/kv/k/cas"),
            Ok(Route::Cas { key: "k".into() })
        );
        assert_eq!(r(Method::GET, "/status"), Ok(Route::Status));
        assert_eq!(r(Method::POST, "/raft/msg"), Ok(Route::RaftMsg));
        assert_eq!(r(Method::POST, "/raft/snapshot"), Ok(Route::RaftSnapshot));
        assert!(r(Method::GET, "/raft/snapshot").is_err());
        assert_eq!(r(Method::POST, "/admin/snapshot"), Ok(Route::Snapshot));
        assert!(r(Method::GET, "/admin/snapshot").is_err());
        assert!(Route::Snapshot.needs_token() && !Route::Snapshot.needs_leader());
    }

    #[test]
    fn unknown_paths_wrong_methods_and_bad_keys_are_rejected() {
        assert_eq!(r(Method::GET, "/nope/x").unwrap_err().status, 404);
        assert_eq!(r(Method::GET, "/kv/a/b").unwrap_err().status, 404);
        let e = r(Method::POST, "/kv/k").unwrap_err();
        assert_eq!(
            (e.status, e.allow),
            (StatusCode::METHOD_NOT_ALLOWED, Some("GET, PUT, DELETE"))
        );
        assert_eq!(r(Method::GET, "/kv/").unwrap_err().code, "bad_request");
        assert_eq!(r(Method::GET, "/kv/%zz").unwrap_err().code, "bad_request");
        assert_eq!(r(Method::GET, "/kv/%ff").unwrap_err().code, "bad_request");
        let long = format!("/kv/{}", "k".repeat(MAX_KEY_BYTES + 1));
        assert_eq!(r(Method::GET, &long).unwrap_err().code, "bad_request");
        assert!(route(&Method::GET, "/kv/k", Some("stale=maybe")).is_err());
        for bad in ["/kv/%", "/kv/a%2", "/kv/%2g", "/kv/%%41", "/kv/a%2F%"] {
            assert_eq!(
                r(Method::GET, bad).unwrap_err().code,
                "bad_request",
                "{bad}"
            );
        }
        // A bad key is refused before the method is looked at.
        assert_eq!(
            r(Method::POST, "/kv/%zz/cas").unwrap_err().code,
            "bad_request"
        );
        assert_eq!(r(Method::GET, "/status/").unwrap_err().status, 404);
    }

    #[test]
    fn keys_are_percent_decoded() {
        let key = |p: &str| match r(Method::PUT, p) {
            Ok(Route::Put { key }) => key,
            other => panic!("{p}: {other:?}"),
        };
        assert_eq!(key("/kv/a%2Fb"), "a/b");
        assert_eq!(key("/kv/100%25"), "100%");
        assert_eq!(key("/kv/%E2%9C%93%e2%9c%93"), "\u{2713}\u{2713}");
        assert_eq!(key("/kv/a+b"), "a+b");
    }

    #[test]
    fn every_path_of_the_table_is_routed() {
        for (path, resource) in PATHS {
            let path = path.replace("{key}", "k");
            let found = ROUTER.at(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(*found.value, resource, "{path}");
        }
    }

    #[test]
    fn bodies_must_have_the_documented_shape() {
        let put = Route::Put { key: "a".into() };
        assert!(kv_op(&put, b"{not json").is_err());
        assert!(kv_op(&put, br#"{"val":1}"#).is_err());
        assert!(kv_op(&put, b"[1]").is_err());
        assert_eq!(
            kv_op(&put, br#"{"value":[1,"x"]}"#),
            Ok(KvOp::Put {
                key: "a".into(),
                value: json!([1, "x"])
            })
        );
        let cas = Route::Cas { key: "a".into() };
        assert!(kv_op(&cas, br#"{"from":1}"#).is_err());
        assert_eq!(
            kv_op(&cas, br#"{"from":null,"to":2}"#),
            Ok(KvOp::Cas {
                key: "a".into(),
                from: None,
                to: json!(2)
            })
        );
    }

    #[test]
    fn content_types() {
        assert!(check_content_type(None).is_ok());
        assert!(check_content_type(Some("application/json; charset=utf-8")).is_ok());
        assert_eq!(
            check_content_type(Some("text/plain")).unwrap_err().status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
    }

    #[test]
    fn answers_map_to_documented_statuses() {
        let get = KvOp::Get {
            key: "k".into(),
            stale: false,
        };
        let ok = kv_answer(&get, Response::Done(KvResult::Value(Some(json!(3))))).expect("ok");
        assert_eq!(ok, (StatusCode::OK, json!({"key": "k", "value": 3})));
        let missing = kv_answer(&get, Response::Done(KvResult::Value(None))).unwrap_err();
        assert_eq!(missing.status, StatusCode::NOT_FOUND);
        let cas = KvOp::Cas {
            key: "k".into(),
            from: None,
            to: json!(1),
        };
        let e = kv_answer(
            &cas,
            Response::Done(KvResult::CasMismatch {
                current: Some(json!(7)),
            }),
        )
        .unwrap_err();
        assert_eq!(e.status, StatusCode::CONFLICT);
        assert_eq!(e.body()["current"], json!(7));
        assert_eq!(
            kv_answer(&cas, Response::Indeterminate).unwrap_err().status,
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            kv_answer(&cas, Response::Rejected { reason: "x".into() })
                .unwrap_err()
                .status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[test]
    fn null_and_too_deep_values_are_refused_before_consensus() {
        let put = Route::Put { key: "a".into() };
        let cas = Route::Cas { key: "a".into() };
        let e = kv_op(&put, br#"{"value":null}"#).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "bad_request"));
        assert!(kv_op(&cas, br#"{"from":1,"to":null}"#).is_err());
        assert!(kv_op(&cas, br#"{"from":null,"to":1}"#).is_ok());
        let deep = |d: usize| format!(r#"{{"value":{}{}}}"#, "[".repeat(d), "]".repeat(d));
        assert!(kv_op(&put, deep(crate::kv::MAX_VALUE_DEPTH).as_bytes()).is_ok());
        let e = kv_op(&put, deep(126).as_bytes()).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST, "{}", e.message);
    }

    #[test]
    fn request_identity_headers_are_both_or_neither_and_positive() {
        let id = |c: Option<&str>, s: Option<&str>| {
            request_identity(c.map(str::as_bytes), s.map(str::as_bytes))
        };
        assert_eq!(id(None, None), Ok(None));
        assert_eq!(id(Some("7"), Some("42")), Ok(Some((7, 42))));
        assert_eq!(
            id(Some("18446744073709551615"), Some("1")),
            Ok(Some((u64::MAX, 1)))
        );
        for (c, s) in [
            (Some("7"), None),
            (None, Some("1")),
            (Some("0"), Some("1")),
            (Some("7"), Some("0")),
            (Some("-7"), Some("1")),
            (Some("+7"), Some("1")),
            (Some(" 7"), Some("1")),
            (Some("7x"), Some("1")),
            (Some(""), Some("1")),
            (Some("18446744073709551616"), Some("1")),
        ] {
            let e = id(c, s).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{c:?} {s:?}");
        }
    }

    #[test]
    fn admin_targets_must_be_members_the_node_can_reach() {
        let m = Membership {
            voters: [1, 2, 3].into_iter().collect(),
            learners: [4].into_iter().collect(),
            ..Membership::default()
        };
        assert!(check_transfer(2, &m).is_ok());
        for bad in [0, 4, 9] {
            assert_eq!(
                check_transfer(bad, &m).unwrap_err().status,
                StatusCode::BAD_REQUEST
            );
        }
        let addr: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let known: BTreeMap<u64, SocketAddr> = (1..=3).map(|i| (i, addr)).collect();
        assert!(check_voters(&[1, 3], &known).is_ok());
        for bad in [&[][..], &[1, 1], &[1, 9], &[0, 1]] {
            assert!(check_voters(bad, &known).is_err(), "{bad:?}");
        }
    }
}
