//! The record log of a Paxos engine (Multi-Paxos or Basic Paxos): the same framed,
//! checksummed segments and atomically replaced snapshot file as Raft's log, holding
//! the engine's own records (postcard) in write order.
//!
//! # Contract (the engines' `Write<R>`)
//! [`PaxosLog::write`] takes one write: a snapshot, if any, replaces every record
//! stored before it; the write's records follow. [`PaxosLog::sync`] makes every
//! earlier write durable with one fsync; only then may the driver report
//! `persisted(seq)`. After an I/O error the log is poisoned (every later call fails).
//!
//! # On disk
//! `dir/paxos-snapshot` (written atomically: temp file, fsync, rename, directory
//! fsync) holds the snapshot, the records of the write that carried it, and the
//! sequence number of the first segment after it. Segments `{seq}-{first}.wal` (the
//! Raft log's format, `first` being the first slot after the snapshot) hold framed
//! records. A write with a snapshot saves the file first, then starts a new segment
//! and deletes the older ones: a crash in between leaves the new snapshot, which
//! says that the older segments no longer count.
//!
//! # Recovery
//! Segments older than the snapshot's first segment are deleted; the rest must be
//! consecutive from it. Records are replayed in order. A broken record at the very
//! end of the last segment is a write cut short by a crash (never acknowledged) and
//! is cut off; any other damage stops `open` with an error naming the file and byte
//! offset.
//!
//! # The `no_fsync` mutant
//! As in Raft's log: `sync` returns at once and the records stay in this process's
//! buffer, so a SIGKILL loses writes already acknowledged.

use super::error::{Result, StorageError, io_at};
use super::files::{self, DirLock};
use super::record;
use super::segment::{self, Ending, SegmentId};
use super::writer::SegmentWriter;
use super::{StorageOptions, delete_segments, ensure_dir};
use crate::paxos::{Recovered, Snapshot, Write};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

/// Name of the Paxos snapshot file inside the data directory.
pub const PAXOS_SNAPSHOT_FILE: &str = "paxos-snapshot";

/// What the snapshot file holds.
#[derive(Deserialize)]
struct SnapshotFile<R> {
    /// The sequence number of the first segment whose records come after it.
    first_segment: u64,
    snapshot: Snapshot,
    /// The records of the write that carried the snapshot.
    records: Vec<R>,
}

/// The borrowed twin of [`SnapshotFile`] (same field order: postcard is positional).
#[derive(Serialize)]
struct SnapshotFileRef<'a, R> {
    first_segment: u64,
    snapshot: &'a Snapshot,
    records: &'a [R],
}

/// The durable record log of one Paxos node. `R` is the engine's record type.
pub struct PaxosLog<R> {
    dir: PathBuf,
    opts: StorageOptions,
    /// The segments after the snapshot, the buffer and the poison. Declared before
    /// `_lock`: dropping it writes the buffer out while the directory is still ours.
    writer: SegmentWriter,
    _lock: DirLock,
    /// The first slot after the saved snapshot (names new segments).
    first_slot: u64,
    /// Segments that left the log, not deleted yet (`defer_segment_deletion`).
    obsolete: Vec<PathBuf>,
    _records: PhantomData<fn(R) -> R>,
}

