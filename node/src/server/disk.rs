//! Group commit: carries out `Output::Persist` on a blocking thread without ever
//! making the driver wait.
//!
//! At most one batch is on the disk at a time. Every Persist the replica emits while
//! that batch's fsync runs is queued here and written, in order, as the next batch
//! with a single fsync. Under load one fsync therefore covers many client writes,
//! which is what buys throughput on a machine whose fsync costs milliseconds.
//!
//! A snapshot that only compacts the log (the node's own, of entries its log already
//! holds durably) stays off that path: its file, which may be large, is written and
//! fsynced by a job of its own while batches keep flowing, and only the cheap rename
//! into place joins a batch. Nothing waits for it: until it is in place, recovery
//! simply replays the longer log.

use super::background::Background;
use crate::consensus::EngineKind;
use crate::engine::{DurableWrite, Recovered};
use crate::paxos::{basic, multi};
use crate::raft::PersistWrite;
use crate::raft::types::Snapshot;
use crate::storage::paxos::PaxosLog;
use crate::storage::{PreparedSnapshot, SavedCell, Storage, StorageError, StorageOptions};
use std::io;
use std::path::Path;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One operation of a batch.
#[derive(Clone, Debug)]
pub enum PersistOp {
    /// One `Output::Persist` of the engine (boxed: it is large, an install small).
    Write(Box<DurableWrite>),
    /// A compaction snapshot whose file is written: put it in place.
    Install(PreparedSnapshot),
}

impl PersistOp {
    /// The engine's write sequence number (0 for what is not the engine's write).
    fn seq(&self) -> u64 {
        match self {
            PersistOp::Write(w) => w.seq(),
            PersistOp::Install(_) => 0,
        }
    }
}

/// What the driver needs from durable storage: buffered writes in order, then one
/// `sync` that makes all of them durable.
pub trait Disk: Send + 'static {
    fn write(&mut self, op: PersistOp) -> io::Result<()>;
    /// Puts a prepared compaction snapshot in place with the next `sync`; false when
    /// it was dropped instead, because the files no longer hold what it extends or
    /// the log no longer holds its index (written for nothing, lost nothing).
    fn install(&mut self, prepared: PreparedSnapshot) -> io::Result<bool> {
        self.write(PersistOp::Install(prepared)).map(|()| true)
    }
    fn sync(&mut self) -> io::Result<()>;
    /// Where compaction snapshots can be written off the write path. `None`: they
    /// go through `write` like any snapshot.
    fn snapshot_dir(&self) -> Option<SnapshotDir> {
        None
    }
    /// Files that left the log at the last `sync` and are the caller's to delete
    /// (oldest first), off the write path.
    fn take_obsolete(&mut self) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// Where compaction snapshots are written off the write path: the directory,
/// whether to skip fsyncs, and what the snapshot files hold (a compaction snapshot
/// that extends it is written as a delta).
#[derive(Clone, Debug)]
pub struct SnapshotDir {
    pub dir: PathBuf,
    pub no_fsync: bool,
    pub saved: SavedCell,
}

/// A finished batch: the highest `seq` it covered and how long the fsync took.
pub struct Done {
    pub seq: u64,
    pub ops: usize,
    pub sync_time: Duration,
    /// Files to delete (see [`Disk::take_obsolete`]).
    pub obsolete: Vec<PathBuf>,
    /// How many prepared compaction snapshots the batch put in place or dropped.
    pub installs: usize,
    /// How many of those it dropped (see [`Disk::install`]).
    pub dropped: usize,
}

type Job<D> = JoinHandle<(D, io::Result<Done>)>;
type CompactionJob = oneshot::Receiver<io::Result<PreparedSnapshot>>;

/// The disk plus the batch queued behind the one in flight.
pub struct GroupCommit<D: Disk> {
    /// `None` while a batch is in flight: the blocking task owns the disk then.
    disk: Option<D>,
    inflight: Option<Job<D>>,
    queued: Vec<PersistOp>,
}

impl<D: Disk> GroupCommit<D> {
    pub fn new(disk: D) -> Self {
        GroupCommit {
            disk: Some(disk),
            inflight: None,
            queued: Vec::new(),
        }
    }

