//! Fault intervals: read from the history's nemesis events when the run did not give
//! them, and one colour per fault type (the same colour in every plot and table).

use super::FaultInterval;
use crate::history::History;
use std::collections::BTreeMap;

/// At most this many intervals are derived: a nemesis that flaps every millisecond
/// would otherwise cover the plots in bands.
const MAX_FAULTS: usize = 2_000;

/// Colours by fault type: the well-known types get fixed ones (close to Jepsen's),
/// the others take the next unused one from a palette, in name order.
const KNOWN: [(&str, &str); 5] = [
    ("partition", "#d9a33f"),
    ("kill", "#d94f4f"),
    ("pause", "#9b6fd6"),
    ("membership", "#3fae8c"),
    ("clock", "#5b8ad9"),
];
const PALETTE: [&str; 6] = [
    "#8c8c3f", "#c26fb0", "#6f9fb0", "#b0866f", "#7fb06f", "#6f6fb0",
];

/// A fault type and its colour.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct FaultKind {
    pub kind: String,
    pub color: String,
}

/// The colour of each fault type that occurs, in name order.
pub(crate) fn kinds(faults: &[FaultInterval]) -> Vec<FaultKind> {
    let mut names: Vec<&str> = faults.iter().map(|f| f.kind.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut next = 0;
    names
        .into_iter()
        .map(|k| {
            let color = match KNOWN.iter().find(|(n, _)| *n == k) {
                Some((_, c)) => c.to_string(),
                None => {
                    let c = PALETTE[next % PALETTE.len()];
                    next += 1;
                    c.to_string()
                }
            };
            FaultKind {
                kind: k.to_string(),
                color,
            }
        })
        .collect()
}

pub(crate) fn color_of<'a>(kinds: &'a [FaultKind], kind: &str) -> &'a str {
    kinds
        .iter()
        .find(|k| k.kind == kind)
        .map_or("#999999", |k| k.color.as_str())
}

/// Whether a nemesis `f` starts or ends a fault, and of which type.
fn classify(f: &str) -> Option<(bool, String)> {
    for (suffix, start) in [
        ("-start", true),
        ("-begin", true),
        ("-stop", false),
        ("-end", false),
        ("-heal", false),
    ] {
        if let Some(k) = f.strip_suffix(suffix) {
            return Some((start, k.to_string()));
        }
    }
    for (prefix, start) in [
        ("start-", true),
        ("begin-", true),
        ("stop-", false),
        ("end-", false),
        ("heal-", false),
    ] {
        if let Some(k) = f.strip_prefix(prefix) {
            return Some((start, k.to_string()));
        }
    }
    match f {
        "start" => Some((true, "nemesis".to_string())),
        "stop" | "heal" => Some((false, "nemesis".to_string())),
        _ => None,
    }
}

/// Fault intervals from the nemesis events (any non-client process). A start that is
/// never ended stays open (`end_ns: None`); an end without a start is ignored. Jepsen
/// logs both an `invoke` and an `info` for each nemesis action: the first one counts.
pub(crate) fn from_history(history: &History) -> Vec<FaultInterval> {
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    let mut out: Vec<FaultInterval> = Vec::new();
    let timed = history.timed();
    let mut last_time = 0u64;
    for (pos, e) in history.events.iter().enumerate() {
        let t = match e.time {
            Some(t) => t,
            None if timed => last_time,
            None => pos as u64,
        };
        last_time = t;
        let Some(other) = e.other() else {
            continue;
        };
        let Some((start, kind)) = classify(&other.f) else {
            continue;
        };
        if start {
            if open.contains_key(&kind) || out.len() >= MAX_FAULTS {
                continue;
            }
            let detail = if other.value.is_null() {
                String::new()
            } else {
                other.value.to_string()
            };
            open.insert(kind.clone(), out.len());
            out.push(FaultInterval {
                kind,
                start_ns: t,
                end_ns: None,
                detail,
            });
        } else if let Some(i) = open.remove(&kind) {
            out[i].end_ns = Some(t);
        }
    }
    out
}
