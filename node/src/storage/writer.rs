//! The writing end of a segmented log, shared by Raft's log and the Paxos record log:
//! the list of segments, the active (last) segment's file, how much of it was handed
//! to the OS and how much is fsynced, the buffer of encoded records not yet written,
//! and the log's poison. Each log keeps its own rules on top (what a new segment
//! starts with, when old segments leave the log).
//!
//! Dropping the writer hands buffered records to the OS (no fsync) unless poisoned:
//! the clean-shutdown path. A killed process skips this, which is what makes the
//! `no_fsync` mutant observable.

use super::error::{Poison, Result, io_at};
use super::segment::{self, SegmentId};
use super::{PendingSync, SyncDone};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The active end of a segmented log. See the module documentation.
pub(crate) struct SegmentWriter {
    dir: PathBuf,
    no_fsync: bool,
    /// Oldest first; the last one is `active`.
    segments: Vec<SegmentId>,
    active: File,
    /// Bytes of `active` already handed to the OS.
    active_len: u64,
    /// Bytes of `active` known to be fsynced; `< active_len` means an fsync is due.
    synced_len: u64,
    /// Encoded records not yet handed to the OS.
    pub(crate) buf: Vec<u8>,
    /// Set by any failed write or fsync (and by the log's own failed file
    /// operations): every later call fails.
    pub(crate) poison: Poison,
}

impl SegmentWriter {
    /// A writer appending to `active`, the last of `segments` (non-empty), which is
    /// `active_len` bytes long and durable as far as anyone knows.
    pub(crate) fn new(
        dir: &Path,
        no_fsync: bool,
        segments: Vec<SegmentId>,
        active: File,
        active_len: u64,
    ) -> SegmentWriter {
        debug_assert!(!segments.is_empty());
        SegmentWriter {
            dir: dir.to_path_buf(),
            no_fsync,
            segments,
            active,
            active_len,
            synced_len: active_len,
            buf: Vec::new(),
            poison: Poison::default(),
        }
    }

    /// The segments, oldest first; the last one is the active one.
    pub(crate) fn segments(&self) -> &[SegmentId] {
        &self.segments
    }

    /// The active segment's sequence number.
    pub(crate) fn active_seq(&self) -> u64 {
        self.segments[self.segments.len() - 1].seq
    }

    /// The active segment's file.
    pub(crate) fn active_path(&self) -> PathBuf {
        self.segments[self.segments.len() - 1].path(&self.dir)
    }

    /// Bytes of the active segment already handed to the OS.
    pub(crate) fn active_len(&self) -> u64 {
        self.active_len
    }

    /// The log position `(segment seq, byte length)` just after everything buffered.
    pub(crate) fn end(&self) -> (u64, u64) {
        (self.active_seq(), self.active_len + self.buf.len() as u64)
    }

    /// Whether the log position `(seq, len)` is durable (always, with `no_fsync`:
    /// nothing ever is, so nothing is waited for).
    pub(crate) fn is_durable(&self, (seq, len): (u64, u64)) -> bool {
        self.no_fsync || seq < self.active_seq() || len <= self.synced_len
    }

    /// Nothing buffered and (unless `no_fsync`) the active segment fully synced: the
    /// only state in which a new segment may start, since recovery accepts a torn
    /// record only in the last segment.
    pub(crate) fn settled(&self) -> bool {
        self.buf.is_empty() && (self.no_fsync || self.synced_len == self.active_len)
    }

    /// Hands the buffer to the OS (no fsync).
    pub(crate) fn flush(&mut self) -> Result<()> {
        let path = self.active_path();
        let written = segment::append(&mut self.active, &path, &mut self.buf, &mut self.active_len);
        self.poison.on_err(written)
    }

    /// Hands the buffer to the OS once it holds `max` bytes or more.
    pub(crate) fn flush_if_over(&mut self, max: usize) -> Result<()> {
        if self.buf.len() >= max {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands every buffered record to the OS and returns the fsync still to be done
    /// (none with `no_fsync`, which leaves the buffer in place, or when nothing is new).
    pub(crate) fn begin_sync(&mut self) -> Result<PendingSync> {
        self.poison.check()?;
        let path = self.active_path();
        let nothing_new = self.buf.is_empty() && self.synced_len == self.active_len;
        if self.no_fsync || nothing_new {
            return Ok(PendingSync {
                file: None,
                path,
                covers: (self.active_seq(), self.active_len),
            });
        }
        self.flush()?;
        let cloned = self.active.try_clone().map_err(io_at(&path));
        let file = self.poison.on_err(cloned)?;
        Ok(PendingSync {
            file: Some(file),
            path,
            covers: (self.active_seq(), self.active_len),
        })
    }

    /// Records the outcome of an fsync from [`SegmentWriter::begin_sync`]: an error
    /// poisons the log; success makes what it covered durable.
    pub(crate) fn finish_sync(&mut self, done: SyncDone) -> Result<()> {
        self.poison.on_err(done.result)?;
        self.poison.check()?;
        let (seq, len) = done.covers;
        if seq == self.active_seq() {
            self.synced_len = self.synced_len.max(len);
        }
        Ok(())
    }

    /// `begin_sync`, the fsync and `finish_sync` in one blocking call.
    pub(crate) fn sync(&mut self) -> Result<()> {
        let pending = self.begin_sync()?;
        let done = pending.wait();
        self.finish_sync(done)
    }

    /// The sequence number the next segment gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.active_seq() + 1
    }

    /// Creates segment `id` holding `initial` (complete frames) and makes it the
    /// active one, after the others. Called only when [`SegmentWriter::settled`].
    pub(crate) fn roll_over(&mut self, id: SegmentId, initial: &[u8]) -> Result<()> {
        self.start(id, initial)?;
        self.segments.push(id);
        Ok(())
    }

    /// Creates segment `id` (empty) as the only segment of the log, with nothing
    /// buffered (the caller discarded it); returns the files of the segments that left
    /// the log, oldest first.
    pub(crate) fn restart(&mut self, id: SegmentId) -> Result<Vec<PathBuf>> {
        debug_assert!(self.buf.is_empty());
        self.start(id, &[])?;
        let old = self.segments.iter().map(|s| s.path(&self.dir)).collect();
        self.segments = vec![id];
        Ok(old)
    }

    /// Removes the oldest segments (never the active one) while `leaves(next)` holds
    /// for the segment after them; returns their files, oldest first.
    pub(crate) fn retire_while(&mut self, leaves: impl Fn(SegmentId) -> bool) -> Vec<PathBuf> {
        let mut removed = Vec::new();
        while self.segments.len() > 1 && leaves(self.segments[1]) {
            removed.push(self.segments.remove(0).path(&self.dir));
        }
        removed
    }

    fn start(&mut self, id: SegmentId, initial: &[u8]) -> Result<()> {
        let created = segment::create(&self.dir, id, initial, self.no_fsync);
        let (file, len) = self.poison.on_err(created)?;
        self.active = file;
        self.active_len = len;
        self.synced_len = len;
        Ok(())
    }
}

impl Drop for SegmentWriter {
    /// Hands buffered records to the OS on a clean shutdown (no fsync: whoever needed
    /// durability synced).
    fn drop(&mut self) {
        if !self.poison.is_set() && !self.buf.is_empty() {
            let _ = self.active.write_all(&self.buf);
        }
    }
}