    /// Where the disk lets compaction snapshots be written (see [`Compactor`]).
    pub fn snapshot_dir(&self) -> Option<SnapshotDir> {
        self.disk.as_ref().and_then(Disk::snapshot_dir)
    }

    /// Queues one Persist behind whatever is on the disk now.
    pub fn push(&mut self, op: PersistOp) {
        self.queued.push(op);
    }

    /// Starts the queued batch if the disk is idle. Call after handling a burst of
    /// inputs so the burst shares one fsync.
    pub fn kick(&mut self) {
        if self.inflight.is_some() || self.queued.is_empty() {
            return;
        }
        let Some(mut disk) = self.disk.take() else {
            return;
        };
        let batch = std::mem::take(&mut self.queued);
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            let r = write_batch(&mut disk, batch);
            (disk, r)
        }));
    }

    pub fn is_busy(&self) -> bool {
        self.inflight.is_some()
    }

    pub fn is_idle(&self) -> bool {
        self.inflight.is_none() && self.queued.is_empty()
    }

    /// Waits for the batch in flight (pending forever when there is none, so it can
    /// sit in a `select!`).
    pub async fn finished(&mut self) -> io::Result<Done> {
        let Some(job) = self.inflight.as_mut() else {
            return std::future::pending().await;
        };
        let joined = job.await;
        self.inflight = None;
        match joined {
            Ok((disk, r)) => {
                self.disk = Some(disk);
                r
            }
            Err(e) => Err(io::Error::other(format!("disk task failed: {e}"))),
        }
    }

    /// Writes everything queued and waits until it is durable (used at shutdown).
    pub async fn flush(&mut self) -> io::Result<Option<Done>> {
        let mut last = None;
        loop {
            if self.inflight.is_some() {
                last = Some(self.finished().await?);
            } else if !self.queued.is_empty() {
                self.kick();
            } else {
                return Ok(last);
            }
        }
    }
}

/// Writes the files of snapshots that only compact the log (the node's own, of
/// entries its log holds durably) on a blocking thread of their own, one at a time,
/// so a large file never holds up a batch of the write-ahead log. An error leaves
/// the log uncompacted, which costs space, not safety.
pub struct Compactor {
    dir: Option<SnapshotDir>,
    background: Background,
    job: Option<CompactionJob>,
    /// The newest snapshot waiting for `job` (an older one is superseded, never written).
    next: Option<Snapshot>,
    /// Files queued to be put in place whose batch is not durable yet.
    placing: usize,
    /// What the snapshot files will hold once the last file queued is in place: the
    /// next snapshot is prepared against it (the storage's own record of its files
    /// lags until then), so a delta is not written against files about to change.
    after_placing: Option<crate::storage::SavedSnapshot>,
}

impl Compactor {
    pub fn new(dir: Option<SnapshotDir>, background: Background) -> Self {
        Compactor {
            dir,
            background,
            job: None,
            next: None,
            placing: 0,
            after_placing: None,
        }
    }

    /// Saves a snapshot that only compacts the log, off the write path.
    /// Without a snapshot directory the snapshot goes to `disk` like any other.
    pub fn push<D: Disk>(&mut self, snapshot: Snapshot, disk: &mut GroupCommit<D>) {
        let Some(target) = self.dir.clone() else {
            disk.push(PersistOp::Write(Box::new(DurableWrite::Raft(
                PersistWrite {
                    snapshot: Some(snapshot),
                    ..PersistWrite::default()
                },
            ))));
            return;
        };
        if self.job.is_some() {
            self.next = Some(snapshot);
            return;
        }
        let pace = self.background.pace();
        let expected = self.after_placing.clone();
        self.job = Some(self.background.run(move || {
            // What the files hold as this starts (or will, once the file queued is in
            // place): the snapshot is written as what it adds to that when it extends
            // it (placing it checks that still holds).
            let saved = expected.or_else(|| target.saved.get());
            crate::storage::Storage::prepare_snapshot(
                &target.dir,
                &snapshot,
                saved.as_ref(),
                target.no_fsync,
                pace,
            )
            .map_err(io::Error::other)
        }));
    }

