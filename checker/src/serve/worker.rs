//! Running checks in the background: a bounded queue of ids and at most `workers`
//! checks at a time, each on a blocking thread (a check is CPU-bound and may take
//! minutes; it must never stall the HTTP side).

use super::clock;
use super::metrics::Metrics;
use super::store::{HISTORY_FILE, REPORT_DIR, Record, State, Store, VERDICT_FILE, write_atomic};
use crate::cli::check_cmd::JsonOutput;
use checker::verdict::Verdict;
use std::io::BufReader;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{Semaphore, mpsc};

/// Runs the checks in `resume` (cut off by the last stop), then takes ids off the
/// queue, while fewer than `workers` checks run; returns when the queue is closed and
/// empty.
pub async fn dispatch(
    store: Arc<Store>,
    metrics: Arc<Metrics>,
    resume: Vec<String>,
    mut queue: mpsc::Receiver<String>,
    workers: usize,
    threads: usize,
) {
    let slots = Arc::new(Semaphore::new(workers.max(1)));
    let mut resume = resume.into_iter();
    loop {
        // The slot first: an id stays in the queue (and counts as queued) until a
        // worker is free to take it.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let id = match resume.next() {
            Some(id) => id,
            None => match queue.recv().await {
                Some(id) => id,
                None => return,
            },
        };
        let store = store.clone();
        let metrics = metrics.clone();
        tokio::task::spawn_blocking(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_one(&store, &metrics, &id, threads)
            }));
            let failure = match outcome {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some("internal error: the check panicked".to_string()),
            };
            if let Some(e) = failure {
                let _ = store.update(&id, |r| {
                    r.state = State::Error;
                    r.error = Some(e);
                    r.finished = Some(clock::now());
                });
            }
            for p in store.prune() {
                eprintln!("checker serve: {p}");
            }
            drop(slot);
        });
    }
}

/// Parses, checks and reports one history. `Err` is a message for the record.
fn run_one(store: &Store, metrics: &Metrics, id: &str, threads: usize) -> Result<(), String> {
    let rec = store.update(id, |r| {
        r.state = State::Running;
        r.started = Some(clock::now());
        r.runs += 1;
    })?;
    let options = rec.params.options(threads)?;
    let dir = store.check_dir(id);
    let parse_start = Instant::now();
    let path = dir.join(HISTORY_FILE);
    let file = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    // The label "history" is what error messages name, with the line.
    let history = checker::parse::parse_reader(BufReader::with_capacity(1 << 16, file), "history")
        .map_err(|e| e.to_string())?;
    let parse_s = parse_start.elapsed().as_secs_f64();
    let verdict =
        checker::check::check(&history, &options).map_err(|e| e.in_file("history").to_string())?;
    metrics.observe_check(verdict.check_s);
    let out = JsonOutput::new(format!("{id}/{HISTORY_FILE}"), parse_s, &history, &verdict);
    let json = serde_json::to_vec_pretty(&out).map_err(|e| format!("verdict JSON: {e}"))?;
    write_atomic(&dir.join(VERDICT_FILE), &json)?;
    let run = checker::report::RunInfo {
        name: format!("check {id}"),
        command: format!("POST /v1/checks?{}", rec.params.query()),
        ..Default::default()
    };
    let report_error =
        checker::report::write_report(&dir.join(REPORT_DIR), &history, &verdict, Some(&run))
            .err()
            .map(|e| e.to_string());
    store.update(id, |r| finish(r, &verdict, report_error))?;
    Ok(())
}

fn finish(r: &mut Record, verdict: &Verdict, report_error: Option<String>) {
    r.state = State::Done;
    r.finished = Some(clock::now());
    r.valid = Some(verdict.valid);
    r.ops = Some(verdict.ops);
    r.check_s = Some(verdict.check_s);
    r.report_error = report_error;
}
