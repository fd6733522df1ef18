//! `checker check`: parse, check, print (text or JSON), and the exit status.

use super::summary::{Counts, text_summary};
use super::{CheckArgs, EXIT_BAD_INPUT, EXIT_LINEARIZABLE, EXIT_NOT_LINEARIZABLE, EXIT_UNKNOWN};
use checker::history::History;
use checker::verdict::{Validity, Verdict};
use serde::Serialize;
use std::process::ExitCode;

/// What `--json` prints: the verdict's own fields, plus the file and counts. `serve`
/// stores the same object as a check's `verdict.json`, so both speak one format.
#[derive(Serialize)]
pub(crate) struct JsonOutput<'a> {
    pub history: String,
    /// Seconds spent reading and validating the history.
    pub parse_s: f64,
    #[serde(flatten)]
    pub verdict: &'a Verdict,
    pub counts: Counts,
    /// Oddities in the history that did not stop the check ("line 4: ...").
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl<'a> JsonOutput<'a> {
    pub fn new(
        history_name: String,
        parse_s: f64,
        history: &History,
        verdict: &'a Verdict,
    ) -> Self {
        JsonOutput {
            history: history_name,
            parse_s,
            verdict,
            counts: Counts::of(history, verdict),
            warnings: history.warnings.iter().map(|w| w.to_string()).collect(),
        }
    }
}

pub(super) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut options = args.model.options()?;
    options.all_keys = args.report.is_some();
    let file = args.history.display().to_string();
    let start = std::time::Instant::now();
    let history = match checker::parse::parse_file(&args.history) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("checker: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let parse_s = start.elapsed().as_secs_f64();
    for w in &history.warnings {
        eprintln!("checker: {file}:{}: warning: {}", w.line, w.message);
    }
    let verdict = match checker::check::check(&history, &options) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("checker: {}", e.in_file(&file));
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    if let Some(dir) = &args.report {
        let run = checker::report::RunInfo {
            name: args
                .history
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            command: std::env::args().collect::<Vec<_>>().join(" "),
            ..Default::default()
        };
        let path = checker::report::write_report(dir, &history, &verdict, Some(&run))?;
        eprintln!("report: {}", path.display());
    }
    if args.json {
        let out = JsonOutput::new(file, parse_s, &history, &verdict);
        super::out::println(&serde_json::to_string_pretty(&out)?)?;
    } else {
        let counts = Counts::of(&history, &verdict);
        super::out::print(&text_summary(&file, parse_s, &history, &verdict, &counts))?;
    }
    let status = exit_status(verdict.valid);
    // The process ends here: freeing millions of operations one by one would only
    // cost time.
    std::mem::forget(history);
    Ok(ExitCode::from(status))
}

pub(crate) fn exit_status(valid: Validity) -> u8 {
    match valid {
        Validity::Linearizable => EXIT_LINEARIZABLE,
        Validity::NotLinearizable => EXIT_NOT_LINEARIZABLE,
        Validity::Unknown => EXIT_UNKNOWN,
    }
}
