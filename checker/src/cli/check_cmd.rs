//! `checker check`: parse, check, print (text or JSON), and the exit status.

use super::summary::{Counts, text_summary};
use super::{CheckArgs, EXIT_BAD_INPUT, EXIT_LINEARIZABLE, EXIT_NOT_LINEARIZABLE, EXIT_UNKNOWN};
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
}

pub(super) fn run(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let mut options = args.model.options()?;
    options.all_keys = args.report.is_some();
    let start = std::time::Instant::now();
    let history = match checker::parse::parse_file(&args.history) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("checker: {e}");
            return Ok(ExitCode::from(EXIT_BAD_INPUT));
        }
    };
    let parse_s = start.elapsed().as_secs_f64();
    let verdict = checker::check::check(&history, &options);
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
    let counts = Counts::of(&history, &verdict);
    if args.json {
        let out = JsonOutput {
            history: args.history.display().to_string(),
            parse_s,
            verdict: &verdict,
            counts,
        };
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print!(
            "{}",
            text_summary(
                &args.history.display().to_string(),
                parse_s,
                &history,
                &verdict,
                &counts
            )
        );
    }
    Ok(ExitCode::from(exit_status(verdict.valid)))
}

pub(super) fn exit_status(valid: Validity) -> u8 {
    match valid {
        Validity::Linearizable => EXIT_LINEARIZABLE,
        Validity::NotLinearizable => EXIT_NOT_LINEARIZABLE,
        Validity::Unknown => EXIT_UNKNOWN,
    }
}
