//! Durable storage: a segmented write-ahead log of checksummed records, snapshots in
//! their own file, and a lock on the data directory.
//!
//! # Contract for drivers
//! - [`Storage::open`] locks the directory and recovers `(Storage, raft::Recovered)`.
//! - [`Storage::write`] takes one `Output::Persist` (snapshot, truncate, entries, hard
//!   state, in that order) and only buffers it, except a snapshot, whose file is saved
//!   (and fsynced) at once because it is rare and large.
//! - [`Storage::sync`] makes everything written so far durable with one fsync (group
//!   commit). Only after `sync()` returns may the driver report `Input::Persisted { seq }`
//!   for the writes it covered.
//! - A driver that keeps the replica running during the fsync splits `sync` in three:
//!   [`Storage::begin_sync`] (on the driver's task: hands the buffer to the OS, cheap)
//!   returns a [`PendingSync`] whose [`PendingSync::wait`] does the fsync on a blocking
//!   thread; [`Storage::finish_sync`] (back on the driver's task) checks the outcome.
//!   `write` may be called meanwhile; those writes ride the next sync. With one sync
//!   in flight at a time this is group commit: every Persist that arrives during an
//!   fsync is covered by the next one.
//! - After any I/O error the value is poisoned: every later call fails, because after
//!   a failed fsync nobody knows what reached the disk. Reopen to continue.
//!
//! # On disk
//! `dir/LOCK` (flock, holder's pid), `dir/snapshot` (written atomically: temp file,
//! fsync, rename, directory fsync) with the delta files that extend it (see
//! `delta`), and segments `{seq}-{first}.wal` (see `segment`)
//! holding framed records (see `record`): entries, truncations, hard states and
//! snapshot marks, and the node's identity. The hard state lives in the log rather
//! than in a file of its own so that it is ordered with the entries and rides the
//! same fsync: a separate file would cost two more fsyncs whenever the commit index
//! moves. Each record is checksummed, so a hard state is either wholly there or
//! recognisably torn. Every new segment starts with the current hard state and
//! identity, so deleting older segments never loses them.
//!
//! # Recovery
//! Records are replayed in order. A broken record at the very end of the last
//! segment is a write cut short by a crash (it was never acknowledged: acknowledged
//! means fsynced) and is cut off. Anything else (a broken record with valid ones after
//! it, a torn record in an older segment, a missing segment, a damaged snapshot) stops
//! `open` with an error naming the file and byte offset: the node must not start with
//! a log that silently lost acknowledged entries. A log that lost records in a way
//! recovery can recognise (a snapshot with no log, a segment cut back to its header,
//! a log without identity) is lost state: see `recover`.
//!
//! # The `no_fsync` mutant
//! With `StorageOptions::no_fsync`, `sync()` returns at once: records stay in this
//! process's buffer (written out only when it fills) and nothing is fsynced, so a
//! SIGKILL loses writes the replica already acknowledged. This is a deliberate bug for
//! testing the test pipeline (docs/design.md, "Mutants").

mod delta;
pub mod engine_record;
mod error;
mod files;
mod log;
mod pace;
pub mod paxos;
mod record;
mod recover;
mod segment;
mod stats;
mod writer;

pub use delta::{BaseId, Opened, Outgoing, SavedSnapshot};
pub use error::{Result, StorageError};
#[cfg(test)]
pub(crate) use files::encode_snapshot;
pub(crate) use files::{SNAPSHOT_HEADER, TMP_SUFFIX, load_raft_snapshot, parse_snapshot_header};
pub use pace::{Crc, Pace, Paced};
pub use record::MAX_RECORD_BYTES;
pub use stats::{FSYNC_BUCKETS, FsyncStats};

use crate::raft::Recovered;
use crate::raft::types::{Entry, HardState, Identity, Index, Snapshot, SnapshotData, Term};
use error::io_at;
use files::DirLock;
use log::Log;
use record::RecordRef;
use segment::SegmentId;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use writer::SegmentWriter;

