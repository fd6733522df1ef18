//! The history recorder: every client and nemesis event, stamped with a monotonic
//! nanosecond time since the run started, in the order the times were taken.
//!
//! Index and time are assigned under one lock, so line order is real-time order and
//! the checker can trust both. A std `Mutex`, because nothing awaits while it is held.

use checker::history::{
    Event, EventType, Function, History, Operation, Outcome, Process as HProcess,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Who produced an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    Client(u64),
    Nemesis,
}

/// One recorded line (DESIGN.md's JSONL format).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub index: u64,
    pub time_ns: u64,
    pub who: Who,
    pub kind: EventType,
    pub f: String,
    pub key: Option<String>,
    pub value: Value,
    pub error: Option<String>,
}

/// The JSON shape of a line, with the fields in the documented order.
#[derive(Serialize)]
struct Line<'a> {
    index: u64,
    time: u64,
    process: Value,
    #[serde(rename = "type")]
    kind: EventType,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    value: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

impl Record {
    /// This record as one JSON line (no newline).
    pub fn to_json_line(&self) -> String {
        let process = match &self.who {
            Who::Client(p) => Value::from(*p),
            Who::Nemesis => Value::from("nemesis"),
        };
        let line = Line {
            index: self.index,
            time: self.time_ns,
            process,
            kind: self.kind,
            f: &self.f,
            key: self.key.as_deref(),
            value: &self.value,
            error: self.error.as_deref(),
        };
        // Serializing plain strings, integers and JSON values cannot fail.
        serde_json::to_string(&line).unwrap_or_default()
    }
}

/// Too many events means something is wrong with the rate limiter; stop recording
/// rather than eat the machine's memory.
pub const MAX_EVENTS: usize = 20_000_000;

