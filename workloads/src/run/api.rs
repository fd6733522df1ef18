//! The client protocols, behind one door: an operation, a member's status in the
//! node's `/status` shape, and a readiness probe. The workload, the status poller and
//! the runner call these and never learn which store answers.
//!
//! - [`Api::Node`]: this project's node HTTP API (outcomes in [`crate::reply`], the
//!   classifier the simulator uses too).
//! - [`Api::Etcd`]: etcd's v3 JSON gateway ([`super::etcd`]).

use super::etcd::{self, Etcd};
use super::http::{HttpClient, Reply, request, request_with};
use super::target::{Probe, Protocol};
use crate::ops::Op;
use crate::reply::{self, Completion};
use hyper::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// How long a status or probe request may take: neither waits on consensus.
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// One target's client protocol, with what it remembers about the cluster.
#[derive(Clone, Debug)]
pub enum Api {
    Node,
    Etcd(Arc<Etcd>),
}

impl Api {
    /// `peers`: every member's peer address (etcd's member list names members by it).
    pub fn new(
        protocol: Protocol,
        serializable_reads: bool,
        peers: &BTreeMap<u64, SocketAddr>,
    ) -> Api {
        match protocol {
            Protocol::Node => Api::Node,
            Protocol::Etcd => Api::Etcd(Arc::new(Etcd::new(serializable_reads, peers))),
        }
    }

    pub fn protocol(&self) -> Protocol {
        match self {
            Api::Node => Protocol::Node,
            Api::Etcd(_) => Protocol::Etcd,
        }
    }

    /// Sends one operation to `addr` and says how it ended. `input` is the value the
    /// invoke recorded; `identity` are the exactly-once headers our node reads (other
    /// protocols ignore them).
    pub async fn execute(
        &self,
        http: &HttpClient,
        addr: SocketAddr,
        op: &Op,
        input: &Value,
        identity: &[(&str, String)],
        timeout: Duration,
    ) -> Completion {
        match self {
            Api::Node => {
                let (method, path, body) = node_request(op);
                let reply =
                    request_with(http, method, addr, &path, body.as_ref(), identity, timeout).await;
                reply::classify(op, reply.answer())
            }
            Api::Etcd(e) => {
                let (path, body) = etcd::op_request(op, e.serializable);
                let reply = request(http, Method::POST, addr, path, Some(&body), timeout).await;
                etcd::classify(op, input, &reply)
            }
        }
    }

    /// A member's status as `{"role", "term", "leader"}` (our member ids), or `None`
    /// when it does not answer.
    pub async fn status(&self, http: &HttpClient, addr: SocketAddr) -> Option<Value> {
        match self {
            Api::Node => {
                match request(http, Method::GET, addr, "/status", None, STATUS_TIMEOUT).await {
                    Reply::Response { status: 200, body } => Some(body),
                    _ => None,
                }
            }
            Api::Etcd(e) => e.status(http, addr).await,
        }
    }
}

/// The node API request for one operation: (method, path, body).
fn node_request(op: &Op) -> (Method, String, Option<Value>) {
    match op {
        Op::Read { key } => (
            Method::GET,
            format!("/kv/{}", crate::ops::key_name(*key)),
            None,
        ),
        Op::Write { key, value } => (
            Method::PUT,
            format!("/kv/{}", crate::ops::key_name(*key)),
            Some(json!({ "value": value })),
        ),
        Op::Cas { key, from, to } => (
            Method::POST,
            format!("/kv/{}/cas", crate::ops::key_name(*key)),
            Some(json!({ "from": from, "to": to })),
        ),
    }
}

/// Whether a member passes the target's readiness probe.
pub async fn probe(http: &HttpClient, addr: SocketAddr, p: &Probe) -> bool {
    let method = if p.method == "POST" {
        Method::POST
    } else {
        Method::GET
    };
    let body: Option<Value> = p
        .body
        .as_deref()
        .map(|b| serde_json::from_str(b).unwrap_or_else(|_| Value::String(b.to_string())));
    matches!(
        request(http, method, addr, &p.path, body.as_ref(), STATUS_TIMEOUT).await,
        Reply::Response { status, .. } if status == p.status
    )
}