/// Tuning and the `no_fsync` mutant.
#[derive(Clone, Debug)]
pub struct StorageOptions {
    /// Skip every fsync and keep synced records in memory (a deliberate bug, see above).
    pub no_fsync: bool,
    /// A segment that reaches this size is closed at the next `sync` and a new one
    /// started; a segment may exceed it by the records of one sync.
    pub segment_max_bytes: u64,
    /// Buffered bytes beyond which `write` hands the buffer to the OS early (no fsync),
    /// bounding memory when many writes come between two syncs.
    pub buffer_max_bytes: usize,
    /// Leave the deletion of segments a snapshot made unnecessary to the caller
    /// ([`Storage::take_obsolete`]) instead of deleting them inside `sync`, so a
    /// driver can delete them off the write path.
    pub defer_segment_deletion: bool,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            no_fsync: false,
            segment_max_bytes: 64 << 20,
            buffer_max_bytes: 4 << 20,
            defer_segment_deletion: false,
        }
    }
}

/// The durable log of one node. See the module documentation for the contract.
pub struct Storage {
    dir: PathBuf,
    opts: StorageOptions,
    /// The segments, the buffer and the poison. Declared before `_lock`: dropping it
    /// writes the buffer out, which must happen while the directory is still ours.
    writer: SegmentWriter,
    /// Held for the life of the value; dropping it releases the directory.
    _lock: DirLock,
    /// Terms of the live log (after the snapshot), to validate writes.
    log: Log<Term>,
    snapshot_index: Index,
    snapshot_term: Term,
    hard_state: HardState,
    /// The node's identity, written into every new segment with the hard state.
    identity: Option<Identity>,
    /// A snapshot was saved, so old segments may be deletable once the log position
    /// `(segment seq, byte length)` after its record is durable: before that, a crash
    /// would replay without the record, and the deleted segments might be the ones
    /// that show whether the log after the snapshot was kept.
    compact_after: Option<(u64, u64)>,
    stats: FsyncStats,
    /// Segments no longer part of the log, oldest first, not deleted yet (with
    /// `defer_segment_deletion`).
    obsolete: Vec<PathBuf>,
    /// What the snapshot files hold, shared with whoever prepares compaction
    /// snapshots on another thread (see [`Storage::saved_snapshot`]).
    saved: SavedCell,
}

/// The saved snapshot, as the storage last updated it (see [`SavedSnapshot`]).
#[derive(Clone, Debug, Default)]
pub struct SavedCell(Arc<Mutex<Option<SavedSnapshot>>>);

impl SavedCell {
    pub fn get(&self) -> Option<SavedSnapshot> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, saved: Option<SavedSnapshot>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = saved;
    }
}

