//! `/metrics` in the Prometheus text format, written by `prometheus-client`: checks
//! by state and by verdict (from the store, so restarts keep them), a histogram of
//! check seconds and request counters (since this process started), and the queue.

use super::store::Store;
use checker::verdict::Validity;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The `Content-Type` of [`Metrics::render`]'s text (format version 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the check-seconds histogram buckets (+Inf is implied).
const BUCKETS: [f64; 9] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0];

/// One label, as `state="done"`.
type Label = [(&'static str, &'static str); 1];

pub struct Metrics {
    check_seconds: Histogram,
    pub submitted: AtomicU64,
    pub rejected_queue_full: AtomicU64,
    pub rejected_too_large: AtomicU64,
    pub rejected_bad_request: AtomicU64,
    /// Requests without the bearer token (any path), when one is set.
    pub rejected_unauthorized: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            check_seconds: Histogram::new(BUCKETS),
            submitted: AtomicU64::new(0),
            rejected_queue_full: AtomicU64::new(0),
            rejected_too_large: AtomicU64::new(0),
            rejected_bad_request: AtomicU64::new(0),
            rejected_unauthorized: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn observe_check(&self, seconds: f64) {
        self.check_seconds.observe(seconds);
    }

    pub fn render(&self, store: &Store, queue_depth: usize, queue_capacity: usize) -> String {
        let mut registry = Registry::default();
        let states = Family::<Label, Gauge<u64, AtomicU64>>::default();
        for (state, n) in store.state_counts() {
            states
                .get_or_create(&[("state", state.name())])
                .set(n as u64);
        }
        registry.register(
            "checker_checks",
            "Checks known to the service, by state",
            states,
        );
        let verdicts = Family::<Label, Gauge<u64, AtomicU64>>::default();
        for (v, n) in store.verdict_counts() {
            let label = match v {
                Validity::Linearizable => "true",
                Validity::NotLinearizable => "false",
                Validity::Unknown => "unknown",
            };
            verdicts.get_or_create(&[("valid", label)]).set(n as u64);
        }
        registry.register("checker_verdicts", "Finished checks, by verdict", verdicts);
        registry.register(
            "checker_check_seconds",
            "Seconds spent checking (parsing excluded)",
            self.check_seconds.clone(),
        );
        registry.register(
            "checker_queue_depth",
            "Checks waiting for a worker",
            ConstGauge::new(queue_depth as u64),
        );
        registry.register(
            "checker_queue_capacity",
            "Checks that may wait for a worker (--queue)",
            ConstGauge::new(queue_capacity as u64),
        );
        registry.register(
            "checker_submitted",
            "Checks accepted (202)",
            ConstCounter::new(self.submitted.load(Relaxed)),
        );
        let rejected = Family::<Label, Counter>::default();
        for (reason, c) in [
            ("queue_full", &self.rejected_queue_full),
            ("too_large", &self.rejected_too_large),
            ("bad_request", &self.rejected_bad_request),
            ("unauthorized", &self.rejected_unauthorized),
        ] {
            rejected
                .get_or_create(&[("reason", reason)])
                .inc_by(c.load(Relaxed));
        }
        registry.register(
            "checker_rejected",
            "Submissions (or, for unauthorized, any requests) refused, by reason",
            rejected,
        );
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }
}
