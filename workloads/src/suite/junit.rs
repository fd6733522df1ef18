//! The suite's result as JUnit XML (through `quick-junit`), the format CI systems
//! read: one test case per scenario, with its time; a failing case names its
//! scenario, what it expected and got, and the commands that replay it.

use super::{Expect, Outcome};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Bytes of a scenario's output put into its `<system-out>` (its start and its end).
const SYSTEM_OUT_BYTES: usize = 64 << 10;

/// The JUnit document for a finished suite.
pub fn report(suite: &str, outcomes: &[Outcome], total: Duration) -> Report {
    let mut ts = TestSuite::new(format!("workloads suite {suite}"));
    for o in outcomes {
        let status = if let Some(why) = &o.step.skip {
            let mut st = TestCaseStatus::skipped();
            st.set_message(format!("skipped: {why}"));
            st
        } else if o.passed {
            TestCaseStatus::success()
        } else {
            // A scenario that could not run (setup error, killed) is an error; one that
            // ran and did not meet its expectation (unknown included) is a failure.
            let kind = if o.codes().iter().all(|c| *c == 3 || *c < 0) {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut st = TestCaseStatus::non_success(kind);
            st.set_type("linearizability gate");
            st.set_message(o.failure_message());
            st.set_description(o.failure_details());
            st
        };
        let mut tc = TestCase::new(o.step.name.clone(), status);
        tc.set_classname(format!("suite.{suite}.{}", o.step.kind.word()));
        tc.set_time(o.time);
        tc.set_system_out(tail(&o.output(), SYSTEM_OUT_BYTES));
        ts.add_test_case(tc);
    }
    ts.set_time(total);
    let mut report = Report::new(format!("workloads suite {suite}"));
    report.set_time(total);
    report.add_test_suite(ts);
    report
}

impl Outcome {
    /// One line: the scenario, what it expected and what it got.
    pub fn failure_message(&self) -> String {
        let expected = match self.step.expect {
            Expect::Clean => "a clean run (exit 0)",
            Expect::Caught => "the mutant caught (exit 1)",
        };
        format!(
            "{}: expected {expected}, got exit {}",
            self.step.name,
            self.codes()
                .iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    /// The message, the replay commands and where the scenario's files are.
    pub fn failure_details(&self) -> String {
        let mut s = self.failure_message();
        s.push_str("\nreplay:\n");
        for r in self.replays() {
            s.push_str("  ");
            s.push_str(&r);
            s.push('\n');
        }
        for a in &self.attempts {
            if let Some(dir) = &a.folder {
                s.push_str(&format!("files: {}\n", dir.display()));
            }
        }
        s
    }
}

/// At most about `max` bytes of `text`: its first quarter and its end, in whole lines.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut head_end = max / 4;
    while !text.is_char_boundary(head_end) {
        head_end -= 1;
    }
    let mut start = text.len() - (max - max / 4);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    // Whole lines on both sides of the cut.
    head_end = text[..head_end].rfind('\n').map_or(head_end, |i| i + 1);
    start = text[start..].find('\n').map_or(start, |i| start + i + 1);
    format!(
        "{}[... {} bytes of output dropped ...]\n{}",
        &text[..head_end],
        start - head_end,
        &text[start..]
    )
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn system_out_keeps_the_start_and_the_end_in_whole_lines() {
        let text: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        let cut = tail(&text, 400);
        assert!(cut.starts_with("line 0\n"));
        assert!(cut.ends_with("line 999\n"));
        assert!(cut.len() < 500, "{}", cut.len());
        let dropped = cut.lines().find(|l| l.starts_with("[...")).expect("marker");
        assert!(
            dropped.ends_with("bytes of output dropped ...]"),
            "{dropped}"
        );
        assert_eq!(tail("short\n", 400), "short\n");
    }
}