impl<R: Serialize + DeserializeOwned> PaxosLog<R> {
    /// Opens (creating if needed) the data directory `dir`, locks it and recovers
    /// the snapshot and the records after it.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<(PaxosLog<R>, Recovered<R>)> {
        ensure_dir(dir, opts.no_fsync)?;
        let lock = DirLock::acquire(dir)?;
        for p in files::remove_tmp_files(dir)? {
            tracing::info!(path = %p.display(), "removed leftover of an interrupted write");
        }
        let saved: Option<SnapshotFile<R>> = files::load_snapshot_file(dir, PAXOS_SNAPSHOT_FILE)?;
        let first_segment = saved.as_ref().map_or(1, |s| s.first_segment);
        let first_slot = saved.as_ref().map_or(1, |s| s.snapshot.last_slot + 1);
        let inconsistent = |reason: String| StorageError::Inconsistent {
            dir: dir.to_path_buf(),
            reason,
        };
        let (old, mut live): (Vec<SegmentId>, Vec<SegmentId>) = segment::list(dir)?
            .into_iter()
            .partition(|id| id.seq < first_segment);
        // Left behind by a crash between saving a snapshot and deleting them.
        let old: Vec<PathBuf> = old.iter().map(|id| id.path(dir)).collect();
        delete_segments(dir, &old, opts.no_fsync)?;
        if let Some(first) = live.first()
            && first.seq != first_segment
        {
            return Err(inconsistent(format!(
                "the oldest segment is {} but the records from segment {first_segment:016x} \
                 on are needed: segments are missing",
                first.file_name()
            )));
        }
        for pair in live.windows(2) {
            if pair[1].seq != pair[0].seq + 1 {
                return Err(inconsistent(format!(
                    "segment {} is followed by {}: the segments between them are missing",
                    pair[0].file_name(),
                    pair[1].file_name()
                )));
            }
        }
        let (snapshot, mut records) = match saved {
            Some(s) => (Some(s.snapshot), s.records),
            None => (None, Vec::new()),
        };
        let mut active_len = segment::HEADER_BYTES;
        let last = live.len().saturating_sub(1);
        for (k, &id) in live.iter().enumerate() {
            let path = id.path(dir);
            let ending = segment::scan(dir, id, |_, r: R| {
                records.push(r);
                Ok(())
            })?;
            active_len = match ending {
                Ending::Clean => std::fs::metadata(&path).map_err(io_at(&path))?.len(),
                Ending::Torn { offset, reason } if k == last => {
                    segment::cut_torn_tail(&path, offset, &reason, opts.no_fsync)?;
                    offset
                }
                Ending::Torn { offset, reason } => {
                    return Err(StorageError::Corrupt {
                        path,
                        offset,
                        reason: format!("{reason}, in a segment that is not the last"),
                    });
                }
            };
        }
        let active = match live.last() {
            Some(id) => {
                let path = id.path(dir);
                OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_at(&path))?
            }
            None => {
                let id = SegmentId {
                    seq: first_segment,
                    first: first_slot,
                };
                let (f, len) = segment::create(dir, id, &[], opts.no_fsync)?;
                live.push(id);
                active_len = len;
                f
            }
        };
        let log = PaxosLog {
            dir: dir.to_path_buf(),
            writer: SegmentWriter::new(dir, opts.no_fsync, live, active, active_len),
            opts,
            _lock: lock,
            first_slot,
            obsolete: Vec::new(),
            _records: PhantomData,
        };
        Ok((log, Recovered { snapshot, records }))
    }

    /// Buffers one write (a snapshot, saved at once, replaces everything before it).
    /// Durable only after the next [`PaxosLog::sync`].
    pub fn write(&mut self, w: &Write<R>) -> Result<()> {
        self.writer.poison.check()?;
        if let Some(s) = &w.snapshot {
            return self.save_snapshot(s, &w.records);
        }
        let buf = &mut self.writer.buf;
        let mark = buf.len();
        for r in &w.records {
            if let Err(e) = record::encode(r, buf) {
                buf.truncate(mark);
                return Err(e);
            }
        }
        self.writer.flush_if_over(self.opts.buffer_max_bytes)
    }

    /// Makes every earlier write durable: one write of the buffer and one fsync.
    /// Starts a new segment when the active one is full.
    pub fn sync(&mut self) -> Result<()> {
        self.writer.sync()?;
        // The mutant keeps everything in one segment: with nothing synced, no
        // segment may stop being the last one.
        if self.opts.no_fsync || self.writer.active_len() < self.opts.segment_max_bytes {
            return Ok(());
        }
        let id = SegmentId {
            seq: self.writer.next_seq(),
            first: self.first_slot,
        };
        self.writer.roll_over(id, &[])
    }

    /// Segments that left the log at a snapshot and are the caller's to delete, with
    /// `defer_segment_deletion` (see [`delete_segments`]).
    pub fn take_obsolete(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.obsolete)
    }

    /// Number of segment files after the snapshot, including the active one.
    pub fn segment_count(&self) -> usize {
        self.writer.segments().len()
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether fsyncs are skipped (the `no-fsync` mutant).
    pub fn no_fsync(&self) -> bool {
        self.opts.no_fsync
    }

    /// Saves the snapshot file (with the write's records and the next segment's
    /// number), durable at once, then starts that segment; the older segments and
    /// any buffered records leave the log.
    fn save_snapshot(&mut self, s: &Snapshot, records: &[R]) -> Result<()> {
        let next = self.writer.next_seq();
        let bytes = files::encode_snapshot(&SnapshotFileRef {
            first_segment: next,
            snapshot: s,
            records,
        })?;
        // Superseded by the snapshot's records, and never acknowledged.
        self.writer.buf.clear();
        let saved = files::write_atomic(&self.dir, PAXOS_SNAPSHOT_FILE, &bytes, self.opts.no_fsync);
        self.writer.poison.on_err(saved)?;
        self.first_slot = s.last_slot + 1;
        let id = SegmentId {
            seq: next,
            first: self.first_slot,
        };
        let old = self.writer.restart(id)?;
        if self.opts.defer_segment_deletion {
            self.obsolete.extend(old);
            return Ok(());
        }
        let deleted = delete_segments(&self.dir, &old, self.opts.no_fsync);
        self.writer.poison.on_err(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::multi::Record;
    use crate::paxos::{Ballot, Value};

    fn rec(slot: u64) -> Record {
        Record::Accepted {
            slot,
            ballot: Ballot { round: 2, node: 1 },
            value: Value::Command(vec![slot as u8; 16]),
        }
    }

    fn write(seq: u64, records: Vec<Record>) -> Write<Record> {
        Write {
            seq,
            snapshot: None,
            records,
        }
    }

    fn open(dir: &Path) -> (PaxosLog<Record>, Recovered<Record>) {
        PaxosLog::open(dir, StorageOptions::default()).expect("opens")
    }

    #[test]
    fn records_come_back_in_write_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, r) = open(dir.path());
        assert_eq!(r, Recovered::default());
        log.write(&write(
            1,
            vec![Record::Promised(Ballot { round: 1, node: 2 })],
        ))
        .expect("write");
        log.write(&write(2, vec![rec(1), rec(2)])).expect("write");
        log.sync().expect("sync");
        drop(log);
        let (_, r) = open(dir.path());
        assert_eq!(
            r.records,
            vec![
                Record::Promised(Ballot { round: 1, node: 2 }),
                rec(1),
                rec(2)
            ]
        );
        assert_eq!(r.snapshot, None);
    }

    #[test]
    fn a_torn_tail_is_cut_and_damage_before_it_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = open(dir.path());
        log.write(&write(1, vec![rec(1), rec(2)])).expect("write");
        log.sync().expect("sync");
        let path = log.writer.active_path();
        drop(log);
        let full = std::fs::read(&path).expect("read");
        // Every cut inside the last record leaves the first one, and the log
        // continues after it.
        let one =
            segment::HEADER_BYTES as usize + (full.len() - segment::HEADER_BYTES as usize) / 2;
        for cut_at in one + 1..full.len() {
            std::fs::write(&path, &full[..cut_at]).expect("write");
            let (mut log, r) = open(dir.path());
            assert_eq!(r.records, vec![rec(1)], "cut at {cut_at}");
            log.write(&write(2, vec![rec(3)])).expect("write");
            log.sync().expect("sync");
            drop(log);
            let (_, r) = open(dir.path());
            assert_eq!(r.records, vec![rec(1), rec(3)], "cut at {cut_at}");
            std::fs::write(&path, &full).expect("restore");
        }
        // A damaged first record followed by a valid one is not a torn write.
        let mut bad = full.clone();
        bad[segment::HEADER_BYTES as usize + 9] ^= 0x10;
        std::fs::write(&path, &bad).expect("write");
        let err = PaxosLog::<Record>::open(dir.path(), StorageOptions::default())
            .err()
            .expect("refused");
        assert!(matches!(err, StorageError::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains(".wal"), "{err}");
    }

    #[test]
    fn a_snapshot_replaces_every_earlier_record() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = open(dir.path());
        log.write(&write(1, (1..=5).map(rec).collect()))
            .expect("write");
        log.sync().expect("sync");
        let snap = Snapshot {
            last_slot: 5,
            data: b"state".to_vec(),
        };
        let kept = vec![Record::Promised(Ballot { round: 3, node: 1 })];
        log.write(&Write {
            seq: 2,
            snapshot: Some(snap.clone()),
            records: kept.clone(),
        })
        .expect("snapshot");
        log.write(&write(3, vec![rec(6)])).expect("write");
        log.sync().expect("sync");
        assert_eq!(log.segment_count(), 1);
        drop(log);
        let (_, r) = open(dir.path());
        assert_eq!(r.snapshot, Some(snap.clone()));
        assert_eq!(r.records, vec![kept[0].clone(), rec(6)]);
        let wals = segment::list(dir.path()).expect("list");
        assert_eq!(wals.len(), 1, "{wals:?}");
    }

    #[test]
    fn a_crash_between_snapshot_and_new_segment_keeps_the_snapshot_state() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut log, _) = open(dir.path());
        log.write(&write(1, vec![rec(1), rec(2)])).expect("write");
        log.sync().expect("sync");
        let old = log.writer.active_path();
        let old_bytes = std::fs::read(&old).expect("read");
        let kept = vec![Record::Promised(Ballot { round: 4, node: 2 })];
        log.write(&Write {
            seq: 2,
            snapshot: Some(Snapshot {
                last_slot: 2,
                data: vec![1],
            }),
            records: kept.clone(),
        })
        .expect("snapshot");
        let new = log.writer.active_path();
        drop(log);
        // As if the crash came right after the snapshot file's rename: the old
        // segment still there, the new one not created yet.
        std::fs::remove_file(&new).expect("remove new");
        std::fs::write(&old, &old_bytes).expect("restore old");
        let (_, r) = open(dir.path());
        assert_eq!(r.records, kept);
        assert!(!old.exists(), "the stale segment is deleted");
        assert!(new.exists(), "the snapshot's segment is created");
    }

    #[test]
    fn a_missing_segment_is_an_error_naming_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = StorageOptions {
            segment_max_bytes: 64,
            ..StorageOptions::default()
        };
        let (mut log, _) = PaxosLog::<Record>::open(dir.path(), opts.clone()).expect("opens");
        for seq in 1..=4 {
            log.write(&write(seq, vec![rec(seq)])).expect("write");
            log.sync().expect("sync");
        }
        assert!(log.segment_count() >= 3);
        let first = log.writer.segments()[0].path(dir.path());
        drop(log);
        std::fs::remove_file(first).expect("remove");
        let err = PaxosLog::<Record>::open(dir.path(), opts)
            .err()
            .expect("refused");
        assert!(matches!(err, StorageError::Inconsistent { .. }), "{err}");
    }
}
