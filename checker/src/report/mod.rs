//! The HTML report: a self-contained page (inline CSS, JS, SVG, images) with the
//! verdict, summary tables, plots, counterexamples and a timeline.
//!
//! [`write_report`] renders one run into a folder; [`write_index`] lists every run
//! folder of a results directory.
//!
//! The page embeds everything it shows (plots as PNG `data:` URIs, the counterexample
//! and the timeline as inline SVG/HTML, CSS and JS inline), because reports are opened
//! from `file://`, mailed around and attached to CI runs, where nothing else travels
//! with them. Every section is bounded, so a history of millions of operations still
//! gives a page of a few megabytes at most.
//!
//! # `run.json`, as [`write_index`] reads it
//!
//! The runner writes one `run.json` per run folder: the [`RunInfo`] fields (`name`,
//! `command`, `seed`, `config`, `faults`, `cluster_events`) plus:
//!
//! | field | type | shown as |
//! |---|---|---|
//! | `name` | string | the run's name (falls back to the folder name) |
//! | `started` | string (RFC 3339, UTC) | date (falls back to the folder name's timestamp) |
//! | `config.nodes` | integer | nodes |
//! | `config.nemesis` | string or list of strings | faults (falls back to the kinds in `faults`) |
//! | `faults[].kind` | string | faults, when `config.nemesis` is absent |
//! | `summary.operations` | integer | operations (falls back to `ok + fail + info`) |
//! | `summary.ok`, `summary.fail`, `summary.info` | integer | operations by outcome |
//! | `valid` | `true` / `false` / `"unknown"` | the verdict, in colour |
//! | `suite.scenario`, `suite.expected`, `suite.passed` | strings, boolean | a suite's gate: PASS or FAIL and what it expected |
//!
//! Every field is optional; a folder without `run.json` is still listed.

mod counterexample;
mod faults;
mod html;
mod index;
mod plots;
mod stats;
mod templates;
mod text;
mod timeline;

pub use index::{IndexPage, RunJson, RunSummaryCounts, SuiteCase, write_index, write_index_page};
pub use stats::{LatencyQuantiles, latency_quantiles};

use crate::history::History;
use crate::verdict::{Validity, Verdict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// What a real or simulated run adds to a bare history (all optional for a history
/// checked on its own).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// A short name of the run ("partition-kill-pause", "c50-bad.edn").
    pub name: String,
    /// The exact command that replays the run.
    pub command: String,
    pub seed: Option<u64>,
    /// The run's configuration as shown in the report (nodes, clients, rate, ...).
    pub config: Value,
    /// Fault intervals, for shading plots.
    pub faults: Vec<FaultInterval>,
    /// Cluster events (leader and term changes), for the timeline.
    pub cluster_events: Vec<ClusterEvent>,
}

/// One fault, from its start to its end (nanoseconds since the run started).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultInterval {
    /// "partition", "kill", "pause", "membership".
    pub kind: String,
    pub start_ns: u64,
    /// `None` if it never ended (should not happen: runs heal at the end).
    pub end_ns: Option<u64>,
    /// Free text: the grudge, the node ids.
    pub detail: String,
}

/// Something the cluster did, as observed by the runner.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterEvent {
    pub time_ns: u64,
    /// "leader", "term", ...
    pub kind: String,
    pub node: Option<u64>,
    pub detail: String,
}

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("rendering the {what} template: {source}")]
    Template {
        what: &'static str,
        #[source]
        source: minijinja::Error,
    },
    #[error("drawing the {plot} plot: {message}")]
    Plot { plot: &'static str, message: String },
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    std::fs::write(path, bytes).map_err(io_err(path))
}

/// Writes `dir/report.html` and the plots `latency-raw`, `latency-quantiles` and
/// `rate` (each as `.png` and `.svg`) into `dir`, creating it if needed. Returns the
/// path of `report.html`.
///
/// Fault bands come from `run.faults`, or, without a `RunInfo`, from the history's
/// nemesis events (`partition-start` / `partition-end`, Jepsen's `start-partition` /
/// `stop-partition`, ...).
pub fn write_report(
    dir: &Path,
    history: &History,
    verdict: &Verdict,
    run: Option<&RunInfo>,
) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let clock = stats::Clock::of(history);
    let fault_list = match run {
        Some(r) if !r.faults.is_empty() => r.faults.clone(),
        _ => faults::from_history(history),
    };
    let fault_kinds = faults::kinds(&fault_list);
    let summary = stats::summarize(history, &clock);
    let plot_set = plots::draw_all(history, &clock, &fault_list, &fault_kinds)?;
    for p in &plot_set {
        write_file(&dir.join(format!("{}.png", p.name)), &p.png)?;
        write_file(&dir.join(format!("{}.svg", p.name)), p.svg.as_bytes())?;
    }
    let cxs = counterexample::views(history, verdict);
    let cluster = run.map_or(&[][..], |r| &r.cluster_events[..]);
    let timeline = timeline::render(history, verdict, &clock, cluster);
    let page = html::render_report(&html::ReportParts {
        history,
        verdict,
        run,
        clock: &clock,
        summary: &summary,
        faults: &fault_list,
        fault_kinds: &fault_kinds,
        plots: &plot_set,
        counterexamples: &cxs,
        timeline: &timeline,
    })?;
    let out = dir.join("report.html");
    write_file(&out, page.as_bytes())?;
    Ok(out)
}

/// The banner's words and CSS class for a validity.
pub(crate) fn validity_label(v: Validity) -> (&'static str, &'static str) {
    match v {
        Validity::Linearizable => ("linearizable", "ok"),
        Validity::NotLinearizable => ("NOT linearizable", "bad"),
        Validity::Unknown => ("unknown (budget ran out or check stopped)", "unknown"),
    }
}
