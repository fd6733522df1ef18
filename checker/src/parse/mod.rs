//! Reading histories: JSON Lines (the native format) and Jepsen EDN, detected from the
//! content, then paired and validated into a [`History`].
//!
//! Input is read line by line from a [`BufRead`], so a history of millions of events is
//! never held as one string. Every line and every EDN form has a size limit, and every
//! error carries the file and line (see [`HistoryError`]).

mod edn;
mod jsonl;
mod lines;
mod pair;

use crate::error::{ErrorKind, HistoryError};
use crate::history::{EventType, History, Process};
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

pub use edn::{edn_literal, edn_to_json};

/// The longest line accepted (bytes); a longer one is an error, not an allocation.
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// The largest EDN form accepted (bytes), for forms spanning lines.
pub const MAX_FORM_BYTES: usize = 64 << 20;
/// The deepest nesting of brackets accepted in EDN (the EDN reader recurses).
pub const MAX_EDN_DEPTH: usize = 64;
/// The most events a history may hold.
pub const MAX_EVENTS: usize = 100_000_000;

/// The two input formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Edn,
}

/// One event as read, before pairing: fields exactly as the line has them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Draft {
    pub line: usize,
    pub index: Option<u64>,
    pub time: Option<u64>,
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<String>,
    /// `None` when the event has no `value` field at all (distinct from null).
    pub value: Option<Value>,
    pub error: Option<String>,
}

/// Reads and validates the history in `path`.
pub fn parse_file(path: &Path) -> Result<History, HistoryError> {
    let name = path.display().to_string();
    let file =
        File::open(path).map_err(|e| HistoryError::new(&name, 0, ErrorKind::Io(e.to_string())))?;
    parse_reader(BufReader::with_capacity(1 << 16, file), &name)
}

/// Reads and validates a history from a string (tests, the HTTP service).
pub fn parse_str(text: &str, name: &str) -> Result<History, HistoryError> {
    parse_reader(text.as_bytes(), name)
}

/// Reads and validates a history from any buffered reader; `name` labels errors.
pub fn parse_reader<R: BufRead>(reader: R, name: &str) -> Result<History, HistoryError> {
    let (_format, drafts) = read_drafts(reader, name)?;
    pair::pair(drafts, name)
}

/// Reads a value literal such as `--initial`: JSON first, else EDN (`nil`, `:a`, `[1 2]`).
pub fn value_literal(text: &str) -> Result<Value, ErrorKind> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => Ok(v),
        Err(_) => edn_literal(text),
    }
}

/// Detects the format of a history without validating it fully.
pub fn detect_format(first_line: &str) -> Option<Format> {
    let t = first_line.trim_start_matches('\u{feff}').trim_start();
    let mut chars = t.chars();
    match chars.next()? {
        '{' => match chars.find(|c| !c.is_whitespace()) {
            Some('"') | Some('}') => Some(Format::Jsonl),
            _ => Some(Format::Edn),
        },
        '[' | '(' | '#' | ';' => Some(Format::Edn),
        _ => None,
    }
}

fn read_drafts<R: BufRead>(reader: R, name: &str) -> Result<(Format, Vec<Draft>), HistoryError> {
    let mut lines = lines::Lines::new(reader, name, MAX_LINE_BYTES);
    // The first non-blank line decides the format; an empty input is an empty history.
    let first = loop {
        match lines.next_line()? {
            None => return Ok((Format::Jsonl, Vec::new())),
            Some((no, text)) if !text.trim().is_empty() => break (no, text.to_string()),
            Some(_) => {}
        }
    };
    match detect_format(&first.1) {
        Some(Format::Jsonl) => Ok((Format::Jsonl, jsonl::read(first, &mut lines, name)?)),
        Some(Format::Edn) => Ok((Format::Edn, edn::read(first, &mut lines, name)?)),
        None => {
            let shown: String = first.1.trim().chars().take(20).collect();
            Err(HistoryError::new(
                name,
                first.0,
                ErrorKind::UnknownFormat(shown),
            ))
        }
    }
}

/// Reads the `type` of an event.
pub(crate) fn event_type(s: &str) -> Result<EventType, ErrorKind> {
    match s {
        "invoke" => Ok(EventType::Invoke),
        "ok" => Ok(EventType::Ok),
        "fail" => Ok(EventType::Fail),
        "info" => Ok(EventType::Info),
        other => Err(ErrorKind::UnknownType(other.to_string())),
    }
}

/// A key as a string: strings as they are, anything else in JSON form.
pub(crate) fn key_string(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// A process: a non-negative integer is a client; a name is anything else.
pub(crate) fn process_of(v: &Value) -> Result<Process, ErrorKind> {
    match v {
        Value::Number(n) => n.as_u64().map(Process::Client).ok_or(ErrorKind::BadField {
            field: "process",
            reason: format!("{n} is not a non-negative integer"),
        }),
        Value::String(s) => Ok(Process::Other(s.clone())),
        other => Err(ErrorKind::BadField {
            field: "process",
            reason: format!("expected an integer or a name, found {other}"),
        }),
    }
}

/// A non-negative integer field (`time`, `index`).
pub(crate) fn u64_field(v: &Value, field: &'static str) -> Result<Option<u64>, ErrorKind> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n.as_u64().map(Some).ok_or(ErrorKind::BadField {
            field,
            reason: format!("{n} is not a non-negative integer"),
        }),
        other => Err(ErrorKind::BadField {
            field,
            reason: format!("expected a non-negative integer, found {other}"),
        }),
    }
}

/// The `error` field as text.
pub(crate) fn error_text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}