    /// Waits for the file being written (pending forever when there is none). The
    /// caller hands the result to [`Compactor::place`].
    pub async fn finished(&mut self) -> io::Result<PreparedSnapshot> {
        let Some(job) = self.job.as_mut() else {
            return std::future::pending().await;
        };
        let joined = job.await;
        self.job = None;
        joined.map_err(|_| io::Error::other("the snapshot thread failed"))?
    }

    /// Deletes files that left the log on the background thread (in order, after
    /// any snapshot file being written). A failure costs space only: it is logged.
    pub fn delete(&self, paths: Vec<PathBuf>) {
        let Some(SnapshotDir { dir, no_fsync, .. }) = self.dir.clone() else {
            return;
        };
        self.background.spawn(move || {
            if let Err(e) = crate::storage::delete_segments(&dir, &paths, no_fsync) {
                tracing::warn!(error = %e, "cannot delete log segments a snapshot covers");
            }
        });
    }

    /// Queues the rename of a written file into place, and starts on the snapshot
    /// that waited for it, if any.
    pub fn place<D: Disk>(&mut self, prepared: PreparedSnapshot, disk: &mut GroupCommit<D>) {
        self.after_placing = Some(prepared.saved_after());
        disk.push(PersistOp::Install(prepared));
        self.placing += 1;
        self.start_next(disk);
    }

    /// A batch that put `installs` files in place is durable.
    pub fn placed(&mut self, installs: usize) {
        self.placing = self.placing.saturating_sub(installs);
        if self.placing == 0 {
            // The storage's record is current again (also when it dropped the file).
            self.after_placing = None;
        }
    }

    /// No snapshot file is being written, waiting, or on its way into place.
    pub fn is_idle(&self) -> bool {
        self.job.is_none() && self.next.is_none() && self.placing == 0
    }

    /// After a failed write: starts on the waiting snapshot, if any.
    pub fn start_next<D: Disk>(&mut self, disk: &mut GroupCommit<D>) {
        if let Some(next) = self.next.take() {
            self.push(next, disk);
        }
    }
}

/// The node's real disk: the segmented write-ahead log.
impl Disk for crate::storage::Storage {
    fn install(&mut self, p: PreparedSnapshot) -> io::Result<bool> {
        let index = p.last_index();
        let placed = self.install_prepared(p).map_err(io::Error::other)?;
        tracing::debug!(index, placed, "compaction snapshot put in place");
        Ok(placed)
    }
    fn write(&mut self, op: PersistOp) -> io::Result<()> {
        let w = match op {
            PersistOp::Install(p) => return self.install(p).map(|_| ()),
            PersistOp::Write(w) => match *w {
                DurableWrite::Raft(w) => w,
                other => return Err(wrong_engine(EngineKind::Raft, other.kind())),
            },
        };
        if let Some(identity) = &w.identity {
            self.write_identity(identity).map_err(io::Error::other)?;
        }
        crate::storage::Storage::write(
            self,
            w.snapshot.as_ref(),
            w.truncate_from,
            &w.entries,
            w.hard_state.as_ref(),
        )
        .map_err(io::Error::other)
    }
    fn sync(&mut self) -> io::Result<()> {
        crate::storage::Storage::sync(self).map_err(io::Error::other)
    }
    fn snapshot_dir(&self) -> Option<SnapshotDir> {
        Some(SnapshotDir {
            dir: self.dir().to_path_buf(),
            no_fsync: self.no_fsync(),
            saved: self.saved_snapshot(),
        })
    }
    fn take_obsolete(&mut self) -> Vec<PathBuf> {
        crate::storage::Storage::take_obsolete(self)
    }
}

fn wrong_engine(kept: EngineKind, got: EngineKind) -> io::Error {
    io::Error::other(format!(
        "a {got} write reached the storage of a {kept} node"
    ))
}

/// A Paxos engine's record log: the write of its own engine, or an error.
impl<R> Disk for PaxosLog<R>
where
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
    DurableWrite: TryInto<crate::paxos::Write<R>, Error = EngineKind>,
{
    fn write(&mut self, op: PersistOp) -> io::Result<()> {
        let w = match op {
            PersistOp::Write(w) => w,
            PersistOp::Install(_) => {
                return Err(io::Error::other(
                    "a prepared Raft snapshot reached a Paxos record log",
                ));
            }
        };
        let kept = w.kind();
        let w = (*w).try_into().map_err(|got| wrong_engine(kept, got))?;
        PaxosLog::write(self, &w).map_err(io::Error::other)
    }
    fn sync(&mut self) -> io::Result<()> {
        PaxosLog::sync(self).map_err(io::Error::other)
    }
    fn take_obsolete(&mut self) -> Vec<PathBuf> {
        PaxosLog::take_obsolete(self)
    }
}

