//! A timeline of operations per process, like Jepsen's `timeline.html`: one column
//! per process, time flowing down, one box per operation from invocation to
//! completion. Long histories are cut into the first and last operations and the
//! operations around each violation, so the page stays small.

use super::ClusterEvent;
use super::stats::{Clock, duration};
use super::text::{describe, key_name, truncate};
use crate::history::History;
use crate::verdict::{Validity, Verdict};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Operations shown at the start and at the end of the history.
const EDGE_OPS: usize = 100;
/// Operations shown on each side of a violation's first stuck operation.
const AROUND_OPS: usize = 50;
/// Violations that get their own excerpt.
const MAX_AROUND: usize = 5;
/// Nemesis events marked per excerpt.
const MAX_MARKS: usize = 50;
/// Pixels per distinct event: the vertical axis is the order of events, compressed
/// to the events of the shown operations, as Jepsen's timeline does.
const PX: usize = 9;
const COL: usize = 118;

/// What `timeline.html` draws: excerpts of the history, in pixels.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Timeline {
    pub segments: Vec<Segment>,
    /// Operations after the last excerpt, not shown.
    pub gap_after: usize,
    pub total_ops: usize,
    pub shown_ops: usize,
}

/// One excerpt: operations `first..=last`, a column per process.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Segment {
    /// Operations between the previous excerpt and this one, not shown.
    pub gap_before: usize,
    pub first: usize,
    pub last: usize,
    /// Why these operations are shown ("start of the history", ...).
    pub why: String,
    pub width: usize,
    pub height: usize,
    pub heads: Vec<Head>,
    pub marks: Vec<Mark>,
    pub ops: Vec<OpBox>,
}

/// A process's column heading.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Head {
    pub process: u64,
    pub left: usize,
}

/// A line across the columns: a nemesis event, or a cluster event (leader, term).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Mark {
    pub cluster: bool,
    pub top: usize,
    pub title: String,
    pub label: String,
}

/// One operation, from invocation to completion.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct OpBox {
    /// The outcome: `ok`, `info` or `fail`.
    pub class: &'static str,
    pub top: usize,
    pub left: usize,
    pub height: usize,
    pub title: String,
    pub key: Option<String>,
    pub text: String,
}

/// Half-open ranges of op ids to show, merged and sorted.
fn ranges(n: usize, verdict: &Verdict) -> Vec<(usize, usize, String)> {
    let mut r: Vec<(usize, usize, String)> =
        vec![(0, EDGE_OPS.min(n), "start of the history".into())];
    let anchors = verdict
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
        .filter_map(|k| {
            let cx = k.counterexample.as_ref()?;
            let id = cx.stuck.first().or(cx.window.first())?;
            Some((*id, key_name(&k.key)))
        })
        .take(MAX_AROUND);
    for (id, key) in anchors {
        let lo = id.saturating_sub(AROUND_OPS).min(n);
        r.push((
            lo,
            (id + AROUND_OPS + 1).min(n),
            format!("around the violation on key {key}"),
        ));
    }
    r.push((n.saturating_sub(EDGE_OPS), n, "end of the history".into()));
    r.sort_by_key(|x| x.0);
    let mut merged: Vec<(usize, usize, String)> = Vec::new();
    for (lo, hi, why) in r {
        if lo >= hi {
            continue;
        }
        match merged.last_mut() {
            Some(last) if lo <= last.1 => {
                if hi > last.1 {
                    last.1 = hi;
                }
                if !last.2.contains(&why) {
                    last.2 = format!("{}; {why}", last.2);
                }
            }
            _ => merged.push((lo, hi, why)),
        }
    }
    merged
}

/// Cluster events placed on the event axis: the position of the first history event
/// at or after each one (timed histories only: otherwise there is no common clock).
fn place_cluster_events<'a>(
    history: &History,
    clock: &Clock,
    cluster: &'a [ClusterEvent],
) -> Vec<(usize, &'a ClusterEvent)> {
    if !clock.timed {
        return Vec::new();
    }
    let times: Vec<u64> = history
        .events
        .iter()
        .scan(0u64, |last, e| {
            *last = e.time.unwrap_or(*last).max(*last);
            Some(*last)
        })
        .collect();
    cluster
        .iter()
        .map(|c| (times.partition_point(|t| *t < c.time_ns), c))
        .collect()
}

