//! The pages' minijinja templates. Their names end in `.html`, so minijinja escapes
//! every value it inserts; only the CSS, the script and `data:` URIs, which the code
//! itself provides, are marked safe.

use super::ReportError;
use minijinja::Environment;

/// Every template, by name: the report and the sections it includes, and the index
/// of runs.
const TEMPLATES: [(&str, &str); 4] = [
    ("report.html", include_str!("assets/report.html")),
    (
        "counterexample.html",
        include_str!("assets/counterexample.html"),
    ),
    ("timeline.html", include_str!("assets/timeline.html")),
    ("index.html", include_str!("assets/index.html")),
];

/// Renders the template `name` with `context`.
pub(crate) fn render(name: &'static str, context: minijinja::Value) -> Result<String, ReportError> {
    let failed = |source| ReportError::Template { what: name, source };
    let mut env = Environment::new();
    for (n, source) in TEMPLATES {
        env.add_template(n, source).map_err(failed)?;
    }
    env.get_template(name)
        .and_then(|t| t.render(context))
        .map_err(failed)
}
