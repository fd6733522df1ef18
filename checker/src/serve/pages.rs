//! `GET /`: the recent checks as one small HTML page, newest first. It refreshes
//! itself while a check is queued or running.

use super::store::{Record, State};
use checker::report::escape_html as escape;
use checker::verdict::Validity;
use std::fmt::Write;

fn verdict_cell(r: &Record) -> (&'static str, String) {
    match (r.state, r.valid) {
        (State::Done, Some(Validity::Linearizable)) => ("ok", "linearizable".into()),
        (State::Done, Some(Validity::NotLinearizable)) => ("bad", "NOT linearizable".into()),
        (State::Done, _) => ("unknown", "unknown".into()),
        (State::Error, _) => (
            "bad",
            format!("error: {}", r.error.as_deref().unwrap_or("")),
        ),
        (s, _) => ("", s.name().to_string()),
    }
}

/// The page; `records` are the newest of `total` checks, newest first.
pub fn index(records: &[Record], total: usize) -> String {
    let pending = records.iter().any(|r| !r.state.finished());
    let mut s = String::new();
    s.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
    if pending {
        s.push_str("<meta http-equiv=\"refresh\" content=\"3\">\n");
    }
    s.push_str(
        "<title>checker: recent checks</title>\n<style>\
         body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}\
         td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}\
         .ok{background:#d9f2d9}.bad{background:#f7d4d4}.unknown{background:#f7eec8}\
         code{font-size:90%}</style></head><body>\n<h1>Recent checks</h1>\n\
         <p>Submit with <code>curl --data-binary @history.edn \
         'http://HOST/v1/checks?model=cas-register'</code>; \
         <a href=\"/metrics\">metrics</a>.</p>\n",
    );
    if records.is_empty() {
        s.push_str("<p>No checks yet.</p>\n</body></html>\n");
        return s;
    }
    let _ = writeln!(s, "<p>The newest {} of {total} checks.</p>", records.len());
    s.push_str(
        "<table>\n<tr><th>id</th><th>created</th><th>model</th><th>state</th>\
         <th>verdict</th><th>ops</th><th>check s</th><th>report</th></tr>\n",
    );
    for r in records {
        let id = escape(&r.id);
        let (class, verdict) = verdict_cell(r);
        let report = if r.state == State::Done && r.report_error.is_none() {
            format!("<a href=\"/v1/checks/{id}/report\">report</a>")
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "<tr><td><a href=\"/v1/checks/{id}\"><code>{id}</code></a></td><td>{}</td>\
             <td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td>\
             <td>{report}</td></tr>",
            escape(&r.created),
            escape(&r.params.model),
            r.state.name(),
            escape(&verdict),
            r.ops.map_or(String::new(), |n| n.to_string()),
            r.check_s.map_or(String::new(), |x| format!("{x:.3}")),
        );
    }
    s.push_str("</table>\n</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
