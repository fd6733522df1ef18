//! Renders reports for hand-built histories and verdicts and checks their structure:
//! the banner, the three plots (embedded and written beside the page), the
//! counterexample view, the fault bands, bounded size, and no network URL.
//!
//! Set `REPORT_KEEP_DIR` to also keep the rendered reports there (CI opens them in a
//! headless browser).

use checker::build::RawEvent;
use checker::history::{EventType, Function, History, Key, Outcome, Process};
use checker::report::{ClusterEvent, FaultInterval, RunInfo, write_index, write_report};
use checker::verdict::{Counterexample, KeyVerdict, Validity, Verdict};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Builds a history event by event through the library's builder, remembering each
/// operation's function, key and input to drive the test's own register model.
#[derive(Default)]
struct Builder {
    b: checker::build::Builder,
    ops: Vec<(Function, Option<Key>, Value)>,
    pending: BTreeMap<u64, usize>,
    lines: usize,
    t: u64,
    timed: bool,
}

impl Builder {
    fn new(timed: bool) -> Self {
        Builder {
            timed,
            ..Default::default()
        }
    }
    /// The history so far.
    fn h(&self) -> History {
        self.b.clone().finish()
    }
    fn event(
        &mut self,
        process: Process,
        kind: EventType,
        f: Function,
        key: Option<Key>,
        value: Value,
    ) -> Option<usize> {
        self.t += 1_000_000; // 1 ms per event
        self.lines += 1;
        self.b
            .push(RawEvent {
                line: self.lines,
                index: Some(self.lines as u64 - 1),
                time: self.timed.then_some(self.t),
                process,
                kind,
                f,
                key,
                value: Some(value),
                error: None,
            })
            .expect("test bug: the events do not pair")
    }
    fn invoke(&mut self, p: u64, f: Function, key: &str, input: Value) -> usize {
        let key = Some(Key::from(key));
        let id = self
            .event(
                Process::Client(p),
                EventType::Invoke,
                f.clone(),
                key.clone(),
                input.clone(),
            )
            .expect("a client event");
        self.ops.push((f, key, input));
        self.pending.insert(p, id);
        id
    }
    fn complete(&mut self, p: u64, outcome: Outcome, output: Value) -> usize {
        let id = self.pending.remove(&p).expect("test bug: no pending op");
        let (f, key, input) = self.ops[id].clone();
        let (kind, value) = match outcome {
            Outcome::Ok => (EventType::Ok, output),
            Outcome::Fail => (EventType::Fail, input),
            Outcome::Info => (EventType::Info, input),
        };
        self.event(Process::Client(p), kind, f, key, value);
        id
    }
    fn nemesis(&mut self, f: &str, value: Value) {
        self.event(
            Process::Other("nemesis".into()),
            EventType::Info,
            Function::from_name(f),
            None,
            value,
        );
    }
}

/// A small deterministic generator (xorshift), so histories are the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// About `ops` operations over `keys` keys by 5 concurrent client slots, with a
/// partition in the middle that slows operations down and makes some indeterminate
/// (the slot then continues under a new process id, as Jepsen clients do). Each
/// operation takes effect at its completion, so every key is linearizable.
fn busy_history(ops: usize, keys: u64, timed: bool) -> (Builder, BTreeMap<String, Value>) {
    let mut b = Builder::new(timed);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut state: BTreeMap<String, Value> = BTreeMap::new();
    let mut slots: Vec<(u64, Option<String>)> = (0..5).map(|p| (p, None)).collect();
    let mut next_process = 5;
    let mut started = 0;
    let mut faulty = false;
    while started < ops || slots.iter().any(|s| s.1.is_some()) {
        if started == ops / 3 && !faulty {
            b.nemesis("partition-start", json!({"grudge": "majorities-ring"}));
            faulty = true;
        }
        if started == ops / 2 && faulty {
            b.nemesis("partition-end", Value::Null);
            faulty = false;
            started += 1;
            continue;
        }
        b.t += rng.next(if faulty { 40 } else { 4 }) * 1_000_000 + rng.next(1_000_000);
        let slot = rng.next(5) as usize;
        let p = slots[slot].0;
        match slots[slot].1.take() {
            None if started < ops => {
                let key = format!("k{}", rng.next(keys));
                let (f, input) = match rng.next(10) {
                    0..=4 => (Function::Read, Value::Null),
                    5..=7 => (Function::Write, json!(rng.next(100))),
                    8 => (
                        Function::Cas,
                        json!([state.get(&key).cloned().unwrap_or(Value::Null), 7]),
                    ),
                    _ => (Function::Cas, json!([-1, 7])),
                };
                b.invoke(p, f, &key, input);
                slots[slot].1 = Some(key);
                started += 1;
            }
            None => {}
            Some(key) => {
                let id = b.pending[&p];
                let (f, _, input) = b.ops[id].clone();
                let cur = state.get(&key).cloned().unwrap_or(Value::Null);
                if faulty && rng.next(8) == 0 {
                    b.complete(p, Outcome::Info, Value::Null);
                    slots[slot].0 = next_process;
                    next_process += 1;
                    continue;
                }
                match f {
                    Function::Read => {
                        b.complete(p, Outcome::Ok, cur);
                    }
                    Function::Write | Function::Append => {
                        b.complete(p, Outcome::Ok, input.clone());
                        state.insert(key, input);
                    }
                    Function::Cas => {
                        if input.get(0) == Some(&cur) {
                            b.complete(p, Outcome::Ok, Value::Null);
                            state.insert(key, json!(7));
                        } else {
                            b.complete(p, Outcome::Fail, Value::Null);
                        }
                    }
                    other => unreachable!("the test issues no {other}"),
                }
            }
        }
    }
    (b, state)
}

