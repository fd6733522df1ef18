//! Small file-system building blocks: directory fsync, atomic whole-file replace,
//! the snapshot file and the directory lock.

use super::error::{Result, StorageError, io_at};
use super::pace::{Crc, Pace, Paced};
use crate::raft::types::{Snapshot, SnapshotMeta};
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

pub(crate) const SNAPSHOT_MAGIC: &[u8; 8] = b"LKVSNAP1";

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
    let mut f = File::create(&tmp).map_err(io_at(&tmp))?;
    f.write_all(bytes).map_err(io_at(&tmp))?;
    if !no_fsync {
        f.sync_all().map_err(io_at(&tmp))?;
    }
    drop(f);
    rename_into(dir, &tmp, name, no_fsync)
}

/// Renames the complete (and, unless `no_fsync`, synced) file `from` over `dir/name`
/// and makes the rename durable with a directory fsync.
pub(crate) fn rename_into(dir: &Path, from: &Path, name: &str, no_fsync: bool) -> Result<()> {
    let dst = dir.join(name);
    fs::rename(from, &dst).map_err(io_at(&dst))?;
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
/// an optional byte rate, and its writeback started every few MiB so the log's fsyncs never
/// queue behind one large flush. Same format as [`encode_snapshot`].
pub(crate) fn prepare_snapshot(
    dir: &Path,
    snapshot: &Snapshot,
    no_fsync: bool,
    pace: Pace,
) -> Result<(PathBuf, u32)> {
    let tmp = dir.join(format!(
        "{SNAPSHOT_FILE}-{}{TMP_SUFFIX}",
        snapshot.meta.last_index
    ));
    let crc = write_checked(&tmp, SNAPSHOT_MAGIC, no_fsync, pace, |w| {
        // As postcard encodes the `Snapshot`: its meta, then the data as a byte
        // string (a varint length, then the bytes), written piece by piece.
        let len = snapshot.data.len() as u64;
        postcard::to_io(&(&snapshot.meta, len), &mut *w).map_err(|e| {
            StorageError::InvalidWrite(format!("cannot write snapshot {}: {e}", tmp.display()))
        })?;
        (snapshot.data.pieces().iter())
            .try_for_each(|piece| w.write_all(piece))
            .map_err(io_at(&tmp))
    })?;
    Ok((tmp, crc))
}

/// Creates `path` as a checked file: `magic`, the payload's length (u64 LE) and
/// CRC-32 (u32 LE), then the payload `body` writes, streamed and paced by `pace`
/// (see [`prepare_snapshot`]); fsynced unless `no_fsync`. Returns the payload's CRC.
pub(crate) fn write_checked(
    path: &Path,
    magic: &[u8; 8],
    no_fsync: bool,
    pace: Pace,
    body: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<u32> {
    let f = File::create(path).map_err(io_at(path))?;
    let sync = match no_fsync {
        true => None,
        false => Some(f.try_clone().map_err(io_at(path))?),
    };
    let mut buf = BufWriter::with_capacity(1 << 20, f);
    buf.write_all(&[0u8; SNAPSHOT_HEADER])
        .map_err(io_at(path))?;
    let mut w = Paced::new(Crc::new(buf), pace, sync);
    body(&mut w)?;
    let (crc, payload_len, buf) = w.into_inner().finish();
    let mut f = buf.into_inner().map_err(|e| io_at(path)(e.into_error()))?;
    let mut header = [0u8; SNAPSHOT_HEADER];
    header[..8].copy_from_slice(magic);
    header[8..16].copy_from_slice(&payload_len.to_le_bytes());
    header[16..20].copy_from_slice(&crc.to_le_bytes());
    f.seek(SeekFrom::Start(0)).map_err(io_at(path))?;
    f.write_all(&header).map_err(io_at(path))?;
    if !no_fsync {
        f.sync_all().map_err(io_at(path))?;
    }
    Ok(crc)
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
    let crc = crc32fast::hash(&out[20..]);
    out[8..16].copy_from_slice(&payload_len.to_le_bytes());
    out[16..20].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Reads `dir/snapshot` if it exists: the whole file, checked, with its meta, the
/// offset its state-machine bytes start at (they run to its end) and its CRC. Any
/// damage is an error naming the file: a snapshot is written atomically, so a bad
/// one was not made by a crash.
pub(crate) fn read_whole_snapshot(dir: &Path) -> Result<Option<WholeSnapshot>> {
    let path = dir.join(SNAPSHOT_FILE);
    let Some(bytes) = read_snapshot_bytes(&path)? else {
        return Ok(None);
    };
    let (meta, data_at) = split_raft_snapshot(&path, &bytes)?;
    let crc = parse_snapshot_header(&bytes)
        .map_err(|r| StorageError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: r.into(),
        })?
        .crc;
    Ok(Some(WholeSnapshot {
        bytes,
        meta,
        data_at,
        crc,
    }))
}

/// A whole Raft snapshot file, read and checked (see [`read_whole_snapshot`]).
pub(crate) struct WholeSnapshot {
    pub bytes: Vec<u8>,
    pub meta: SnapshotMeta,
    /// Where the state-machine bytes start; they run to the end.
    pub data_at: usize,
    /// The payload's CRC-32, from the header.
    pub crc: u32,
}

/// Reads the snapshot file `dir/name` (written by [`encode_snapshot`]) if it exists.
pub(crate) fn load_snapshot_file<T: serde::de::DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>> {
    let path = dir.join(name);
    let Some(bytes) = read_snapshot_bytes(&path)? else {
        return Ok(None);
    };
    postcard::from_bytes(&bytes[SNAPSHOT_HEADER..])
        .map(Some)
        .map_err(|e| StorageError::Corrupt {
            path,
            offset: SNAPSHOT_HEADER as u64,
            reason: format!("snapshot does not decode: {e}"),
        })
}

/// Reads a Raft snapshot file whole (a streamed InstallSnapshot received it at
/// `path`). The state-machine bytes are not copied: [`Snapshot::data`] shares the
/// buffer the file was read into, so the peak is the file's size once.
pub(crate) fn load_raft_snapshot(path: &Path) -> Result<Snapshot> {
    match read_snapshot_bytes(path)? {
        Some(bytes) => decode_raft_snapshot(path, bytes),
        None => Err(StorageError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason: "no such snapshot file".into(),
        }),
    }
}

/// Splits a verified Raft snapshot file into its meta and its (shared) data.
fn decode_raft_snapshot(path: &Path, bytes: Vec<u8>) -> Result<Snapshot> {
    let (meta, start) = split_raft_snapshot(path, &bytes)?;
    let data = bytes::Bytes::from(bytes).slice(start..);
    Ok(Snapshot {
        meta,
        data: data.into(),
    })
}

/// The meta of a verified Raft snapshot file and the offset of its state-machine
/// bytes, which run to the end of the file.
pub(crate) fn split_raft_snapshot(path: &Path, bytes: &[u8]) -> Result<(SnapshotMeta, usize)> {
    let corrupt = |reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset: SNAPSHOT_HEADER as u64,
        reason,
    };
    let payload = &bytes[SNAPSHOT_HEADER..];
    let (meta, rest) = postcard::take_from_bytes::<SnapshotMeta>(payload)
        .map_err(|e| corrupt(format!("snapshot meta does not decode: {e}")))?;
    // `data` is encoded as a byte string: a varint length, then the bytes.
    let (len, data) = postcard::take_from_bytes::<u64>(rest)
        .map_err(|e| corrupt(format!("snapshot data length does not decode: {e}")))?;
    if data.len() as u64 != len {
        return Err(corrupt(format!(
            "snapshot data says {len} bytes, file holds {}",
            data.len()
        )));
    }
    Ok((meta, bytes.len() - data.len()))
}

