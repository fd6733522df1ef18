//! Recovery: rebuild the log, hard state, identity and snapshot from the directory,
//! cut off a torn tail, refuse anything else that is damaged.
//!
//! Lost state is told from a fresh directory: a directory with no segment and no
//! snapshot is blank (a first boot, or a wiped disk: the node asks its peers which);
//! but a snapshot without segments (the write-ahead log was deleted) or a segment
//! holding not even the record every segment starts with (cut back to its header)
//! means the node had state and lost part of it. Such a log is not replayed as a
//! valid shorter one: its term, vote and acknowledged entries are gone, so storage
//! starts a fresh log after the snapshot (kept: it holds only committed state) and
//! reports no identity. A log without an identity record is reported as it is, with
//! no identity. Either way the node joins as a new incarnation (see
//! `raft::identity`), never counting as the voter it was.

use super::delta::{self, SavedSnapshot};
use super::error::{Result, StorageError, io_at};
use super::files;
use super::log::Log;
use super::record::{self, Record, RecordRef};
use super::segment::{self, Ending, SegmentId};
use crate::raft::types::{Entry, HardState, Identity, Index, Snapshot};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Everything `Storage` needs to continue where the directory left off.
pub(crate) struct Recovery {
    pub(crate) segments: Vec<SegmentId>,
    pub(crate) active: File,
    pub(crate) active_len: u64,
    pub(crate) log: Log<Entry>,
    pub(crate) hard_state: HardState,
    pub(crate) identity: Option<Identity>,
    pub(crate) snapshot: Option<Snapshot>,
    /// What the snapshot files hold (see `delta`).
    pub(crate) saved: Option<SavedSnapshot>,
}

/// Reads `dir` (already locked). Creates the first segment of a fresh directory.
pub(crate) fn recover(dir: &Path, no_fsync: bool) -> Result<Recovery> {
    for p in files::remove_tmp_files(dir)? {
        tracing::info!(path = %p.display(), "removed leftover of an interrupted write");
    }
    let (snapshot, saved) = delta::load(dir)?.unzip();
    let (snap_index, snap_term) = snapshot
        .as_ref()
        .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term));
    let inconsistent = |reason: String| StorageError::Inconsistent {
        dir: dir.to_path_buf(),
        reason,
    };

    let segments = segment::list(dir)?;
    if segments.is_empty() {
        if snapshot.is_some() {
            tracing::warn!(
                dir = %dir.display(),
                "lost state: a snapshot but no write-ahead log; starting a new log, \
                 this node will join as a new incarnation"
            );
        }
        return fresh_log(dir, snapshot, saved, no_fsync);
    }
    if let Some(cut) = segment::first_without_records(dir, &segments)? {
        return lost(dir, &segments, cut, snapshot, saved, no_fsync);
    }
    for pair in segments.windows(2) {
        if pair[1].seq != pair[0].seq + 1 {
            return Err(inconsistent(format!(
                "segment {} is followed by {}: the segments between them are missing",
                pair[0].file_name(),
                pair[1].file_name()
            )));
        }
    }
    if segments[0].first > snap_index + 1 {
        return Err(inconsistent(format!(
            "the oldest segment {} starts at index {} but the snapshot only covers up to {}: \
             entries in between are missing",
            segments[0].file_name(),
            segments[0].first,
            snap_index
        )));
    }

    let mut log: Log<Entry> = Log::empty(segments[0].first);
    let mut hard_state = HardState::default();
    let mut identity: Option<Identity> = None;
    let last = segments.len() - 1;
    let mut active_len = 0;
    for (k, &id) in segments.iter().enumerate() {
        let path = id.path(dir);
        if k > 0 && log.next() != id.first {
            return Err(inconsistent(format!(
                "{} expects index {} next, but the segments before it end at {}",
                id.file_name(),
                id.first,
                log.last()
            )));
        }
        let ending = segment::scan(dir, id, |offset, rec| {
            apply(&mut log, &mut hard_state, &mut identity, rec, snap_index).map_err(|reason| {
                StorageError::Corrupt {
                    path: path.clone(),
                    offset,
                    reason,
                }
            })
        })?;
        match ending {
            Ending::Clean => {
                active_len = std::fs::metadata(&path).map_err(io_at(&path))?.len();
            }
            Ending::Torn { offset, reason } if k == last => {
                segment::cut_torn_tail(&path, offset, &reason, no_fsync)?;
                active_len = offset;
            }
            Ending::Torn { offset, reason } => {
                return Err(StorageError::Corrupt {
                    path,
                    offset,
                    reason: format!("{reason}, in a segment that is not the last"),
                });
            }
        }
    }
    // The snapshot file is saved before its record reaches the log, so a crash can
    // leave the file without the record. Its effect is applied here either way, and
    // recorded below if the log did not hold it, so later appends replay in order.
    let before = (log.first(), log.next());
    let keep_tail = log.snapshot_keeps_tail(snap_index, snap_term);
    if snapshot.is_some() {
        log.install_snapshot(snap_index, keep_tail)
            .map_err(|reason| inconsistent(format!("applying the snapshot file: {reason}")))?;
    }
    let mark_missing = (log.first(), log.next()) != before;
    if log.first() != snap_index + 1 {
        return Err(inconsistent(format!(
            "the log starts at index {} but the snapshot ends at {}",
            log.first(),
            snap_index
        )));
    }
    let active_path = segments[last].path(dir);
    let mut active = OpenOptions::new()
        .append(true)
        .open(&active_path)
        .map_err(io_at(&active_path))?;
    // The previous process may have died with records in the page cache only; they
    // are in the recovered log now, so make them durable before anyone relies on them.
    if !no_fsync {
        active.sync_data().map_err(io_at(&active_path))?;
    }
    if mark_missing {
        let mut buf = Vec::new();
        let rec = RecordRef::Snapshot {
            last_index: snap_index,
            last_term: snap_term,
            keep_tail,
        };
        record::encode(&rec, &mut buf)?;
        active.write_all(&buf).map_err(io_at(&active_path))?;
        if !no_fsync {
            active.sync_data().map_err(io_at(&active_path))?;
        }
        active_len += buf.len() as u64;
    }
    Ok(Recovery {
        segments,
        active,
        active_len,
        log,
        hard_state,
        identity,
        snapshot,
        saved,
    })
}

