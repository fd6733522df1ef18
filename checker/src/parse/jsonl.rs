//! JSON Lines: one event object per line (the native format). Each line is read once by
//! serde_json, with every field borrowed from the line as raw text; each field is then
//! read on its own, exactly (see [`super::value`]).

use super::Interner;
use super::value::json_value;
use crate::build::RawEvent;
use crate::error::ErrorKind;
use crate::history::Process;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The fields of one line; unknown fields are skipped.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(borrow)]
    index: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    process: Option<&'a RawValue>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    f: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    /// `None` only when the field is absent; `Some("null")` for an explicit null.
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses one (non-blank) line into an event.
pub(crate) fn event(
    text: &str,
    line: usize,
    interner: &mut Interner,
) -> Result<RawEvent, ErrorKind> {
    if !text.trim_start().starts_with('{') {
        return Err(ErrorKind::NotAMap(text.trim().chars().take(20).collect()));
    }
    let raw: Line<'_> = serde_json::from_str(text).map_err(|e| {
        let msg = e.to_string();
        // serde_json counts lines within this one line; the column is what helps.
        let msg = match msg.rfind(" at line ") {
            Some(pos) => format!("{} (column {})", &msg[..pos], e.column()),
            None => msg,
        };
        if e.is_data() {
            ErrorKind::BadField {
                field: "event",
                reason: msg,
            }
        } else {
            ErrorKind::BadJson(msg)
        }
    })?;
    let process = process(raw.process.ok_or(ErrorKind::MissingField("process"))?)?;
    let kind = super::event_type(&raw.kind.ok_or(ErrorKind::MissingField("type"))?)?;
    let f = raw.f.ok_or(ErrorKind::MissingField("f"))?;
    Ok(RawEvent {
        line,
        index: raw
            .index
            .map(|v| u64_field(v, "index"))
            .transpose()?
            .flatten(),
        time: raw
            .time
            .map(|v| u64_field(v, "time"))
            .transpose()?
            .flatten(),
        process,
        kind,
        f: interner.function(&f),
        key: match raw.key {
            None => None,
            Some(k) => interner.key(k.get())?,
        },
        value: raw.value.map(|v| json_value(v.get())).transpose()?,
    })
}

/// A non-negative integer field (`time`, `index`); null is absent.
fn u64_field(raw: &RawValue, field: &'static str) -> Result<Option<u64>, ErrorKind> {
    let t = raw.get().trim();
    if t == "null" {
        return Ok(None);
    }
    if t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = t.parse::<u64>()
    {
        return Ok(Some(n));
    }
    let reason = match json_value(t)? {
        serde_json::Value::Number(n) => format!("{n} is not a non-negative integer"),
        other => format!("expected a non-negative integer, found {other}"),
    };
    Err(ErrorKind::BadField { field, reason })
}

/// A process: a non-negative integer is a client; a name is anything else.
fn process(raw: &RawValue) -> Result<Process, ErrorKind> {
    let t = raw.get().trim();
    if !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = t.parse::<u64>()
    {
        return Ok(Process::Client(n));
    }
    super::process_of(&json_value(t)?)
}