fn ok_verdict(h: &History) -> Verdict {
    let mut per: BTreeMap<Option<Key>, usize> = BTreeMap::new();
    for op in &h.ops {
        *per.entry(op.key.clone()).or_default() += 1;
    }
    Verdict {
        valid: Validity::Linearizable,
        model: "kv".into(),
        events: h.events.len(),
        ops: h.ops.len(),
        check_s: 0.01,
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
    }
}

/// Appends a stale read on key `bad`: write 1, write 2, then a read that sees 1, and
/// returns the verdict that explains it.
fn add_stale_read(b: &mut Builder) -> Verdict {
    // Processes far above the ones busy_history hands out.
    let p = 1_000_000;
    let w1 = b.invoke(p, Function::Write, "bad", json!(1));
    b.complete(p, Outcome::Ok, json!(1));
    let w2 = b.invoke(p + 1, Function::Write, "bad", json!(2));
    let info = b.invoke(p + 3, Function::Write, "bad", json!(3));
    b.complete(p + 1, Outcome::Ok, json!(2));
    let r = b.invoke(p + 2, Function::Read, "bad", Value::Null);
    b.complete(p + 2, Outcome::Ok, json!(1));
    let _ = info; // process p+3 never returns: an open (info) operation
    let mut v = ok_verdict(&b.h());
    v.valid = Validity::NotLinearizable;
    for k in &mut v.keys {
        if k.key == Some(Key::from("bad")) {
            k.valid = Validity::NotLinearizable;
            k.counterexample = Some(Counterexample {
                prefix: vec![w1, w2],
                states: vec![json!(1), json!(2)],
                state_before: json!(2),
                stuck: vec![r],
                window: vec![w2, r],
            });
        }
    }
    v
}

fn out_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join(name);
    (tmp, dir)
}

/// Copies a rendered report folder to `REPORT_KEEP_DIR/<name>` when that is set.
fn keep(dir: &Path, name: &str) {
    let Ok(root) = std::env::var("REPORT_KEEP_DIR") else {
        return;
    };
    let dst = Path::new(&root).join(name);
    std::fs::create_dir_all(&dst).expect("keep dir");
    for e in std::fs::read_dir(dir).expect("read report dir") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), dst.join(e.file_name())).expect("copy");
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).expect("read file")
}

/// Every `src="..."` / `href="..."` (either quote) that points at the network.
fn network_urls(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=", "href="] {
        for (i, _) in html.match_indices(attr) {
            let rest = html[i + attr.len()..]
                .trim_start_matches(['"', '\''])
                .to_ascii_lowercase();
            if rest.starts_with("http://") || rest.starts_with("https://") || rest.starts_with("//")
            {
                found.push(html[i..(i + 60).min(html.len())].to_string());
            }
        }
    }
    found
}

fn assert_plots(dir: &Path, html: &str) {
    for p in ["latency-raw", "latency-quantiles", "rate"] {
        let png = std::fs::read(dir.join(format!("{p}.png"))).expect("png written");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "{p}.png is a PNG");
        let svg = read(&dir.join(format!("{p}.svg")));
        assert!(svg.contains("<svg"), "{p}.svg is an SVG");
        assert!(html.contains(&format!("id=\"plot-{p}\"")), "{p} embedded");
    }
    assert_eq!(
        html.matches("<img src=\"data:image/png;base64,").count(),
        3,
        "three plots as data: URIs"
    );
    assert_eq!(network_urls(html), Vec::<String>::new(), "no network URL");
}

