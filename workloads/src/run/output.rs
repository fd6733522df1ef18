//! The results folder (`results/<UTC timestamp>-<name>/`, `results/latest`) and the
//! run's summary figures.

use anyhow::Context;
use checker::history::{Function, History, Key, Outcome};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// `YYYYMMDDTHHMMSSZ` for a time, in UTC (civil-from-days, so no date crate is needed).
pub fn utc_timestamp(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// RFC 3339 in UTC (`2026-01-26T10:15:00Z`), as `run.json`'s `started`.
pub fn rfc3339_utc(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Creates a fresh `results/<timestamp>-<name>/` (with a suffix if two runs start in
/// the same second) and its `nodes/` folder.
pub fn make_run_dir(results: &Path, name: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(results)
        .with_context(|| format!("creating results folder {}", results.display()))?;
    let base = format!("{}-{name}", utc_timestamp(SystemTime::now()));
    for n in 0..1000 {
        let dir_name = if n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        let dir = results.join(dir_name);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                std::fs::create_dir_all(dir.join("nodes"))
                    .with_context(|| format!("creating {}/nodes", dir.display()))?;
                return Ok(dir);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    }
    anyhow::bail!(
        "could not find a free run folder name under {}",
        results.display()
    )
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
    // 1 µs to 10 min, 3 significant digits.
    let mut hist = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).ok();
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
        if op.outcome == Outcome::Ok
            && let (Some(ret), Some(h)) = (op.ret, hist.as_mut())
        {
            let us = (ret.saturating_sub(op.call) / 1000).clamp(1, 600_000_000);
            let _ = h.record(us);
        }
    }
    if workload_s > 0.0 {
        s.ok_per_s = s.ok as f64 / workload_s;
    }
    if let Some(h) = hist.filter(|h| !h.is_empty()) {
        s.latency_ok_p50_ms = Some(h.value_at_quantile(0.5) as f64 / 1000.0);
        s.latency_ok_p99_ms = Some(h.value_at_quantile(0.99) as f64 / 1000.0);
        s.latency_ok_max_ms = Some(h.max() as f64 / 1000.0);
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
