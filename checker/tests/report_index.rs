//! `results/index.html`: lists run folders newest first, reads `run.json`, colours the
//! verdict and links each report; and a report rendered from a real reference history.

use checker::report::write_index;
use checker::verdict::{KeyVerdict, Validity, Verdict};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn index_lists_runs_newest_first_with_coloured_verdicts() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let res = tmp.path();
    let old = "20261125T100000Z-partition";
    let new = "20261126T090000Z-kill";
    let broken = "20261124T080000Z-broken";
    write(
        &res.join(old).join("run.json"),
        &json!({
            "name": "partition", "started": "2026-11-25T10:00:00Z",
            "config": {"nodes": 5, "nemesis": ["partition", "pause"]},
            "summary": {"operations": 1234, "ok": 1200, "fail": 30, "info": 4},
            "valid": false
        })
        .to_string(),
    );
    write(&res.join(old).join("report.html"), "<html></html>");
    write(
        &res.join(new).join("run.json"),
        &json!({
            "name": "kill <3>", "config": {"nodes": 3},
            "faults": [{"kind": "kill", "start_ns": 1, "end_ns": 2, "detail": ""}],
            "summary": {"ok": 10, "fail": 1, "info": 0},
            "valid": true
        })
        .to_string(),
    );
    write(&res.join(broken).join("run.json"), "{not json");
    std::fs::create_dir_all(res.join("empty-folder")).expect("mkdir");

    let path = write_index(res).expect("index written");
    assert_eq!(path, res.join("index.html"));
    let html = std::fs::read_to_string(&path).expect("read index");
    let pos = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} listed"));
    assert!(
        pos("kill &lt;3&gt;") < pos("2026-11-25T10:00:00Z"),
        "newest first, names escaped"
    );
    assert!(pos("2026-11-25T10:00:00Z") < pos("20261124T080000Z"));
    assert!(
        html.contains("partition,pause"),
        "faults from config.nemesis"
    );
    assert!(html.contains(">kill<"), "faults from the fault intervals");
    assert!(html.contains("1234 (1200 ok, 4 info, 30 fail)"));
    assert!(
        html.contains("11 (10 ok, 0 info, 1 fail)"),
        "operations summed when absent"
    );
    assert!(html.contains("class=\"pill bad\">NOT linearizable"));
    assert!(html.contains("class=\"pill ok\">linearizable"));
    assert!(
        html.contains(&format!("href=\"{old}/report.html\"")),
        "links the report"
    );
    assert!(
        html.contains("run.json: "),
        "an unreadable run.json is named"
    );
    assert!(html.contains("no run.json"));
}

#[test]
fn index_of_a_missing_directory_is_an_error() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let err = write_index(&tmp.path().join("nope")).expect_err("missing dir");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn reference_history_without_times_renders() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/reference/kv/c10-ok.edn");
    let history = checker::parse::parse_file(&file).expect("reference history parses");
    // The reference table says c10-ok is linearizable: every key is.
    let mut per: BTreeMap<Option<checker::history::Key>, usize> = BTreeMap::new();
    for op in &history.ops {
        *per.entry(op.key.clone()).or_default() += 1;
    }
    let verdict = Verdict {
        valid: Validity::Linearizable,
        model: "kv".into(),
        events: history.events.len(),
        ops: history.ops.len(),
        check_s: 0.0,
        keys: per
            .into_iter()
            .map(|(key, ops)| KeyVerdict {
                key,
                valid: Validity::Linearizable,
                ops,
                counterexample: None,
                reason: None,
            })
            .collect(),
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = checker::report::write_report(tmp.path(), &history, &verdict, None)
        .expect("report written");
    let html = std::fs::read_to_string(path).expect("read report");
    assert!(html.contains("class=\"banner ok\""));
    assert!(html.contains("history position (event)") || html.contains("the history has no times"));
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 3);
    assert!(html.contains(&format!(
        "({} of {} operations)",
        history.ops.len().min(200),
        history.ops.len()
    )));
}

#[test]
fn empty_history_and_a_verdict_with_unknown_op_ids_still_render() {
    use checker::history::History;
    use checker::verdict::Counterexample;
    let history = History::default();
    let verdict = Verdict {
        valid: Validity::NotLinearizable,
        model: "kv".into(),
        events: 0,
        ops: 0,
        check_s: 0.0,
        keys: vec![KeyVerdict {
            key: Some("k".into()),
            valid: Validity::NotLinearizable,
            ops: 0,
            counterexample: Some(Counterexample {
                prefix: vec![7],
                states: vec![json!(1)],
                state_before: json!(1),
                stuck: vec![99],
                window: vec![99, 100],
            }),
            reason: None,
        }],
    };
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = checker::report::write_report(tmp.path(), &history, &verdict, None)
        .expect("report written");
    let html = std::fs::read_to_string(path).expect("read report");
    assert!(html.contains("class=\"banner bad\""));
    assert!(html.contains("op 99"), "an unknown stuck op is named by id");
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 3);
}

#[test]
fn reference_c10_bad_gets_a_counterexample_view_per_failing_key() {
    use checker::check::{CheckOptions, ModelKind, check};
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/reference/kv/c10-bad.edn");
    let history = checker::parse::parse_file(&file).expect("reference history parses");
    let options = CheckOptions {
        model: ModelKind::Kv,
        // Keys never written read as "" in these histories.
        initial: Some(serde_json::json!("")),
        all_keys: true,
        ..CheckOptions::default()
    };
    let verdict = check(&history, &options).expect("the kv model takes the history");
    assert_eq!(
        verdict.valid,
        Validity::NotLinearizable,
        "the reference table says so"
    );
    let failing = verdict
        .keys
        .iter()
        .filter(|k| k.valid == Validity::NotLinearizable)
        .count();
    let tmp = tempfile::tempdir().expect("temp dir");
    let path = checker::report::write_report(tmp.path(), &history, &verdict, None)
        .expect("report written");
    let html = std::fs::read_to_string(path).expect("read report");
    assert!(html.contains("class=\"banner bad\""));
    assert_eq!(
        html.matches("<div class=\"cx-view\"").count(),
        failing.min(20),
        "one view per failing key"
    );
    assert!(
        html.matches("class=\"cx-op stuck").count() >= failing,
        "stuck operations highlighted"
    );
    assert!(html.contains("class=\"cx-op prefix"), "prefixes numbered");
    assert!(
        html.contains("around the violation on key"),
        "the timeline shows the violations"
    );
}
