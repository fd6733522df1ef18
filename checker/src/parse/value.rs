//! JSON values read exactly: an integer that does not fit in 64 bits is refused rather
//! than rounded to a float (2^64 and 2^64+1 would otherwise compare equal), and the
//! common small values are read without a second full parse.

use crate::error::ErrorKind;
use serde_json::Value;

/// Reads one JSON value (already known to be well-formed JSON, or not: errors say so).
pub(crate) fn json_value(text: &str) -> Result<Value, ErrorKind> {
    let t = trim(text);
    match t.as_bytes().first() {
        Some(b'n') if t == "null" => return Ok(Value::Null),
        Some(b't') if t == "true" => return Ok(Value::Bool(true)),
        Some(b'f') if t == "false" => return Ok(Value::Bool(false)),
        Some(b'"') if t.len() >= 2 && !t.contains('\\') && t.ends_with('"') => {
            return Ok(Value::String(t[1..t.len() - 1].to_string()));
        }
        Some(b'0'..=b'9' | b'-') if is_integer(t) => return integer(t).map(Value::Number),
        Some(b'[') => {
            if let Some(v) = flat_array(t) {
                return v;
            }
        }
        _ => {}
    }
    check_integers(t)?;
    serde_json::from_str(t).map_err(|e| ErrorKind::BadJson(e.to_string()))
}

/// A list of nulls, booleans and integers (a cas pair), read without a full parse;
/// `None` for anything else.
fn flat_array(t: &str) -> Option<Result<Value, ErrorKind>> {
    let inner = t.strip_prefix('[')?.strip_suffix(']')?;
    if inner.bytes().any(|b| matches!(b, b'[' | b'{' | b'"')) {
        return None;
    }
    if trim(inner).is_empty() {
        return Some(Ok(Value::Array(Vec::new())));
    }
    let mut out = Vec::with_capacity(2);
    for item in inner.split(',') {
        let item = trim(item);
        out.push(match item {
            "null" => Value::Null,
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ if is_integer(item) => match integer(item) {
                Ok(n) => Value::Number(n),
                Err(e) => return Some(Err(e)),
            },
            _ => return None,
        });
    }
    Some(Ok(Value::Array(out)))
}

/// Without JSON's whitespace (space, tab, newline, carriage return) around.
fn trim(t: &str) -> &str {
    t.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
}

/// A JSON integer token: `-`? then `0` or digits not starting with `0`.
fn is_integer(t: &str) -> bool {
    let digits = t.strip_prefix('-').unwrap_or(t);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
}

/// An integer token as a JSON number, or the 64-bit refusal.
fn integer(t: &str) -> Result<serde_json::Number, ErrorKind> {
    if let Ok(u) = t.parse::<u64>() {
        return Ok(u.into());
    }
    if let Ok(i) = t.parse::<i64>() {
        return Ok(i.into());
    }
    Err(ErrorKind::BigInteger(t.to_string()))
}

/// Refuses any integer token (outside strings) beyond 64 bits.
pub(crate) fn check_integers(text: &str) -> Result<(), ErrorKind> {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let float = i < b.len() && matches!(b[i], b'.' | b'e' | b'E');
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                // Only a well-formed integer can be too big; anything else is left
                // to the JSON reader's own error.
                if !float && is_integer(&text[start..i]) {
                    integer(&text[start..i])?;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_read_exactly() {
        assert_eq!(json_value("null").unwrap(), Value::Null);
        assert_eq!(json_value(" 42 ").unwrap(), json!(42));
        assert_eq!(json_value("-7").unwrap(), json!(-7));
        assert_eq!(json_value("18446744073709551615").unwrap(), json!(u64::MAX));
        assert_eq!(json_value("-9223372036854775808").unwrap(), json!(i64::MIN));
        assert_eq!(json_value("\"a b\"").unwrap(), json!("a b"));
        assert_eq!(json_value("\"a\\\"b\"").unwrap(), json!("a\"b"));
        assert_eq!(
            json_value("[1,\"99999999999999999999\",2.5e3]").unwrap(),
            json!([1, "99999999999999999999", 2500.0])
        );
        for big in [
            "18446744073709551616",
            "-9223372036854775809",
            "[1,18446744073709551616]",
            "{\"a\":[99999999999999999999]}",
        ] {
            assert!(
                matches!(json_value(big), Err(ErrorKind::BigInteger(_))),
                "{big}"
            );
        }
        assert!(matches!(json_value("[1,"), Err(ErrorKind::BadJson(_))));
        assert_eq!(json_value("[null, 168]").unwrap(), json!([null, 168]));
        assert_eq!(json_value("[ ]").unwrap(), json!([]));
        assert_eq!(json_value("-0").unwrap(), json!(0));
        for bad in ["[0,01]", "01", "[1,\u{a0}2]", "-"] {
            assert!(
                matches!(json_value(bad), Err(ErrorKind::BadJson(_))),
                "{bad}"
            );
        }
        assert_eq!(json_value("[true,-3,1.5]").unwrap(), json!([true, -3, 1.5]));
        assert!(matches!(json_value("[1,,2]"), Err(ErrorKind::BadJson(_))));
        assert!(matches!(json_value("[1,2,]"), Err(ErrorKind::BadJson(_))));
    }
}
