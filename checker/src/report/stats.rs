//! Counts, throughput and latency percentiles, and the time axis every section shares.

use crate::history::{History, Operation, Outcome};
use hdrhistogram::Histogram;
use std::collections::BTreeMap;

/// How to read `Operation::call` / `ret`: nanoseconds when the history has times,
/// otherwise positions in the event list (line order is the real-time order).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Clock {
    pub timed: bool,
}

impl Clock {
    pub fn of(history: &History) -> Clock {
        Clock {
            timed: history.timed(),
        }
    }

    /// An instant on the plots' x axis: seconds, or the event position.
    pub fn x(&self, t: u64) -> f64 {
        if self.timed { t as f64 / 1e9 } else { t as f64 }
    }

    /// A duration on the latency axis: milliseconds, or a number of events.
    pub fn latency(&self, d: u64) -> f64 {
        if self.timed { d as f64 / 1e6 } else { d as f64 }
    }

    pub fn x_label(&self) -> &'static str {
        if self.timed {
            "time since start (s)"
        } else {
            "history position (event)"
        }
    }

    pub fn latency_label(&self) -> &'static str {
        if self.timed {
            "latency (ms)"
        } else {
            "latency (events)"
        }
    }

    /// Human text of an instant.
    pub fn fmt_instant(&self, t: u64) -> String {
        if self.timed {
            format!("{:.3} s", t as f64 / 1e9)
        } else {
            format!("event {t}")
        }
    }

    /// Human text of a duration.
    pub fn fmt_duration(&self, d: u64) -> String {
        if self.timed {
            fmt_ms(d as f64 / 1e6)
        } else {
            format!("{d} events")
        }
    }
}

pub(crate) fn fmt_ms(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.3} ms")
    }
}

pub(crate) fn outcome_name(o: Outcome) -> &'static str {
    o.name()
}

/// Latencies above an hour are recorded as an hour: the histogram needs a bound, and
/// no client waits that long.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;

/// One row of the summary table.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct FnRow {
    pub f: String,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    pub total: usize,
}

/// Latency percentiles of completed operations, as display strings.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Percentiles {
    pub count: u64,
    pub p50: String,
    pub p90: String,
    pub p99: String,
    pub p999: String,
    pub max: String,
}

#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Summary {
    pub rows: Vec<FnRow>,
    pub totals: FnRow,
    pub processes: usize,
    pub keys: usize,
    /// From the first invocation to the last completion.
    pub span: String,
    /// Ok operations per second (timed histories only).
    pub throughput: Option<String>,
    /// ok / fail / info percentiles (timed histories only).
    pub latency: Vec<(String, Percentiles)>,
}

/// Latency quantiles of the completed operations of one outcome, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LatencyQuantiles {
    pub count: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub p999_ns: u64,
    pub max_ns: u64,
}

/// The latency quantiles of a timed history's completed operations, for each outcome
/// that has some (`ok`, then `fail`, then `info`), from HDR histograms with three
/// significant digits; latencies over an hour count as an hour. Empty for a history
/// without times.
pub fn latency_quantiles(history: &History) -> Vec<(Outcome, LatencyQuantiles)> {
    if !history.timed() {
        return Vec::new();
    }
    [Outcome::Ok, Outcome::Fail, Outcome::Info]
        .into_iter()
        .filter_map(|outcome| {
            let mut h = Histogram::<u64>::new_with_bounds(1, MAX_LATENCY_NS, 3).ok()?;
            for op in history.ops.iter().filter(|op| op.outcome == outcome) {
                if let Some(d) = duration(op) {
                    h.saturating_record(d.max(1));
                }
            }
            let q = |p: f64| h.value_at_quantile(p);
            let quantiles = LatencyQuantiles {
                count: h.len(),
                p50_ns: q(0.5),
                p90_ns: q(0.9),
                p99_ns: q(0.99),
                p999_ns: q(0.999),
                max_ns: h.max(),
            };
            (!h.is_empty()).then_some((outcome, quantiles))
        })
        .collect()
}

/// The operation's duration in the history's unit, when it completed.
pub(crate) fn duration(op: &Operation) -> Option<u64> {
    op.ret.map(|r| r.saturating_sub(op.call))
}

pub(crate) fn summarize(history: &History, clock: &Clock) -> Summary {
    let mut counts: BTreeMap<&str, FnRow> = BTreeMap::new();
    let mut totals = FnRow {
        f: "all".to_string(),
        ok: 0,
        fail: 0,
        info: 0,
        total: 0,
    };
    let mut processes = std::collections::BTreeSet::new();
    let mut keys = std::collections::BTreeSet::new();
    let (mut first, mut last) = (u64::MAX, 0u64);
    for op in &history.ops {
        let name = op.f.name();
        let row = counts.entry(name).or_insert(FnRow {
            f: name.to_string(),
            ok: 0,
            fail: 0,
            info: 0,
            total: 0,
        });
        for r in [&mut *row, &mut totals] {
            match op.outcome {
                Outcome::Ok => r.ok += 1,
                Outcome::Fail => r.fail += 1,
                Outcome::Info => r.info += 1,
            }
            r.total += 1;
        }
        processes.insert(op.process);
        keys.insert(op.key.as_ref());
        first = first.min(op.call);
        last = last.max(op.ret.unwrap_or(op.call));
    }
    let span_raw = last.saturating_sub(first);
    let span = if history.ops.is_empty() {
        "-".to_string()
    } else {
        clock.fmt_duration(span_raw)
    };
    let throughput = (clock.timed && span_raw > 0)
        .then(|| format!("{:.1} ok ops/s", totals.ok as f64 / (span_raw as f64 / 1e9)));
    let ms = |ns: u64| fmt_ms(ns as f64 / 1e6);
    let latency = latency_quantiles(history)
        .into_iter()
        .map(|(o, q)| {
            let p = Percentiles {
                count: q.count,
                p50: ms(q.p50_ns),
                p90: ms(q.p90_ns),
                p99: ms(q.p99_ns),
                p999: ms(q.p999_ns),
                max: ms(q.max_ns),
            };
            (outcome_name(o).to_string(), p)
        })
        .collect();
    Summary {
        rows: counts.into_values().collect(),
        totals,
        processes: processes.len(),
        keys: keys.len(),
        span,
        throughput,
        latency,
    }
}
