//! Membership changes through the node's admin API: remove one voter, keep it out,
//! add it back. The node changes its configuration by joint consensus, so a removal
//! exercises the joint phase twice (out and back in) while clients keep going.
//!
//! Admin calls fail in ordinary ways (no leader yet, 503 while another change is in
//! flight, 504 when the change's outcome is unknown). Those are retried within the
//! fault window and written down; they never end the run. A 504 or a broken
//! connection may still have changed the configuration, so a voter counts as removed
//! from the first call that may have reached a node until the configuration is seen
//! whole again.

use super::http::{HttpClient, Reply, request};
use hyper::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// One admin call's budget: a joint change is two log entries committed in turn.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Pause between two attempts, so a cluster electing a leader is not flooded.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
const STATUS_TIMEOUT: Duration = Duration::from_millis(300);

/// The configuration one node reports in `/status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub leader: u64,
    pub voters: Vec<u64>,
    pub joint: bool,
}

/// Reads a configuration out of a `/status` body of a node that says it leads.
pub fn leader_config(id: u64, status: &Value) -> Option<Config> {
    if status.get("role").and_then(Value::as_str) != Some("leader") {
        return None;
    }
    let mut voters: Vec<u64> = status
        .get("voters")?
        .as_array()?
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    voters.sort_unstable();
    let joint = !status.get("joint").is_none_or(Value::is_null);
    Some(Config {
        leader: id,
        voters,
        joint,
    })
}

/// The leader's configuration, asking every node once; `None` when nobody leads.
pub async fn current_config(
    http: &HttpClient,
    addrs: &BTreeMap<u64, SocketAddr>,
) -> Option<Config> {
    let mut best: Option<(u64, Config)> = None;
    for (&id, &addr) in addrs {
        if let Reply::Response { status: 200, body } =
            request(http, Method::GET, addr, "/status", None, STATUS_TIMEOUT).await
            && let Some(c) = leader_config(id, &body)
        {
            // Two nodes may both believe they lead for a moment: trust the higher term.
            let term = body.get("term").and_then(Value::as_u64).unwrap_or(0);
            if best.as_ref().is_none_or(|(t, _)| term > *t) {
                best = Some((term, c));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// What one attempt to set the voters came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The node answered 200: the new configuration is committed.
    Done,
    /// Certainly not applied (refused connection, 4xx, 503 or a redirect we could
    /// not follow).
    NotApplied(String),
    /// Perhaps applied: 504, timeout, or a connection broken mid-call.
    Unknown(String),
}

/// Asks `addr` (the leader when known; followers forward) to make `voters` the
/// configuration.
pub async fn set_voters(http: &HttpClient, addr: SocketAddr, voters: &[u64]) -> Outcome {
    let body = json!({ "voters": voters });
    match request(
        http,
        Method::POST,
        addr,
        "/admin/membership",
        Some(&body),
        CALL_TIMEOUT,
    )
    .await
    {
        Reply::Response { status: 200, .. } => Outcome::Done,
        Reply::Response { status: 504, body } => Outcome::Unknown(format!("504 {body}")),
        Reply::Response { status, body } => Outcome::NotApplied(format!("{status} {body}")),
        Reply::NotSent(e) => Outcome::NotApplied(e),
        Reply::Indeterminate(e) => Outcome::Unknown(e),
    }
}

/// Every attempt made for one change, for the history and the run's warnings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attempts {
    pub done: bool,
    /// Some attempt may have reached the cluster (done, or outcome unknown).
    pub maybe_applied: bool,
    pub errors: Vec<String>,
}

/// Most failed attempts kept per change; the count still grows past it.
const MAX_KEPT_ERRORS: usize = 8;

/// Sets the voters, retrying until an attempt succeeds or `deadline` passes. Each
/// attempt goes to the leader the cluster reports, else to each node in turn (a
/// follower forwards to the leader it knows, or answers 503).
pub async fn change_until(
    http: &HttpClient,
    addrs: &BTreeMap<u64, SocketAddr>,
    voters: &[u64],
    deadline: Instant,
) -> Attempts {
    let mut a = Attempts::default();
    let ids: Vec<u64> = addrs.keys().copied().collect();
    let mut failures = 0usize;
    let mut turn = 0usize;
    loop {
        let target = match current_config(http, addrs).await {
            Some(c) => c.leader,
            None => {
                turn += 1;
                ids[turn % ids.len()]
            }
        };
        let Some(&addr) = addrs.get(&target) else {
            break;
        };
        match set_voters(http, addr, voters).await {
            Outcome::Done => {
                a.done = true;
                a.maybe_applied = true;
                return a;
            }
            Outcome::NotApplied(e) => keep(&mut a, &mut failures, format!("n{target}: {e}")),
            Outcome::Unknown(e) => {
                a.maybe_applied = true;
                keep(&mut a, &mut failures, format!("n{target}: {e}"));
            }
        }
        if Instant::now() + RETRY_PAUSE >= deadline {
            break;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    if failures > a.errors.len() {
        a.errors
            .push(format!("... {} failed attempts in all", failures));
    }
    a
}

fn keep(a: &mut Attempts, failures: &mut usize, e: String) {
    *failures += 1;
    if a.errors.len() < MAX_KEPT_ERRORS {
        a.errors.push(e);
    }
}

/// Waits until the leader reports exactly `voters` and no joint phase, up to
/// `deadline`. Returns the last configuration seen.
pub async fn wait_config(
    http: &HttpClient,
    addrs: &BTreeMap<u64, SocketAddr>,
    voters: &[u64],
    deadline: Instant,
) -> (bool, Option<Config>) {
    let mut want = voters.to_vec();
    want.sort_unstable();
    let mut last = None;
    loop {
        if let Some(c) = current_config(http, addrs).await {
            if c.voters == want && !c.joint {
                return (true, Some(c));
            }
            last = Some(c);
        }
        if Instant::now() + RETRY_PAUSE >= deadline {
            return (false, last);
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// Puts every node back as a voter and waits until the configuration is whole (all
/// voters, not joint), retrying until `deadline`. Used at each fault's end and by
/// the run's final heal. Returns an error text when it did not get there.
pub async fn restore(
    http: &HttpClient,
    addrs: &BTreeMap<u64, SocketAddr>,
    deadline: Instant,
) -> Result<Vec<String>, Vec<String>> {
    let all: Vec<u64> = addrs.keys().copied().collect();
    let mut notes = Vec::new();
    loop {
        if wait_config(http, addrs, &all, Instant::now()).await.0 {
            return Ok(notes);
        }
        let a = change_until(http, addrs, &all, deadline).await;
        notes.extend(a.errors);
        if a.done {
            let (whole, last) = wait_config(http, addrs, &all, deadline).await;
            if whole {
                return Ok(notes);
            }
            notes.push(format!("after re-adding, the leader reports {last:?}"));
        }
        if Instant::now() >= deadline {
            return Err(notes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_leader_configuration_from_status() {
        let s = json!({"role":"leader","term":3,"voters":[3,1,2],"joint":null});
        assert_eq!(
            leader_config(2, &s),
            Some(Config {
                leader: 2,
                voters: vec![1, 2, 3],
                joint: false
            })
        );
        let joint = json!({"role":"leader","voters":[1,2],"joint":{"old":[1,2,3]}});
        assert_eq!(leader_config(1, &joint).map(|c| c.joint), Some(true));
        let follower = json!({"role":"follower","voters":[1,2,3],"joint":null});
        assert_eq!(leader_config(1, &follower), None);
        assert_eq!(leader_config(1, &json!({"role":"leader"})), None);
    }
}
