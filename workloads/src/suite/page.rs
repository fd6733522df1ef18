//! A suite's files: `results/suite-<UTC timestamp>/` holds one folder per scenario
//! run (a real run's own run folder, or one the suite writes for a simulator
//! scenario: `run.json`, `output.log` and, when seeds failed, the first failing seed
//! replayed with its history, verdict and report), `junit.xml`, and `index.html`: the
//! results index page (the same template) listing the scenarios' folders in the order
//! they ran, each row with its report and whether it met the scenario's expectation.

use super::child::Finished;
use super::{Attempt, Expect, Kind, Outcome, Step};
use crate::run::output::{make_dated_dir, rfc3339_utc};
use anyhow::Context;
use checker::check::{CheckOptions, ModelKind};
use checker::report::{IndexPage, RunInfo, SuiteCase};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

/// Failing seeds whose replay command a simulator scenario's failure lists.
const MAX_SEED_REPLAYS: usize = 3;

/// Budget of the check of a replayed simulator seed's history.
const REPLAY_CHECK_LIMIT: Duration = Duration::from_secs(60);

/// Creates `results/suite-<UTC timestamp>/` (with a suffix when taken).
pub fn make_suite_dir(results: &Path) -> anyhow::Result<PathBuf> {
    make_dated_dir(results, "suite-", "")
}

/// The child's arguments: real runs write their run folder into the suite's folder.
pub fn with_results(step: &Step, argv: &[String], suite_dir: &Path) -> Vec<String> {
    let mut v = argv.to_vec();
    if step.kind == Kind::Real {
        v.push("--results".into());
        v.push(suite_dir.display().to_string());
    }
    v
}

