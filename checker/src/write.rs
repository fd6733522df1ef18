//! Writing a [`History`] out in the two formats [`crate::parse`] reads: JSON Lines,
//! the native format (docs/design.md, "History format"), and Jepsen's `history.edn`.
//! Every producer of histories writes through here: real runs, the simulator's
//! `--history`, `checker gen`, the benchmarks and the tests.
//!
//! Both writers are lossless for what a history holds: reading the output back gives
//! the same events and operations (times, indexes, keys, values, errors, and the
//! events of processes such as the nemesis).
//!
//! EDN follows Jepsen: one op map per line, printed by edn-format (so strings are
//! escaped as EDN wants), `nil` for null, vectors for arrays, maps with keyword keys
//! where a key is a plain identifier. When every client operation has a key, keys
//! travel as jepsen.independent `[key value]` tuples (a cas value is
//! `[key [from to]]`), which is what Knossos's and Elle's independent checkers
//! take; otherwise a keyed operation carries a `:key` field.
//!
//! ```edn
//! {:f :write :index 0 :process 0 :time 1203 :type :invoke :value ["k3" 4]}
//! {:f :partition-start :index 4 :process :nemesis :time 9100 :type :info :value {:grudge "bridge"}}
//! ```

use crate::history::{Actor, EventType, History, Key};
use crate::parse::Format;
use edn_format::{Keyword, Value as Edn};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// A process as a line names it: a client's number, or another process's name.
#[derive(Serialize)]
#[serde(untagged)]
enum ProcessField<'a> {
    Client(u64),
    Other(&'a str),
}

/// One JSONL line, with the fields in the documented order.
#[derive(Serialize)]
struct Line<'a> {
    index: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<u64>,
    process: ProcessField<'a>,
    #[serde(rename = "type")]
    kind: EventType,
    f: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a Key>,
    value: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// The fields of one event, whoever did it.
struct Fields<'a> {
    index: u64,
    time: Option<u64>,
    process: ProcessField<'a>,
    kind: EventType,
    f: &'a str,
    key: Option<&'a Key>,
    value: &'a Value,
    error: Option<&'a str>,
}

