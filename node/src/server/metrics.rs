//! Counters and latency histograms, rendered as Prometheus text for `GET /metrics`
//! by `prometheus-client`.
//!
//! Counters are atomics so request tasks, the driver and peer tasks can record
//! without a lock; they, and the replica's status, are read only when `/metrics` is
//! scraped. The latency histograms are the crate's own.

use crate::raft::validate::Rejection;
use crate::replica::{Role, Status};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often a refused peer message of one kind is logged at most.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(60);

/// The `Content-Type` of [`Metrics::render`]'s text (format version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Bucket upper bounds in seconds, spanning a loopback round trip to a slow fsync.
const BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// One label, as `op="get"` or `role="leader"`.
type Label = [(&'static str, &'static str); 1];

fn latency_histogram() -> Histogram {
    Histogram::new(BUCKETS_S)
}

/// Client operation kinds with their own latency histogram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpKind {
    Get,
    Put,
    Cas,
    Delete,
    Other,
}

impl OpKind {
    const ALL: [OpKind; 5] = [
        OpKind::Get,
        OpKind::Put,
        OpKind::Cas,
        OpKind::Delete,
        OpKind::Other,
    ];
    fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Put => "put",
            OpKind::Cas => "cas",
            OpKind::Delete => "delete",
            OpKind::Other => "other",
        }
    }
}

/// Every metric the node exports.
pub struct Metrics {
    pub proposals: AtomicU64,
    pub replies: AtomicU64,
    pub applied_entries: AtomicU64,
    pub role_changes: AtomicU64,
    pub snapshots_taken: AtomicU64,
    /// Of those, the ones written as the previous snapshot plus a delta.
    pub snapshot_deltas: AtomicU64,
    /// Compaction snapshot files written and then not put in place (see
    /// `Disk::install`).
    pub snapshots_dropped: AtomicU64,
    pub snapshots_installed: AtomicU64,
    /// Streamed InstallSnapshot, leader side (see `snapshot_stream`).
    pub snapshot_streams: AtomicU64,
    pub snapshot_stream_errors: AtomicU64,
    pub snapshot_chunks_sent: AtomicU64,
    pub snapshot_bytes_sent: AtomicU64,
    /// ... and follower side.
    pub snapshot_chunks_received: AtomicU64,
    pub snapshot_chunks_refused: AtomicU64,
    pub fsyncs: AtomicU64,
    pub persisted_batches: AtomicU64,
    pub peer_sent_msgs: AtomicU64,
    pub peer_dropped_msgs: AtomicU64,
    pub peer_send_errors: AtomicU64,
    pub peer_received_msgs: AtomicU64,
    pub forwarded: AtomicU64,
    pub http_errors: AtomicU64,
    /// Open HTTP connections (a gauge).
    pub connections_open: AtomicU64,
    /// Client connections closed to make room (see `conn`).
    pub connections_shed: AtomicU64,
    /// Requests whose body did not arrive in time (408).
    pub body_timeouts: AtomicU64,
    fsync_latency: Histogram,
    request_latency: Family<Label, Histogram, fn() -> Histogram>,
    /// Peer messages refused, by reason.
    refused: RefusedCounts,
    /// The engine's own counters as of the last tick (see [`Metrics::set_engine`]).
    engine: Mutex<Vec<crate::engine::EngineCounter>>,
}

