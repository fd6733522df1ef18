//! The query of `POST /v1/checks`: the same options `checker check` takes, checked
//! before the body is read, so a typo costs the client a 400 and not an upload.

use checker::check::{CheckOptions, ModelKind};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The longest query string accepted (bytes); `initial` is the only free-form field.
const MAX_QUERY_BYTES: usize = 64 << 10;

/// The options of one check, as given (and as stored in `check.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// A built-in model's name (`register`, `kv`, `fifo-queue`, ...).
    pub model: String,
    /// The literal as given (JSON or EDN); validated at submission.
    pub initial: Option<String>,
    pub knossos: bool,
    /// Seconds; the service's cap when the request gave none or more.
    pub time_limit_s: f64,
    /// A history without client operations is linearizable rather than an error.
    #[serde(default)]
    pub allow_empty: bool,
}

fn model_kind(name: &str) -> Option<ModelKind> {
    ModelKind::from_name(name)
}

fn flag(name: &str, v: &str) -> Result<bool, String> {
    match v {
        "true" | "1" | "" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(format!("{name} must be true or false, not {v:?}")),
    }
}

impl Params {
    /// Reads a query string. `max_time_limit_s` caps (and defaults) `time_limit`, so
    /// every check the service runs has a time budget.
    pub fn from_query(query: Option<&str>, max_time_limit_s: f64) -> Result<Params, String> {
        let mut p = Params {
            model: "kv".to_string(),
            initial: None,
            knossos: false,
            time_limit_s: max_time_limit_s,
            allow_empty: false,
        };
        let query = query.unwrap_or("");
        if query.len() > MAX_QUERY_BYTES {
            return Err(format!("query longer than {MAX_QUERY_BYTES} bytes"));
        }
        let mut seen: Vec<String> = Vec::new();
        for pair in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = percent_decode(k)?;
            let v = percent_decode(v)?;
            if seen.contains(&k) {
                return Err(format!("parameter {k:?} given twice"));
            }
            match k.as_str() {
                "model" => {
                    if model_kind(&v).is_none() {
                        return Err(format!(
                            "model must be one of {}, not {v:?}",
                            ModelKind::names()
                        ));
                    }
                    p.model = v;
                }
                "initial" => {
                    checker::parse::value_literal(&v).map_err(|e| format!("initial {v:?}: {e}"))?;
                    p.initial = Some(v);
                }
                "knossos" => p.knossos = flag("knossos", &v)?,
                "allow_empty" => p.allow_empty = flag("allow_empty", &v)?,
                "time_limit" => {
                    let s: f64 = v.parse().map_err(|_| {
                        format!("time_limit must be a number of seconds, not {v:?}")
                    })?;
                    if !(s.is_finite() && s > 0.0) {
                        return Err(format!(
                            "time_limit must be a positive number of seconds, not {v}"
                        ));
                    }
                    p.time_limit_s = s.min(max_time_limit_s);
                }
                other => {
                    return Err(format!(
                        "unknown parameter {other:?} (known: model, initial, knossos, time_limit, allow_empty)"
                    ));
                }
            }
            seen.push(k);
        }
        Ok(p)
    }

    /// The query that asks for these options (for the report's "command").
    pub fn query(&self) -> String {
        let mut q = format!("model={}", self.model);
        if let Some(i) = &self.initial {
            q.push_str(&format!("&initial={}", percent_encode(i)));
        }
        if self.knossos {
            q.push_str("&knossos=true");
        }
        if self.allow_empty {
            q.push_str("&allow_empty=true");
        }
        q.push_str(&format!("&time_limit={}", self.time_limit_s));
        q
    }

    /// The options of the check; every key is decided, because each check gets a report.
    pub fn options(&self, threads: usize) -> Result<CheckOptions, String> {
        let model = model_kind(&self.model).ok_or_else(|| format!("model {:?}", self.model))?;
        let initial = match &self.initial {
            None => None,
            Some(text) => {
                Some(checker::parse::value_literal(text).map_err(|e| format!("initial: {e}"))?)
            }
        };
        let time_limit = Duration::try_from_secs_f64(self.time_limit_s)
            .map_err(|e| format!("time_limit {}: {e}", self.time_limit_s))?;
        Ok(CheckOptions {
            model,
            initial,
            knossos: self.knossos,
            time_limit: Some(time_limit),
            all_keys: true,
            threads,
            allow_empty: self.allow_empty,
            ..CheckOptions::default()
        })
    }
}

/// Escapes every byte but unreserved ones (RFC 3986) as `%XX`.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes and `+` (a space, as HTML forms send it) into UTF-8 text.
pub fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {s:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_values() {
        let p = Params::from_query(None, 600.0).unwrap();
        assert_eq!(p.model, "kv");
        assert_eq!(p.time_limit_s, 600.0);
        let p = Params::from_query(
            Some("model=cas-register&initial=%22%22&knossos=true&time_limit=2.5"),
            600.0,
        )
        .unwrap();
        assert_eq!(p.model, "cas-register");
        assert_eq!(p.initial.as_deref(), Some("\"\""));
        assert!(p.knossos);
        assert_eq!(p.time_limit_s, 2.5);
        let o = p.options(1).unwrap();
        assert_eq!(o.initial, Some(serde_json::json!("")));
        assert!(o.all_keys);
        // The cap wins over a longer request.
        let p = Params::from_query(Some("time_limit=9999"), 60.0).unwrap();
        assert_eq!(p.time_limit_s, 60.0);
    }

    #[test]
    fn bad_queries_say_why() {
        for (q, needle) in [
            ("model=btree", "model must be"),
            ("allow_empty=perhaps", "allow_empty"),
            ("time_limit=0", "positive"),
            ("time_limit=NaN", "positive"),
            ("time_limit=soon", "number of seconds"),
            ("initial=%5B1", "initial"),
            ("knossos=maybe", "knossos"),
            ("colour=red", "unknown parameter"),
            ("model=kv&model=kv", "twice"),
            ("model=%zz", "percent"),
            ("model=%ff", "UTF-8"),
        ] {
            let e = Params::from_query(Some(q), 600.0).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
    }

    proptest::proptest! {
        /// Any query gets an answer (options or a message), never a panic.
        #[test]
        fn any_query_is_answered(q in "(model|initial|knossos|time_limit|%|[=&+]|\\PC){0,40}") {
            if let Ok(p) = Params::from_query(Some(&q), 60.0) {
                proptest::prop_assert!(p.time_limit_s > 0.0 && p.time_limit_s <= 60.0);
                proptest::prop_assert!(p.options(0).is_ok());
            }
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c").unwrap(), "a b c");
        assert_eq!(percent_decode("%E2%9C%93").unwrap(), "\u{2713}");
        assert!(percent_decode("%2").is_err());
        let text = "[1 \"a+b\" :c] & ✓";
        assert_eq!(percent_decode(&percent_encode(text)).unwrap(), text);
        let p =
            Params::from_query(Some("initial=%5B1%202%5D&knossos=1&model=register"), 9.0).unwrap();
        assert_eq!(Params::from_query(Some(&p.query()), 9.0).unwrap(), p);
    }
}
