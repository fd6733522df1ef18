//! The query of `POST /v1/checks`: the same options `checker check` takes, checked
//! before the body is read, so a typo costs the client a 400 and not an upload.

use checker::check::{CheckOptions, ModelKind};
use percent_encoding::percent_decode_str;
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
        check_escapes(query)?;
        let mut seen: Vec<String> = Vec::new();
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let (k, v) = (k.into_owned(), v.into_owned());
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
        encode_query(
            &self.model,
            self.initial.as_deref(),
            self.knossos,
            Some(self.time_limit_s),
            self.allow_empty,
        )
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

/// The query of a submission with these options, as [`Params::from_query`] reads it
/// (`checker submit` sends it; without a time limit the service applies its cap).
pub fn encode_query(
    model: &str,
    initial: Option<&str>,
    knossos: bool,
    time_limit_s: Option<f64>,
    allow_empty: bool,
) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("model", model);
    if let Some(i) = initial {
        q.append_pair("initial", i);
    }
    if knossos {
        q.append_pair("knossos", "true");
    }
    if allow_empty {
        q.append_pair("allow_empty", "true");
    }
    if let Some(t) = time_limit_s {
        q.append_pair("time_limit", &t.to_string());
    }
    q.finish()
}

/// Refuses a malformed escape (`%` without two hex digits after it) and escapes that
/// do not decode to UTF-8, which `form_urlencoded` would let through (as they are, or
/// as U+FFFD): the service checks exactly what the client asked for, or says why not.
fn check_escapes(query: &str) -> Result<(), String> {
    let well_formed = query.split('%').skip(1).all(|rest| {
        rest.as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return Err(format!("bad percent escape in {query:?}"));
    }
    match percent_decode_str(query).decode_utf8() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{query:?} does not decode to UTF-8")),
    }
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
    fn queries_round_trip() {
        let p =
            Params::from_query(Some("initial=%5B1+2%5D&knossos=1&model=register"), 9.0).unwrap();
        assert_eq!(p.initial.as_deref(), Some("[1 2]"));
        assert_eq!(Params::from_query(Some(&p.query()), 9.0).unwrap(), p);
        let text = "[1 \"a+b\" :c] & ✓ %41";
        let q = encode_query("kv", Some(text), false, None, true);
        let p = Params::from_query(Some(&q), 9.0).unwrap();
        assert_eq!((p.initial.as_deref(), p.allow_empty), (Some(text), true));
        for bad in ["model=%2", "model=kv%", "model=%E2%9C"] {
            assert!(Params::from_query(Some(bad), 9.0).is_err(), "{bad}");
        }
    }
}
