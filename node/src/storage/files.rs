//! Small file-system building blocks: directory fsync, atomic whole-file replace,
//! the snapshot file and the directory lock.

use super::error::{Result, StorageError, io_at};
use super::pace::{Crc, Pace, Paced};
use crate::raft::types::Snapshot;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Name of the lock file inside the data directory.
pub(crate) const LOCK_FILE: &str = "LOCK";
/// Name of the snapshot file inside the data directory.
pub(crate) const SNAPSHOT_FILE: &str = "snapshot";
/// Suffix of files being written before their atomic rename; leftovers are deleted
/// on open (a crash before the rename means the old file is still the valid one).
pub(crate) const TMP_SUFFIX: &str = ".tmp";

const SNAPSHOT_MAGIC: &[u8; 8] = b"LKVSNAP1";
/// A snapshot file larger than this is refused rather than read into memory.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// Makes a create, rename or delete inside `dir` durable (the file's own fsync does not).
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Replaces `dir/name` with `bytes` so that a crash leaves either the old or the new
/// content, never a mix: write `name.tmp`, fsync it, rename over `name`, fsync `dir`.
/// With `no_fsync` both fsyncs are skipped (the rename still keeps readers atomic).
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8], no_fsync: bool) -> Result<()> {
    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(io_at(&tmp))?;
    f.write_all(bytes).map_err(io_at(&tmp))?;
    if !no_fsync {
        f.sync_all().map_err(io_at(&tmp))?;
    }
    drop(f);
    fs::rename(&tmp, &dst).map_err(io_at(&dst))?;
    if !no_fsync {
        fsync_dir(dir)?;
    }
    Ok(())
}

/// Writes a complete snapshot file under a temporary name of its own (which recovery
/// deletes if a crash leaves it) and makes it durable; [`super::Storage::install_prepared`]
/// renames it into place. Touches no file the log uses, so it may run on any thread
/// while the log keeps writing. The bytes are streamed to the file as they are
/// encoded (no second copy of the snapshot in memory) and paced by `pace`: yields,
/// an optional byte rate, and a data sync every few MiB so the log's fsyncs never
/// queue behind one large flush. Same format as [`encode_snapshot`].
pub(crate) fn prepare_snapshot(
    dir: &Path,
    snapshot: &Snapshot,
    no_fsync: bool,
    pace: Pace,
) -> Result<PathBuf> {
    let tmp = dir.join(format!(
        "{SNAPSHOT_FILE}-{}{TMP_SUFFIX}",
        snapshot.meta.last_index
    ));
    let f = File::create(&tmp).map_err(io_at(&tmp))?;
    let sync = match no_fsync {
        true => None,
        false => Some(f.try_clone().map_err(io_at(&tmp))?),
    };
    let mut buf = BufWriter::with_capacity(1 << 20, f);
    buf.write_all(&[0u8; 20]).map_err(io_at(&tmp))?;
    let mut w = Paced::new(Crc::new(buf), pace, sync);
    postcard::to_io(snapshot, &mut w).map_err(|e| {
        StorageError::InvalidWrite(format!("cannot write snapshot {}: {e}", tmp.display()))
    })?;
    let (crc, payload_len, buf) = w.into_inner().finish();
    if payload_len + 20 > MAX_SNAPSHOT_BYTES {
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::InvalidWrite(format!(
            "snapshot of {payload_len} bytes exceeds the limit of {MAX_SNAPSHOT_BYTES} bytes"
        )));
    }
    let mut f = buf.into_inner().map_err(|e| io_at(&tmp)(e.into_error()))?;
    let mut header = [0u8; 20];
    header[..8].copy_from_slice(SNAPSHOT_MAGIC);
    header[8..16].copy_from_slice(&payload_len.to_le_bytes());
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    f.seek(SeekFrom::Start(0)).map_err(io_at(&tmp))?;
    f.write_all(&header).map_err(io_at(&tmp))?;
    if !no_fsync {
        f.sync_all().map_err(io_at(&tmp))?;
    }
    Ok(tmp)
}

