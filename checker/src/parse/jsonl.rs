//! JSON Lines: one event object per line (docs/design.md, "History format").

use super::lines::Lines;
use super::{Draft, MAX_EVENTS};
use crate::error::{ErrorKind, HistoryError};
use serde::{Deserialize, Deserializer};
use serde_json::Value;
use std::borrow::Cow;
use std::io::BufRead;

/// The fields of one line; unknown fields are ignored. Strings are borrowed from the
/// line where possible, because this runs millions of times.
#[derive(Deserialize)]
struct Line<'a> {
    index: Option<Value>,
    time: Option<Value>,
    process: Option<Value>,
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    f: Option<Cow<'a, str>>,
    key: Option<Value>,
    /// `None` only when the field is absent; `Some(Null)` for an explicit null.
    #[serde(default, deserialize_with = "present")]
    value: Option<Value>,
    error: Option<Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Reads every line after `first` (which is already read) into drafts.
pub(crate) fn read<R: BufRead>(
    first: (usize, String),
    lines: &mut Lines<R>,
    name: &str,
) -> Result<Vec<Draft>, HistoryError> {
    let mut drafts = Vec::new();
    let err = |line: usize, kind: ErrorKind| HistoryError::new(name, line, kind);
    drafts.push(draft(&first.1, first.0).map_err(|k| err(first.0, k))?);
    while let Some((no, text)) = lines.next_line()? {
        if text.trim().is_empty() {
            continue;
        }
        if drafts.len() >= MAX_EVENTS {
            return Err(err(no, ErrorKind::TooManyEvents { limit: MAX_EVENTS }));
        }
        drafts.push(draft(text, no).map_err(|k| err(no, k))?);
    }
    Ok(drafts)
}

/// Parses one line into a draft event.
pub(crate) fn draft(text: &str, line: usize) -> Result<Draft, ErrorKind> {
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
    let process = super::process_of(&raw.process.ok_or(ErrorKind::MissingField("process"))?)?;
    let kind = super::event_type(&raw.kind.ok_or(ErrorKind::MissingField("type"))?)?;
    let f = raw.f.ok_or(ErrorKind::MissingField("f"))?.into_owned();
    Ok(Draft {
        line,
        index: match &raw.index {
            Some(v) => super::u64_field(v, "index")?,
            None => None,
        },
        time: match &raw.time {
            Some(v) => super::u64_field(v, "time")?,
            None => None,
        },
        process,
        kind,
        f,
        key: raw.key.and_then(super::key_string),
        value: raw.value,
        error: raw.error.and_then(super::error_text),
    })
}