pub(crate) fn render(
    history: &History,
    verdict: &Verdict,
    clock: &Clock,
    cluster: &[ClusterEvent],
) -> Timeline {
    let placed = place_cluster_events(history, clock, cluster);
    let n = history.ops.len();
    let mut segments = Vec::new();
    let mut shown = 0;
    let mut prev_end = 0;
    for (lo, hi, why) in ranges(n, verdict) {
        let gap_before = lo.saturating_sub(prev_end);
        prev_end = hi;
        shown += hi - lo;
        segments.push(segment(history, clock, &placed, lo, hi, why, gap_before));
    }
    Timeline {
        segments,
        gap_after: n.saturating_sub(prev_end),
        total_ops: n,
        shown_ops: shown,
    }
}

fn segment(
    history: &History,
    clock: &Clock,
    placed: &[(usize, &ClusterEvent)],
    lo: usize,
    hi: usize,
    why: String,
    gap_before: usize,
) -> Segment {
    let ops = &history.ops[lo..hi];
    let procs: BTreeSet<u64> = ops.iter().map(|o| o.process).collect();
    let col: BTreeMap<u64, usize> = procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    let mut used: BTreeSet<usize> = BTreeSet::new();
    for op in ops {
        used.insert(op.invoke_event);
        if let Some(c) = op.complete_event {
            used.insert(c);
        }
    }
    let rank: BTreeMap<usize, usize> = used.iter().enumerate().map(|(i, e)| (*e, i)).collect();
    let last_rank = used.len();
    let e_first = used.first().copied().unwrap_or(0);
    let e_last = used.last().copied().unwrap_or(0);
    let y = |e: usize| rank.range(e..).next().map_or(last_rank, |(_, r)| *r) * PX;
    let height = (last_rank + 2) * PX + 16;
    let heads = col
        .iter()
        .map(|(p, c)| Head {
            process: *p,
            left: c * COL,
        })
        .collect();
    let mark = |cluster: bool, i: usize, label: String| Mark {
        cluster,
        top: y(i) + 18,
        title: label.clone(),
        label: truncate(&label, 60),
    };
    let nemesis_marks = history
        .events
        .iter()
        .enumerate()
        .skip(e_first)
        .take(e_last.saturating_sub(e_first) + 1)
        .filter_map(|(i, e)| e.other().map(|o| (i, o)))
        .take(MAX_MARKS)
        .map(|(i, e)| {
            let value = if e.value.is_null() {
                String::new()
            } else {
                e.value.to_string()
            };
            mark(false, i, format!("{} {value}", e.f))
        });
    let cluster_marks = placed
        .iter()
        .filter(|(e, _)| (e_first..=e_last).contains(e))
        .take(MAX_MARKS)
        .map(|(i, c)| {
            let node = c.node.map_or_else(String::new, |n| format!(" n{n}"));
            mark(true, *i, format!("{}{node} {}", c.kind, c.detail))
        });
    let marks = nemesis_marks.chain(cluster_marks).collect();
    let boxes = ops
        .iter()
        .filter_map(|op| {
            let c = col.get(&op.process)?;
            let top = y(op.invoke_event);
            let bottom = op.complete_event.map_or(last_rank * PX + PX, y);
            let text = describe(op);
            let lat = duration(op)
                .map_or_else(|| "never returned".to_string(), |d| clock.fmt_duration(d));
            let title = format!(
                "op {} · p{} · {text}\ninvoked {} · latency {lat}{}",
                op.id,
                op.process,
                clock.fmt_instant(op.call),
                op.key
                    .as_ref()
                    .map_or(String::new(), |k| format!(" · key {k:?}"))
            );
            Some(OpBox {
                class: op.outcome.name(),
                top: top + 18,
                left: c * COL + 2,
                height: (bottom.saturating_sub(top)).max(PX + 4),
                title,
                key: op.key.as_ref().map(|k| format!("{k:?}")),
                text,
            })
        })
        .collect();
    Segment {
        gap_before,
        first: lo,
        last: hi.saturating_sub(1),
        why,
        width: procs.len() * COL,
        height: height + 18,
        heads,
        marks,
        ops: boxes,
    }
}
