//! The one error type of the storage layer. Every variant that comes from a file
//! names it, so an operator can find the damage without reading code.

use std::path::{Path, PathBuf};

/// Why storage could not open, write or sync.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// An operating-system call failed on `path`.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process (or another `Storage` in this one) holds the directory lock.
    #[error("data directory {dir} is in use: lock file {lock} is held{holder}")]
    Locked {
        dir: PathBuf,
        lock: PathBuf,
        /// " by pid N" when the holder wrote its pid, else empty.
        holder: String,
    },
    /// A file holds bytes that are not what we wrote, somewhere a crash cannot explain.
    #[error("{path}: corrupt at byte offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// The files disagree with each other (e.g. a segment is missing).
    #[error("{dir}: inconsistent data directory: {reason}")]
    Inconsistent { dir: PathBuf, reason: String },
    /// The directory holds another engine's state.
    #[error(
        "data directory {dir} holds {recorded} state and cannot be opened with \
         --consensus {requested} (start the node with --consensus {recorded}, or give it \
         a new data directory)"
    )]
    WrongEngine {
        dir: PathBuf,
        recorded: crate::consensus::EngineKind,
        requested: crate::consensus::EngineKind,
    },
    /// The caller asked for something that would break the log's invariants.
    #[error("invalid write: {0}")]
    InvalidWrite(String),
    /// An earlier I/O error left the on-disk state unknown (after a failed fsync the
    /// page cache cannot be trusted); only reopening, which re-reads the disk, is safe.
    #[error("storage is unusable after an earlier failure: {0}")]
    Poisoned(String),
}

/// Shorthand for results of this module.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Wraps an `io::Error` with the path it concerns: `.map_err(io_at(&path))`.
pub(crate) fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The poisoned state of a log: after an I/O error nobody knows what reached the
/// disk, so every later call fails with the first error until the log is reopened.
#[derive(Debug, Default)]
pub(crate) struct Poison(Option<String>);

impl Poison {
    /// Fails once poisoned.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.0 {
            Some(why) => Err(StorageError::Poisoned(why.clone())),
            None => Ok(()),
        }
    }

    /// Passes `r` through, poisoning on an error.
    pub(crate) fn on_err<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.0 = Some(e.to_string());
        }
        r
    }

    pub(crate) fn is_set(&self) -> bool {
        self.0.is_some()
    }
}
