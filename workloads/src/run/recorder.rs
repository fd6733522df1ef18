//! The history recorder: every client and nemesis event, stamped with a monotonic
//! nanosecond time since the run started, in the order the times were taken.
//!
//! Index and time are assigned under one lock, so line order is real-time order and
//! the checker can trust both. A std `Mutex`, because nothing awaits while it is held.

use checker::history::EventType;
use serde::Serialize;
use serde_json::Value;
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

/// One recorded line (the JSONL format of docs/design.md, "History format").
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
    fn the_checker_parses_the_recording_and_pairs_it() {
        use checker::history::{Function, Outcome};
        let rec = Recorder::new(Instant::now());
        let w = |k: u64| Value::from(k);
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
            "cas",
            Some("a"),
            serde_json::json!([1, 2]),
            None,
        );
        rec.record(
            Who::Client(3),
            EventType::Info,
            "cas",
            Some("a"),
            serde_json::json!([1, 2]),
            Some("timeout"),
        );
        rec.record(
            Who::Client(4),
            EventType::Invoke,
            "write",
            Some("a"),
            w(2),
            None,
        );
        let text: String = rec
            .snapshot()
            .iter()
            .map(|r| r.to_json_line() + "\n")
            .collect();
        let h = checker::parse::parse_str(&text, "recorded").expect("the checker accepts it");
        assert_eq!(h.events.len(), 8);
        assert_eq!(h.ops.len(), 4);
        assert_eq!(h.ops[0].outcome, Outcome::Ok);
        assert_eq!(h.ops[1].f, Function::Read);
        assert_eq!(h.ops[1].output, w(1));
        assert_eq!(h.ops[2].outcome, Outcome::Info);
        assert_eq!(h.ops[3].outcome, Outcome::Info);
        assert_eq!(h.ops[3].ret, None);
    }

    #[test]
    fn jsonl_file_has_one_valid_object_per_line() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("history.jsonl");
        let rec = Recorder::new(Instant::now());
        for i in 0..25u64 {
            let who = Who::Client(i % 3);
            rec.record(
                who.clone(),
                EventType::Invoke,
                "read",
                Some("k"),
                Value::Null,
                None,
            );
            rec.record(who, EventType::Ok, "read", Some("k"), Value::from(i), None);
        }
        write_jsonl(&path, &rec.snapshot()).expect("write");
        assert!(checker::parse::parse_file(&path).is_ok());
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