/// The folders in `dir` (the `latest` link excluded).
pub fn folders(dir: &Path) -> BTreeSet<String> {
    let Ok(items) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    items
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// Files the attempt's results and finds its replay commands.
pub fn record(
    exe: &Path,
    suite_dir: &Path,
    before: &BTreeSet<String>,
    step: &Step,
    index: usize,
    args: Vec<String>,
    done: Finished,
) -> anyhow::Result<Attempt> {
    let mut attempt = Attempt {
        args,
        code: done.code,
        output: done.output,
        folder: None,
        replays: Vec::new(),
    };
    match step.kind {
        Kind::Real => {
            let new = folders(suite_dir).difference(before).next().cloned();
            if let Some(name) = new {
                let dir = suite_dir.join(name);
                if let Some(cmd) = read_json(&dir.join("run.json"))
                    .as_ref()
                    .and_then(|r| r.get("command"))
                    .and_then(Value::as_str)
                {
                    attempt.replays.push(cmd.to_string());
                }
                attempt.folder = Some(dir);
            }
        }
        Kind::Sim => {
            // `FAIL seed N: ...` is followed by `  replay: workloads sim --seed N ...`;
            // the first few are enough to start from (output.log lists them all).
            attempt.replays = attempt
                .output
                .lines()
                .filter_map(|l| l.trim().strip_prefix("replay: "))
                .take(MAX_SEED_REPLAYS)
                .map(str::to_string)
                .collect();
            let dir = sim_folder(exe, suite_dir, step, index, &attempt)?;
            attempt.folder = Some(dir);
        }
    }
    if let Some(dir) = &attempt.folder {
        std::fs::write(dir.join("output.log"), &attempt.output)
            .with_context(|| format!("writing {}/output.log", dir.display()))?;
    }
    Ok(attempt)
}

/// Writes a simulator scenario's folder; returns it.
fn sim_folder(
    exe: &Path,
    suite_dir: &Path,
    step: &Step,
    index: usize,
    attempt: &Attempt,
) -> anyhow::Result<PathBuf> {
    let dir = make_dated_dir(suite_dir, "", &format!("{}-{index}", slug(&step.name)))?;
    let valid = match attempt.code {
        0 => json!(true),
        1 => json!(false),
        2 => json!("unknown"),
        _ => Value::Null,
    };
    let mut config = json!({});
    if let Some(found) = attempt.output.lines().find(|l| l.starts_with("FAIL seed ")) {
        config["first failure"] = json!(found);
    }
    let run = json!({
        "name": step.name,
        "command": format!("workloads {}", attempt.args.join(" ")),
        "started": rfc3339_utc(SystemTime::now()),
        "config": config,
        "summary": sim_counts(&attempt.output),
        "valid": valid,
    });
    write_json(&dir.join("run.json"), &run)?;
    if let Some(replay) = attempt.replays.first()
        && let Err(e) = replay_seed(exe, &dir, &step.name, replay, &config)
    {
        eprintln!("suite: could not replay {replay:?} for its report: {e:#}");
    }
    Ok(dir)
}

/// Runs one failing seed again with `--history`, checks that history and writes its
/// `checker.json` and report into `dir`.
fn replay_seed(
    exe: &Path,
    dir: &Path,
    name: &str,
    replay: &str,
    config: &Value,
) -> anyhow::Result<()> {
    let history_path = dir.join("history.jsonl");
    let mut args: Vec<String> = replay
        .split_whitespace()
        .skip(1)
        .filter(|a| *a != "--trace")
        .map(str::to_string)
        .collect();
    args.push("--history".into());
    args.push(history_path.display().to_string());
    let out = Command::new(exe)
        .args(&args)
        .output()
        .context("replaying the seed")?;
    if !history_path.is_file() {
        anyhow::bail!(
            "the replay wrote no history: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let history = checker::parse::parse_file(&history_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let options = CheckOptions {
        model: ModelKind::Kv,
        time_limit: Some(REPLAY_CHECK_LIMIT),
        all_keys: true,
        ..CheckOptions::default()
    };
    let verdict = checker::check::check(&history, &options)
        .map_err(|e| anyhow::anyhow!("{}", e.in_file(&history_path.display().to_string())))?;
    std::fs::write(
        dir.join("checker.json"),
        serde_json::to_string_pretty(&verdict)?,
    )
    .context("writing checker.json")?;
    let seed = args
        .iter()
        .position(|a| a == "--seed")
        .and_then(|i| args.get(i + 1))
        .and_then(|s| s.parse().ok());
    let info = RunInfo {
        name: format!("{name}: seed {}", seed.unwrap_or(0)),
        command: replay.to_string(),
        seed,
        config: config.clone(),
        faults: Vec::new(),
        cluster_events: Vec::new(),
    };
    crate::run::report::render(dir, &history, &verdict, &info)?;
    Ok(())
}

/// `client ops: N (ok a, fail b, info c)` of the simulator's summary, as `run.json`'s
/// `summary`.
fn sim_counts(output: &str) -> Value {
    let Some(line) = output.lines().find(|l| l.starts_with("client ops: ")) else {
        return Value::Null;
    };
    let number_after = |word: &str| -> Option<u64> {
        let rest = &line[line.find(word)? + word.len()..];
        let digits: String = rest
            .trim_start()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    };
    match (
        number_after("client ops:"),
        number_after("(ok"),
        number_after("fail"),
        number_after("info"),
    ) {
        (Some(n), Some(ok), Some(fail), Some(info)) => {
            json!({ "operations": n, "ok": ok, "fail": fail, "info": info })
        }
        _ => Value::Null,
    }
}

/// Adds the scenario's expectation and whether each attempt met it to the attempts'
/// `run.json`, for the suite's page.
pub fn mark(outcome: &Outcome) {
    let n = outcome.attempts.len();
    for (i, a) in outcome.attempts.iter().enumerate() {
        let Some(dir) = &a.folder else { continue };
        let path = dir.join("run.json");
        let Some(mut run) = read_json(&path) else {
            continue;
        };
        let mut expected = outcome.step.expect.word().to_string();
        if outcome.step.expect == Expect::Caught && n > 1 {
            expected.push_str(&format!(", attempt {} of {n}", i + 1));
        }
        let case = SuiteCase {
            scenario: outcome.step.name.clone(),
            expected,
            passed: outcome.step.expect.met_by(a.code),
        };
        if let (Some(obj), Ok(v)) = (run.as_object_mut(), serde_json::to_value(&case)) {
            obj.insert("suite".into(), v);
            if let Err(e) = write_json(&path, &run) {
                eprintln!("suite: {e:#}");
            }
        }
    }
}

/// Writes the suite's page and its `run.json` (so `results/index.html` lists the
/// suite), and refreshes `results/index.html`. Returns the page's path.
pub fn write(
    results: &Path,
    suite_dir: &Path,
    outcomes: &[Outcome],
    name: &str,
    summary: &str,
    passed: bool,
) -> anyhow::Result<PathBuf> {
    let title = format!("Suite {name}");
    let run = json!({
        "name": format!("suite {name}: {summary}"),
        "started": rfc3339_utc(SystemTime::now()),
        "suite": SuiteCase {
            scenario: format!("suite {name}"),
            expected: "every scenario".into(),
            passed,
        },
    });
    write_json(&suite_dir.join("run.json"), &run)?;
    // The runs' own `latest` link is not part of the suite's page.
    let latest = suite_dir.join("latest");
    if latest.symlink_metadata().is_ok() {
        let _ = std::fs::remove_file(&latest);
    }
    let page = checker::report::write_index_page(
        suite_dir,
        &IndexPage {
            title,
            subtitle: summary.to_string(),
            folders: Some(run_folders(outcomes)),
        },
    )?;
    crate::run::report::index(results);
    Ok(page)
}

/// The attempts' folder names, in the order they ran.
fn run_folders(outcomes: &[Outcome]) -> Vec<String> {
    outcomes
        .iter()
        .flat_map(|o| &o.attempts)
        .filter_map(|a| a.folder.as_ref()?.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect()
}

fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    s.trim_matches('-').to_string()
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_json(path: &Path, v: &Value) -> anyhow::Result<()> {
    std::fs::write(path, serde_json::to_string_pretty(v)?)
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_counts_read_the_summary_line() {
        let out =
            "seeds run: 3  violations: 0\nclient ops: 120 (ok 100, fail 15, info 5)  messages: 9\n";
        assert_eq!(
            sim_counts(out),
            json!({"operations": 120, "ok": 100, "fail": 15, "info": 5})
        );
        assert_eq!(sim_counts("nothing"), Value::Null);
    }

    #[test]
    fn slugs_are_folder_names() {
        assert_eq!(slug("sim 1..2000 correct"), "sim-1-2000-correct");
        assert_eq!(slug("real run, all faults"), "real-run-all-faults");
    }
}
