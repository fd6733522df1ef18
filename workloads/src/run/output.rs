//! The results folder (`results/<UTC timestamp>-<name>/`, `results/latest`) and the
//! run's summary figures.

use anyhow::Context;
use checker::history::{Function, History, Key, Outcome};
use checker::report::latency_quantiles;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `YYYYMMDDTHHMMSSZ` for a time, in UTC: run and suite folder names, which sort in
/// the order the runs started.
pub fn utc_timestamp(t: SystemTime) -> String {
    DateTime::<Utc>::from(t)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}

/// RFC 3339 in UTC, to the second (`2026-01-26T10:15:00Z`), as `run.json`'s `started`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Creates a fresh `results/<timestamp>-<name>/` (with a suffix if two runs start in
/// the same second) and its `nodes/` folder.
pub fn make_run_dir(results: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = make_dated_dir(results, "", name)?;
    std::fs::create_dir_all(dir.join("nodes"))
        .with_context(|| format!("creating {}/nodes", dir.display()))?;
    Ok(dir)
}

/// Creates `parent/<prefix><UTC timestamp><-suffix>` (`suffix` may be empty), adding
/// `-1`, `-2`, ... when the name is taken: run folders and suite folders.
pub fn make_dated_dir(parent: &Path, prefix: &str, suffix: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(parent)
        .with_context(|| format!("creating results folder {}", parent.display()))?;
    let mut base = format!("{prefix}{}", utc_timestamp(SystemTime::now()));
    if !suffix.is_empty() {
        base = format!("{base}-{suffix}");
    }
    for n in 0..1000 {
        let dir = parent.join(if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!("no free folder name {base}-N under {}", parent.display())
}

/// Points `results/latest` at the run folder (a relative symlink, replaced if present).
pub fn update_latest(results: &Path, run_dir: &Path) -> anyhow::Result<()> {
    let link = results.join("latest");
    if link.symlink_metadata().is_ok() {
        std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?;
    }
    let target = run_dir.file_name().context("run folder has no name")?;
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &link)
        .with_context(|| format!("creating {}", link.display()))?;
    Ok(())
}

/// Counts and latencies of the client operations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub operations: usize,
    pub ok: usize,
    pub fail: usize,
    pub info: usize,
    /// "read" / "write" / "cas" -> "ok" / "fail" / "info" -> count.
    pub by_function: BTreeMap<String, BTreeMap<String, usize>>,
    /// Ok operations per second over the workload phase.
    pub ok_per_s: f64,
    pub latency_ok_p50_ms: Option<f64>,
    pub latency_ok_p99_ms: Option<f64>,
    pub latency_ok_max_ms: Option<f64>,
    pub faults: usize,
    pub leader_changes: usize,
    pub final_reads_ok: usize,
    /// Snapshots the nodes took, and installed from a leader (from their logs).
    #[serde(default)]
    pub snapshots_taken: usize,
    #[serde(default)]
    pub snapshots_installed: usize,
    /// Acknowledged writes the final reads show lost (see [`acknowledged_writes_lost`]).
    #[serde(default)]
    pub acknowledged_writes_lost: usize,
}

/// Acknowledged writes the final state lost: an `ok` write (or cas) to a key that
/// completed before the key's last `ok` read began, while that read returns nothing,
/// or a value whose writer completed before the acknowledged write was even invoked.
/// Every write's value is unique, so only a lost write explains either. A
/// linearizable history never has one; the checker's verdict covers the rest.
pub fn acknowledged_writes_lost(history: &History) -> usize {
    let written = |op: &checker::history::Operation| match op.f {
        Function::Write => Some(op.input.clone()),
        Function::Cas => op.input.get(1).cloned(),
        _ => None,
    };
    let mut lost = 0;
    let mut keys: BTreeMap<Option<&Key>, Vec<&checker::history::Operation>> = BTreeMap::new();
    for op in &history.ops {
        keys.entry(op.key.as_ref()).or_default().push(op);
    }
    for ops in keys.values() {
        let Some(last_read) = ops
            .iter()
            .filter(|o| o.f == Function::Read && o.outcome == Outcome::Ok)
            .max_by_key(|o| o.call)
        else {
            continue;
        };
        let seen = &last_read.output;
        // When the write whose value the read saw completed (0: nothing was seen).
        let floor = if seen.is_null() {
            Some(0)
        } else {
            ops.iter()
                .find(|o| o.outcome != Outcome::Fail && written(o).as_ref() == Some(seen))
                .and_then(|o| o.ret)
        };
        let Some(floor) = floor else {
            continue;
        };
        lost += ops
            .iter()
            .filter(|o| o.outcome == Outcome::Ok && written(o).is_some())
            .filter(|o| written(o).as_ref() != Some(seen))
            .filter(|o| o.call > floor || seen.is_null())
            .filter(|o| o.ret.is_some_and(|r| r < last_read.call))
            .count();
    }
    lost
}

/// Counts the snapshots taken and installed that the nodes' logs in `dir` report.
pub fn count_snapshots(dir: &std::path::Path) -> (usize, usize) {
    let (mut taken, mut installed) = (0, 0);
    let Ok(items) = std::fs::read_dir(dir) else {
        return (0, 0);
    };
    for item in items.flatten() {
        let Ok(text) = std::fs::read_to_string(item.path()) else {
            continue;
        };
        for line in text.lines() {
            if line.contains("snapshot taken") {
                taken += 1;
            } else if line.contains("state restored from the leader's snapshot") {
                installed += 1;
            }
        }
    }
    (taken, installed)
}

