//! Reading histories: JSON Lines (the native format) and Jepsen EDN, detected from the
//! content, then paired and validated into a [`History`] by [`Builder`].
//!
//! Input is streamed (see `stream`): read in blocks of whole lines or forms, parsed
//! on every core, built into the history in input order. A history of millions of
//! events is never held as text. Every line and every EDN form has a size limit, and
//! every error carries the file and line (see [`HistoryError`]).

mod edn;
mod jsonl;
mod stream;
mod value;

use crate::build::{Builder, RawEvent};
use crate::error::{ErrorKind, HistoryError};
use crate::history::{EventType, Function, History, Key, Process};
use rustc_hash::FxHashMap;
use serde_json::Value;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::Arc;
use stream::{Batch, Blocks, Parsed};

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

/// Reads and validates the history in `path`.
pub fn parse_file(path: &Path) -> Result<History, HistoryError> {
    let name = path.display().to_string();
    let file =
        File::open(path).map_err(|e| HistoryError::new(&name, 0, ErrorKind::Io(e.to_string())))?;
    let size = file.metadata().map_or(0, |m| m.len());
    read(
        BufReader::with_capacity(1 << 16, file),
        &name,
        usize::try_from(size).unwrap_or(0),
    )
}

/// Reads and validates a history from a string (tests, the HTTP service).
pub fn parse_str(text: &str, name: &str) -> Result<History, HistoryError> {
    parse_reader(text.as_bytes(), name)
}

/// Reads and validates a history from any buffered reader; `name` labels errors.
pub fn parse_reader<R: BufRead>(reader: R, name: &str) -> Result<History, HistoryError> {
    read(reader, name, 0)
}

/// [`parse_reader`], told about how many bytes the input has (0: unknown), so the
/// history's tables are allocated once.
fn read<R: BufRead>(reader: R, name: &str, size_hint: usize) -> Result<History, HistoryError> {
    let mut blocks = Blocks::new(reader, name);
    // The first non-blank line decides the format; an empty input is an empty history.
    let (first, format) = loop {
        let Some((no, bytes)) = blocks.next_block()? else {
            return Ok(History::default());
        };
        if let Some((line, text)) = first_nonblank(no, &bytes) {
            match detect_format(&text) {
                Some(f) => break ((no, bytes), f),
                None => {
                    let shown: String = text.trim().chars().take(20).collect();
                    return Err(HistoryError::new(
                        name,
                        line,
                        ErrorKind::UnknownFormat(shown),
                    ));
                }
            }
        }
    };
    let size_hint = size_hint.max(first.1.len());
    let consume = |parsed: &mut dyn Iterator<Item = Parsed>| match format {
        Format::Jsonl => build(parsed, name, size_hint),
        Format::Edn => build_edn(parsed, name),
    };
    if blocks.done() {
        // One block: parse it here, without threads.
        let mut batches = Vec::new();
        feed(format, first, &mut blocks, name, &mut |b| {
            batches.push(b);
            true
        });
        return stream::run_inline(name, batches, consume);
    }
    stream::run(
        name,
        |send| feed(format, first, &mut blocks, name, send),
        consume,
    )
}

fn feed<R: BufRead>(
    format: Format,
    first: (usize, Vec<u8>),
    blocks: &mut Blocks<R>,
    name: &str,
    send: &mut dyn FnMut(Batch) -> bool,
) {
    match format {
        Format::Jsonl => stream::feed_lines(first, blocks, send),
        Format::Edn => edn::feed_forms(first, blocks, name, send),
    }
}

/// The first line with something on it, if the block has one (lossy: an invalid byte
/// is reported later, with its line).
fn first_nonblank(first: usize, bytes: &[u8]) -> Option<(usize, String)> {
    bytes
        .split(|b| *b == b'\n')
        .enumerate()
        .find(|(_, l)| !l.iter().all(|b| b.is_ascii_whitespace()))
        .map(|(i, l)| (first + i, String::from_utf8_lossy(l).into_owned()))
}

/// Builds JSONL events into the history as they arrive.
fn build(
    parsed: &mut dyn Iterator<Item = Parsed>,
    name: &str,
    input_bytes: usize,
) -> Result<History, HistoryError> {
    // Events take about 100 bytes a line; pages reserved but never filled cost nothing.
    let mut builder = Builder::with_capacity(input_bytes / 90);
    for p in parsed {
        for e in p.events {
            push(&mut builder, e, name)?;
        }
        if let Some(e) = p.error {
            return Err(e);
        }
    }
    Ok(builder.finish())
}