impl Storage {
    /// Opens (creating if needed) the data directory `dir`, locks it and recovers it.
    pub fn open(dir: &Path, opts: StorageOptions) -> Result<(Storage, Recovered)> {
        ensure_dir(dir, opts.no_fsync)?;
        let lock = DirLock::acquire(dir)?;
        let rec = recover::recover(dir, opts.no_fsync)?;
        let (snapshot_index, snapshot_term) = rec
            .snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term));
        let no_fsync = opts.no_fsync;
        let storage = Storage {
            dir: dir.to_path_buf(),
            opts,
            writer: SegmentWriter::new(dir, no_fsync, rec.segments, rec.active, rec.active_len),
            _lock: lock,
            log: rec.log.map(|e| e.term),
            snapshot_index,
            snapshot_term,
            hard_state: rec.hard_state,
            identity: rec.identity.clone(),
            compact_after: rec.snapshot.as_ref().map(|_| (0, 0)),
            stats: FsyncStats::default(),
            obsolete: Vec::new(),
            saved: SavedCell(Arc::new(Mutex::new(rec.saved))),
        };
        let recovered = Recovered {
            identity: rec.identity,
            hard_state: rec.hard_state,
            snapshot: rec.snapshot,
            entries: rec.log.into_items().into(),
        };
        Ok((storage, recovered))
    }

    /// Writes `snapshot`'s file off the log's path, for a snapshot that only compacts
    /// (the log already holds, durably, everything it covers): the caller may run it
    /// on another thread, then hand the result to [`Storage::install_prepared`]. A
    /// snapshot installed from a leader is not such a snapshot: it goes through
    /// [`Storage::write`].
    ///
    /// When the snapshot's bytes extend those of `saved` (what the files held when
    /// this started, from [`Storage::saved_snapshot`]), only the bytes it adds are
    /// written, as a delta file; otherwise the whole snapshot.
    pub fn prepare_snapshot(
        dir: &Path,
        snapshot: &Snapshot,
        saved: Option<&SavedSnapshot>,
        no_fsync: bool,
        pace: Pace,
    ) -> Result<PreparedSnapshot> {
        let (path, kind) = match saved.filter(|s| delta::extends(snapshot, s)) {
            Some(s) => {
                let (path, prefix_len) = delta::prepare(dir, snapshot, s, no_fsync, pace)?;
                let kind = Prepared::Delta {
                    base: s.base,
                    prefix_len,
                };
                (path, kind)
            }
            None => {
                let (path, crc) = files::prepare_snapshot(dir, snapshot, no_fsync, pace)?;
                (path, Prepared::Whole { crc })
            }
        };
        Ok(PreparedSnapshot {
            path,
            kind,
            last_index: snapshot.meta.last_index,
            last_term: snapshot.meta.last_term,
            data: snapshot.data.clone(),
        })
    }

    /// What the snapshot files hold now, shared: read it when starting to prepare a
    /// compaction snapshot on another thread.
    pub fn saved_snapshot(&self) -> SavedCell {
        self.saved.clone()
    }

    /// Whether fsyncs are skipped (the `no-fsync` mutant).
    pub fn no_fsync(&self) -> bool {
        self.opts.no_fsync
    }

    /// Puts a prepared compaction snapshot in place of the saved one (a rename and a
    /// directory fsync) and records it in the log like a snapshot given to
    /// [`Storage::write`], so the segments it covers go at a later sync. Returns
    /// false, and deletes the file, when the snapshot is no newer than the saved one
    /// or the log no longer continues it (a newer snapshot from the leader replaced
    /// it meanwhile): it only ever compacted, so dropping it loses nothing.
    ///
    /// A delta is dropped the same way when the files no longer hold the bytes it
    /// extends (a snapshot from the leader replaced them meanwhile).
    pub fn install_prepared(&mut self, p: PreparedSnapshot) -> Result<bool> {
        self.writer.poison.check()?;
        let saved = self.saved.get();
        let extends = match p.kind {
            Prepared::Whole { .. } => true,
            Prepared::Delta { base, prefix_len } => saved
                .as_ref()
                .is_some_and(|s| s.base == base && s.data.len() as u64 == prefix_len),
        };
        let current = p.last_index <= self.snapshot_index
            || p.last_index > self.log.last()
            || !self.log.snapshot_keeps_tail(p.last_index, p.last_term)
            || !extends;
        if current {
            std::fs::remove_file(&p.path).map_err(io_at(&p.path))?;
            return Ok(false);
        }
        let rec = RecordRef::Snapshot {
            last_index: p.last_index,
            last_term: p.last_term,
            keep_tail: true,
        };
        let mark = self.writer.buf.len();
        if let Err(e) = record::encode(&rec, &mut self.writer.buf) {
            self.writer.buf.truncate(mark);
            return Err(e);
        }
        let renamed = match p.kind {
            Prepared::Whole { .. } => {
                files::rename_into(&self.dir, &p.path, files::SNAPSHOT_FILE, self.opts.no_fsync)
                    .and_then(|()| delta::remove_all(&self.dir))
            }
            Prepared::Delta { .. } => {
                delta::place(&self.dir, &p.path, p.last_index, self.opts.no_fsync)
            }
        };
        self.writer.poison.on_err(renamed)?;
        self.saved.set(Some(p.saved_after()));
        let installed = self
            .log
            .install_snapshot(p.last_index, true)
            .map_err(StorageError::InvalidWrite);
        self.writer.poison.on_err(installed)?;
        self.snapshot_index = p.last_index;
        self.snapshot_term = p.last_term;
        self.compact_after = Some(self.writer.end());
        Ok(true)
    }

    /// Buffers the node's identity (cluster and incarnation), to be durable with the
    /// next sync, ahead of whatever is written after it.
    pub fn write_identity(&mut self, identity: &Identity) -> Result<()> {
        self.writer.poison.check()?;
        record::encode(&RecordRef::Identity(identity), &mut self.writer.buf)?;
        self.identity = Some(identity.clone());
        Ok(())
    }

    /// The latest identity written (durable only once synced).
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// Buffers one `Output::Persist`: save `snapshot` (Raft §7: the log after it stays
    /// only if it holds the snapshot's last entry with its term), drop entries from
    /// `truncate_from` on, append `entries`, record `hard_state`. Nothing is durable
    /// until [`Storage::sync`] (except the snapshot file). The whole write is checked
    /// first; an invalid one changes nothing.
    pub fn write(
        &mut self,
        snapshot: Option<&Snapshot>,
        truncate_from: Option<Index>,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<()> {
        self.writer.poison.check()?;
        let keep_tail = snapshot.map(|s| {
            self.log
                .snapshot_keeps_tail(s.meta.last_index, s.meta.last_term)
        });
        let (first, next) = self.validate(snapshot, keep_tail, truncate_from, entries)?;
        let mark = self.writer.buf.len();
        if let Err(e) = self.encode_all(snapshot.zip(keep_tail), truncate_from, entries, hard_state)
        {
            self.writer.buf.truncate(mark);
            return Err(e);
        }
        if let (Some(s), Some(keep)) = (snapshot, keep_tail) {
            // Streamed to its file as it is encoded: no second copy in memory.
            let saved = files::prepare_snapshot(&self.dir, s, self.opts.no_fsync, Pace::default())
                .and_then(|(tmp, crc)| {
                    files::rename_into(&self.dir, &tmp, files::SNAPSHOT_FILE, self.opts.no_fsync)?;
                    // Only now: until the new base is in place, the deltas are part of
                    // the saved snapshot the log after it relies on.
                    delta::remove_all(&self.dir)?;
                    Ok(crc)
                });
            if saved.is_err() {
                self.writer.buf.truncate(mark);
            }
            let crc = self.writer.poison.on_err(saved)?;
            self.saved.set(Some(SavedSnapshot {
                base: BaseId {
                    index: s.meta.last_index,
                    crc,
                },
                data: s.data.clone(),
            }));
            // Cannot fail (`keep` was decided on this log), but the snapshot file is
            // already replaced, so a failure must stop all further writes.
            let installed = self
                .log
                .install_snapshot(s.meta.last_index, keep)
                .map_err(StorageError::InvalidWrite);
            self.writer.poison.on_err(installed)?;
            self.snapshot_index = s.meta.last_index;
            self.snapshot_term = s.meta.last_term;
            self.compact_after = Some(self.writer.end());
        }
        if let Some(from) = truncate_from {
            self.log.truncate_from(from);
        }
        for e in entries {
            self.log.push(e.term);
        }
        if let Some(h) = hard_state {
            self.hard_state = *h;
        }
        debug_assert_eq!(
            (self.log.first(), self.log.next()),
            (first, next + entries.len() as Index)
        );
        self.writer.flush_if_over(self.opts.buffer_max_bytes)
    }

    /// Makes every earlier `write` durable: one write of the buffer and one fsync.
    /// Then starts a new segment if the active one is full, and deletes segments a
    /// saved snapshot made unnecessary. Equal to `begin_sync`, `wait`, `finish_sync`.
    pub fn sync(&mut self) -> Result<()> {
        let pending = self.begin_sync()?;
        let done = pending.wait();
        self.finish_sync(done)
    }

    /// The first half of [`Storage::sync`], for drivers that fsync on another thread:
    /// hands every buffered record to the OS and returns the fsync still to be done.
    /// Writes may continue meanwhile; they are covered by the next sync, not this one.
    /// Report `Persisted` for the writes before this call only after `finish_sync`
    /// returned `Ok` for it.
    pub fn begin_sync(&mut self) -> Result<PendingSync> {
        self.writer.begin_sync()
    }

    /// The second half of [`Storage::sync`]: records the outcome of the fsync (an
    /// error poisons the storage), then rolls over and compacts. A `PendingSync`
    /// that is dropped instead costs nothing but its durability: the next sync
    /// covers its bytes again.
    pub fn finish_sync(&mut self, done: SyncDone) -> Result<()> {
        if done.synced {
            self.stats.record(done.took);
        }
        self.writer.finish_sync(done)?;
        // Only a fully synced segment may stop being the last one: recovery accepts
        // a torn record only in the last segment.
        if self.writer.settled() && self.writer.active_len() >= self.opts.segment_max_bytes {
            self.roll_over()?;
        }
        if self
            .compact_after
            .is_some_and(|at| self.writer.is_durable(at))
        {
            self.compact()?;
        }
        Ok(())
    }

    /// Syncs and releases the directory: the graceful shutdown. (Dropping without it
    /// hands buffered records to the OS but does not fsync them.)
    pub fn close(mut self) -> Result<()> {
        self.sync()
    }

    /// The first index of the live log: one past the snapshot.
    pub fn first_index(&self) -> Index {
        self.log.first()
    }

    /// The last index of the log (the snapshot's last index when the log is empty).
    pub fn last_index(&self) -> Index {
        self.log.last()
    }

    /// The last index covered by the saved snapshot (0 without one).
    pub fn snapshot_index(&self) -> Index {
        self.snapshot_index
    }

    /// The term of `index`, if it is in the live log or is the snapshot's last index.
    pub fn term(&self, index: Index) -> Option<Term> {
        if index == self.snapshot_index {
            return Some(self.snapshot_term);
        }
        self.log.term_at(index)
    }

    /// The latest hard state written (durable only once synced).
    pub fn hard_state(&self) -> HardState {
        self.hard_state
    }

    /// Number of segment files, including the active one.
    pub fn segment_count(&self) -> usize {
        self.writer.segments().len()
    }

    /// fsync latency of the log fsyncs issued by `sync` since open.
    pub fn fsync_stats(&self) -> &FsyncStats {
        &self.stats
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks a write against the log; returns `(first, next)` after snapshot and
    /// truncation, before the entries.
    fn validate(
        &self,
        snapshot: Option<&Snapshot>,
        keep_tail: Option<bool>,
        truncate_from: Option<Index>,
        entries: &[Entry],
    ) -> Result<(Index, Index)> {
        let (mut first, mut next) = (self.log.first(), self.log.next());
        if let (Some(s), Some(keep)) = (snapshot, keep_tail) {
            let m = &s.meta;
            if m.last_index < self.snapshot_index {
                return Err(StorageError::InvalidWrite(format!(
                    "snapshot through index {} is older than the saved one through {}",
                    m.last_index, self.snapshot_index
                )));
            }
            if m.last_index == self.snapshot_index && m.last_term != self.snapshot_term {
                return Err(StorageError::InvalidWrite(format!(
                    "snapshot through index {} has term {}, the saved one term {}",
                    m.last_index, m.last_term, self.snapshot_term
                )));
            }
            (first, next) = self.log.preview_snapshot(m.last_index, keep);
        }
        if let Some(from) = truncate_from {
            if from < first || from > next {
                return Err(StorageError::InvalidWrite(format!(
                    "truncation from index {from} outside the live log [{first}, {next}]"
                )));
            }
            next = from;
        }
        for (k, e) in entries.iter().enumerate() {
            let want = next + k as Index;
            if e.index != want {
                return Err(StorageError::InvalidWrite(format!(
                    "entry with index {} where index {want} must come next",
                    e.index
                )));
            }
        }
        Ok((first, next))
    }

    fn encode_all(
        &mut self,
        snapshot: Option<(&Snapshot, bool)>,
        truncate_from: Option<Index>,
        entries: &[Entry],
        hard_state: Option<&HardState>,
    ) -> Result<()> {
        if let Some((s, keep_tail)) = snapshot {
            let rec = RecordRef::Snapshot {
                last_index: s.meta.last_index,
                last_term: s.meta.last_term,
                keep_tail,
            };
            record::encode(&rec, &mut self.writer.buf)?;
        }
        if let Some(from) = truncate_from {
            record::encode(&RecordRef::Truncate { from }, &mut self.writer.buf)?;
        }
        for e in entries {
            record::encode(&RecordRef::Entry(e), &mut self.writer.buf)?;
        }
        if let Some(h) = hard_state {
            record::encode(&RecordRef::HardState(h), &mut self.writer.buf)?;
        }
        Ok(())
    }

    /// Starts the next segment. Called only with an empty buffer and (unless
    /// `no_fsync`) a synced active segment, so only the last segment can ever hold a
    /// torn record.
    fn roll_over(&mut self) -> Result<()> {
        let id = SegmentId {
            seq: self.writer.next_seq(),
            first: self.log.next(),
        };
        let mut initial = Vec::new();
        record::encode(&RecordRef::HardState(&self.hard_state), &mut initial)?;
        if let Some(identity) = &self.identity {
            record::encode(&RecordRef::Identity(identity), &mut initial)?;
        }
        self.writer.roll_over(id, &initial)?;
        tracing::debug!(segment = %id.file_name(), "started a new log segment");
        Ok(())
    }

    /// Deletes the oldest segments while the next one starts at or before the first
    /// index after the snapshot. Why that is safe: when segment k+1 was created, every
    /// entry segment k still held was below k+1's `first` (later records only remove
    /// entries or append new ones), so with `first(k+1) <= snapshot + 1` all of them
    /// are covered by the snapshot; snapshot records carry their keep-or-discard
    /// decision, so replay from k+1 needs none of k's entries; and k's hard state is
    /// superseded by the one k+1 starts with. Only a prefix is deleted, so a crash
    /// midway leaves a consecutive run of segments.
    fn compact(&mut self) -> Result<()> {
        let first_live = self.snapshot_index + 1;
        let removed = self.writer.retire_while(|next| next.first <= first_live);
        if !removed.is_empty() {
            tracing::debug!(
                removed = removed.len(),
                snapshot_index = self.snapshot_index,
                "log segments covered by the snapshot leave the log"
            );
        }
        self.compact_after = None;
        if self.opts.defer_segment_deletion {
            self.obsolete.extend(removed);
            return Ok(());
        }
        let res = delete_segments(&self.dir, &removed, self.opts.no_fsync);
        self.writer.poison.on_err(res)
    }

    /// Segments that left the log and must be deleted, oldest first, with
    /// `defer_segment_deletion` (see [`delete_segments`]). Leaving them costs only
    /// space: recovery replays a prefix of segments the snapshot covers as before.
    pub fn take_obsolete(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.obsolete)
    }
}