/// Encodes a snapshot file: magic, payload length (u64 LE), CRC-32 of the payload
/// (u32 LE), postcard payload (Raft's [`Snapshot`], or another engine's snapshot).
pub(crate) fn encode_snapshot<T: serde::Serialize>(snapshot: &T) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(4096);
    out.extend_from_slice(SNAPSHOT_MAGIC);
    out.extend_from_slice(&[0u8; 12]);
    postcard::to_io(snapshot, &mut out)
        .map_err(|e| StorageError::InvalidWrite(format!("cannot encode snapshot: {e}")))?;
    let payload_len = (out.len() - 20) as u64;
    if payload_len + 20 > MAX_SNAPSHOT_BYTES {
        return Err(StorageError::InvalidWrite(format!(
            "snapshot of {payload_len} bytes exceeds the limit of {MAX_SNAPSHOT_BYTES} bytes"
        )));
    }
    let crc = crc32fast::hash(&out[20..]);
    out[8..16].copy_from_slice(&payload_len.to_le_bytes());
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads `dir/snapshot` if it exists. Any damage is an error naming the file: a
/// snapshot is written atomically, so a bad one was not made by a crash.
pub(crate) fn load_snapshot(dir: &Path) -> Result<Option<Snapshot>> {
    load_snapshot_file(dir, SNAPSHOT_FILE)
}

/// Reads the snapshot file `dir/name` (written by [`encode_snapshot`]) if it exists.
pub(crate) fn load_snapshot_file<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>> {
    let path = dir.join(name);
    let mut f = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(&path)(e)),
    };
    let len = f.metadata().map_err(io_at(&path))?.len();
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };
    if len > MAX_SNAPSHOT_BYTES {
        return Err(corrupt(
            0,
            format!("file of {len} bytes exceeds the snapshot limit"),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes).map_err(io_at(&path))?;
    if bytes.len() < 20 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt(0, "not a snapshot file (bad header)".into()));
    }
    let payload_len = u64::from_le_bytes(bytes[8..16].try_into().unwrap_or([0xff; 8]));
    let crc = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or([0; 4]));
    let payload = &bytes[20..];
    if payload.len() as u64 != payload_len {
        return Err(corrupt(
            8,
            format!(
                "header says {payload_len} payload bytes, file holds {}",
                payload.len()
            ),
        ));
    }
    if crc32fast::hash(payload) != crc {
        return Err(corrupt(20, "snapshot checksum mismatch".into()));
    }
    postcard::from_bytes(payload)
        .map(Some)
        .map_err(|e| corrupt(20, format!("snapshot does not decode: {e}")))
}

/// An exclusive `flock` on `dir/LOCK`, held for the life of the value. flock locks
/// belong to the open file, so a second open in the same process is refused too.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: Flock<File>,
}

impl DirLock {
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_at(&path))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut locked) => {
                // The pid is only a hint for the error message of a later contender.
                let pid = format!("{}\n", std::process::id());
                locked
                    .set_len(0)
                    .and_then(|()| locked.write_all(pid.as_bytes()))
                    .map_err(io_at(&path))?;
                Ok(DirLock { _file: locked })
            }
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let holder = match file.read_to_string(&mut text) {
                    Ok(_) if text.trim().parse::<u32>().is_ok() => {
                        format!(" by pid {}", text.trim())
                    }
                    _ => String::new(),
                };
                Err(StorageError::Locked {
                    dir: dir.to_path_buf(),
                    lock: path,
                    holder,
                })
            }
            Err((_, errno)) => Err(io_at(&path)(std::io::Error::from(errno))),
        }
    }
}

/// Deletes leftovers of interrupted atomic writes in `dir`.
pub(crate) fn remove_tmp_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for item in fs::read_dir(dir).map_err(io_at(dir))? {
        let item = item.map_err(io_at(dir))?;
        let name = item.file_name();
        if name.to_string_lossy().ends_with(TMP_SUFFIX) {
            let p = item.path();
            fs::remove_file(&p).map_err(io_at(&p))?;
            removed.push(p);
        }
    }
    Ok(removed)
}