/// EDN histories are gathered first: whether they use jepsen.independent tuples is
/// decided by every event.
fn build_edn(
    parsed: &mut dyn Iterator<Item = Parsed>,
    name: &str,
) -> Result<History, HistoryError> {
    let mut events: Vec<RawEvent> = Vec::new();
    for p in parsed {
        events.extend(p.events);
        if events.len() > MAX_EVENTS {
            let line = events.last().map_or(0, |e| e.line);
            return Err(HistoryError::new(
                name,
                line,
                ErrorKind::TooManyEvents { limit: MAX_EVENTS },
            ));
        }
        if let Some(e) = p.error {
            // Pair what came before, so an earlier pairing error wins.
            edn::unwrap_independent(&mut events);
            let mut builder = Builder::with_capacity(events.len());
            for ev in events {
                push(&mut builder, ev, name)?;
            }
            return Err(e);
        }
    }
    edn::unwrap_independent(&mut events);
    let mut builder = Builder::with_capacity(events.len());
    for e in events {
        push(&mut builder, e, name)?;
    }
    Ok(builder.finish())
}

fn push(builder: &mut Builder, e: RawEvent, name: &str) -> Result<(), HistoryError> {
    let line = e.line;
    if builder.len() >= MAX_EVENTS {
        return Err(HistoryError::new(
            name,
            line,
            ErrorKind::TooManyEvents { limit: MAX_EVENTS },
        ));
    }
    builder
        .push(e)
        .map(|_| ())
        .map_err(|kind| HistoryError::new(name, line, kind))
}

/// Reads a value literal such as `--initial`: JSON first, else EDN (`nil`, `:a`, `[1 2]`).
/// Integers beyond 64 bits are refused in both.
pub fn value_literal(text: &str) -> Result<Value, ErrorKind> {
    match serde_json::from_str::<serde::de::IgnoredAny>(text) {
        Ok(_) => value::json_value(text),
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

/// Shares the keys and function names of one parsing thread, so a million events on a
/// thousand keys allocate a thousand keys.
#[derive(Default)]
pub(crate) struct Interner {
    /// Raw JSON text of a key -> the key.
    keys: FxHashMap<Box<str>, Key>,
    functions: FxHashMap<Box<str>, Function>,
    /// Raw JSON text of an `error` -> its text (a few words recur on many lines).
    errors: FxHashMap<Box<str>, Arc<str>>,
}

/// Distinct keys or names remembered at most (beyond, they are made afresh).
const INTERN_LIMIT: usize = 1 << 16;

impl Interner {
    /// The key written as `raw` (JSON text); `None` for null.
    pub fn key(&mut self, raw: &str) -> Result<Option<Key>, ErrorKind> {
        if let Some(k) = self.keys.get(raw) {
            return Ok(Some(k.clone()));
        }
        let Some(key) = Key::from_value(&value::json_value(raw)?) else {
            return Ok(None);
        };
        if self.keys.len() < INTERN_LIMIT {
            self.keys.insert(raw.into(), key.clone());
        }
        Ok(Some(key))
    }

    /// The `error` written as `raw` (JSON text); `None` for null.
    pub fn error(&mut self, raw: &str) -> Result<Option<Arc<str>>, ErrorKind> {
        if let Some(e) = self.errors.get(raw) {
            return Ok(Some(e.clone()));
        }
        let error = error_text(&value::json_value(raw)?);
        if let Some(e) = &error
            && self.errors.len() < INTERN_LIMIT
        {
            self.errors.insert(raw.into(), e.clone());
        }
        Ok(error)
    }

    pub fn function(&mut self, name: &str) -> Function {
        if let Some(f) = self.functions.get(name) {
            return f.clone();
        }
        let f = Function::from_name(name);
        if let Function::Other(_) = f
            && self.functions.len() < INTERN_LIMIT
        {
            self.functions.insert(name.into(), f.clone());
        }
        f
    }
}

/// An `error` value as text: a string as it is, anything else as JSON; `None` for null.
pub(crate) fn error_text(v: &Value) -> Option<Arc<str>> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.as_str().into()),
        other => Some(other.to_string().into()),
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

/// Parses one batch (on a worker thread of [`stream`]) with its format's parser.
fn parse_batch(batch: Batch, name: &str, interner: &mut Interner) -> Parsed {
    let mut events = Vec::new();
    let err = |line: usize, kind: ErrorKind| Some(HistoryError::new(name, line, kind));
    let error = match batch {
        Batch::Failed(e) => Some(e),
        Batch::Lines { first, bytes } => {
            events.reserve(bytes.len() / 100);
            let mut error = None;
            let mut start = 0;
            let ends = memchr::memchr_iter(b'\n', &bytes).chain(std::iter::once(bytes.len()));
            for (i, end) in ends.enumerate() {
                let line = first + i;
                let raw = &bytes[start..end];
                start = end + 1;
                let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
                if raw.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match jsonl::event(raw, line, interner) {
                    Ok(e) => events.push(e),
                    Err(kind) => {
                        error = err(line, kind);
                        break;
                    }
                }
            }
            error
        }
        Batch::Forms(forms) => {
            let mut error = None;
            for (line, text) in forms {
                match edn::form_event(&text, line, interner) {
                    Ok(e) => events.push(e),
                    Err(kind) => {
                        error = err(line, kind);
                        break;
                    }
                }
            }
            error
        }
    };
    Parsed { events, error }
}
