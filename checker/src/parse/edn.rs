//! Jepsen EDN histories, read as real EDN (edn-format): one op map per line as Jepsen
//! writes `history.edn`, or one vector or list of maps as Knossos's data files hold them.
//!
//! A small bracket counter splits the text into top-level forms as lines arrive, so each
//! form is handed to the EDN reader on its own (the reader recurses, hence the depth
//! limit) and every form keeps the line it started on.

use super::stream::{Batch, Blocks};
use super::{Interner, MAX_EDN_DEPTH, MAX_FORM_BYTES};
use crate::build::RawEvent;
use crate::error::{ErrorKind, HistoryError};
use crate::history::{EventType, Function, Key, Process};
use edn_format::Value as Edn;
use serde_json::{Map, Number, Value};
use std::io::BufRead;

/// Forms per batch handed to the parsing threads.
const FORMS_PER_BATCH: usize = 4096;

/// Splits the input (starting with the already-read block `first`) into forms and
/// sends them in batches; a problem found while splitting ends the input there.
pub(crate) fn feed_forms<R: BufRead>(
    first: (usize, Vec<u8>),
    blocks: &mut Blocks<R>,
    name: &str,
    send: &mut dyn FnMut(Batch) -> bool,
) {
    let mut splitter = Splitter::default();
    let mut forms: Vec<(usize, String)> = Vec::new();
    let mut block = Some(first);
    let err = |(line, kind): (usize, ErrorKind)| HistoryError::new(name, line, kind);
    loop {
        let (first_line, bytes) = match block.take() {
            Some(b) => b,
            None => match blocks.next_block() {
                Ok(Some(b)) => b,
                Ok(None) => break,
                Err(e) => {
                    send_all(&mut forms, send);
                    send(Batch::Failed(e));
                    return;
                }
            },
        };
        for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
            let no = first_line + i;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            let fed = match std::str::from_utf8(raw) {
                Ok(text) => splitter.feed(no, text, &mut forms),
                Err(_) => Err((no, ErrorKind::NotUtf8)),
            };
            if let Err(e) = fed {
                send_all(&mut forms, send);
                send(Batch::Failed(err(e)));
                return;
            }
            if forms.len() >= FORMS_PER_BATCH && !send_all(&mut forms, send) {
                return;
            }
        }
    }
    if let Err(e) = splitter.finish() {
        send_all(&mut forms, send);
        send(Batch::Failed(err(e)));
        return;
    }
    send_all(&mut forms, send);
}

