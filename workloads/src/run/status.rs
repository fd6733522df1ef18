//! Watching the cluster: every member's status (the node's `/status`, or what the
//! target's protocol says in that shape) polled about every 100 ms, leader and term
//! changes kept as cluster events for the report's timeline, and the current leader
//! for the nemesis.

use super::api::Api;
use super::http::HttpClient;
use super::recorder::Recorder;
use checker::report::ClusterEvent;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

pub const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Cluster events kept; a flapping cluster would otherwise grow this without bound.
pub const MAX_CLUSTER_EVENTS: usize = 10_000;

/// The last status a node answered with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeStatus {
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub seen_ns: u64,
}

#[derive(Debug, Default)]
struct ViewState {
    nodes: BTreeMap<u64, NodeStatus>,
    /// Highest (term, leader) pair any node reported as leader of.
    leader: Option<(u64, u64)>,
    max_term: u64,
    events: Vec<ClusterEvent>,
    leader_changes: usize,
}

/// Shared between the poller, the nemesis and the final summary.
#[derive(Debug, Default)]
pub struct ClusterView {
    state: Mutex<ViewState>,
}

impl ClusterView {
    fn lock(&self) -> std::sync::MutexGuard<'_, ViewState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// The leader of the highest term seen, if a node answering recently says it leads.
    pub fn leader(&self, now_ns: u64) -> Option<u64> {
        let s = self.lock();
        let fresh = |st: &NodeStatus| now_ns.saturating_sub(st.seen_ns) < 1_000_000_000;
        s.nodes
            .iter()
            .filter(|(_, st)| st.role == "leader" && fresh(st))
            .max_by_key(|(_, st)| st.term)
            .map(|(id, _)| *id)
    }

    pub fn events(&self) -> Vec<ClusterEvent> {
        self.lock().events.clone()
    }

    pub fn leader_changes(&self) -> usize {
        self.lock().leader_changes
    }

    /// Notes one status answer and records what changed.
    pub fn observe(&self, id: u64, status: &Value, now_ns: u64) {
        let role = status
            .get("role")
            .and_then(Value::as_str)
            .unwrap_or("unknown")
            .to_string();
        let term = status.get("term").and_then(Value::as_u64).unwrap_or(0);
        let leader = status.get("leader").and_then(Value::as_u64);
        let mut s = self.lock();
        if term > s.max_term {
            s.max_term = term;
            push_event(
                &mut s,
                ClusterEvent {
                    time_ns: now_ns,
                    kind: "term".to_string(),
                    node: Some(id),
                    detail: format!("term {term} first seen on n{id}"),
                },
            );
        }
        if role == "leader"
            && s.leader
                .is_none_or(|(t, l)| term > t || (term == t && l != id))
        {
            s.leader = Some((term, id));
            s.leader_changes += 1;
            push_event(
                &mut s,
                ClusterEvent {
                    time_ns: now_ns,
                    kind: "leader".to_string(),
                    node: Some(id),
                    detail: format!("n{id} leads term {term}"),
                },
            );
        }
        s.nodes.insert(
            id,
            NodeStatus {
                role,
                term,
                leader,
                seen_ns: now_ns,
            },
        );
    }
}

fn push_event(s: &mut ViewState, e: ClusterEvent) {
    if s.events.len() < MAX_CLUSTER_EVENTS {
        s.events.push(e);
    }
}

/// Polls one node until `stop` turns true.
pub async fn poll_node(
    id: u64,
    addr: SocketAddr,
    client: HttpClient,
    api: Api,
    view: Arc<ClusterView>,
    recorder: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(POLL_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return;
        }
        if let Some(body) = api.status(&client, addr).await {
            view.observe(id, &body, recorder.now_ns());
        }
    }
}

/// Asks every node until one says it is the leader, up to `limit`, or, under Basic
/// Paxos (no leader: every node proposes), until one says it is a proposer. Used
/// before the run starts and before the final reads.
pub async fn wait_for_leader(
    client: &HttpClient,
    api: &Api,
    addrs: &BTreeMap<u64, SocketAddr>,
    limit: Duration,
) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        for (&id, &addr) in addrs {
            if let Some(body) = api.status(client, addr).await
                && matches!(
                    body.get("role").and_then(Value::as_str),
                    Some("leader" | "proposer")
                )
            {
                return Some(id);
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_leader_and_term_changes_once() {
        let v = ClusterView::default();
        v.observe(1, &json!({"role":"follower","term":1,"leader":null}), 10);
        v.observe(2, &json!({"role":"leader","term":1,"leader":2}), 20);
        v.observe(2, &json!({"role":"leader","term":1,"leader":2}), 30);
        assert_eq!(v.leader(40), Some(2));
        v.observe(3, &json!({"role":"leader","term":2,"leader":3}), 50);
        assert_eq!(v.leader(60), Some(3));
        assert_eq!(v.leader_changes(), 2);
        let kinds: Vec<String> = v.events().iter().map(|e| e.kind.clone()).collect();
        assert_eq!(kinds, ["term", "leader", "term", "leader"]);
        // A leader nobody heard from for a second is not trusted.
        assert_eq!(v.leader(5_000_000_000), None);
    }
}
