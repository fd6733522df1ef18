//! The one error type of history input: every problem names the file, the 1-based line
//! and the reason, so a user can open the file at that line and see what is wrong.

use std::fmt;

/// Why a history was rejected, with where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    /// The file name as given (or a label such as `<stdin>`).
    pub file: String,
    /// 1-based line the problem was found on (the first line of a multi-line EDN form).
    pub line: usize,
    pub kind: ErrorKind,
}

impl HistoryError {
    pub fn new(file: &str, line: usize, kind: ErrorKind) -> Self {
        HistoryError {
            file: file.to_string(),
            line,
            kind,
        }
    }
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not tied to a line (the file could not be opened).
            write!(f, "{}: {}", self.file, self.kind)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.kind)
        }
    }
}

impl std::error::Error for HistoryError {}

/// The reasons a history is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(String),
    #[error("line is not valid UTF-8")]
    NotUtf8,
    #[error("line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("EDN form longer than {limit} bytes")]
    FormTooLarge { limit: usize },
    #[error("nesting deeper than {limit} levels")]
    TooDeep { limit: usize },
    #[error("more than {limit} events")]
    TooManyEvents { limit: usize },
    #[error("neither a JSON object nor an EDN map (found {0:?})")]
    UnknownFormat(String),
    #[error("malformed JSON: {0}")]
    BadJson(String),
    #[error("malformed EDN: {0}")]
    BadEdn(String),
    #[error("an event must be a map, found {0}")]
    NotAMap(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    #[error("field `{field}`: {reason}")]
    BadField { field: &'static str, reason: String },
    #[error("unknown type {0:?} (expected invoke, ok, fail or info)")]
    UnknownType(String),
    #[error(
        "integer {0} does not fit in 64 bits (values are compared exactly, so it cannot be held)"
    )]
    BigInteger(String),
    #[error("process {process} completes an operation it never invoked")]
    CompletionWithoutInvoke { process: u64 },
    #[error(
        "process {process} invokes an operation while its operation from line {first_line} is still outstanding"
    )]
    TwoOutstanding { process: u64, first_line: usize },
    #[error(
        "process {process} is used again after its operation ended with info on line {info_line} (a crashed process must take a new id)"
    )]
    ReusedAfterInfo { process: u64, info_line: usize },
    #[error("completion does not match its invoke on line {invoke_line}: {reason}")]
    Mismatch { invoke_line: usize, reason: String },
    #[error("some client events have a `time` and others do not ({0})")]
    MixedTimes(&'static str),
    #[error("{0}")]
    Structure(String),
    /// The model cannot take this operation (a cas in a register, an `f` it does not
    /// know): the message says which model and what it takes.
    #[error("{0}")]
    Unsupported(String),
    #[error(
        "no client operations: a history with nothing to check cannot pass (--allow-empty accepts it)"
    )]
    NoClientOperations,
}
