//! The run's HTML report and the results index, through `checker::report`.

use checker::history::History;
use checker::report::RunInfo;
use checker::verdict::Verdict;
use std::path::{Path, PathBuf};

/// Writes `report.html` (and plots) into the run folder.
pub fn render(
    run_dir: &Path,
    history: &History,
    verdict: &Verdict,
    info: &RunInfo,
) -> anyhow::Result<PathBuf> {
    let _ = (run_dir, history, verdict, info);
    anyhow::bail!("the HTML report renderer is not part of this build yet")
}

/// Rewrites `results/index.html`; a failure only costs the index, so it is reported
/// and not fatal.
pub fn index(results: &Path) {
    if let Err(e) = super::output::write_index(results) {
        eprintln!("workloads: warning: could not write the results index: {e:#}");
    }
}