/// Shared by every client task and the nemesis.
#[derive(Debug)]
pub struct Recorder {
    start: Instant,
    records: Mutex<Vec<Record>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            records: Mutex::new(Vec::new()),
        }
    }

    /// The run's start: every time in the history is measured from it.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// Nanoseconds since the start of the run.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Records one event now; returns its time, or `None` when the history is full.
    pub fn record(
        &self,
        who: Who,
        kind: EventType,
        f: &str,
        key: Option<&str>,
        value: Value,
        error: Option<&str>,
    ) -> Option<u64> {
        let mut records = match self.records.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if records.len() >= MAX_EVENTS {
            return None;
        }
        // The clock is read under the lock so that times never go backwards in line order.
        let time_ns = self.now_ns();
        let index = records.len() as u64;
        records.push(Record {
            index,
            time_ns,
            who,
            kind,
            f: f.to_string(),
            key: key.map(str::to_string),
            value,
            error: error.map(str::to_string),
        });
        Some(time_ns)
    }

    /// A copy of everything recorded so far.
    pub fn snapshot(&self) -> Vec<Record> {
        match self.records.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn len(&self) -> usize {
        match self.records.lock() {
            Ok(g) => g.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Writes records as JSON Lines.
pub fn write_jsonl(path: &Path, records: &[Record]) -> std::io::Result<()> {
    let file = std::fs::File::create(path)?;
    let mut out = std::io::BufWriter::new(file);
    for r in records {
        out.write_all(r.to_json_line().as_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

/// Reads back a history this module wrote (for `workloads report`). Errors name the
/// file, the line and the reason.
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Record>> {
    use anyhow::{Context, bail};
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if out.len() >= MAX_EVENTS {
            bail!("{}: more than {MAX_EVENTS} events", path.display());
        }
        let at = || format!("{}:{}", path.display(), i + 1);
        let v: Value = serde_json::from_str(line).with_context(|| format!("{}: not JSON", at()))?;
        let who = match v.get("process") {
            Some(Value::Number(n)) => match n.as_u64() {
                Some(p) => Who::Client(p),
                None => bail!("{}: process must be a non-negative integer", at()),
            },
            Some(Value::String(_)) => Who::Nemesis,
            _ => bail!("{}: missing process", at()),
        };
        let kind: EventType = serde_json::from_value(v.get("type").cloned().unwrap_or_default())
            .with_context(|| format!("{}: type must be invoke, ok, fail or info", at()))?;
        let Some(f) = v.get("f").and_then(Value::as_str) else {
            bail!("{}: missing f", at());
        };
        out.push(Record {
            index: v
                .get("index")
                .and_then(Value::as_u64)
                .unwrap_or(out.len() as u64),
            time_ns: v.get("time").and_then(Value::as_u64).unwrap_or(0),
            who,
            kind,
            f: f.to_string(),
            key: v.get("key").and_then(Value::as_str).map(str::to_string),
            value: v.get("value").cloned().unwrap_or(Value::Null),
            error: v.get("error").and_then(Value::as_str).map(str::to_string),
        });
    }
    Ok(out)
}

fn function_of(f: &str) -> Option<Function> {
    match f {
        "read" | "get" => Some(Function::Read),
        "write" | "put" => Some(Function::Write),
        "cas" => Some(Function::Cas),
        "append" => Some(Function::Append),
        _ => None,
    }
}

/// Builds the checker's model of the history: events as recorded, and operations by
/// pairing each client invoke with the next completion of the same process. An invoke
/// that never completes is `Info` with no return time.
pub fn to_history(records: &[Record]) -> History {
    let mut events = Vec::with_capacity(records.len());
    let mut ops: Vec<Operation> = Vec::new();
    // process -> index in `ops` of its outstanding invoke
    let mut open: BTreeMap<u64, usize> = BTreeMap::new();
    for (pos, r) in records.iter().enumerate() {
        let process = match r.who {
            Who::Client(p) => HProcess::Client(p),
            Who::Nemesis => HProcess::Other("nemesis".to_string()),
        };
        events.push(Event {
            index: r.index,
            time: Some(r.time_ns),
            process,
            kind: r.kind,
            f: r.f.clone(),
            key: r.key.clone(),
            value: r.value.clone(),
            error: r.error.clone(),
            line: pos + 1,
        });
        let Who::Client(p) = r.who else { continue };
        let Some(f) = function_of(&r.f) else { continue };
        match r.kind {
            EventType::Invoke => {
                let id = ops.len();
                ops.push(Operation {
                    id,
                    process: p,
                    f,
                    key: r.key.clone(),
                    input: r.value.clone(),
                    output: Value::Null,
                    outcome: Outcome::Info,
                    call: r.time_ns,
                    ret: None,
                    invoke_event: pos,
                    complete_event: None,
                });
                open.insert(p, id);
            }
            EventType::Ok | EventType::Fail | EventType::Info => {
                let Some(id) = open.remove(&p) else { continue };
                let op = &mut ops[id];
                op.complete_event = Some(pos);
                match r.kind {
                    EventType::Ok => {
                        op.outcome = Outcome::Ok;
                        op.output = r.value.clone();
                        op.ret = Some(r.time_ns);
                    }
                    EventType::Fail => {
                        op.outcome = Outcome::Fail;
                        op.ret = Some(r.time_ns);
                    }
                    _ => op.outcome = Outcome::Info,
                }
            }
        }
    }
    History { events, ops }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_the_documented_format() {
        let rec = Recorder::new(Instant::now());
        rec.record(
            Who::Client(0),
            EventType::Invoke,
            "write",
            Some("k3"),
            Value::from(4),
            None,
        );
        rec.record(
            Who::Client(0),
            EventType::Fail,
            "cas",
            Some("k3"),
            serde_json::json!([4, 7]),
            Some("cas_mismatch"),
        );
        rec.record(
            Who::Nemesis,
            EventType::Info,
            "partition-start",
            None,
            serde_json::json!({"grudge": "bridge"}),
            None,
        );
        let lines: Vec<Value> = rec
            .snapshot()
            .iter()
            .map(|r| serde_json::from_str(&r.to_json_line()).expect("valid JSON"))
            .collect();
        assert_eq!(lines[0]["index"], 0);
        assert_eq!(lines[0]["process"], 0);
        assert_eq!(lines[0]["type"], "invoke");
        assert_eq!(lines[0]["key"], "k3");
        assert!(lines[0].get("error").is_none());
        assert_eq!(lines[1]["error"], "cas_mismatch");
        assert_eq!(lines[1]["value"], serde_json::json!([4, 7]));
        assert_eq!(lines[2]["process"], "nemesis");
        assert!(lines[2].get("key").is_none());
        let t: Vec<u64> = lines
            .iter()
            .map(|l| l["time"].as_u64().unwrap_or(0))
            .collect();
        assert!(t[0] <= t[1] && t[1] <= t[2]);
    }

    #[test]
    fn pairs_invokes_with_completions_and_leaves_open_ones_info() {
        let rec = Recorder::new(Instant::now());
        let w = |k| Value::from(k);
        rec.record(
            Who::Client(1),
            EventType::Invoke,
            "write",
            Some("a"),
            w(1),
            None,
        );
        rec.record(
            Who::Client(2),
            EventType::Invoke,
            "read",
            Some("a"),
            Value::Null,
            None,
        );
        rec.record(
            Who::Client(1),
            EventType::Ok,
            "write",
            Some("a"),
            w(1),
            None,
        );
        rec.record(Who::Client(2), EventType::Ok, "read", Some("a"), w(1), None);
        rec.record(
            Who::Nemesis,
            EventType::Info,
            "kill-start",
            None,
            Value::Null,
            None,
        );
        rec.record(
            Who::Client(3),
            EventType::Invoke,
            "write",
            Some("a"),
            w(2),
            None,
        );
        let h = to_history(&rec.snapshot());
        assert_eq!(h.events.len(), 6);
        assert_eq!(h.ops.len(), 3);
        assert_eq!(h.ops[0].outcome, Outcome::Ok);
        assert_eq!(h.ops[0].complete_event, Some(2));
        assert_eq!(h.ops[1].f, Function::Read);
        assert_eq!(h.ops[1].output, w(1));
        assert_eq!(h.ops[2].outcome, Outcome::Info);
        assert_eq!(h.ops[2].ret, None);
        assert!(h.ops.windows(2).all(|p| p[0].call <= p[1].call));
    }

    #[test]
    fn jsonl_file_has_one_valid_object_per_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::new(Instant::now());
        for i in 0..50u64 {
            rec.record(
                Who::Client(i % 3),
                EventType::Invoke,
                "read",
                Some("k"),
                Value::Null,
                None,
            );
        }
        write_jsonl(&path, &rec.snapshot()).expect("write");
        assert_eq!(read_jsonl(&path).expect("read back"), rec.snapshot());
        let text = std::fs::read_to_string(&path).expect("read back");
        let mut n = 0;
        for (i, line) in text.lines().enumerate() {
            let v: Value = serde_json::from_str(line).expect("each line parses");
            assert_eq!(v["index"], i as u64);
            n += 1;
        }
        assert_eq!(n, 50);
    }
}