/// Sends the forms gathered so far (if any); false if nothing more is wanted.
fn send_all(forms: &mut Vec<(usize, String)>, send: &mut dyn FnMut(Batch) -> bool) -> bool {
    if forms.is_empty() {
        return true;
    }
    send(Batch::Forms(std::mem::take(forms)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum Mode {
    /// Nothing significant seen yet.
    #[default]
    Undecided,
    /// Top-level maps, one after another.
    Forms,
    /// Inside one top-level vector or list opened on `line`, closed by `close`.
    Collection { line: usize, close: char },
    /// The top-level collection has been closed; only whitespace may follow.
    Closed,
}

/// Splits EDN text into top-level forms by counting brackets outside strings,
/// comments and character literals.
#[derive(Default)]
struct Splitter {
    mode: Mode,
    depth: usize,
    in_string: bool,
    escape: bool,
    char_literal: bool,
    buf: String,
    start_line: usize,
}

impl Splitter {
    fn feed(
        &mut self,
        no: usize,
        text: &str,
        out: &mut Vec<(usize, String)>,
    ) -> Result<(), (usize, ErrorKind)> {
        for c in text.chars() {
            if self.in_string {
                self.buf.push(c);
                if self.escape {
                    self.escape = false;
                } else if c == '\\' {
                    self.escape = true;
                } else if c == '"' {
                    self.in_string = false;
                }
                continue;
            }
            if self.char_literal {
                self.buf.push(c);
                self.char_literal = false;
                continue;
            }
            match c {
                ';' => break,
                c if c.is_whitespace() || c == ',' => {
                    if !self.buf.is_empty() {
                        self.buf.push(c);
                    }
                }
                '[' | '(' | '{' => {
                    if self.mode == Mode::Undecided && c != '{' && self.buf.is_empty() {
                        let close = if c == '[' { ']' } else { ')' };
                        self.mode = Mode::Collection { line: no, close };
                        continue;
                    }
                    self.begin(no)?;
                    self.depth += 1;
                    if self.depth > MAX_EDN_DEPTH {
                        return Err((
                            no,
                            ErrorKind::TooDeep {
                                limit: MAX_EDN_DEPTH,
                            },
                        ));
                    }
                    self.buf.push(c);
                }
                ']' | ')' | '}' => {
                    if self.depth == 0 {
                        match self.mode {
                            Mode::Collection { close, .. } if close == c && self.buf.is_empty() => {
                                self.mode = Mode::Closed;
                                continue;
                            }
                            _ => {
                                return Err((
                                    no,
                                    ErrorKind::BadEdn(format!("unexpected closing '{c}'")),
                                ));
                            }
                        }
                    }
                    self.depth -= 1;
                    self.buf.push(c);
                    if self.depth == 0 {
                        out.push((self.start_line, std::mem::take(&mut self.buf)));
                    }
                }
                '"' => {
                    self.begin(no)?;
                    self.in_string = true;
                    self.buf.push(c);
                }
                '\\' => {
                    self.begin(no)?;
                    self.char_literal = true;
                    self.buf.push(c);
                }
                _ => {
                    self.begin(no)?;
                    self.buf.push(c);
                }
            }
            if self.buf.len() > MAX_FORM_BYTES {
                return Err((
                    self.start_line,
                    ErrorKind::FormTooLarge {
                        limit: MAX_FORM_BYTES,
                    },
                ));
            }
        }
        self.char_literal = false;
        if !self.buf.is_empty() {
            self.buf.push('\n');
        }
        Ok(())
    }

    /// Notes the start of a form; rejects anything after the closed collection.
    fn begin(&mut self, no: usize) -> Result<(), (usize, ErrorKind)> {
        match self.mode {
            Mode::Undecided => self.mode = Mode::Forms,
            Mode::Closed => {
                return Err((
                    no,
                    ErrorKind::BadEdn("extra input after the top-level collection".into()),
                ));
            }
            _ => {}
        }
        if self.buf.is_empty() {
            self.start_line = no;
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), (usize, ErrorKind)> {
        if self.in_string {
            return Err((
                self.start_line,
                ErrorKind::BadEdn("unterminated string".into()),
            ));
        }
        if !self.buf.trim().is_empty() {
            let reason = if self.depth > 0 {
                "form never closed (missing bracket)"
            } else {
                "incomplete form at the end of the input"
            };
            return Err((self.start_line, ErrorKind::BadEdn(reason.into())));
        }
        if let Mode::Collection { line, close } = self.mode {
            return Err((
                line,
                ErrorKind::BadEdn(format!(
                    "the collection opened here is never closed with '{close}'"
                )),
            ));
        }
        Ok(())
    }
}

/// Parses one form (starting on `line`) into an event.
pub(crate) fn form_event(
    text: &str,
    line: usize,
    interner: &mut Interner,
) -> Result<RawEvent, ErrorKind> {
    // The reader's row/column are not reliable, so the form's first line is reported.
    let value = edn_format::parse_str(text).map_err(|e| ErrorKind::BadEdn(e.error.to_string()))?;
    op_event(&value, line, interner)
}

fn op_event(value: &Edn, line: usize, interner: &mut Interner) -> Result<RawEvent, ErrorKind> {
    let mut v = value;
    while let Edn::TaggedElement(_, inner) = v {
        v = inner;
    }
    let Edn::Map(map) = v else {
        return Err(ErrorKind::NotAMap(short(&edn_to_json(v)?.to_string())));
    };
    let (mut index, mut time, mut process, mut kind, mut f) = (None, None, None, None, None);
    let (mut key, mut val, mut error) = (None, None, None);
    for (k, v) in map {
        let Edn::Keyword(k) = k else { continue };
        if k.namespace().is_some() {
            continue;
        }
        match k.name() {
            "index" => index = super::u64_field(&edn_to_json(v)?, "index")?,
            "time" => time = super::u64_field(&edn_to_json(v)?, "time")?,
            "process" => process = Some(super::process_of(&edn_to_json(v)?)?),
            "type" => kind = Some(super::event_type(&name_of(v, "type")?)?),
            "f" => f = Some(interner.function(&name_of(v, "f")?)),
            "key" => key = Key::from_value(&edn_to_json(v)?),
            "value" => val = Some(edn_to_json(v)?),
            "error" => error = super::error_text(&edn_to_json(v)?),
            _ => {}
        }
    }
    Ok(RawEvent {
        line,
        index,
        time,
        process: process.ok_or(ErrorKind::MissingField("process"))?,
        kind: kind.ok_or(ErrorKind::MissingField("type"))?,
        f: f.ok_or(ErrorKind::MissingField("f"))?,
        key,
        value: val,
        error,
    })
}

/// A keyword, symbol or string as its name.
fn name_of(v: &Edn, field: &'static str) -> Result<String, ErrorKind> {
    match edn_to_json(v)? {
        Value::String(s) => Ok(s),
        other => Err(ErrorKind::BadField {
            field,
            reason: format!("expected a keyword, found {}", short(&other.to_string())),
        }),
    }
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out
}

/// Converts EDN to JSON: keywords and symbols become their names, nil null, lists,
/// vectors and sets arrays, maps objects (non-string keys in their JSON form), integers
/// numbers (bigints too when they fit in 64 bits; beyond, they are refused: the checker
/// compares values exactly).
pub fn edn_to_json(v: &Edn) -> Result<Value, ErrorKind> {
    Ok(match v {
        Edn::Nil => Value::Null,
        Edn::Boolean(b) => Value::Bool(*b),
        Edn::Character(c) => Value::String(c.to_string()),
        Edn::String(s) => Value::String(s.clone()),
        Edn::Symbol(s) => Value::String(s.to_string()),
        Edn::Keyword(k) => Value::String(match k.namespace() {
            Some(ns) => format!("{ns}/{}", k.name()),
            None => k.name().to_string(),
        }),
        Edn::Integer(i) => Value::from(*i),
        Edn::Float(x) => Number::from_f64(x.0)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(x.0.to_string())),
        Edn::BigInt(b) => {
            let s = b.to_string();
            if let Ok(i) = s.parse::<i64>() {
                Value::from(i)
            } else if let Ok(u) = s.parse::<u64>() {
                Value::from(u)
            } else {
                return Err(ErrorKind::BigInteger(s));
            }
        }
        Edn::BigDec(d) => {
            let s = d.to_string();
            s.parse::<f64>()
                .ok()
                .and_then(Number::from_f64)
                .map(Value::Number)
                .unwrap_or(Value::String(s))
        }
        Edn::List(xs) | Edn::Vector(xs) => {
            Value::Array(xs.iter().map(edn_to_json).collect::<Result<_, _>>()?)
        }
        Edn::Set(xs) => Value::Array(xs.iter().map(edn_to_json).collect::<Result<_, _>>()?),
        Edn::Map(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                let key = match edn_to_json(k)? {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                out.insert(key, edn_to_json(v)?);
            }
            Value::Object(out)
        }
        Edn::Inst(t) => Value::String(t.to_rfc3339()),
        Edn::Uuid(u) => Value::String(u.to_string()),
        Edn::TaggedElement(_, inner) => edn_to_json(inner)?,
    })
}

/// Parses one EDN literal (the command line's `--initial`), refusing deep nesting.
pub fn edn_literal(text: &str) -> Result<Value, ErrorKind> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escape = false;
    for c in text.chars() {
        if in_string {
            if escape {
                escape = false;
            } else if c == '\\' {
                escape = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
        } else if matches!(c, '[' | '(' | '{') {
            depth += 1;
            if depth > MAX_EDN_DEPTH {
                return Err(ErrorKind::TooDeep {
                    limit: MAX_EDN_DEPTH,
                });
            }
        } else if matches!(c, ']' | ')' | '}') {
            depth = depth.saturating_sub(1);
        }
    }
    let v = edn_format::parse_str(text).map_err(|e| ErrorKind::BadEdn(e.to_string()))?;
    edn_to_json(&v)
}

/// jepsen.independent histories carry `[key value]` tuples instead of a `:key` field.
/// They are recognised when no event has a key and every client invoke holds a pair
/// (a cas: a pair whose second element is itself a pair), and every client completion
/// holds a pair or no value; the tuples are then split into key and value.
pub(crate) fn unwrap_independent(events: &mut [RawEvent]) {
    let pair = |v: &Value| matches!(v, Value::Array(a) if a.len() == 2);
    let mut invokes = 0usize;
    for d in events.iter() {
        if !matches!(d.process, Process::Client(_)) {
            continue;
        }
        if d.key.is_some() {
            return;
        }
        let fits = match &d.value {
            None => d.kind != EventType::Invoke,
            Some(Value::Array(a)) if a.len() == 2 => d.f != Function::Cas || pair(&a[1]),
            Some(_) => false,
        };
        if !fits {
            return;
        }
        if d.kind == EventType::Invoke {
            invokes += 1;
        }
    }
    if invokes == 0 {
        return;
    }
    let mut keys: rustc_hash::FxHashMap<String, Key> = rustc_hash::FxHashMap::default();
    for d in events.iter_mut() {
        if !matches!(d.process, Process::Client(_)) {
            continue;
        }
        if let Some(Value::Array(a)) = d.value.take() {
            let mut it = a.into_iter();
            let k = it.next().unwrap_or(Value::Null);
            // A nil key is still a key here: the tuple names it.
            let text = k.to_string();
            let key = keys
                .entry(text)
                .or_insert_with(|| Key::from_value(&k).unwrap_or_else(|| Key::Json("null".into())))
                .clone();
            d.key = Some(key);
            d.value = Some(it.next().unwrap_or(Value::Null));
        }
    }
}