/// The storage of whichever engine the node runs.
// One per node, moved only to and from the disk thread: boxing Raft's would only
// add an indirection to every write.
#[allow(clippy::large_enum_variant)]
pub enum NodeDisk {
    Raft(Storage),
    MultiPaxos(PaxosLog<multi::Record>),
    BasicPaxos(PaxosLog<basic::Record>),
}

impl NodeDisk {
    /// Opens the data directory for `kind`: checks (or, in a new directory, records)
    /// the engine it belongs to, then opens that engine's storage.
    pub fn open(
        dir: &Path,
        kind: EngineKind,
        opts: StorageOptions,
    ) -> Result<(NodeDisk, Recovered), StorageError> {
        crate::storage::engine_record::check_or_record(dir, kind, opts.no_fsync)?;
        Ok(match kind {
            EngineKind::Raft => {
                let (s, r) = Storage::open(dir, opts)?;
                (NodeDisk::Raft(s), Recovered::Raft(r))
            }
            EngineKind::MultiPaxos => {
                let (s, r) = PaxosLog::open(dir, opts)?;
                (NodeDisk::MultiPaxos(s), Recovered::MultiPaxos(r))
            }
            EngineKind::BasicPaxos => {
                let (s, r) = PaxosLog::open(dir, opts)?;
                (NodeDisk::BasicPaxos(s), Recovered::BasicPaxos(r))
            }
        })
    }
}

impl Disk for NodeDisk {
    fn write(&mut self, op: PersistOp) -> io::Result<()> {
        match self {
            NodeDisk::Raft(d) => Disk::write(d, op),
            NodeDisk::MultiPaxos(d) => Disk::write(d, op),
            NodeDisk::BasicPaxos(d) => Disk::write(d, op),
        }
    }
    fn install(&mut self, p: PreparedSnapshot) -> io::Result<bool> {
        match self {
            NodeDisk::Raft(d) => Disk::install(d, p),
            NodeDisk::MultiPaxos(d) => Disk::install(d, p),
            NodeDisk::BasicPaxos(d) => Disk::install(d, p),
        }
    }
    fn sync(&mut self) -> io::Result<()> {
        match self {
            NodeDisk::Raft(d) => Disk::sync(d),
            NodeDisk::MultiPaxos(d) => Disk::sync(d),
            NodeDisk::BasicPaxos(d) => Disk::sync(d),
        }
    }
    fn snapshot_dir(&self) -> Option<SnapshotDir> {
        match self {
            NodeDisk::Raft(d) => d.snapshot_dir(),
            // A Paxos snapshot rides its write (with the records it keeps).
            NodeDisk::MultiPaxos(_) | NodeDisk::BasicPaxos(_) => None,
        }
    }
    fn take_obsolete(&mut self) -> Vec<PathBuf> {
        match self {
            NodeDisk::Raft(d) => Disk::take_obsolete(d),
            NodeDisk::MultiPaxos(d) => Disk::take_obsolete(d),
            NodeDisk::BasicPaxos(d) => Disk::take_obsolete(d),
        }
    }
}

