//! The suite's result as JUnit XML (through `quick-junit`), the format CI systems
//! read: one test case per scenario, with its time; a failing case names its
//! scenario, what it expected and got, and the commands that replay it.

use super::{Expect, Outcome};
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// Bytes of a scenario's output put into its `<system-out>` (the newest).
const SYSTEM_OUT_BYTES: usize = 64 << 10;

/// The JUnit document for a finished suite.
pub fn report(suite: &str, outcomes: &[Outcome], total: Duration) -> Report {
    let mut ts = TestSuite::new(format!("workloads suite {suite}"));
    for o in outcomes {
        let status = if o.passed {
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

/// The last `max` bytes of `text`, cut at a character boundary.
fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[... earlier output dropped ...]\n{}", &text[start..])
}