fn sample_run() -> RunInfo {
    RunInfo {
        name: "partition-kill".into(),
        command: "workloads run --nodes 3 --seed 42 --nemesis partition,kill".into(),
        seed: Some(42),
        config: json!({"nodes": 3, "clients": 5, "nemesis": "partition,kill"}),
        faults: vec![
            FaultInterval {
                kind: "partition".into(),
                start_ns: 50_000_000,
                end_ns: Some(150_000_000),
                detail: "{1,2} | {3}".into(),
            },
            FaultInterval {
                kind: "kill".into(),
                start_ns: 200_000_000,
                end_ns: Some(260_000_000),
                detail: "n2".into(),
            },
        ],
        cluster_events: vec![
            ClusterEvent {
                time_ns: 10_000_000,
                kind: "leader".into(),
                node: Some(1),
                detail: "term 1".into(),
            },
            ClusterEvent {
                time_ns: 160_000_000,
                kind: "leader".into(),
                node: Some(3),
                detail: "term 2".into(),
            },
        ],
    }
}

#[test]
fn linearizable_history_gets_a_green_banner_plots_and_no_counterexample() {
    let (b, _) = busy_history(400, 4, true);
    let verdict = ok_verdict(&b.h());
    let (_tmp, dir) = out_dir("ok");
    let path = write_report(&dir, &b.h(), &verdict, Some(&sample_run())).expect("report written");
    keep(&dir, "ok");
    assert_eq!(path, dir.join("report.html"));
    let html = read(&path);
    assert!(html.contains("class=\"banner ok\""), "green banner");
    assert!(!html.contains("class=\"banner bad\""));
    assert!(
        !html.contains("id=\"counterexamples\""),
        "no counterexample section"
    );
    assert!(
        html.contains("workloads run --nodes 3 --seed 42 --nemesis partition,kill"),
        "replay command"
    );
    assert!(html.contains("<code>42</code>"), "seed");
    assert_plots(&dir, &html);
    // Fault bands come from the run (partition and kill), in the table and the plots.
    assert_eq!(html.matches("class=\"fault-row\"").count(), 2);
    let svg = read(&dir.join("latency-raw.svg"));
    assert!(
        svg.contains("partition") && svg.contains("kill"),
        "plots label the fault bands"
    );
    assert!(html.contains("term 2"), "cluster events shown");
    assert!(
        html.contains("tl-mark cluster"),
        "cluster events marked on the timeline"
    );
    assert!(html.contains("p99.9"), "latency percentiles");
}

#[test]
fn non_linearizable_history_gets_a_red_banner_and_a_counterexample_view() {
    let (mut b, _) = busy_history(300, 3, true);
    let verdict = add_stale_read(&mut b);
    let (_tmp, dir) = out_dir("bad");
    let html = read(&write_report(&dir, &b.h(), &verdict, None).expect("report written"));
    keep(&dir, "bad");
    assert!(html.contains("class=\"banner bad\""), "red banner");
    assert!(html.contains("id=\"counterexamples\""));
    assert!(
        html.contains("id=\"cx-0\"") && html.contains("href=\"#cx-0\""),
        "key table links to the view"
    );
    assert_eq!(
        html.matches("class=\"cx-op stuck").count(),
        1,
        "the unplaceable read is highlighted"
    );
    assert_eq!(
        html.matches("class=\"cx-op prefix").count(),
        2,
        "the prefix is marked"
    );
    assert!(
        html.contains(">#1 write 1<") && html.contains(">#2 write 2<"),
        "prefix numbered in order"
    );
    assert!(
        html.contains("data-before=\"2\"") && html.contains("read → 1"),
        "state before the stuck read"
    );
    assert!(
        html.contains(" open\""),
        "the never-completed write is drawn open"
    );
    // Without a RunInfo the fault bands come from the nemesis events.
    assert!(html.contains("s nemesis events)"), "fault source named");
    assert_eq!(html.matches("class=\"fault-row\"").count(), 1);
    assert!(
        read(&dir.join("rate.svg")).contains("partition"),
        "rate plot labels the band"
    );
    assert_plots(&dir, &html);
}

