//! JSON Lines: one event object per line (the native format; docs/design.md, "History format"). Each line is read once by
//! serde_json, with every field borrowed from the line as raw text; each field is then
//! read on its own, exactly (see [`super::value`]).

use super::Interner;
use super::value::json_value;
use crate::build::RawEvent;
use crate::error::ErrorKind;
use crate::history::Process;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The fields of one line; unknown fields are skipped.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default, borrow)]
    index: Scalar<'a>,
    #[serde(default, borrow)]
    time: Scalar<'a>,
    #[serde(default, borrow)]
    process: Scalar<'a>,
    #[serde(rename = "type", default, borrow)]
    kind: Scalar<'a>,
    #[serde(default, borrow)]
    f: Scalar<'a>,
    #[serde(borrow)]
    key: Option<&'a RawValue>,
    /// `None` only when the field is absent; `Some("null")` for an explicit null.
    #[serde(default, borrow, deserialize_with = "present")]
    value: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// A number or name field, read in one pass: what was there, kept to say what is
/// wrong with it.
#[derive(Default)]
enum Scalar<'a> {
    #[default]
    Absent,
    Null,
    U64(u64),
    Name(Cow<'a, str>),
    /// Anything else, as shown in messages.
    Other(String),
}

impl<'de: 'a, 'a> Deserialize<'de> for Scalar<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor(std::marker::PhantomData))
    }
}

struct ScalarVisitor<'a>(std::marker::PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for ScalarVisitor<'a> {
    type Value = Scalar<'a>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number or a name")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Other(v.to_string()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Other(v.to_string()))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Other(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Null)
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Name(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Scalar<'a>, E> {
        Ok(Scalar::Name(Cow::Owned(v.to_string())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'a>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("a list".into()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'a>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other("an object".into()))
    }
}

/// Parses one (non-blank) line into an event.
pub(crate) fn event(
    bytes: &[u8],
    line: usize,
    interner: &mut Interner,
) -> Result<RawEvent, ErrorKind> {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(0);
    if bytes.get(start) != Some(&b'{') {
        let text = String::from_utf8_lossy(&bytes[start..]);
        return Err(ErrorKind::NotAMap(text.trim().chars().take(20).collect()));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| ErrorKind::NotUtf8)?;
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
    let process = match raw.process {
        Scalar::Absent => return Err(ErrorKind::MissingField("process")),
        Scalar::U64(n) => Process::Client(n),
        Scalar::Name(name) => Process::Other(name.into_owned()),
        Scalar::Null => return Err(bad("process", "expected an integer or a name, found null")),
        Scalar::Other(text) => {
            return Err(bad(
                "process",
                &format!("{text} is not a non-negative integer"),
            ));
        }
    };
    let kind = super::event_type(&name(raw.kind, "type")?)?;
    let f = name(raw.f, "f")?;
    Ok(RawEvent {
        line,
        index: u64_field(raw.index, "index")?,
        time: u64_field(raw.time, "time")?,
        process,
        kind,
        f: interner.function(&f),
        key: match raw.key {
            None => None,
            Some(k) => interner.key(k.get())?,
        },
        value: raw.value.map(|v| json_value(v.get())).transpose()?,
        error: match raw.error {
            None => None,
            Some(e) => interner.error(e.get())?,
        },
    })
}

/// A non-negative integer field (`time`, `index`); null is absent.
fn u64_field(v: Scalar, field: &'static str) -> Result<Option<u64>, ErrorKind> {
    match v {
        Scalar::Absent | Scalar::Null => Ok(None),
        Scalar::U64(n) => Ok(Some(n)),
        Scalar::Name(name) => Err(bad(
            field,
            &format!("expected a non-negative integer, found {name:?}"),
        )),
        Scalar::Other(text) => Err(bad(field, &format!("{text} is not a non-negative integer"))),
    }
}

/// A name field (`type`, `f`): a string, borrowed from the line when it can be.
fn name<'a>(v: Scalar<'a>, field: &'static str) -> Result<Cow<'a, str>, ErrorKind> {
    match v {
        Scalar::Name(n) => Ok(n),
        Scalar::Absent => Err(ErrorKind::MissingField(field)),
        Scalar::Null => Err(bad(field, "expected a name, found null")),
        Scalar::U64(n) => Err(bad(field, &format!("expected a name, found {n}"))),
        Scalar::Other(text) => Err(bad(field, &format!("expected a name, found {text}"))),
    }
}

fn bad(field: &'static str, reason: &str) -> ErrorKind {
    ErrorKind::BadField {
        field,
        reason: reason.to_string(),
    }
}
