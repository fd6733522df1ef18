//! The counterexample view, in the spirit of Porcupine's visualizer: the failing key's
//! operations as bars, one row per process, over time; the longest linearizable prefix
//! numbered in linearization order; the operations that cannot be placed next in red;
//! the model state before and after each operation on hover.
//!
//! The view shows the failing window plus a little context, never the whole key, so
//! it stays small on huge histories.

use super::html::esc;
use super::stats::outcome_name;
use crate::history::{Function, History, Key, Operation, Outcome};
use crate::verdict::{Counterexample, Validity, Verdict};
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
/// Characters of a value shown before it is cut.
const VALUE_CHARS: usize = 48;

const WIDTH: f64 = 1100.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const ROW: f64 = 30.0;
const TOP: f64 = 28.0;

/// One step of the prefix as listed under the diagram.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Step {
    pub n: usize,
    pub op: String,
    pub after: String,
}

/// Everything the template shows for one failing key.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct CxView {
    pub key: String,
    pub key_ops: usize,
    pub shown: usize,
    pub prefix_len: usize,
    pub state_before: String,
    pub stuck: Vec<String>,
    pub steps: Vec<Step>,
    pub svg: String,
}

/// A JSON value as short text.
pub(crate) fn short_json(v: &Value, max: usize) -> String {
    super::html::truncate(&v.to_string(), max)
}

/// "write 4", "read → 4", "cas 4→7 (fail)", "append \"x\"", "incr 2 → 5".
pub(crate) fn describe(op: &Operation) -> String {
    let v = |x: &Value| short_json(x, VALUE_CHARS);
    let ok = op.outcome == Outcome::Ok;
    let base = match &op.f {
        Function::Read | Function::Dequeue if ok => format!("{} → {}", op.f, v(&op.output)),
        Function::Cas => match op.input.as_array().map(Vec::as_slice) {
            Some([a, b]) => format!("cas {}→{}", v(a), v(b)),
            _ => format!("cas {}", v(&op.input)),
        },
        Function::Other(_) if ok && !op.output.is_null() && op.output != op.input => {
            format!("{} {} → {}", op.f, v(&op.input), v(&op.output))
        }
        f if op.input.is_null() => f.to_string(),
        f => format!("{f} {}", v(&op.input)),
    };
    match op.outcome {
        Outcome::Ok => base,
        o => format!("{base} ({})", outcome_name(o)),
    }
}

/// A key as reports name it: a string key quoted, any other as JSON, so `"1"` and `1`
/// stay apart.
pub(crate) fn key_name(key: &Option<Key>) -> String {
    key.as_ref()
        .map_or_else(|| "(register)".to_string(), |k| format!("{k:?}"))
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

    let mut svg = format!(
        "<svg class=\"cx\" viewBox=\"0 0 {WIDTH} {height}\" width=\"100%\" role=\"img\" aria-label=\"operations of key {}\">",
        esc(&key_name(key))
    );
    for (p, r) in &row {
        let y = TOP + ROW * *r as f64;
        svg.push_str(&format!(
            "<line class=\"lane\" x1=\"{LEFT}\" x2=\"{}\" y1=\"{y}\" y2=\"{y}\"/><text class=\"proc\" x=\"4\" y=\"{}\">p{p}</text>",
            WIDTH - RIGHT,
            y + ROW / 2.0 + 4.0
        ));
    }
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
            super::html::truncate(&text, fit)
        };
        let open = if op.ret.is_none() { " open" } else { "" };
        let open = if window.contains(&op.id) {
            format!("{open} window")
        } else {
            open.to_string()
        };
        svg.push_str(&format!(
            "<g class=\"cx-op {role} {}{open}\" data-op=\"{}\" data-before=\"{}\" data-after=\"{}\"><title>{}</title>\
             <rect x=\"{x0:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{}\" rx=\"3\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text></g>",
            outcome_name(op.outcome),
            esc(&format!("op {} · p{} · {text}", op.id, op.process)),
            esc(&before),
            esc(&after),
            esc(&format!("{text}\nbefore: {before}\nafter: {after}")),
            x1 - x0,
            ROW - 8.0,
            x0 + 3.0,
            y + ROW / 2.0,
            esc(&label),
        ));
    }
    svg.push_str("</svg>");

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
        svg,
    }
}
