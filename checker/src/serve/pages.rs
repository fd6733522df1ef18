//! `GET /`: the recent checks as one small HTML page, newest first. It refreshes
//! itself while a check is queued or running.

use super::store::{Record, State};
use checker::verdict::Validity;
use minijinja::{Environment, context, value::Serde};
use serde::Serialize;

/// The page's template; its `.html` name makes minijinja escape every value.
const TEMPLATE: &str = include_str!("index.html");

/// One check's row.
#[derive(Serialize)]
struct Row<'a> {
    id: &'a str,
    created: &'a str,
    model: &'a str,
    state: &'static str,
    /// `ok`, `bad`, `unknown` or nothing: the verdict cell's colour.
    class: &'static str,
    verdict: String,
    ops: String,
    check_s: String,
    report: bool,
}

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
pub fn index(records: &[Record], total: usize) -> Result<String, minijinja::Error> {
    let rows: Vec<Row> = records
        .iter()
        .map(|r| {
            let (class, verdict) = verdict_cell(r);
            Row {
                id: &r.id,
                created: &r.created,
                model: &r.params.model,
                state: r.state.name(),
                class,
                verdict,
                ops: r.ops.map_or(String::new(), |n| n.to_string()),
                check_s: r.check_s.map_or(String::new(), |x| format!("{x:.3}")),
                report: r.state == State::Done && r.report_error.is_none(),
            }
        })
        .collect();
    let env = Environment::new();
    env.template_from_named_str("index.html", TEMPLATE)?
        .render(context! {
            pending => records.iter().any(|r| !r.state.finished()),
            rows => Serde(&rows),
            total => total,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serve::params::Params;

    #[test]
    fn fields_are_escaped_and_pending_checks_refresh_the_page() {
        let record = |id: &str, state| Record {
            state,
            error: Some("bad <line> & 'more'".into()),
            ..Record::queued(
                id.into(),
                Params::from_query(None, 60.0).unwrap(),
                "t".into(),
                0,
            )
        };
        let page = index(&[record("a<b>", State::Error)], 1).unwrap();
        assert!(page.contains("<code>a&lt;b&gt;</code>"), "{page}");
        assert!(
            page.contains("error: bad &lt;line&gt; &amp; &#x27;more&#x27;"),
            "{page}"
        );
        assert!(!page.contains("refresh"));
        let page = index(&[record("q", State::Queued)], 1).unwrap();
        assert!(page.contains("<meta http-equiv=\"refresh\" content=\"3\">"));
        assert!(index(&[], 0).unwrap().contains("No checks yet."));
    }
}
