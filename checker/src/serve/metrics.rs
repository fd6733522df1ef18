//! `/metrics` in the Prometheus text format: checks by state and by verdict (from the
//! store, so restarts keep them), a histogram of check seconds and request counters
//! (since this process started), and the queue depth.

use super::store::Store;
use checker::verdict::Validity;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Upper bounds of the check-seconds histogram buckets (+Inf is implied).
const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    seconds: Mutex<Histogram>,
    pub submitted: AtomicU64,
    pub rejected_queue_full: AtomicU64,
    pub rejected_too_large: AtomicU64,
    pub rejected_bad_request: AtomicU64,
    /// Requests without the bearer token (any path), when one is set.
    pub rejected_unauthorized: AtomicU64,
}

impl Metrics {
    pub fn observe_check(&self, seconds: f64) {
        let mut h = self
            .seconds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn render(&self, store: &Store, queue_depth: usize, queue_capacity: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP checker_checks Checks known to the service, by state."
        );
        let _ = writeln!(s, "# TYPE checker_checks gauge");
        for (state, n) in store.state_counts() {
            let _ = writeln!(s, "checker_checks{{state=\"{}\"}} {n}", state.name());
        }
        let _ = writeln!(s, "# HELP checker_verdicts Finished checks, by verdict.");
        let _ = writeln!(s, "# TYPE checker_verdicts gauge");
        for (v, n) in store.verdict_counts() {
            let label = match v {
                Validity::Linearizable => "true",
                Validity::NotLinearizable => "false",
                Validity::Unknown => "unknown",
            };
            let _ = writeln!(s, "checker_verdicts{{valid=\"{label}\"}} {n}");
        }
        {
            let h = self
                .seconds
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let _ = writeln!(
                s,
                "# HELP checker_check_seconds Seconds spent checking (parsing excluded)."
            );
            let _ = writeln!(s, "# TYPE checker_check_seconds histogram");
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(s, "checker_check_seconds_bucket{{le=\"{le}\"}} {n}");
            }
            let _ = writeln!(s, "checker_check_seconds_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "checker_check_seconds_sum {}", h.sum);
            let _ = writeln!(s, "checker_check_seconds_count {}", h.count);
        }
        let _ = writeln!(s, "# HELP checker_queue_depth Checks waiting for a worker.");
        let _ = writeln!(s, "# TYPE checker_queue_depth gauge");
        let _ = writeln!(s, "checker_queue_depth {queue_depth}");
        let _ = writeln!(s, "# TYPE checker_queue_capacity gauge");
        let _ = writeln!(s, "checker_queue_capacity {queue_capacity}");
        let _ = writeln!(s, "# HELP checker_submitted_total Checks accepted (202).");
        let _ = writeln!(s, "# TYPE checker_submitted_total counter");
        let _ = writeln!(
            s,
            "checker_submitted_total {}",
            self.submitted.load(Relaxed)
        );
        let _ = writeln!(
            s,
            "# HELP checker_rejected_total Submissions (or, for unauthorized, any requests) refused, by reason."
        );
        let _ = writeln!(s, "# TYPE checker_rejected_total counter");
        for (reason, c) in [
            ("queue_full", &self.rejected_queue_full),
            ("too_large", &self.rejected_too_large),
            ("bad_request", &self.rejected_bad_request),
            ("unauthorized", &self.rejected_unauthorized),
        ] {
            let _ = writeln!(
                s,
                "checker_rejected_total{{reason=\"{reason}\"}} {}",
                c.load(Relaxed)
            );
        }
        s
    }
}
