//! Recording a history as it happens, for simulated and real runs alike: client
//! invokes and completions and nemesis events go straight into the checker's
//! [`History`] (through its [`Builder`], which pairs them and enforces Jepsen's
//! rules), so what is checked, reported and written (`History::write_jsonl`,
//! `History::write_edn`) is one value in one format. An event's index is its position
//! and its line the line it gets in `history.jsonl`.

use crate::ops::Op;
use checker::build::{Builder, RawEvent};
use checker::history::{EventType, Function, History, Key, Process};
use serde_json::Value;

/// The process name of fault events.
pub const NEMESIS: &str = "nemesis";

/// A history being recorded.
#[derive(Clone, Default)]
pub struct Recording {
    builder: Builder,
    /// The first event the builder refused: a bug of the recording side, reported
    /// when the history is taken.
    refused: Option<String>,
}

impl Recording {
    pub fn new() -> Recording {
        Recording::default()
    }

    /// Events recorded so far.
    pub fn len(&self) -> usize {
        self.builder.len()
    }

    pub fn is_empty(&self) -> bool {
        self.builder.is_empty()
    }

    fn push(&mut self, event: RawEvent) {
        let line = event.line;
        if let Err(e) = self.builder.push(event)
            && self.refused.is_none()
        {
            self.refused = Some(format!("event {}: {e}", line - 1));
        }
    }

    /// Client `process` invokes `op` (`kind` `Invoke`) or completes it with `value`
    /// and `error`, at `time_ns`.
    pub fn client(
        &mut self,
        time_ns: u64,
        process: u64,
        kind: EventType,
        op: &Op,
        value: Value,
        error: Option<&str>,
    ) {
        let line = self.len() + 1;
        self.push(RawEvent {
            line,
            index: None,
            time: Some(time_ns),
            process: Process::Client(process),
            kind,
            f: op.function(),
            key: Some(Key::from(op.key_name().as_str())),
            value: Some(value),
            error: error.map(Into::into),
        });
    }

    /// A fault event `f` (`partition-start`, `kill-stop`, ...) at `time_ns`.
    pub fn nemesis(&mut self, time_ns: u64, f: &str, value: Value) {
        let line = self.len() + 1;
        self.push(RawEvent {
            line,
            index: None,
            time: Some(time_ns),
            process: Process::Other(NEMESIS.to_string()),
            kind: EventType::Info,
            f: Function::from_name(f),
            key: None,
            value: Some(value),
            error: None,
        });
    }

    /// The history, or what went wrong recording it.
    pub fn finish(self) -> Result<History, String> {
        match self.refused {
            Some(why) => Err(format!("the recorded history breaks Jepsen's rules: {why}")),
            None => Ok(self.builder.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::Outcome;
    use serde_json::json;

    #[test]
    fn events_pair_into_operations_with_their_errors() {
        let mut r = Recording::new();
        let w = Op::Write { key: 3, value: 4 };
        let c = Op::Cas {
            key: 3,
            from: json!(4),
            to: 7,
        };
        r.client(5, 0, EventType::Invoke, &w, w.input(), None);
        r.client(9, 1, EventType::Invoke, &c, c.input(), None);
        r.nemesis(10, "partition-start", json!({"grudge": "bridge"}));
        r.client(12, 0, EventType::Ok, &w, w.input(), None);
        r.client(15, 1, EventType::Info, &c, c.input(), Some("timeout"));
        let h = r.finish().expect("pairs");
        assert_eq!(h.events.len(), 5);
        assert_eq!(h.events[3].index, 3);
        assert_eq!(h.events[3].line, 4);
        assert_eq!(h.ops[0].key, Some(Key::from("k3")));
        assert_eq!(
            (h.ops[0].outcome, h.ops[0].call, h.ops[0].ret),
            (Outcome::Ok, 5, Some(12))
        );
        assert_eq!(h.ops[1].input, json!([4, 7]));
        assert_eq!(h.ops[1].error.as_deref(), Some("timeout"));
        let nemesis = h.events[2].other().expect("a nemesis event");
        assert_eq!(
            (nemesis.process.as_str(), nemesis.f.as_str()),
            ("nemesis", "partition-start")
        );
    }

    #[test]
    fn a_broken_rule_is_reported_when_the_history_is_taken() {
        let mut r = Recording::new();
        let read = Op::Read { key: 0 };
        r.client(1, 0, EventType::Ok, &read, json!(1), None);
        let e = r.finish().unwrap_err();
        assert!(e.contains("event 0"), "{e}");
    }
}
