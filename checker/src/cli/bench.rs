//! `checker bench DIR`: the check time of every history in a directory (parsing
//! excluded), optionally beside Porcupine's times for the same files.

use super::BenchArgs;
use anyhow::Context;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::process::ExitCode;
use std::time::Instant;

/// The histories a directory holds, by name.
fn histories(dir: &std::path::Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if path.is_file() && matches!(ext, "jsonl" | "edn") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    let mut options = args.model.options()?;
    options.all_keys = true;
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
    let files = histories(&args.dir)?;
    if files.is_empty() {
        anyhow::bail!("{}: no *.jsonl or *.edn histories", args.dir.display());
    }
    let mut out = String::new();
    let _ = write!(
        out,
        "{:<28} {:>9} {:>18} {:>12} {:>10}",
        "file", "ops", "verdict", "check ms", "parse ms"
    );
    if compare.is_some() {
        let _ = write!(out, " {:>14} {:>8}", "porcupine ms", "ratio");
    }
    println!("{out}");
    let mut total_ms = 0.0;
    for path in &files {
        out.clear();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parse_start = Instant::now();
        let history = checker::parse::parse_file(path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let parse_ms = parse_start.elapsed().as_secs_f64() * 1e3;
        let start = Instant::now();
        let verdict = checker::check::check(&history, &options);
        let ms = start.elapsed().as_secs_f64() * 1e3;
        total_ms += ms;
        let valid = serde_json::to_string(&verdict.valid)?;
        let _ = write!(
            out,
            "{:<28} {:>9} {:>18} {:>12.3} {:>10.1}",
            name,
            history.ops.len(),
            valid,
            ms,
            parse_ms
        );
        if let Some(table) = &compare {
            match table.get(&name) {
                Some(p) if *p > 0.0 => {
                    let _ = write!(out, " {:>14.3} {:>8.2}", p, ms / p);
                }
                _ => {
                    let _ = write!(out, " {:>14} {:>8}", "-", "-");
                }
            }
        }
        // One row at a time, so a long bench shows progress.
        println!("{out}");
    }
    println!("{:<28} {:>9} {:>18} {:>12.3}", "total", "", "", total_ms);
    Ok(ExitCode::SUCCESS)
}
