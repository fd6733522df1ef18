//! `results/index.html`: every run folder, newest first, with its verdict in colour
//! and a link to its report. The fields read from `run.json` are listed in the module
//! documentation of [`crate::report`]. The same page, titled and in run order, is a
//! suite's page ([`write_index_page`]): its runs in the order they ran, each row also
//! saying whether the run met the suite's expectation.

use super::templates;
use super::text::{truncate, url_path};
use super::{FaultInterval, ReportError, io_err, write_file};
use minijinja::{context, value::Serde};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

const CSS: &str = include_str!("assets/report.css");
/// Run folders listed at most (the newest ones).
const MAX_RUNS: usize = 2_000;
/// A `run.json` larger than this is not read (it is listed without details).
const MAX_RUN_JSON_BYTES: u64 = 16 << 20;

/// The part of `run.json` the index shows. Every field is optional.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunJson {
    pub name: Option<String>,
    /// When the run started (RFC 3339, UTC).
    pub started: Option<String>,
    /// The run's configuration; `nodes` and `nemesis` are shown.
    pub config: Value,
    pub faults: Vec<FaultInterval>,
    pub summary: Option<RunSummaryCounts>,
    /// `true`, `false` or `"unknown"`.
    pub valid: Value,
    /// Set when the run is a scenario of a suite (`workloads suite ci`).
    pub suite: Option<SuiteCase>,
}

/// `suite` in `run.json`: what a suite expected of the run, and whether it got it.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SuiteCase {
    /// The scenario's name.
    pub scenario: String,
    /// `"clean"` (linearizable, exit 0) or `"caught"` (the anomaly found, exit 1).
    pub expected: String,
    pub passed: bool,
}

/// Title and order of an index page.
#[derive(Clone, Debug)]
pub struct IndexPage {
    pub title: String,
    /// The line under the title; empty for "N run(s), newest first".
    pub subtitle: String,
    /// Exactly these folders, in this order (a suite's runs, in the order they ran);
    /// `None` lists every folder, newest first.
    pub folders: Option<Vec<String>>,
}

/// `summary` in `run.json`: operation counts.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct RunSummaryCounts {
    pub operations: Option<u64>,
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

#[derive(Serialize)]
struct IndexRow {
    folder: String,
    date: String,
    name: String,
    nodes: String,
    faults: String,
    operations: String,
    verdict: &'static str,
    class: &'static str,
    report: Option<String>,
    problem: Option<String>,
    gate: Option<String>,
    gate_class: &'static str,
}

/// The folder's leading timestamp (`20260126T101500Z-...` or `2026-01-26T10-15-00Z-...`).
fn folder_date(folder: &str) -> String {
    let stamp: String = folder.chars().take_while(|c| *c != '-').collect();
    if stamp.len() >= 8 && stamp.chars().take(8).all(|c| c.is_ascii_digit()) {
        return stamp;
    }
    match folder.find('Z') {
        Some(i) if i < 30 => folder[..=i].to_string(),
        _ => String::new(),
    }
}

fn row(dir: &Path, folder: &str) -> IndexRow {
    let mut r = IndexRow {
        folder: folder.to_string(),
        date: folder_date(folder),
        name: folder.to_string(),
        nodes: String::new(),
        faults: String::new(),
        operations: String::new(),
        verdict: "no verdict",
        class: "none",
        // A run's report, or the page of a folder of runs (a suite).
        report: ["report.html", "index.html"]
            .into_iter()
            .find(|page| dir.join(page).is_file())
            .map(|page| url_path(&format!("{folder}/{page}"))),
        problem: None,
        gate: None,
        gate_class: "none",
    };
    let path = dir.join("run.json");
    let meta = match std::fs::metadata(&path) {
        Ok(m) => m,
        Err(_) => {
            r.problem = Some("no run.json".into());
            return r;
        }
    };
    if meta.len() > MAX_RUN_JSON_BYTES {
        r.problem = Some("run.json too large to read".into());
        return r;
    }
    let run: RunJson = match std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(run) => run,
        Err(e) => {
            r.problem = Some(format!("run.json: {}", truncate(&e, 120)));
            return r;
        }
    };
    if let Some(n) = run.name.filter(|n| !n.is_empty()) {
        r.name = n;
    }
    if let Some(d) = run.started {
        r.date = d;
    }
    r.nodes = run
        .config
        .get("nodes")
        .map_or_else(String::new, |v| v.to_string());
    r.faults = match run.config.get("nemesis") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        _ => {
            let mut k: Vec<&str> = run.faults.iter().map(|f| f.kind.as_str()).collect();
            k.sort_unstable();
            k.dedup();
            if k.is_empty() {
                String::new()
            } else {
                k.join(",")
            }
        }
    };
    r.faults = truncate(&r.faults, 80);
    if let Some(s) = run.summary {
        let total = s.operations.unwrap_or(s.ok + s.fail + s.info);
        r.operations = format!("{total} ({} ok, {} info, {} fail)", s.ok, s.info, s.fail);
    }
    if let Some(case) = run.suite {
        let (word, class) = if case.passed {
            ("PASS", "ok")
        } else {
            ("FAIL", "bad")
        };
        r.gate = Some(format!(
            "{word} (expected {})",
            truncate(&case.expected, 40)
        ));
        r.gate_class = class;
    }
    (r.verdict, r.class) = match run.valid {
        Value::Bool(true) => ("linearizable", "ok"),
        Value::Bool(false) => ("NOT linearizable", "bad"),
        Value::String(s) if s == "unknown" => ("unknown", "unknown"),
        _ => ("no verdict", "none"),
    };
    r
}

/// Writes `results_dir/index.html` listing every run folder (newest first: folder
/// names start with a UTC timestamp). The `latest` link is skipped.
pub fn write_index(results_dir: &Path) -> Result<PathBuf, ReportError> {
    write_index_page(
        results_dir,
        &IndexPage {
            title: "Runs".into(),
            subtitle: String::new(),
            folders: None,
        },
    )
}

/// [`write_index`] with a title and an order of its own: a suite's page.
pub fn write_index_page(results_dir: &Path, page: &IndexPage) -> Result<PathBuf, ReportError> {
    let mut folders: Vec<String> = match &page.folders {
        Some(listed) => listed.clone(),
        None => {
            let mut found = Vec::new();
            let entries = std::fs::read_dir(results_dir).map_err(io_err(results_dir))?;
            for e in entries {
                let e = e.map_err(io_err(results_dir))?;
                let name = e.file_name().to_string_lossy().into_owned();
                let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
                if name == "latest" || name.starts_with('.') || is_link || !e.path().is_dir() {
                    continue;
                }
                found.push(name);
            }
            found.sort_unstable_by(|a, b| b.cmp(a));
            found
        }
    };
    let total = folders.len();
    folders.truncate(MAX_RUNS);
    let rows: Vec<IndexRow> = folders
        .iter()
        .map(|f| row(&results_dir.join(f), f))
        .collect();
    let gates = rows.iter().any(|r| r.gate.is_some());
    let html = templates::render(
        "index.html",
        context! {
            css => CSS,
            title => &page.title,
            subtitle => &page.subtitle,
            listed => page.folders.is_some(),
            gates => gates,
            runs => Serde(&rows),
            more => total.saturating_sub(MAX_RUNS),
        },
    )?;
    let out = results_dir.join("index.html");
    write_file(&out, html.as_bytes())?;
    Ok(out)
}