/// Creates the data directory `dir` if it does not exist, durably: the new
/// directory's own entry must survive a power loss, or every file in it could go,
/// acknowledged writes included.
pub(crate) fn ensure_dir(dir: &Path, no_fsync: bool) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(io_at(dir))?;
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(parent) = parent.filter(|_| !no_fsync) {
        files::fsync_dir(parent)?;
    }
    Ok(())
}

/// Deletes segment files that left the log, in the order given (oldest first, so a
/// crash midway leaves a consecutive run), then makes the deletions durable. Safe on
/// any thread, while the log keeps writing: the files are no longer the log's.
pub fn delete_segments(dir: &Path, paths: &[PathBuf], no_fsync: bool) -> Result<()> {
    for path in paths {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_at(path)(e)),
        }
    }
    if !paths.is_empty() && !no_fsync {
        files::fsync_dir(dir)?;
    }
    Ok(())
}

/// A snapshot file written and fsynced under a temporary name by
/// [`Storage::prepare_snapshot`], waiting for [`Storage::install_prepared`].
#[derive(Clone, Debug)]
pub struct PreparedSnapshot {
    path: PathBuf,
    kind: Prepared,
    last_index: Index,
    last_term: Term,
    /// The snapshot's state-machine bytes (shared), which the files hold once it is
    /// in place.
    data: SnapshotData,
}

