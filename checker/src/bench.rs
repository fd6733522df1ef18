//! The benchmark table behind `checker bench DIR`: every history under a directory,
//! checked with every key decided, beside Porcupine's time for the same file.

use crate::check::{CheckOptions, ModelKind, check};
use crate::r#gen::{GenOptions, Mix, generate};
use crate::verdict::Validity;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Porcupine's own check time (its `CheckEvents`, parsing excluded) on the reference
/// histories, in milliseconds, measured on this machine. `None`: below 0.5 ms.
pub const PORCUPINE_MS: [(&str, Option<f64>); 12] = [
    ("etcd_002", Some(191.0)),
    ("etcd_080", Some(9.0)),
    ("etcd_000", None),
    ("etcd_001", None),
    ("etcd_005", None),
    ("etcd_010", None),
    ("etcd_018", None),
    ("etcd_070", None),
    ("etcd_090", None),
    ("etcd_100", None),
    ("c50-ok", Some(164.0)),
    ("c50-bad", Some(47.0)),
];

fn files(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files(&p, out)?;
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("edn" | "jsonl")
        ) {
            out.push(p);
        }
    }
    Ok(())
}

/// The options a reference file is checked with: the etcd set is a cas-register read
/// the Knossos way (it starts from nil); everything else is the kv model.
pub fn options_for(path: &Path) -> CheckOptions {
    let etcd = path.to_string_lossy().contains("etcd");
    CheckOptions {
        model: if etcd {
            ModelKind::CasRegister
        } else {
            ModelKind::Kv
        },
        knossos: etcd,
        all_keys: true,
        ..CheckOptions::default()
    }
}

fn verdict_text(v: Validity) -> &'static str {
    match v {
        Validity::Linearizable => "linearizable",
        Validity::NotLinearizable => "NOT linearizable",
        Validity::Unknown => "unknown",
    }
}

/// Checks every `*.edn` / `*.jsonl` under `dir` (every key decided) and returns a table.
pub fn run(dir: &Path) -> anyhow::Result<String> {
    let mut paths = Vec::new();
    files(dir, &mut paths)?;
    if paths.is_empty() {
        anyhow::bail!("{}: no *.edn or *.jsonl histories", dir.display());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>18} {:>10} {:>14}",
        "file", "ops", "verdict", "check ms", "porcupine ms"
    );
    let (mut ours, mut theirs) = (0.0, 0.0);
    for p in &paths {
        let history =
            crate::parse::parse_file(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?;
        let name = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let v = check(&history, &options_for(p));
        let ms = v.check_s * 1e3;
        let porcupine = PORCUPINE_MS.iter().find(|(n, _)| *n == name).map(|x| x.1);
        if porcupine.is_some() {
            ours += ms;
            theirs += porcupine.flatten().unwrap_or(0.0);
        }
        let shown = match porcupine {
            Some(Some(x)) => format!("{x:.1}"),
            Some(None) => "< 0.5".to_string(),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>18} {:>10.2} {:>14}",
            name,
            history.ops.len(),
            verdict_text(v.valid),
            ms,
            shown
        );
    }
    if theirs > 0.0 {
        let _ = writeln!(
            out,
            "files Porcupine ran: ours {ours:.1} ms, Porcupine {theirs:.1} ms (+ < 0.5 ms each for the rest)"
        );
    }
    Ok(out)
}

/// One generated history (`ops` over `keys` from `clients`, 5% info), as a table row.
pub fn generated(ops: usize, keys: usize, clients: usize, violation: bool) -> String {
    let h = generate(&GenOptions {
        seed: 7,
        ops,
        keys,
        clients,
        mix: Mix::Cas,
        info_rate: 0.05,
        inject_violation: violation,
        ..GenOptions::default()
    });
    let v = check(
        &h,
        &CheckOptions {
            all_keys: true,
            ..CheckOptions::default()
        },
    );
    format!(
        "generated {ops} ops, {keys} keys, {clients} clients, 5% info{}: {} in {:.1} ms",
        if violation { ", one stale read" } else { "" },
        verdict_text(v.valid),
        v.check_s * 1e3
    )
}
