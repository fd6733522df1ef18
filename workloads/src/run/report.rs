//! The run's HTML report and the results index, through `checker::report`.

use checker::history::History;
use checker::report::RunInfo;
use checker::verdict::Verdict;
use std::path::{Path, PathBuf};

/// Writes `report.html` and the plots into the run folder.
pub fn render(
    run_dir: &Path,
    history: &History,
    verdict: &Verdict,
    info: &RunInfo,
) -> anyhow::Result<PathBuf> {
    Ok(checker::report::write_report(
        run_dir,
        history,
        verdict,
        Some(info),
    )?)
}

/// Rewrites `results/index.html`; a failure only costs the index, so it is reported
/// and not fatal.
pub fn index(results: &Path) {
    if let Err(e) = checker::report::write_index(results) {
        eprintln!("workloads: warning: could not write the results index: {e}");
    }
}