/// What a prepared snapshot file holds.
#[derive(Clone, Copy, Debug)]
enum Prepared {
    /// The whole snapshot, whose payload has this CRC.
    Whole { crc: u32 },
    /// The bytes it adds to those of `base` and the deltas after it, which are
    /// `prefix_len` long.
    Delta { base: BaseId, prefix_len: u64 },
}

impl PreparedSnapshot {
    /// The last log index the snapshot covers.
    pub fn last_index(&self) -> Index {
        self.last_index
    }

    /// What the snapshot files will hold once this is put in place, for preparing
    /// the next one before that happened.
    pub fn saved_after(&self) -> SavedSnapshot {
        let base = match self.kind {
            Prepared::Whole { crc } => BaseId {
                index: self.last_index,
                crc,
            },
            Prepared::Delta { base, .. } => base,
        };
        SavedSnapshot {
            base,
            data: self.data.clone(),
        }
    }
}

/// An fsync to run, possibly on another thread: see [`Storage::begin_sync`].
#[derive(Debug)]
#[must_use = "the writes are not durable until the fsync ran and finish_sync saw it"]
pub struct PendingSync {
    /// A handle on the active segment; `None` when there is nothing to sync.
    file: Option<File>,
    path: PathBuf,
    /// The segment (by seq) and its length this fsync makes durable.
    covers: (u64, u64),
}

impl PendingSync {
    /// Runs the fsync (blocking). Safe on any thread.
    pub fn wait(self) -> SyncDone {
        let Some(file) = self.file else {
            return SyncDone {
                result: Ok(()),
                took: std::time::Duration::ZERO,
                synced: false,
                covers: self.covers,
            };
        };
        let started = Instant::now();
        let result = file.sync_data().map_err(io_at(&self.path));
        SyncDone {
            result,
            took: started.elapsed(),
            synced: true,
            covers: self.covers,
        }
    }
}

/// The outcome of [`PendingSync::wait`], to hand back to [`Storage::finish_sync`].
#[derive(Debug)]
#[must_use = "hand it to Storage::finish_sync"]
pub struct SyncDone {
    result: Result<()>,
    took: std::time::Duration,
    /// An fsync was issued (so it counts in the stats).
    synced: bool,
    covers: (u64, u64),
}
