//! Turns the computed parts into the page: rows for the tables, `data:` URIs for the
//! plots, and the context of the `report.html` template, which includes the
//! counterexample diagrams and the timeline.

use super::counterexample::{CxView, MAX_VIEWS};
use super::faults::{FaultKind, color_of};
use super::plots::Plot;
use super::stats::{Clock, Summary};
use super::templates;
use super::text::{key_name, truncate};
use super::timeline::Timeline;
use super::{FaultInterval, ReportError, RunInfo, validity_label};
use crate::history::History;
use crate::verdict::{Validity, Verdict};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use minijinja::{context, value::Serde};
use serde::Serialize;
use serde_json::Value;

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// Rows of the per-key table at most (failing and unknown keys come first).
const MAX_KEY_ROWS: usize = 500;
/// Rows of the fault and cluster-event tables at most.
const MAX_EVENT_ROWS: usize = 500;

pub(crate) struct ReportParts<'a> {
    pub history: &'a History,
    pub verdict: &'a Verdict,
    pub run: Option<&'a RunInfo>,
    pub clock: &'a Clock,
    pub summary: &'a Summary,
    pub faults: &'a [FaultInterval],
    pub fault_kinds: &'a [FaultKind],
    pub plots: &'a [Plot],
    pub counterexamples: &'a [CxView],
    pub timeline: &'a Timeline,
}

#[derive(Serialize)]
struct KeyRow {
    key: String,
    /// The id of the key's counterexample view, when it has one.
    anchor: Option<String>,
    label: &'static str,
    class: &'static str,
    ops: usize,
    note: String,
}

#[derive(Serialize)]
struct PlotRow {
    name: &'static str,
    title: &'static str,
    src: String,
    note: String,
}

#[derive(Serialize)]
struct Row {
    a: String,
    b: String,
    c: String,
    d: String,
    color: String,
}

fn key_rows(verdict: &Verdict) -> (Vec<KeyRow>, usize) {
    let rank = |v: Validity| match v {
        Validity::NotLinearizable => 0,
        Validity::Unknown => 1,
        Validity::Linearizable => 2,
    };
    // Views are made for failing keys with a counterexample, in verdict order.
    let mut views = 0;
    let mut keys: Vec<_> = verdict
        .keys
        .iter()
        .map(|k| {
            let has_view = k.valid == Validity::NotLinearizable && k.counterexample.is_some();
            let anchor = (has_view && views < MAX_VIEWS).then(|| format!("cx-{views}"));
            views += usize::from(has_view);
            (k, anchor)
        })
        .collect();
    keys.sort_by_key(|(k, _)| rank(k.valid));
    let rows = keys
        .iter()
        .take(MAX_KEY_ROWS)
        .map(|(k, anchor)| {
            let (label, class) = validity_label(k.valid);
            let note = match &k.counterexample {
                Some(cx) => format!(
                    "prefix of {} ops linearizes; {} op(s) cannot be placed next; window of {} ops",
                    cx.prefix.len(),
                    cx.stuck.len(),
                    cx.window.len()
                ),
                None => k.reason.clone().unwrap_or_default(),
            };
            KeyRow {
                key: key_name(&k.key),
                anchor: anchor.clone(),
                label,
                class,
                ops: k.ops,
                note,
            }
        })
        .collect();
    (rows, keys.len().saturating_sub(MAX_KEY_ROWS))
}

fn config_rows(run: Option<&RunInfo>) -> Vec<(String, String)> {
    match run.map(|r| &r.config) {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    truncate(
                        &v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        200,
                    ),
                )
            })
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(v) => vec![("config".to_string(), truncate(&v.to_string(), 400))],
    }
}

pub(crate) fn render_report(p: &ReportParts<'_>) -> Result<String, ReportError> {
    let (label, class) = validity_label(p.verdict.valid);
    let (keys, keys_more) = key_rows(p.verdict);
    let plots: Vec<PlotRow> = p
        .plots
        .iter()
        .map(|pl| PlotRow {
            name: pl.name,
            title: pl.title,
            src: format!("data:image/png;base64,{}", BASE64.encode(&pl.png)),
            note: pl.note.clone(),
        })
        .collect();
    let faults: Vec<Row> = p
        .faults
        .iter()
        .take(MAX_EVENT_ROWS)
        .map(|f| Row {
            a: f.kind.clone(),
            b: p.clock.fmt_instant(f.start_ns),
            c: f.end_ns
                .map_or_else(|| "never healed".to_string(), |e| p.clock.fmt_instant(e)),
            d: truncate(&f.detail, 200),
            color: color_of(p.fault_kinds, &f.kind).to_string(),
        })
        .collect();
    let cluster_all = p.run.map_or(&[][..], |r| &r.cluster_events[..]);
    let cluster: Vec<Row> = cluster_all
        .iter()
        .take(MAX_EVENT_ROWS)
        .map(|e| Row {
            a: format!("{:.3} s", e.time_ns as f64 / 1e9),
            b: e.kind.clone(),
            c: e.node.map_or_else(String::new, |n| format!("n{n}")),
            d: truncate(&e.detail, 200),
            color: String::new(),
        })
        .collect();
    let failing = p
        .verdict
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
        .count();
    let name = p.run.map_or("", |r| r.name.as_str());
    let ctx = context! {
        title => if name.is_empty() { "history".to_string() } else { name.to_string() },
        css => CSS,
        js => JS,
        verdict_label => label,
        verdict_class => class,
        model => &p.verdict.model,
        events => p.history.events.len(),
        ops => p.history.ops.len(),
        check_s => format!("{:.3}", p.verdict.check_s),
        command => p.run.map(|r| r.command.clone()).filter(|c| !c.is_empty()),
        seed => p.run.and_then(|r| r.seed),
        config => config_rows(p.run),
        timed => p.clock.timed,
        summary => Serde(p.summary),
        keys => Serde(&keys),
        keys_more => keys_more,
        key_count => p.verdict.keys.len(),
        failing => failing,
        cxs => Serde(p.counterexamples),
        cx_more => failing.saturating_sub(MAX_VIEWS),
        plots => Serde(&plots),
        fault_kinds => Serde(p.fault_kinds),
        faults => Serde(&faults),
        faults_more => p.faults.len().saturating_sub(MAX_EVENT_ROWS),
        fault_source => if p.run.is_some_and(|r| !r.faults.is_empty()) { "the run" } else { "the history's nemesis events" },
        cluster => Serde(&cluster),
        cluster_more => cluster_all.len().saturating_sub(MAX_EVENT_ROWS),
        timeline => Serde(p.timeline),
    };
    templates::render("report.html", ctx)
}
