//! The counterexample view, in the spirit of Porcupine's visualizer: the failing key's
//! operations as bars, one row per process, over time; the longest linearizable prefix
//! numbered in linearization order; the operations that cannot be placed next in red;
//! the model state before and after each operation on hover.
//!
//! The view shows the failing window plus a little context, never the whole key, so
//! it stays small on huge histories.

use super::text::{describe, key_name, short_json, truncate};
use crate::history::{History, Key, Operation};
use crate::verdict::{Counterexample, Validity, Verdict};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Operations of the key shown on each side of the failing window.
const CONTEXT_OPS: usize = 25;
/// Operations shown per view at most.
const MAX_SHOWN_OPS: usize = 250;
/// Failing keys that get a view; further ones are only listed.
pub(crate) const MAX_VIEWS: usize = 20;
/// Prefix operations listed (the last ones, nearest the violation).
const PREFIX_TAIL: usize = 20;
/// Characters of a model state shown before it is cut.
const STATE_CHARS: usize = 400;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 30.0;
const TOP: f64 = 28.0;

/// One step of the prefix as listed under the diagram.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Step {
    pub n: usize,
    pub op: String,
    pub after: String,
}

/// Everything the template shows for one failing key.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CxView {
    pub key: String,
    pub key_ops: usize,
    pub shown: usize,
    pub prefix_len: usize,
    pub state_before: String,
    pub stuck: Vec<String>,
    pub steps: Vec<Step>,
    pub diagram: Diagram,
}

/// The diagram (`counterexample.html`, an inline SVG): one lane per process, one bar
/// per operation, in pixels.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Diagram {
    pub width: u32,
    pub height: u32,
    /// Where the lanes start and end.
    pub left: u32,
    pub right: u32,
    pub bar_height: u32,
    pub lanes: Vec<Lane>,
    pub bars: Vec<Bar>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Lane {
    pub process: u64,
    pub y: u32,
    /// The baseline of the process's name.
    pub text_y: u32,
}

/// One operation; hovering it shows `op`, `before` and `after` (report.js).
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Bar {
    /// CSS classes: `prefix`, `stuck` or `rest`; the outcome; `open` (never
    /// returned) and `window` (in the smallest failing window).
    pub class: String,
    pub op: String,
    pub before: String,
    pub after: String,
    pub title: String,
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub text_x: f64,
    pub text_y: f64,
    /// The description, cut to fit the bar (empty when nothing fits).
    pub label: String,
}