#[test]
fn untimed_history_reports_positions_and_no_latency() {
    let (mut b, _) = busy_history(120, 2, false);
    let verdict = add_stale_read(&mut b);
    let (_tmp, dir) = out_dir("untimed");
    let html = read(&write_report(&dir, &b.h(), &verdict, None).expect("report written"));
    assert!(html.contains("the history has no times"));
    assert!(html.contains("class=\"banner bad\""));
    assert_plots(&dir, &html);
}

#[test]
fn unknown_verdict_gets_an_amber_banner() {
    let (b, _) = busy_history(50, 2, true);
    let mut verdict = ok_verdict(&b.h());
    verdict.valid = Validity::Unknown;
    verdict.keys[0].valid = Validity::Unknown;
    verdict.keys[0].reason = Some("time limit of 1 s reached".into());
    let (_tmp, dir) = out_dir("unknown");
    let html = read(&write_report(&dir, &b.h(), &verdict, None).expect("report written"));
    assert!(html.contains("class=\"banner unknown\""));
    assert!(
        html.contains("time limit of 1 s reached"),
        "the reason is shown"
    );
}

#[test]
fn huge_history_gives_a_bounded_page() {
    let (mut b, _) = busy_history(60_000, 1, true);
    // The failing key gets thousands of ops before the violation.
    let verdict = {
        let mut v = add_stale_read(&mut b);
        let h = b.h();
        let bad: Vec<usize> = h
            .ops
            .iter()
            .filter(|o| o.key == Some(Key::from("bad")))
            .map(|o| o.id)
            .collect();
        assert!(bad.len() >= 3);
        for k in &mut v.keys {
            k.ops = h.ops.iter().filter(|o| o.key == k.key).count();
        }
        v
    };
    let (_tmp, dir) = out_dir("huge");
    let html = read(&write_report(&dir, &b.h(), &verdict, None).expect("report written"));
    keep(&dir, "huge");
    let kib = html.len() / 1024;
    assert!(kib < 4096, "report.html is {kib} KiB");
    for p in ["latency-raw", "latency-quantiles", "rate"] {
        let svg = std::fs::metadata(dir.join(format!("{p}.svg")))
            .expect("svg")
            .len();
        assert!(svg < 3 << 20, "{p}.svg is {svg} bytes");
    }
    let boxes = html.matches("<div class=\"op ").count();
    assert!(boxes <= 400, "timeline shows {boxes} operations");
    assert!(html.contains("operations not shown"));
    assert!(
        html.contains("1 in "),
        "the raw latency plot says it is thinned"
    );
}

#[test]
fn index_links_the_rendered_reports() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let results = match std::env::var("REPORT_KEEP_DIR") {
        Ok(root) => Path::new(&root).join("results"),
        Err(_) => tmp.path().join("results"),
    };
    let _ = std::fs::remove_dir_all(&results);
    let (b, _) = busy_history(200, 3, true);
    let ok = ok_verdict(&b.h());
    let (mut b2, _) = busy_history(200, 3, true);
    let bad = add_stale_read(&mut b2);
    let (h1, h2) = (b.h(), b2.h());
    for (folder, h, v, started) in [
        ("20261126T000000Z-ok", &h1, &ok, "2026-11-26T00:00:00Z"),
        ("20261126T000100Z-bad", &h2, &bad, "2026-11-26T00:01:00Z"),
    ] {
        let dir = results.join(folder);
        let run = sample_run();
        write_report(&dir, h, v, Some(&run)).expect("report written");
        // run.json as the runner writes it: the RunInfo plus start, summary and verdict.
        let mut doc = serde_json::to_value(&run).expect("run info serializes");
        doc["started"] = json!(started);
        doc["summary"] =
            json!({"operations": h.ops.len(), "ok": h.ops.len(), "fail": 0, "info": 0});
        doc["valid"] = serde_json::to_value(v.valid).expect("validity serializes");
        std::fs::write(dir.join("run.json"), doc.to_string()).expect("run.json");
    }
    let index = read(&write_index(&results).expect("index written"));
    let bad_at = index
        .find("20261126T000100Z-bad/report.html")
        .expect("bad run linked");
    let ok_at = index
        .find("20261126T000000Z-ok/report.html")
        .expect("ok run linked");
    assert!(bad_at < ok_at, "newest first");
    assert!(index.contains("NOT linearizable") && index.contains(">linearizable<"));
    assert!(index.contains("partition,kill"), "faults column");
    assert_eq!(network_urls(&index), Vec::<String>::new());
}
