//! Text the pages show: values and operations described in a few words, keys named,
//! long text cut, and relative links percent-encoded. Escaping for HTML is the
//! templates' (minijinja escapes every value of a `.html` template).

use crate::history::{Function, Key, Operation, Outcome};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// Characters of a value shown in an operation's description before it is cut.
const VALUE_CHARS: usize = 48;

/// Cuts text to `max` characters, marking the cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// A JSON value as short text.
pub(crate) fn short_json(v: &Value, max: usize) -> String {
    truncate(&v.to_string(), max)
}

/// "write 4", "read → 4", "cas 4→7 (fail)", "append \"x\"", "incr 2 → 5".
pub(crate) fn describe(op: &Operation) -> String {
    let v = |x: &Value| short_json(x, VALUE_CHARS);
    let ok = op.outcome == Outcome::Ok;
    let base = match &op.f {
        Function::Read | Function::Dequeue if ok => format!("{} → {}", op.f, v(&op.output)),
        Function::Cas => match op.input.as_array().map(Vec::as_slice) {
            Some([a, b]) => format!("cas {}→{}", v(a), v(b)),
            _ => format!("cas {}", v(&op.input)),
        },
        Function::Other(_) if ok && !op.output.is_null() && op.output != op.input => {
            format!("{} {} → {}", op.f, v(&op.input), v(&op.output))
        }
        f if op.input.is_null() => f.to_string(),
        f => format!("{f} {}", v(&op.input)),
    };
    match op.outcome {
        Outcome::Ok => base,
        o => format!("{base} ({})", o.name()),
    }
}

/// A key as reports name it: a string key quoted, any other as JSON, so `"1"` and `1`
/// stay apart.
pub(crate) fn key_name(key: &Option<Key>) -> String {
    key.as_ref()
        .map_or_else(|| "(register)".to_string(), |k| format!("{k:?}"))
}

/// Bytes escaped in a relative link: all but RFC 3986's unreserved ones and `/`.
const LINK: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'/');

/// Percent-encodes a relative link (keeps `/`).
pub(crate) fn url_path(s: &str) -> String {
    utf8_percent_encode(s, LINK).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_and_links() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(url_path("2026 run/ü&x.html"), "2026%20run/%C3%BC%26x.html");
    }
}