/// A coordinate to a tenth of a pixel.
fn tenth(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Views for the failing keys that carry a counterexample (at most [`MAX_VIEWS`]).
pub(crate) fn views(history: &History, verdict: &Verdict) -> Vec<CxView> {
    verdict
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
        .filter_map(|k| {
            k.counterexample
                .as_ref()
                .map(|cx| view(history, &k.key, cx))
        })
        .take(MAX_VIEWS)
        .collect()
}

/// Which of the key's operations to draw: the window and stuck ops, plus context,
/// capped around the first stuck op.
fn select(key_ops: &[usize], cx: &Counterexample) -> Vec<usize> {
    let mut focus: BTreeSet<usize> = cx.stuck.iter().chain(&cx.window).copied().collect();
    if focus.is_empty() {
        focus.extend(cx.prefix.iter().rev().take(5));
    }
    let pos: Vec<usize> = key_ops
        .iter()
        .enumerate()
        .filter(|(_, id)| focus.contains(id))
        .map(|(i, _)| i)
        .collect();
    let (Some(&lo), Some(&hi)) = (pos.first(), pos.last()) else {
        return key_ops.iter().take(MAX_SHOWN_OPS).copied().collect();
    };
    let mut lo = lo.saturating_sub(CONTEXT_OPS);
    let mut hi = (hi + CONTEXT_OPS).min(key_ops.len() - 1);
    if hi - lo + 1 > MAX_SHOWN_OPS {
        let anchor = cx
            .stuck
            .first()
            .and_then(|s| key_ops.iter().position(|id| id == s))
            .unwrap_or(pos[0]);
        lo = anchor.saturating_sub(MAX_SHOWN_OPS / 2);
        hi = (lo + MAX_SHOWN_OPS - 1).min(key_ops.len() - 1);
    }
    let mut shown: Vec<usize> = key_ops[lo..=hi].to_vec();
    for s in &cx.stuck {
        if !shown.contains(s) && key_ops.contains(s) {
            shown.push(*s);
        }
    }
    shown
}

fn view(history: &History, key: &Option<Key>, cx: &Counterexample) -> CxView {
    let mut key_ops: Vec<usize> = history
        .ops
        .iter()
        .filter(|o| &o.key == key)
        .map(|o| o.id)
        .collect();
    if !cx.stuck.iter().all(|id| key_ops.binary_search(id).is_ok()) {
        // A model that partitions by something other than the key: show the
        // operations the explanation names.
        let named: BTreeSet<usize> = cx
            .prefix
            .iter()
            .chain(&cx.stuck)
            .chain(&cx.window)
            .copied()
            .collect();
        key_ops = named.into_iter().collect();
    }
    let shown = select(&key_ops, cx);
    let order: BTreeMap<usize, usize> = cx
        .prefix
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    let state = |v: Option<&Value>| {
        v.map_or_else(
            || "(initial state)".to_string(),
            |v| short_json(v, STATE_CHARS),
        )
    };
    let stuck: BTreeSet<usize> = cx.stuck.iter().copied().collect();
    let window: BTreeSet<usize> = cx.window.iter().copied().collect();
    let ops: Vec<&Operation> = shown.iter().filter_map(|id| history.ops.get(*id)).collect();

    let procs: BTreeSet<u64> = ops.iter().map(|o| o.process).collect();
    let row: BTreeMap<u64, usize> = procs.iter().enumerate().map(|(i, p)| (*p, i)).collect();
    // Porcupine's compressed axis: every distinct invocation or completion instant
    // gets the same width, so short operations stay as readable as long ones; only
    // the order of instants matters for linearizability.
    let instants: Vec<u64> = ops
        .iter()
        .flat_map(|o| std::iter::once(o.call).chain(o.ret))
        .collect::<BTreeSet<u64>>()
        .into_iter()
        .collect();
    let step = (WIDTH - LEFT - RIGHT - 20.0) / instants.len().saturating_sub(1).max(1) as f64;
    let x = |t: u64| LEFT + instants.partition_point(|i| *i < t) as f64 * step;
    let height = TOP + ROW * procs.len() as f64 + 10.0;

    let lanes = row
        .iter()
        .map(|(p, r)| {
            let y = TOP + ROW * *r as f64;
            Lane {
                process: *p,
                y: y as u32,
                text_y: (y + ROW / 2.0 + 4.0) as u32,
            }
        })
        .collect();
    let mut bars = Vec::with_capacity(ops.len());
    for op in &ops {
        let Some(r) = row.get(&op.process) else {
            continue;
        };
        let x0 = x(op.call);
        let x1 = op.ret.map_or(WIDTH - RIGHT, x).max(x0 + 4.0);
        let y = TOP + ROW * *r as f64 + 4.0;
        let (n, before, after, role) = if let Some(&i) = order.get(&op.id) {
            let before = state(if i == 0 { None } else { cx.states.get(i - 1) });
            (
                format!("#{} ", i + 1),
                before,
                state(cx.states.get(i)),
                "prefix",
            )
        } else if stuck.contains(&op.id) {
            (
                String::new(),
                state(Some(&cx.state_before)),
                "cannot be applied from this state".to_string(),
                "stuck",
            )
        } else {
            (
                String::new(),
                "-".to_string(),
                "not in the linearizable prefix".to_string(),
                "rest",
            )
        };
        let text = format!("{n}{}", describe(op));
        let fit = ((x1 - x0) / 6.6) as usize;
        let label = if fit < 2 {
            String::new()
        } else {
            truncate(&text, fit)
        };
        let open = if op.ret.is_none() { " open" } else { "" };
        let in_window = if window.contains(&op.id) {
            " window"
        } else {
            ""
        };
        bars.push(Bar {
            class: format!("{role} {}{open}{in_window}", op.outcome.name()),
            op: format!("op {} · p{} · {text}", op.id, op.process),
            title: format!("{text}\nbefore: {before}\nafter: {after}"),
            before,
            after,
            x: tenth(x0),
            y: tenth(y),
            width: tenth(x1 - x0),
            text_x: tenth(x0 + 3.0),
            text_y: tenth(y + ROW / 2.0),
            label,
        });
    }
    let diagram = Diagram {
        width: WIDTH as u32,
        height: height as u32,
        left: LEFT as u32,
        right: (WIDTH - RIGHT) as u32,
        bar_height: (ROW - 8.0) as u32,
        lanes,
        bars,
    };

    let steps = cx
        .prefix
        .iter()
        .enumerate()
        .skip(cx.prefix.len().saturating_sub(PREFIX_TAIL))
        .map(|(i, id)| Step {
            n: i + 1,
            op: history.ops.get(*id).map_or_else(
                || format!("op {id}"),
                |o| format!("p{} {}", o.process, describe(o)),
            ),
            after: state(cx.states.get(i)),
        })
        .collect();
    CxView {
        key: key_name(key),
        key_ops: key_ops.len(),
        shown: ops.len(),
        prefix_len: cx.prefix.len(),
        state_before: short_json(&cx.state_before, 200),
        stuck: cx
            .stuck
            .iter()
            .map(|id| {
                history.ops.get(*id).map_or_else(
                    || format!("op {id}"),
                    |o| format!("op {id}: p{} {}", o.process, describe(o)),
                )
            })
            .collect(),
        steps,
        diagram,
    }
}