/// Counts and latency quantiles from the history's client operations.
pub fn summarize(history: &History, workload_s: f64) -> Summary {
    let mut s = Summary::default();
    for op in &history.ops {
        s.operations += 1;
        let outcome = match op.outcome {
            Outcome::Ok => {
                s.ok += 1;
                "ok"
            }
            Outcome::Fail => {
                s.fail += 1;
                "fail"
            }
            Outcome::Info => {
                s.info += 1;
                "info"
            }
        };
        *s.by_function
            .entry(op.f.name().to_string())
            .or_default()
            .entry(outcome.to_string())
            .or_default() += 1;
    }
    if workload_s > 0.0 {
        s.ok_per_s = s.ok as f64 / workload_s;
    }
    let ok = latency_quantiles(history)
        .into_iter()
        .find_map(|(o, q)| (o == Outcome::Ok).then_some(q));
    if let Some(q) = ok {
        let ms = |ns: u64| ns as f64 / 1e6;
        s.latency_ok_p50_ms = Some(ms(q.p50_ns));
        s.latency_ok_p99_ms = Some(ms(q.p99_ns));
        s.latency_ok_max_ms = Some(ms(q.max_ns));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_write_missing_from_the_final_read_is_counted_lost() {
        let h =
            |lines: &[&str]| checker::parse::parse_str(&lines.join("\n"), "test").expect("parses");
        let ev = |i: u64, p: u64, t: &str, f: &str, v: &str| {
            format!(
                r#"{{"index":{i},"time":{i},"process":{p},"type":"{t}","f":"{f}","key":"k","value":{v}}}"#
            )
        };
        // Write 1, then write 2 (both acknowledged), then a read that sees `seen`.
        let in_turn = |seen: &str| {
            h(&[
                &ev(0, 0, "invoke", "write", "1"),
                &ev(1, 0, "ok", "write", "1"),
                &ev(2, 0, "invoke", "write", "2"),
                &ev(3, 0, "ok", "write", "2"),
                &ev(4, 1, "invoke", "read", "null"),
                &ev(5, 1, "ok", "read", seen),
            ])
        };
        assert_eq!(acknowledged_writes_lost(&in_turn("1")), 1);
        assert_eq!(acknowledged_writes_lost(&in_turn("2")), 0);
        // Concurrent writes may land in either order; an absent key lost them all.
        let concurrent = h(&[
            &ev(0, 0, "invoke", "write", "1"),
            &ev(1, 2, "invoke", "write", "2"),
            &ev(2, 0, "ok", "write", "1"),
            &ev(3, 2, "ok", "write", "2"),
            &ev(4, 1, "invoke", "read", "null"),
            &ev(5, 1, "ok", "read", "1"),
        ]);
        assert_eq!(acknowledged_writes_lost(&concurrent), 0);
        let gone = h(&[
            &ev(0, 0, "invoke", "write", "1"),
            &ev(1, 0, "ok", "write", "1"),
            &ev(2, 1, "invoke", "read", "null"),
            &ev(3, 1, "ok", "read", "null"),
        ]);
        assert_eq!(acknowledged_writes_lost(&gone), 1);
    }

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(0);
        assert_eq!(utc_timestamp(t), "19700101T000000Z");
        // 2024-02-29 12:34:56 UTC
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_709_210_096);
        assert_eq!(utc_timestamp(t), "20240229T123456Z");
        assert_eq!(rfc3339_utc(t), "2024-02-29T12:34:56Z");
    }

    #[test]
    fn summary_latencies_are_those_of_ok_operations() {
        // Two ok writes of 2 ms and 4 ms, a failed cas of 100 ms; times in ns.
        let text = [
            (0, 0, "invoke", "write"),
            (2_000_000, 0, "ok", "write"),
            (2_000_000, 1, "invoke", "cas"),
            (102_000_000, 1, "fail", "cas"),
            (3_000_000, 0, "invoke", "write"),
            (7_000_000, 0, "ok", "write"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (t, p, ty, f))| {
            format!(
                r#"{{"index":{i},"time":{t},"process":{p},"type":"{ty}","f":"{f}","key":"k","value":{}}}"#,
                if *f == "cas" { "[1,2]" } else { "1" }
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
        let history = checker::parse::parse_str(&text, "h.jsonl").expect("history");
        let s = summarize(&history, 2.0);
        assert_eq!((s.operations, s.ok, s.fail, s.info), (3, 2, 1, 0));
        assert_eq!(s.ok_per_s, 1.0);
        let near = |v: Option<f64>, want: f64| v.is_some_and(|v| (v - want).abs() < want * 0.01);
        assert!(near(s.latency_ok_p50_ms, 2.0), "{:?}", s.latency_ok_p50_ms);
        assert!(near(s.latency_ok_max_ms, 4.0), "{:?}", s.latency_ok_max_ms);
    }

    #[test]
    fn run_dirs_are_unique_and_latest_follows() {
        let tmp = tempfile::tempdir().expect("tmp");
        let a = make_run_dir(tmp.path(), "x").expect("a");
        let b = make_run_dir(tmp.path(), "x").expect("b");
        assert_ne!(a, b);
        assert!(b.join("nodes").is_dir());
        update_latest(tmp.path(), &a).expect("latest a");
        update_latest(tmp.path(), &b).expect("latest b");
        let target = std::fs::read_link(tmp.path().join("latest")).expect("link");
        assert_eq!(Some(target.as_os_str()), b.file_name());
    }
}