fn write_batch<D: Disk>(disk: &mut D, batch: Vec<PersistOp>) -> io::Result<Done> {
    let ops = batch.len();
    let (mut seq, mut installs, mut dropped) = (0, 0, 0);
    for op in batch {
        seq = seq.max(op.seq());
        match op {
            PersistOp::Install(p) => {
                installs += 1;
                dropped += usize::from(!disk.install(p)?);
            }
            op => disk.write(op)?,
        }
    }
    let t0 = Instant::now();
    disk.sync()?;
    Ok(Done {
        seq,
        ops,
        sync_time: t0.elapsed(),
        obsolete: disk.take_obsolete(),
        installs,
        dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records writes and syncs so the batching can be observed.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<String>>>);

    impl Disk for Recorder {
        fn write(&mut self, op: PersistOp) -> io::Result<()> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .push(format!("w{}", op.seq()));
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .push("sync".into());
            Ok(())
        }
    }

    fn op(seq: u64) -> PersistOp {
        PersistOp::Write(Box::new(DurableWrite::Raft(PersistWrite {
            seq,
            ..PersistWrite::default()
        })))
    }

    #[tokio::test]
    async fn persists_queued_while_busy_share_one_sync() {
        let rec = Recorder::default();
        let mut gc = GroupCommit::new(rec.clone());
        gc.push(op(1));
        gc.kick();
        assert!(gc.is_busy());
        gc.push(op(2));
        gc.push(op(3));
        gc.kick(); // busy: nothing starts
        let d = gc.finished().await.expect("first batch");
        assert_eq!((d.seq, d.ops), (1, 1));
        gc.kick();
        let d = gc.finished().await.expect("second batch");
        assert_eq!((d.seq, d.ops), (3, 2));
        assert!(gc.is_idle());
        let log = rec.0.lock().expect("lock").clone();
        assert_eq!(log, vec!["w1", "sync", "w2", "w3", "sync"]);
    }

    /// A compaction prepared while the previous one waits in a batch to be put in
    /// place extends what that one leaves, not the files as they are: both are put
    /// in place, none is written and then dropped.
    #[tokio::test]
    async fn a_compaction_queued_behind_another_extends_it_and_is_not_dropped() {
        use crate::raft::types::{Entry, Payload, SnapshotMeta};
        use crate::storage::{Pace, Storage, StorageOptions};
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut storage, _) = Storage::open(dir.path(), StorageOptions::default()).expect("opens");
        let entries: Vec<Entry> = (1..=30)
            .map(|index| Entry {
                term: 1,
                index,
                payload: Payload::Command(format!("c{index}").into_bytes()),
            })
            .collect();
        storage
            .write(None, None, &entries, None)
            .and_then(|()| storage.sync())
            .expect("log written");
        let mut gc = GroupCommit::new(storage);
        let background = Background::start(0, Pace::default()).expect("thread");
        let mut compactor = Compactor::new(gc.snapshot_dir(), background);
        let snapshot = |index, data: &[u8]| Snapshot {
            meta: SnapshotMeta {
                last_index: index,
                last_term: 1,
                ..SnapshotMeta::default()
            },
            data: data.to_vec().into(),
        };
        let mut dropped = 0;
        let mut installs = 0;
        // The first is whole and put in place at once.
        compactor.push(snapshot(10, b"image"), &mut gc);
        let p = compactor.finished().await.expect("written");
        compactor.place(p, &mut gc);
        gc.kick();
        let d = gc.finished().await.expect("placed");
        compactor.placed(d.installs);
        (dropped, installs) = (dropped + d.dropped, installs + d.installs);
        // The second waits in the queue while the third is prepared.
        compactor.push(snapshot(20, b"image+delta1"), &mut gc);
        let p = compactor.finished().await.expect("written");
        compactor.place(p, &mut gc);
        compactor.push(snapshot(25, b"image+delta1+delta2"), &mut gc);
        let p = compactor.finished().await.expect("written");
        compactor.place(p, &mut gc);
        while !gc.is_idle() {
            gc.kick();
            let d = gc.finished().await.expect("placed");
            compactor.placed(d.installs);
            (dropped, installs) = (dropped + d.dropped, installs + d.installs);
        }
        assert_eq!((installs, dropped), (3, 0));
        assert!(compactor.is_idle());
        let deltas = std::fs::read_dir(dir.path())
            .expect("dir")
            .flatten()
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("snapshot-delta-")
            })
            .count();
        assert_eq!(deltas, 2, "both later snapshots saved as deltas");
    }

    #[tokio::test]
    async fn flush_drains_everything() {
        let rec = Recorder::default();
        let mut gc = GroupCommit::new(rec.clone());
        gc.push(op(1));
        gc.kick();
        gc.push(op(2));
        let d = gc.flush().await.expect("flush").expect("something flushed");
        assert_eq!(d.seq, 2);
        assert!(gc.is_idle());
    }
}
