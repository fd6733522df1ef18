//! The engine a data directory belongs to, in `dir/engine` ("raft", "multi-paxos" or
//! "basic-paxos", one line). Written atomically before anything else on a node's
//! first start; a later start with another engine is refused, since one engine
//! cannot read another's records.

use super::error::{Result, StorageError, io_at};
use super::files;
use crate::consensus::EngineKind;
use std::path::Path;

/// Name of the engine record inside the data directory.
pub const ENGINE_FILE: &str = "engine";

/// The engine `dir` holds state of: `None` for a new (or missing, or empty)
/// directory. A directory with Raft files but no record predates the record and
/// holds Raft state.
pub fn recorded(dir: &Path) -> Result<Option<EngineKind>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let path = dir.join(ENGINE_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            text.trim()
                .parse::<EngineKind>()
                .map(Some)
                .map_err(|e| StorageError::Corrupt {
                    path: path.clone(),
                    offset: 0,
                    reason: format!("not an engine name: {e}"),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_raft_state =
                !super::segment::list(dir)?.is_empty() || dir.join(files::SNAPSHOT_FILE).exists();
            Ok(has_raft_state.then_some(EngineKind::Raft))
        }
        Err(e) => Err(io_at(&path)(e)),
    }
}

/// Checks that `dir` may be opened by `kind`, and records `kind` in a new
/// directory (created if needed).
pub fn check_or_record(dir: &Path, kind: EngineKind, no_fsync: bool) -> Result<()> {
    match recorded(dir)? {
        Some(found) if found == kind => Ok(()),
        Some(found) => Err(StorageError::WrongEngine {
            dir: dir.to_path_buf(),
            recorded: found,
            requested: kind,
        }),
        None => {
            super::ensure_dir(dir, no_fsync)?;
            files::write_atomic(dir, ENGINE_FILE, format!("{kind}\n").as_bytes(), no_fsync)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_engine_is_recorded_and_another_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path().join("data");
        assert_eq!(recorded(&d).expect("reads"), None);
        check_or_record(&d, EngineKind::MultiPaxos, false).expect("records");
        assert_eq!(recorded(&d).expect("reads"), Some(EngineKind::MultiPaxos));
        check_or_record(&d, EngineKind::MultiPaxos, false).expect("same engine");
        let err = check_or_record(&d, EngineKind::Raft, false).expect_err("refused");
        let msg = err.to_string();
        assert!(msg.contains("multi-paxos") && msg.contains("raft"), "{msg}");
        std::fs::write(d.join(ENGINE_FILE), "zab\n").expect("write");
        assert!(matches!(recorded(&d), Err(StorageError::Corrupt { .. })));
    }

    #[test]
    fn a_raft_directory_without_the_record_is_raft() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (s, _) = crate::storage::Storage::open(dir.path(), Default::default()).expect("open");
        drop(s);
        assert_eq!(recorded(dir.path()).expect("reads"), Some(EngineKind::Raft));
        let err = check_or_record(dir.path(), EngineKind::BasicPaxos, false).expect_err("refused");
        assert!(matches!(err, StorageError::WrongEngine { .. }), "{err}");
    }
}