/// The whole snapshot file at `path`, checked (magic, length, checksum), or `None`
/// when there is none.
pub(crate) fn read_snapshot_bytes(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at(path)(e)),
    };
    let len = f.metadata().map_err(io_at(path))?.len();
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.to_path_buf(),
        offset,
        reason,
    };
    let mut bytes = Vec::with_capacity(len as usize);
    f.read_to_end(&mut bytes).map_err(io_at(path))?;
    let header = parse_snapshot_header(&bytes).map_err(|r| corrupt(0, r.into()))?;
    if (bytes.len() - SNAPSHOT_HEADER) as u64 != header.payload_len {
        return Err(corrupt(
            8,
            format!(
                "header says {} payload bytes, file holds {}",
                header.payload_len,
                bytes.len() - SNAPSHOT_HEADER
            ),
        ));
    }
    if crc32fast::hash(&bytes[SNAPSHOT_HEADER..]) != header.crc {
        return Err(corrupt(
            SNAPSHOT_HEADER as u64,
            "snapshot checksum mismatch".into(),
        ));
    }
    Ok(Some(bytes))
}

/// Length of a snapshot file's header: magic, payload length, payload CRC-32.
pub(crate) const SNAPSHOT_HEADER: usize = 20;

/// A snapshot file's header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SnapshotHeader {
    /// Bytes after the header.
    pub payload_len: u64,
    /// CRC-32 of those bytes.
    pub crc: u32,
}

/// Reads the header at the start of `bytes` (at least [`SNAPSHOT_HEADER`] of them).
pub(crate) fn parse_snapshot_header(
    bytes: &[u8],
) -> std::result::Result<SnapshotHeader, &'static str> {
    parse_checked_header(bytes, SNAPSHOT_MAGIC)
}

/// Reads the header of a file written by [`write_checked`] with `magic`.
pub(crate) fn parse_checked_header(
    bytes: &[u8],
    magic: &[u8; 8],
) -> std::result::Result<SnapshotHeader, &'static str> {
    if bytes.len() < SNAPSHOT_HEADER || &bytes[..8] != magic {
        return Err("not a snapshot file (bad header)");
    }
    let mut len = [0u8; 8];
    len.copy_from_slice(&bytes[8..16]);
    let mut crc = [0u8; 4];
    crc.copy_from_slice(&bytes[16..20]);
    Ok(SnapshotHeader {
        payload_len: u64::from_le_bytes(len),
        crc: u32::from_le_bytes(crc),
    })
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
