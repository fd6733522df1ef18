//! What the wipe fault asks of the nodes: whether a node votes as the incarnation it
//! is (a node that lost its data directory reports itself a learner until the
//! leader re-admits its new incarnation).

use super::http::{HttpClient, Reply, request};
use hyper::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

const STATUS_TIMEOUT: Duration = Duration::from_millis(300);
const POLL: Duration = Duration::from_millis(200);

/// Whether the node at `addr` answers `/status` as a voter (follower, candidate or
/// leader, not learner).
async fn votes(http: &HttpClient, addr: SocketAddr) -> bool {
    match request(http, Method::GET, addr, "/status", None, STATUS_TIMEOUT).await {
        Reply::Response { status: 200, body } => body
            .get("role")
            .and_then(Value::as_str)
            .is_some_and(|r| r != "learner"),
        _ => false,
    }
}

/// Whether every node of `voters` answers as a voter.
pub async fn every_voter_votes(
    http: &HttpClient,
    addrs: &BTreeMap<u64, SocketAddr>,
    voters: &[u64],
) -> bool {
    for id in voters {
        let Some(&addr) = addrs.get(id) else {
            return false;
        };
        if !votes(http, addr).await {
            return false;
        }
    }
    true
}

/// Waits until the node at `addr` answers as a voter, up to `deadline`.
pub async fn wait_voting(http: &HttpClient, addr: SocketAddr, deadline: Instant) -> bool {
    loop {
        if votes(http, addr).await {
            return true;
        }
        if Instant::now() + POLL >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}
