//! Counters and latency histograms, rendered as Prometheus text for `GET /metrics`.
//!
//! Everything is an atomic so request tasks, the driver and peer tasks can record
//! without a lock; the values are read only when `/metrics` is scraped.

use crate::raft::validate::Rejection;
use crate::replica::{Role, Status};
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How often a refused peer message of one kind is logged at most.
const REFUSED_LOG_EVERY: Duration = Duration::from_secs(60);

/// Bucket upper bounds in seconds, spanning a loopback round trip to a slow fsync.
const BUCKETS_S: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A cumulative-bucket latency histogram in the Prometheus layout.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        if let Some(i) = BUCKETS_S.iter().position(|b| s <= *b) {
            self.buckets[i].fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (i, b) in BUCKETS_S.iter().enumerate() {
            cumulative += self.buckets[i].load(Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels}le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let trimmed = labels.trim_end_matches(',');
        let braces = if trimmed.is_empty() {
            String::new()
        } else {
            format!("{{{trimmed}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
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
#[derive(Default)]
pub struct Metrics {
    pub proposals: AtomicU64,
    pub replies: AtomicU64,
    pub applied_entries: AtomicU64,
    pub role_changes: AtomicU64,
    pub snapshots_taken: AtomicU64,
    pub snapshots_installed: AtomicU64,
    pub fsyncs: AtomicU64,
    pub persisted_batches: AtomicU64,
    pub fsync_latency: Histogram,
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
    request_latency: [Histogram; 5],
    /// Peer messages refused, by reason.
    refused: RefusedCounts,
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
        let i = OpKind::ALL.iter().position(|k| *k == kind).unwrap_or(4);
        self.request_latency[i].observe(d);
    }

    /// Prometheus text exposition of everything, plus the replica's status gauges.
    pub fn render(&self, status: &Status) -> String {
        let mut out = String::with_capacity(8192);
        out.push_str("# TYPE node_info gauge\n");
        let _ = writeln!(
            out,
            "node_info{{consensus=\"{}\"}} 1",
            status.consensus.as_str()
        );
        out.push_str("# TYPE node_role gauge\n");
        for r in Role::ALL {
            let v = u8::from(r == status.role);
            let _ = writeln!(out, "node_role{{role=\"{}\"}} {v}", r.as_str());
        }
        let gauges = [
            ("node_term", status.term),
            ("node_leader_id", status.leader.unwrap_or(0)),
            ("node_commit_index", status.commit_index),
            ("node_applied_index", status.applied_index),
            ("node_first_log_index", status.first_log_index),
            ("node_last_log_index", status.last_log_index),
            ("node_snapshot_index", status.snapshot_index),
            ("node_connections_open", self.connections_open.load(Relaxed)),
        ];
        for (name, v) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
        }
        let counters = [
            ("node_proposals_total", &self.proposals),
            ("node_replies_total", &self.replies),
            ("node_applied_entries_total", &self.applied_entries),
            ("node_role_changes_total", &self.role_changes),
            ("node_snapshots_taken_total", &self.snapshots_taken),
            ("node_snapshots_installed_total", &self.snapshots_installed),
            ("node_fsyncs_total", &self.fsyncs),
            ("node_persist_outputs_total", &self.persisted_batches),
            ("node_peer_sent_messages_total", &self.peer_sent_msgs),
            ("node_peer_dropped_messages_total", &self.peer_dropped_msgs),
            ("node_peer_send_errors_total", &self.peer_send_errors),
            (
                "node_peer_received_messages_total",
                &self.peer_received_msgs,
            ),
            ("node_forwarded_requests_total", &self.forwarded),
            ("node_http_errors_total", &self.http_errors),
            ("node_connections_shed_total", &self.connections_shed),
            ("node_request_body_timeouts_total", &self.body_timeouts),
        ];
        for (name, v) in counters {
            let v = v.load(Relaxed);
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        out.push_str("# TYPE node_peer_refused_messages_total counter\n");
        let counts = match self.refused.0.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        for (reason, v, _) in counts {
            let _ = writeln!(
                out,
                "node_peer_refused_messages_total{{reason=\"{reason}\"}} {v}"
            );
        }
        out.push_str("# TYPE node_fsync_seconds histogram\n");
        self.fsync_latency
            .render(&mut out, "node_fsync_seconds", "");
        out.push_str("# TYPE node_request_seconds histogram\n");
        for (i, k) in OpKind::ALL.iter().enumerate() {
            let labels = format!("op=\"{}\",", k.name());
            self.request_latency[i].render(&mut out, "node_request_seconds", &labels);
        }
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
            consensus: crate::consensus::EngineKind::Raft,
            incarnation: 5,
            cluster: 6,
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
        m.fsync_latency.observe(Duration::from_micros(50));
        m.fsync_latency.observe(Duration::from_millis(3));
        m.fsync_latency.observe(Duration::from_secs(10));
        let text = m.render(&leader_status());
        assert!(text.contains("node_fsync_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("node_fsync_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("node_fsync_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("node_fsync_seconds_count 3\n"));
        assert!(text.contains("node_role{role=\"leader\"} 1\n"));
        assert!(text.contains("node_term 4\n"));
        assert!(text.contains("node_request_seconds_count{op=\"put\"} 0\n"));
        assert!(text.contains("node_peer_refused_messages_total{reason=\"term_too_far\"} 0\n"));
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