/// Refused peer messages by reason, with when each reason was last logged. Raft's
/// reasons are listed from the start (at 0); others join when first seen.
struct RefusedCounts(Mutex<Vec<(&'static str, u64, Option<Instant>)>>);

impl Default for RefusedCounts {
    fn default() -> Self {
        let known = Rejection::ALL.iter().map(|r| (r.as_str(), 0, None));
        RefusedCounts(Mutex::new(known.collect()))
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let request_latency: Family<Label, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        // Every kind is exported from the start, with zero counts.
        for kind in OpKind::ALL {
            drop(request_latency.get_or_create(&[("op", kind.name())]));
        }
        Metrics {
            proposals: AtomicU64::new(0),
            replies: AtomicU64::new(0),
            applied_entries: AtomicU64::new(0),
            role_changes: AtomicU64::new(0),
            snapshots_taken: AtomicU64::new(0),
            snapshot_deltas: AtomicU64::new(0),
            snapshots_dropped: AtomicU64::new(0),
            snapshots_installed: AtomicU64::new(0),
            snapshot_streams: AtomicU64::new(0),
            snapshot_stream_errors: AtomicU64::new(0),
            snapshot_chunks_sent: AtomicU64::new(0),
            snapshot_bytes_sent: AtomicU64::new(0),
            snapshot_chunks_received: AtomicU64::new(0),
            snapshot_chunks_refused: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            persisted_batches: AtomicU64::new(0),
            peer_sent_msgs: AtomicU64::new(0),
            peer_dropped_msgs: AtomicU64::new(0),
            peer_send_errors: AtomicU64::new(0),
            peer_received_msgs: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            http_errors: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_shed: AtomicU64::new(0),
            body_timeouts: AtomicU64::new(0),
            fsync_latency: latency_histogram(),
            request_latency,
            refused: RefusedCounts::default(),
            engine: Mutex::new(Vec::new()),
        }
    }
}

impl Metrics {
    /// Counts a refused peer message; true when it should be logged (the first of
    /// its kind, then at most once per minute).
    pub fn refused(&self, reason: &'static str) -> bool {
        let mut counts = match self.refused.0.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let i = match counts.iter().position(|(r, _, _)| *r == reason) {
            Some(i) => i,
            None => {
                counts.push((reason, 0, None));
                counts.len() - 1
            }
        };
        let now = Instant::now();
        let entry = &mut counts[i];
        entry.1 += 1;
        let due = entry
            .2
            .is_none_or(|t| now.duration_since(t) >= REFUSED_LOG_EVERY);
        if due {
            entry.2 = Some(now);
        }
        due
    }

    pub fn observe_request(&self, kind: OpKind, d: Duration) {
        self.request_latency
            .get_or_create(&[("op", kind.name())])
            .observe(d.as_secs_f64());
    }

    /// The engine's own counters (the driver copies them here every tick).
    pub fn set_engine(&self, counters: Vec<crate::engine::EngineCounter>) {
        if let Ok(mut e) = self.engine.lock() {
            *e = counters;
        }
    }

    pub fn observe_fsync(&self, d: Duration) {
        self.fsync_latency.observe(d.as_secs_f64());
    }

    /// Prometheus text exposition of everything, plus the replica's status gauges.
    pub fn render(&self, status: &Status) -> String {
        let mut registry = Registry::default();
        let info = Family::<Label, Gauge<u64, AtomicU64>>::default();
        info.get_or_create(&[("consensus", status.consensus.as_str())])
            .set(1);
        registry.register(
            "node_info",
            "1, labelled with the consensus engine this node runs",
            info,
        );
        let roles = Family::<Label, Gauge<u64, AtomicU64>>::default();
        for r in Role::ALL {
            roles
                .get_or_create(&[("role", r.as_str())])
                .set(u64::from(r == status.role));
        }
        registry.register(
            "node_role",
            "1 for this node's role, 0 for the others",
            roles,
        );
        let gauges = [
            ("node_term", "Current term", status.term),
            (
                "node_leader_id",
                "The leader this node knows of (0: none)",
                status.leader.unwrap_or(0),
            ),
            (
                "node_commit_index",
                "Highest committed index",
                status.commit_index,
            ),
            (
                "node_applied_index",
                "Highest applied index",
                status.applied_index,
            ),
            (
                "node_first_log_index",
                "First index in the log (after the snapshot)",
                status.first_log_index,
            ),
            (
                "node_last_log_index",
                "Last index in the log",
                status.last_log_index,
            ),
            (
                "node_snapshot_index",
                "Index the newest snapshot covers",
                status.snapshot_index,
            ),
            (
                "node_connections_open",
                "Open HTTP connections",
                self.connections_open.load(Relaxed),
            ),
        ];
        for (name, help, v) in gauges {
            registry.register(name, help, ConstGauge::new(v));
        }
        let engine = self.engine.lock().map(|e| e.clone()).unwrap_or_default();
        for c in engine {
            registry.register(c.name, c.help, ConstCounter::new(c.value));
        }
        let counters = [
            (
                "node_proposals",
                "Commands proposed to consensus",
                &self.proposals,
            ),
            (
                "node_replies",
                "Replies to client operations",
                &self.replies,
            ),
            (
                "node_applied_entries",
                "Log entries applied",
                &self.applied_entries,
            ),
            ("node_role_changes", "Changes of role", &self.role_changes),
            (
                "node_snapshots_taken",
                "Snapshots taken",
                &self.snapshots_taken,
            ),
            (
                "node_snapshot_deltas",
                "Snapshots taken as the previous one plus the changes since (a delta)",
                &self.snapshot_deltas,
            ),
            (
                "node_snapshots_dropped",
                "Compaction snapshot files written and then not put in place (the files or the log changed meanwhile)",
                &self.snapshots_dropped,
            ),
            (
                "node_snapshots_installed",
                "Snapshots installed from a leader",
                &self.snapshots_installed,
            ),
            (
                "node_snapshot_streams",
                "Snapshots streamed to a peer to the last byte",
                &self.snapshot_streams,
            ),
            (
                "node_snapshot_stream_errors",
                "Snapshot streams to a peer that stopped early (resumed on the next try)",
                &self.snapshot_stream_errors,
            ),
            (
                "node_snapshot_chunks_sent",
                "Snapshot chunks sent to peers",
                &self.snapshot_chunks_sent,
            ),
            (
                "node_snapshot_bytes_sent",
                "Snapshot bytes peers took",
                &self.snapshot_bytes_sent,
            ),
            (
                "node_snapshot_chunks_received",
                "Snapshot chunks taken from a leader",
                &self.snapshot_chunks_received,
            ),
            (
                "node_snapshot_chunks_refused",
                "Snapshot chunks refused (wrong offset, stale term, damaged)",
                &self.snapshot_chunks_refused,
            ),
            ("node_fsyncs", "Write-ahead log fsyncs", &self.fsyncs),
            (
                "node_persist_outputs",
                "Persist outputs made durable (many per fsync under load)",
                &self.persisted_batches,
            ),
            (
                "node_peer_sent_messages",
                "Raft messages sent to peers",
                &self.peer_sent_msgs,
            ),
            (
                "node_peer_dropped_messages",
                "Raft messages to peers dropped (queue full, stale, or a send error)",
                &self.peer_dropped_msgs,
            ),
            (
                "node_peer_send_errors",
                "Failed sends of a batch to a peer",
                &self.peer_send_errors,
            ),
            (
                "node_peer_received_messages",
                "Raft messages received from peers",
                &self.peer_received_msgs,
            ),
            (
                "node_forwarded_requests",
                "Client requests forwarded to the leader",
                &self.forwarded,
            ),
            (
                "node_http_errors",
                "HTTP answers with a 4xx or 5xx status",
                &self.http_errors,
            ),
            (
                "node_connections_shed",
                "Client connections closed to make room",
                &self.connections_shed,
            ),
            (
                "node_request_body_timeouts",
                "Requests whose body did not arrive in time (408)",
                &self.body_timeouts,
            ),
        ];
        for (name, help, v) in counters {
            registry.register(name, help, ConstCounter::new(v.load(Relaxed)));
        }
        let refused = Family::<Label, Counter>::default();
        let counts = match self.refused.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (reason, v, _) in counts {
            refused.get_or_create(&[("reason", reason)]).inc_by(v);
        }
        registry.register(
            "node_peer_refused_messages",
            "Peer messages refused at the boundary, by reason",
            refused,
        );
        registry.register(
            "node_fsync_seconds",
            "Time of one write-ahead log fsync",
            self.fsync_latency.clone(),
        );
        registry.register(
            "node_request_seconds",
            "Time to answer a client or admin request, by operation",
            self.request_latency.clone(),
        );
        let mut out = String::with_capacity(8192);
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Membership;

    fn leader_status() -> Status {
        Status {
            id: 1,
            incarnation: 5,
            cluster: 6,
            consensus: crate::consensus::EngineKind::Raft,
            role: Role::Leader,
            term: 4,
            leader: Some(1),
            commit_index: 9,
            applied_index: 9,
            first_log_index: 1,
            last_log_index: 9,
            snapshot_index: 0,
            membership: Membership::default(),
        }
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.set_engine(vec![crate::engine::EngineCounter {
            name: "node_paxos_duels",
            help: "Duels",
            value: 7,
        }]);
        m.observe_fsync(Duration::from_micros(50));
        m.observe_fsync(Duration::from_millis(3));
        m.observe_fsync(Duration::from_secs(10));
        let text = m.render(&leader_status());
        assert!(text.contains("node_fsync_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("node_fsync_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("node_fsync_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("node_fsync_seconds_count 3\n"));
        assert!(text.contains("node_role{role=\"leader\"} 1\n"));
        assert!(text.contains("node_term 4\n"));
        assert!(text.contains("node_request_seconds_count{op=\"put\"} 0\n"));
        // Counter names keep their `_total`, as scrapers know them.
        assert!(text.contains("# TYPE node_proposals_total counter\nnode_proposals_total 0\n"));
        assert!(text.contains("node_peer_refused_messages_total{reason=\"term_too_far\"} 0\n"));
        assert!(text.contains("# TYPE node_paxos_duels_total counter\nnode_paxos_duels_total 7\n"));
    }

    #[test]
    fn refused_messages_are_counted_each_and_logged_once_per_kind() {
        let m = Metrics::default();
        assert!(m.refused(Rejection::TermTooFar.as_str()));
        assert!(!m.refused(Rejection::TermTooFar.as_str()));
        assert!(!m.refused(Rejection::TermTooFar.as_str()));
        assert!(m.refused(Rejection::AckBeyondLog.as_str()));
        let text = m.render(&leader_status());
        assert!(text.contains("node_peer_refused_messages_total{reason=\"term_too_far\"} 3\n"));
        assert!(text.contains("node_peer_refused_messages_total{reason=\"ack_beyond_log\"} 1\n"));
    }
}