/// A new log after the snapshot (or from index 1), with no identity.
fn fresh_log(
    dir: &Path,
    snapshot: Option<Snapshot>,
    saved: Option<SavedSnapshot>,
    no_fsync: bool,
) -> Result<Recovery> {
    let snap_index = snapshot.as_ref().map_or(0, |s| s.meta.last_index);
    let id = SegmentId {
        seq: 0,
        first: snap_index + 1,
    };
    let hard_state = HardState::default();
    let mut initial = Vec::new();
    record::encode(&RecordRef::HardState(&hard_state), &mut initial)?;
    let (active, active_len) = segment::create(dir, id, &initial, no_fsync)?;
    Ok(Recovery {
        segments: vec![id],
        active,
        active_len,
        log: Log::empty(snap_index + 1),
        hard_state,
        identity: None,
        snapshot,
        saved,
    })
}

/// A segment was cut back to its header (see the module documentation): deletes
/// every segment and starts a new log after the snapshot. `cut` goes last, so a
/// crash midway leaves it in place and the next recovery sees lost state again.
fn lost(
    dir: &Path,
    segments: &[SegmentId],
    cut: SegmentId,
    snapshot: Option<Snapshot>,
    saved: Option<SavedSnapshot>,
    no_fsync: bool,
) -> Result<Recovery> {
    tracing::warn!(
        dir = %dir.display(),
        segment = %cut.file_name(),
        segments = segments.len(),
        "lost state: a segment holds no record (cut back to its header); discarding the \
         write-ahead log and starting a new one after the snapshot, this node will join \
         as a new incarnation"
    );
    let mut order: Vec<SegmentId> = segments.iter().copied().filter(|s| *s != cut).collect();
    order.push(cut);
    for id in order {
        let path = id.path(dir);
        std::fs::remove_file(&path).map_err(io_at(&path))?;
    }
    if !no_fsync {
        files::fsync_dir(dir)?;
    }
    fresh_log(dir, snapshot, saved, no_fsync)
}

/// Applies one replayed record; `Err` is the reason the record cannot be where it is.
fn apply(
    log: &mut Log<Entry>,
    hard_state: &mut HardState,
    identity: &mut Option<Identity>,
    rec: Record,
    snap_index: Index,
) -> std::result::Result<(), String> {
    match rec {
        Record::Entry(e) => {
            if e.index != log.next() {
                return Err(format!(
                    "entry with index {} where index {} was expected",
                    e.index,
                    log.next()
                ));
            }
            log.push(e);
        }
        Record::Truncate { from } => {
            if from > log.next() {
                return Err(format!(
                    "truncation from index {from} beyond the log's end at {}",
                    log.last()
                ));
            }
            log.truncate_from(from);
        }
        Record::HardState(h) => *hard_state = h,
        Record::Identity(i) => *identity = Some(i),
        Record::Snapshot {
            last_index,
            last_term,
            keep_tail,
        } => {
            if last_index > snap_index {
                return Err(format!(
                    "records a snapshot through index {last_index}, but the snapshot file \
                     ends at {snap_index} (missing or replaced by an older one)"
                ));
            }
            if keep_tail && log.term_at(last_index).is_some_and(|t| t != last_term) {
                return Err(format!(
                    "snapshot through index {last_index} with term {last_term} keeps a log \
                     whose entry there has another term"
                ));
            }
            log.install_snapshot(last_index, keep_tail)?;
        }
    }
    Ok(())
}
