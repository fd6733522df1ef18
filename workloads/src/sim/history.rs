//! The history a simulated run records, in the JSONL format of docs/design.md
//! ("History format"): invoke / ok / fail / info events with virtual nanosecond times.

use serde_json::{Value, json};
use std::io::Write;

/// Who produced an event: a client process, or the fault injector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Client(u64),
    Nemesis,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invoke,
    Ok,
    Fail,
    Info,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Invoke => "invoke",
            Kind::Ok => "ok",
            Kind::Fail => "fail",
            Kind::Info => "info",
        }
    }
}

/// One line of the history.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub time_ns: u64,
    pub who: Who,
    pub kind: Kind,
    /// `read`, `write`, `cas`, or a nemesis function such as `partition-start`.
    pub f: &'static str,
    pub key: Option<String>,
    pub value: Value,
    pub error: Option<&'static str>,
}

/// Events in real-time (virtual-time) order.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub events: Vec<Event>,
}

impl History {
    pub fn push(&mut self, e: Event) {
        self.events.push(e);
    }

    /// One JSON object per event, with `index` the event's position.
    pub fn to_json_lines(&self) -> Vec<Value> {
        self.events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                let mut o = json!({
                    "index": i,
                    "time": e.time_ns,
                    "process": match e.who {
                        Who::Client(p) => json!(p),
                        Who::Nemesis => json!("nemesis"),
                    },
                    "type": e.kind.as_str(),
                    "f": e.f,
                    "value": e.value,
                });
                if let Some(k) = &e.key {
                    o["key"] = json!(k);
                }
                if let Some(err) = e.error {
                    o["error"] = json!(err);
                }
                o
            })
            .collect()
    }

    /// Writes the history as JSON Lines.
    pub fn write_jsonl(&self, out: &mut impl Write) -> std::io::Result<()> {
        for line in self.to_json_lines() {
            writeln!(out, "{line}")?;
        }
        Ok(())
    }

    /// Counts of completed client operations: (ok, fail, info).
    pub fn outcome_counts(&self) -> (u64, u64, u64) {
        let mut c = (0, 0, 0);
        for e in &self.events {
            if let Who::Client(_) = e.who {
                match e.kind {
                    Kind::Ok => c.0 += 1,
                    Kind::Fail => c.1 += 1,
                    Kind::Info => c.2 += 1,
                    Kind::Invoke => {}
                }
            }
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_follows_the_design_format() {
        let mut h = History::default();
        h.push(Event {
            time_ns: 5,
            who: Who::Client(3),
            kind: Kind::Fail,
            f: "cas",
            key: Some("k1".into()),
            value: json!([1, 2]),
            error: Some("cas_mismatch"),
        });
        h.push(Event {
            time_ns: 9,
            who: Who::Nemesis,
            kind: Kind::Info,
            f: "partition-start",
            key: None,
            value: json!({"grudge": "halves"}),
            error: None,
        });
        let mut buf = Vec::new();
        h.write_jsonl(&mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(
            first,
            json!({"error":"cas_mismatch","f":"cas","index":0,"key":"k1","process":3,"time":5,"type":"fail","value":[1,2]})
        );
        assert!(lines[1].contains(r#""process":"nemesis""#));
        assert!(!lines[1].contains("key"));
    }
}
