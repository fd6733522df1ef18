//! `checker bench PATH`: how long reading and checking each history takes (a file, or
//! every history in a directory), each timed `--repeat` times, with the process's peak
//! memory; optionally beside Porcupine's times for the same files.

use super::BenchArgs;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// The histories a path names: the file itself, or the `*.jsonl` and `*.edn` files of a
/// directory, by name.
fn histories(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let p = entry?.path();
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if p.is_file() && matches!(ext, "jsonl" | "edn") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// Milliseconds: the median and the largest of the runs (the p99 of so few runs).
fn spread(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    (ms[ms.len() / 2], ms[ms.len() - 1])
}

/// CPU seconds the process has used so far, all threads (Linux; 0 elsewhere). On a
/// shared machine this says more than the wall clock: it does not count waiting for a
/// core.
fn cpu_s() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces, so split after its `)`):
    // utime and stime are the 12th and 13th, in clock ticks of 1/100 s.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (tick(11) + tick(12)) / 100.0
}

/// The process's peak resident memory so far, in MiB (Linux; `None` elsewhere).
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let mut options = args.model.options()?;
    options.all_keys = true;
    if args.repeat == 0 {
        anyhow::bail!("--repeat must be at least 1");
    }
    let compare: Option<BTreeMap<String, f64>> = match &args.compare {
        None => None,
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Some(serde_json::from_str(&text).with_context(|| {
                format!(
                    "{}: expected a JSON object of file name -> milliseconds",
                    p.display()
                )
            })?)
        }
    };
    let files = histories(&args.path)?;
    if files.is_empty() {
        anyhow::bail!("{}: no *.jsonl or *.edn histories", args.path.display());
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<28} {:>9} {:>18} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>9}",
        "file",
        "ops",
        "verdict",
        "parse ms",
        "parse max",
        "parse cpu",
        "check ms",
        "check max",
        "check cpu",
        "peak MiB"
    );
    if compare.is_some() {
        let _ = write!(out, " {:>14} {:>8}", "porcupine ms", "ratio");
    }
    super::out::println(&out)?;
    let mut total_ms = 0.0;
    for path in &files {
        out.clear();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (mut parse_ms, mut check_ms) = (Vec::new(), Vec::new());
        let (mut parse_cpu, mut check_cpu) = (Vec::new(), Vec::new());
        let mut last = None;
        for _ in 0..args.repeat {
            let (start, cpu) = (Instant::now(), cpu_s());
            let history = checker::parse::parse_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            parse_ms.push(start.elapsed().as_secs_f64() * 1e3);
            parse_cpu.push((cpu_s() - cpu) * 1e3);
            let (start, cpu) = (Instant::now(), cpu_s());
            let verdict = checker::check::check(&history, &options)
                .map_err(|e| anyhow::anyhow!("{}", e.in_file(&path.display().to_string())))?;
            check_ms.push(start.elapsed().as_secs_f64() * 1e3);
            check_cpu.push((cpu_s() - cpu) * 1e3);
            last = Some((history.ops.len(), verdict.valid));
        }
        let Some((ops, valid)) = last else { continue };
        let (parse_med, parse_max) = spread(parse_ms);
        let (check_med, check_max) = spread(check_ms);
        let (parse_cpu, check_cpu) = (spread(parse_cpu).0, spread(check_cpu).0);
        total_ms += check_med;
        let _ = write!(
            out,
            "{:<28} {:>9} {:>18} {:>10.1} {:>10.1} {:>10.0} {:>10.3} {:>10.3} {:>10.0} {:>9}",
            name,
            ops,
            serde_json::to_string(&valid)?,
            parse_med,
            parse_max,
            parse_cpu,
            check_med,
            check_max,
            check_cpu,
            peak_rss_mib().map_or("-".to_string(), |m| format!("{m:.0}")),
        );
        if let Some(table) = &compare {
            match table.get(&name) {
                Some(p) if *p > 0.0 => {
                    let _ = write!(out, " {:>14.3} {:>8.2}", p, check_med / p);
                }
                _ => {
                    let _ = write!(out, " {:>14} {:>8}", "-", "-");
                }
            }
        }
        // One row at a time, so a long bench shows progress.
        super::out::println(&out)?;
    }
    super::out::println(&format!(
        "{:<28} {:>9} {:>18} {:>10} {:>10} {:>10} {:>10.3}",
        "total (check medians)", "", "", "", "", "", total_ms
    ))?;
    Ok(ExitCode::SUCCESS)
}
