//! `workloads suite ci`: the JUnit file and the suite's page, for a gate that passes
//! and for one that fails because a mutant was forced into a correct scenario.

use quick_junit::{NonSuccessKind, Report, TestCaseStatus};
use std::path::Path;
use std::process::{Command, Output};

fn suite(results: &Path, junit: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_workloads"))
        .args(["suite", "ci", "--results"])
        .arg(results)
        .arg("--junit")
        .arg(junit)
        .args(extra)
        .output()
        .expect("run workloads suite")
}

fn junit(path: &Path) -> (String, Report) {
    let xml = std::fs::read_to_string(path).expect("JUnit file written");
    let report = Report::deserialize_from_str(&xml).expect("valid JUnit XML");
    (xml, report)
}

/// The one `suite-<timestamp>` folder under `results`.
fn suite_dir(results: &Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(results)
        .expect("results folder")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("suite-"))
        })
        .collect();
    assert_eq!(dirs.len(), 1, "one suite folder: {dirs:?}");
    dirs[0].clone()
}

#[test]
fn a_caught_mutant_is_a_passing_test_case_with_its_time_and_report() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (results, file) = (tmp.path().join("results"), tmp.path().join("out/junit.xml"));
    let out = suite(
        &results,
        &file,
        &["--only", "vote-any-log", "--sim-seeds", "1..10"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let (_, report) = junit(&file);
    assert_eq!((report.tests, report.failures, report.errors), (1, 0, 0));
    let case = &report.test_suites[0].test_cases[0];
    assert_eq!(case.name.as_str(), "sim mutant vote-any-log");
    assert!(matches!(case.status, TestCaseStatus::Success { .. }));
    assert!(case.time.is_some_and(|t| t.as_secs_f64() > 0.0));

    let dir = suite_dir(&results);
    let page = std::fs::read_to_string(dir.join("index.html")).expect("suite page");
    assert!(page.contains("sim mutant vote-any-log"));
    assert!(page.contains("PASS (expected caught)"), "{page}");
    // The caught seed was replayed into a report, and the page links it.
    let link = page
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .find(|l| l.ends_with("/report.html"))
        .expect("a report link");
    assert!(dir.join(link).is_file(), "{link} exists");
    assert!(dir.join("junit.xml").is_file(), "a copy beside the page");
    // results/index.html lists the suite and links its page.
    let index = std::fs::read_to_string(results.join("index.html")).expect("results index");
    assert!(index.contains("/index.html"), "{index}");
}

#[test]
fn a_mutant_forced_into_the_correct_scenario_fails_the_gate_and_is_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (results, file) = (tmp.path().join("results"), tmp.path().join("junit.xml"));
    let out = suite(
        &results,
        &file,
        &[
            "--only",
            "sim 1..10 correct",
            "--sim-seeds",
            "1..10",
            "--force-unsafe",
            "vote-any-log",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("failed scenarios: sim 1..10 correct"),
        "{stdout}"
    );
    let (xml, report) = junit(&file);
    assert_eq!((report.tests, report.failures), (1, 1), "{xml}");
    let case = &report.test_suites[0].test_cases[0];
    assert_eq!(case.name.as_str(), "sim 1..10 correct");
    let TestCaseStatus::NonSuccess {
        kind,
        message,
        description,
        ..
    } = &case.status
    else {
        panic!("the forced scenario fails: {xml}");
    };
    assert_eq!(*kind, NonSuccessKind::Failure);
    let message = message.as_ref().expect("a message").as_str();
    assert_eq!(
        message,
        "sim 1..10 correct: expected a clean run (exit 0), got exit 1"
    );
    // The failure gives the command that replays one failing seed exactly.
    let description = description.as_ref().expect("details").as_str();
    assert!(
        description
            .lines()
            .any(|l| l.trim().starts_with("workloads sim --seed ")
                && l.contains("--unsafe vote-any-log --trace")),
        "{description}"
    );
    let page = std::fs::read_to_string(suite_dir(&results).join("index.html")).expect("page");
    assert!(page.contains("FAIL (expected clean)"), "{page}");
}

#[test]
fn the_paxos_mutants_are_caught_under_both_paxos_engines() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (results, file) = (tmp.path().join("results"), tmp.path().join("junit.xml"));
    let out = suite(
        &results,
        &file,
        &[
            "--only",
            "paxos-ignore-accepted",
            "--paxos-mutant-seeds",
            "1..3",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let (xml, report) = junit(&file);
    assert_eq!(
        (report.tests, report.failures, report.errors),
        (2, 0, 0),
        "{xml}"
    );
    let names: Vec<&str> = report.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "sim multi-paxos mutant paxos-ignore-accepted",
            "sim basic-paxos mutant paxos-ignore-accepted"
        ]
    );
    // Each caught seed was replayed (under its engine) into a report.
    let page = std::fs::read_to_string(suite_dir(&results).join("index.html")).expect("page");
    assert_eq!(page.matches("/report.html").count(), 2, "{page}");
}