impl History {
    /// Every event with its fields, in line order. A completion carries its
    /// operation's output when `ok`, else (as Jepsen writes `fail` and `info`) the
    /// invoke's value; only completions carry the error.
    fn fields(&self) -> impl Iterator<Item = Fields<'_>> {
        self.events.iter().map(move |e| match &e.actor {
            Actor::Client { process, op } => {
                let op = &self.ops[*op];
                Fields {
                    index: e.index,
                    time: e.time,
                    process: ProcessField::Client(*process),
                    kind: e.kind,
                    f: op.f.name(),
                    key: op.key.as_ref(),
                    value: match e.kind {
                        EventType::Ok => &op.output,
                        _ => &op.input,
                    },
                    error: match e.kind {
                        EventType::Invoke => None,
                        _ => op.error.as_deref(),
                    },
                }
            }
            Actor::Other(o) => Fields {
                index: e.index,
                time: e.time,
                process: ProcessField::Other(&o.process),
                kind: e.kind,
                f: &o.f,
                key: None,
                value: &o.value,
                error: o.error.as_deref(),
            },
        })
    }

    /// Writes the history to the file `path` (created or replaced) in `format`, and
    /// syncs it to disk.
    pub fn save(&self, path: &Path, format: Format) -> io::Result<()> {
        let mut out = BufWriter::new(std::fs::File::create(path)?);
        match format {
            Format::Jsonl => self.write_jsonl(&mut out)?,
            Format::Edn => self.write_edn(&mut out)?,
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    }

    /// Writes the history as JSON Lines, one event per line.
    pub fn write_jsonl<W: Write>(&self, out: &mut W) -> io::Result<()> {
        for e in self.fields() {
            let line = Line {
                index: e.index,
                time: e.time,
                process: e.process,
                kind: e.kind,
                f: e.f,
                key: e.key,
                value: e.value,
                error: e.error,
            };
            serde_json::to_writer(&mut *out, &line)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }

    /// Writes the history as Jepsen's `history.edn`, one op map per line (see the
    /// module documentation).
    pub fn write_edn<W: Write>(&self, out: &mut W) -> io::Result<()> {
        let tuples = !self.ops.is_empty() && self.ops.iter().all(|op| op.key.is_some());
        for e in self.fields() {
            let mut m = BTreeMap::new();
            m.insert(kw("index"), integer(e.index));
            if let Some(t) = e.time {
                m.insert(kw("time"), integer(t));
            }
            m.insert(kw("type"), kw(e.kind.name()));
            m.insert(
                kw("process"),
                match e.process {
                    ProcessField::Client(p) => integer(p),
                    ProcessField::Other(name) => name_value(name),
                },
            );
            m.insert(kw("f"), name_value(e.f));
            let value = json_to_edn(e.value);
            match e.key {
                Some(k) if tuples => {
                    m.insert(
                        kw("value"),
                        Edn::Vector(vec![json_to_edn(&k.to_value()), value]),
                    );
                }
                Some(k) => {
                    m.insert(kw("key"), json_to_edn(&k.to_value()));
                    m.insert(kw("value"), value);
                }
                None => {
                    m.insert(kw("value"), value);
                }
            }
            if let Some(error) = e.error {
                m.insert(kw("error"), name_value(error));
            }
            out.write_all(edn_format::emit_str(&Edn::Map(m)).as_bytes())?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}

fn kw(name: &str) -> Edn {
    Edn::Keyword(Keyword::from_name(name))
}

/// An integer as EDN: beyond `i64` it is a bigint (`N`), which the parser reads back.
fn integer(n: u64) -> Edn {
    match i64::try_from(n) {
        Ok(i) => Edn::Integer(i),
        Err(_) => edn_format::parse_str(&format!("{n}N")).unwrap_or(Edn::String(n.to_string())),
    }
}

/// Whether `s` can be written as a keyword as it is.
fn keyword_safe(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '?' | '!' | '*'))
}

/// A name (`f`, a process, an error) as a keyword when it can be one, else a string.
fn name_value(s: &str) -> Edn {
    if keyword_safe(s) {
        kw(s)
    } else {
        Edn::String(s.to_string())
    }
}

/// A JSON value as EDN: objects become maps (keyword keys where the key is a plain
/// identifier), arrays vectors, null `nil`.
pub fn json_to_edn(v: &Value) -> Edn {
    match v {
        Value::Null => Edn::Nil,
        Value::Bool(b) => Edn::Boolean(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Edn::Integer(i)
            } else if let Some(u) = n.as_u64() {
                integer(u)
            } else {
                Edn::from(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => Edn::String(s.clone()),
        Value::Array(xs) => Edn::Vector(xs.iter().map(json_to_edn).collect()),
        Value::Object(m) => Edn::Map(
            m.iter()
                .map(|(k, v)| (name_value(k), json_to_edn(v)))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{Builder, RawEvent};
    use crate::history::{Function, Process};
    use serde_json::json;

    /// Client and nemesis events with errors, an info, a cas and an odd nemesis key.
    fn history() -> History {
        let mut b = Builder::new();
        let mut push = |p: Process, kind, f: &str, key: Option<&str>, v: Value, e: Option<&str>| {
            let pos = b.len();
            b.push(RawEvent {
                line: pos + 1,
                index: None,
                time: Some(10 * pos as u64),
                process: p,
                kind,
                f: Function::from_name(f),
                key: key.map(Key::from),
                value: Some(v),
                error: e.map(Into::into),
            })
            .expect("pairs");
        };
        use EventType::*;
        let c = Process::Client;
        push(c(0), Invoke, "write", Some("a"), json!(1), None);
        push(c(0), Ok, "write", Some("a"), json!(1), None);
        push(
            Process::Other("nemesis".into()),
            Info,
            "partition-start",
            None,
            json!({"grudge": "bridge", "odd key": "x \"q\"", "cut": [[1, 2]]}),
            None,
        );
        push(c(1), Invoke, "cas", Some("a"), json!([null, 3]), None);
        push(
            c(1),
            Fail,
            "cas",
            Some("a"),
            json!([null, 3]),
            Some("cas_mismatch"),
        );
        push(c(2), Invoke, "cas", Some("a"), json!([1, 2]), None);
        push(
            c(2),
            Info,
            "cas",
            Some("a"),
            json!([1, 2]),
            Some("etcdserver: request timed out"),
        );
        push(c(3), Invoke, "read", Some("a"), Value::Null, None);
        push(c(3), Ok, "read", Some("a"), json!(2), None);
        b.finish()
    }

    #[test]
    fn jsonl_lines_have_the_documented_fields_in_order() {
        let mut out = Vec::new();
        history().write_jsonl(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{"index":0,"time":0,"process":0,"type":"invoke","f":"write","key":"a","value":1}"#
        );
        assert_eq!(
            lines[4],
            r#"{"index":4,"time":40,"process":1,"type":"fail","f":"cas","key":"a","value":[null,3],"error":"cas_mismatch"}"#
        );
        assert!(lines[2].contains(r#""process":"nemesis""#), "{}", lines[2]);
        assert!(!lines[2].contains(r#""key""#), "{}", lines[2]);
    }

    #[test]
    fn edn_lines_are_jepsen_op_maps_with_independent_tuples() {
        let mut out = Vec::new();
        history().write_edn(&mut out).expect("writes");
        let text = String::from_utf8(out).expect("text");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            r#"{:f :write :index 0 :process 0 :time 0 :type :invoke :value ["a" 1]}"#
        );
        assert!(lines[2].contains(":process :nemesis"), "{}", lines[2]);
        assert!(lines[2].contains(r#":grudge "bridge""#), "{}", lines[2]);
        assert!(lines[2].contains(r#""odd key" "x \"q\"""#), "{}", lines[2]);
        assert!(lines[3].contains(r#":value ["a" [nil 3]]"#), "{}", lines[3]);
        assert!(lines[4].contains(":error :cas_mismatch"), "{}", lines[4]);
        assert!(
            lines[6].contains(r#":error "etcdserver: request timed out""#),
            "{}",
            lines[6]
        );
    }

    #[test]
    fn both_formats_read_back_to_the_same_history() {
        let h = history();
        let (mut jsonl, mut edn) = (Vec::new(), Vec::new());
        h.write_jsonl(&mut jsonl).expect("jsonl");
        h.write_edn(&mut edn).expect("edn");
        let from_jsonl = crate::parse::parse_reader(&jsonl[..], "h.jsonl").expect("jsonl parses");
        let from_edn = crate::parse::parse_reader(&edn[..], "h.edn").expect("edn parses");
        assert_eq!(from_jsonl, h);
        assert_eq!(from_edn, h);
    }

    #[test]
    fn operations_without_keys_keep_plain_values_and_mixed_ones_a_key_field() {
        let mut b = Builder::new();
        for (pos, (kind, key)) in [
            (EventType::Invoke, None),
            (EventType::Ok, None),
            (EventType::Invoke, Some("k")),
            (EventType::Ok, Some("k")),
        ]
        .into_iter()
        .enumerate()
        {
            b.push(RawEvent {
                line: pos + 1,
                index: None,
                time: None,
                process: Process::Client(0),
                kind,
                f: Function::Write,
                key: key.map(Key::from),
                value: Some(json!([1, 2])),
                error: None,
            })
            .expect("pairs");
        }
        let h = b.finish();
        let mut edn = Vec::new();
        h.write_edn(&mut edn).expect("edn");
        let text = String::from_utf8(edn.clone()).expect("text");
        assert!(
            text.lines()
                .nth(3)
                .is_some_and(|l| l.contains(r#":key "k""#)),
            "{text}"
        );
        let back = crate::parse::parse_reader(&edn[..], "h.edn").expect("parses");
        assert_eq!(back, h);
    }
}
