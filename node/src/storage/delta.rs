//! Delta snapshot files: a snapshot whose state-machine bytes extend those already
//! on disk (the key-value store writes a snapshot as the previous one's bytes plus
//! a delta section, see `kv`) is saved as only the bytes it adds.
//!
//! `dir/snapshot` holds a whole snapshot (the *base*). Each `snapshot-delta-{index}`
//! holds the bytes one later snapshot adds, with a head naming the base it extends
//! (its index and payload CRC), the length of the bytes before its own, and the
//! snapshot's meta. The saved snapshot is the base followed by every delta that
//! continues it, in index order. A delta is written under a temporary name, fsynced
//! and renamed into place like the base, so a crash leaves the chain as it was or
//! one link longer. Deltas of an older base (a crash between the rename of a new
//! base and their deletion) do not continue the chain and are ignored, then deleted
//! at the next start.
//!
//! Why: a full snapshot rewrites the whole state, while a delta writes about what
//! changed since the last one. On a store much larger than the entries between two
//! snapshots that is most of the snapshot I/O, which otherwise competes with the
//! write-ahead log's fsyncs for the disk.

use super::error::{Result, StorageError, io_at};
use super::files::{
    self, SNAPSHOT_FILE, SNAPSHOT_HEADER, SNAPSHOT_MAGIC, TMP_SUFFIX, parse_checked_header,
    parse_snapshot_header,
};
use super::pace::Pace;
use crate::raft::types::{Index, Snapshot, SnapshotData, SnapshotMeta};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Delta files are named this followed by the last index they cover (20 digits).
const DELTA_PREFIX: &str = "snapshot-delta-";
const DELTA_MAGIC: &[u8; 8] = b"LKVDELT1";

/// The whole snapshot file a delta extends: its last index and its payload's CRC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseId {
    pub index: Index,
    pub crc: u32,
}

/// What the snapshot files on disk add up to: the base they start from and the
/// state-machine bytes of the newest snapshot they hold (shared, not copied).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedSnapshot {
    pub base: BaseId,
    pub data: SnapshotData,
}

/// The head of a delta file, before the bytes the delta adds.
#[derive(Serialize, Deserialize)]
struct DeltaHead {
    base: BaseId,
    /// How many state-machine bytes come before this delta's.
    prefix_len: u64,
    meta: SnapshotMeta,
}

fn delta_name(index: Index) -> String {
    format!("{DELTA_PREFIX}{index:020}")
}

/// The delta files in `dir`, oldest first (temporary files are not listed).
fn list(dir: &Path) -> Result<Vec<(Index, PathBuf)>> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(io_at(dir))? {
        let item = item.map_err(io_at(dir))?;
        let name = item.file_name();
        let index = (name.to_str())
            .and_then(|n| n.strip_prefix(DELTA_PREFIX))
            .and_then(|n| n.parse::<Index>().ok());
        if let Some(index) = index {
            out.push((index, item.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `snapshot` can be saved as a delta after `saved`: its bytes extend them.
pub(crate) fn extends(snapshot: &Snapshot, saved: &SavedSnapshot) -> bool {
    snapshot.data.len() > saved.data.len() && snapshot.data.starts_with(&saved.data)
}

/// Writes the bytes `snapshot` adds to `saved` (see [`extends`]) as a delta file
/// under a temporary name, fsynced (paced like a whole snapshot). Returns the path
/// and the length of the bytes before the delta's.
pub(crate) fn prepare(
    dir: &Path,
    snapshot: &Snapshot,
    saved: &SavedSnapshot,
    no_fsync: bool,
    pace: Pace,
) -> Result<(PathBuf, u64)> {
    let index = snapshot.meta.last_index;
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", delta_name(index)));
    let prefix_len = saved.data.len() as u64;
    let head = DeltaHead {
        base: saved.base,
        prefix_len,
        meta: snapshot.meta.clone(),
    };
    files::write_checked(&tmp, DELTA_MAGIC, no_fsync, pace, |w| {
        postcard::to_io(&head, &mut *w).map_err(|e| {
            StorageError::InvalidWrite(format!("cannot write {}: {e}", tmp.display()))
        })?;
        (snapshot.data.slices_from(saved.data.len()))
            .try_for_each(|piece| w.write_all(piece))
            .map_err(io_at(&tmp))
    })?;
    Ok((tmp, prefix_len))
}

/// Renames a prepared delta file into place (durably).
pub(crate) fn place(dir: &Path, tmp: &Path, index: Index, no_fsync: bool) -> Result<()> {
    files::rename_into(dir, tmp, &delta_name(index), no_fsync)
}

/// Deletes every delta file: a new base replaced the one they extend. Not fsynced:
/// one that comes back after a crash no longer continues the chain.
pub(crate) fn remove_all(dir: &Path) -> Result<()> {
    let paths: Vec<PathBuf> = list(dir)?.into_iter().map(|(_, p)| p).collect();
    super::delete_segments(dir, &paths, true)
}

/// One delta file that continues the chain, open.
pub(crate) struct Link {
    pub file: File,
    pub meta: SnapshotMeta,
    /// Where in the file the added bytes start, and how many there are.
    pub data_at: u64,
    pub data_len: u64,
}

/// Walks the delta files that continue the base `base`, whose state-machine bytes
/// are `len` long and cover through `index`: checks each (a damaged one is an error
/// naming it), and calls `f` with it and the bytes it adds, in order. Returns the
/// delta files that do not continue it (left from an older base). A file that
/// vanishes meanwhile (a newer base replaced the chain) ends the walk.
fn walk(
    dir: &Path,
    base: BaseId,
    mut len: u64,
    mut index: Index,
    mut f: impl FnMut(Link, &[u8]) -> Result<()>,
) -> Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for (named, path) in list(dir)? {
        // Named at or before the chain's end: of an older base, whatever it holds.
        if named <= index {
            stale.push(path);
            continue;
        }
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(io_at(&path)(e)),
        };
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_at(&path))?;
        let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        let header = parse_checked_header(&bytes, DELTA_MAGIC)
            .map_err(|_| corrupt(0, "not a delta snapshot file (bad header)".into()))?;
        let payload = &bytes[SNAPSHOT_HEADER..];
        if payload.len() as u64 != header.payload_len {
            return Err(corrupt(
                8,
                format!(
                    "header says {} payload bytes, file holds {}",
                    header.payload_len,
                    payload.len()
                ),
            ));
        }
        if crc32fast::hash(payload) != header.crc {
            return Err(corrupt(SNAPSHOT_HEADER as u64, "checksum mismatch".into()));
        }
        let (head, added) = postcard::take_from_bytes::<DeltaHead>(payload).map_err(|e| {
            corrupt(
                SNAPSHOT_HEADER as u64,
                format!("delta head does not decode: {e}"),
            )
        })?;
        if head.meta.last_index != named {
            return Err(corrupt(
                SNAPSHOT_HEADER as u64,
                format!(
                    "covers index {}, not the {named} its name says",
                    head.meta.last_index
                ),
            ));
        }
        if head.base != base || head.prefix_len != len {
            stale.push(path);
            continue;
        }
        len += added.len() as u64;
        index = named;
        let link = Link {
            file,
            meta: head.meta,
            data_at: (bytes.len() - added.len()) as u64,
            data_len: added.len() as u64,
        };
        f(link, added)?;
    }
    Ok(stale)
}

/// Reads the saved snapshot: the base with every delta that continues it, as one
/// snapshot whose bytes share a single buffer. Deletes delta files that do not
/// continue it (at start only, when nothing else writes the directory).
pub(crate) fn load(dir: &Path) -> Result<Option<(Snapshot, SavedSnapshot)>> {
    let Some(whole) = files::read_whole_snapshot(dir)? else {
        return Ok(None);
    };
    let base = BaseId {
        index: whole.meta.last_index,
        crc: whole.crc,
    };
    let (mut bytes, mut meta, data_at) = (whole.bytes, whole.meta, whole.data_at);
    // Room for the chain at once (the delta files' sizes, headers included), so the
    // buffer is not regrown, and copied, delta by delta.
    let more: u64 = (list(dir)?.iter())
        .filter(|(named, _)| *named > base.index)
        .filter_map(|(_, path)| fs::metadata(path).ok())
        .map(|m| m.len())
        .sum();
    bytes.reserve(usize::try_from(more).unwrap_or(0));
    let stale = walk(
        dir,
        base,
        (bytes.len() - data_at) as u64,
        base.index,
        |link, added| {
            bytes.extend_from_slice(added);
            meta = link.meta;
            Ok(())
        },
    )?;
    for path in stale {
        tracing::info!(path = %path.display(), "removed a delta snapshot of an older snapshot");
        fs::remove_file(&path).map_err(io_at(&path))?;
    }
    let data = SnapshotData::from(bytes::Bytes::from(bytes).slice(data_at..));
    let saved = SavedSnapshot {
        base,
        data: data.clone(),
    };
    Ok(Some((Snapshot { meta, data }, saved)))
}

/// The saved snapshot as the bytes of one snapshot file, for sending to a peer: the
/// snapshot file itself when no delta continues it; otherwise the file the base
/// and its deltas add up to, read from their pieces on disk (never built whole in
/// memory). The pieces stay open, so a newer snapshot replacing them meanwhile
/// does not disturb a transfer.
pub struct Outgoing {
    pub meta: SnapshotMeta,
    /// The file's length and its payload's CRC (as in its header).
    pub total: u64,
    pub crc: u32,
    pieces: Vec<Piece>,
}

/// A run of the outgoing file's bytes, starting at `at` in it.
enum Piece {
    Mem {
        at: u64,
        bytes: Vec<u8>,
    },
    File {
        at: u64,
        file: File,
        from: u64,
        len: u64,
    },
}

impl Piece {
    fn span(&self) -> (u64, u64) {
        match self {
            Piece::Mem { at, bytes } => (*at, bytes.len() as u64),
            Piece::File { at, len, .. } => (*at, *len),
        }
    }
}

/// Most bytes of a snapshot file read to find its meta.
const META_PROBE: usize = 64 << 10;

/// What [`Outgoing::open`] found.
pub enum Opened {
    /// No snapshot.
    None,
    /// The snapshot files do not reach the index asked for yet (they reach this one
    /// at most).
    Older(Index),
    Ready(Outgoing),
}

impl Outgoing {
    /// Opens the saved snapshot of `dir` for sending, once it covers `wanted`.
    /// Blocking: with deltas it reads every piece once, to check the base file's
    /// checksum and compute the whole's; an older snapshot is told from the file
    /// names and the base's head, without reading them.
    pub fn open(dir: &Path, wanted: Index) -> Result<Opened> {
        let path = dir.join(SNAPSHOT_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Opened::None),
            Err(e) => return Err(io_at(&path)(e)),
        };
        let total = file.metadata().map_err(io_at(&path))?.len();
        let mut probe = vec![0u8; (total as usize).min(META_PROBE)];
        file.read_exact_at(&mut probe, 0).map_err(io_at(&path))?;
        let corrupt = |reason: String| StorageError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason,
        };
        let header = parse_snapshot_header(&probe).map_err(|r| corrupt(r.into()))?;
        let (meta, rest) = postcard::take_from_bytes::<SnapshotMeta>(&probe[SNAPSHOT_HEADER..])
            .map_err(|e| corrupt(format!("meta does not decode: {e}")))?;
        let (base_len, data) = postcard::take_from_bytes::<u64>(rest)
            .map_err(|e| corrupt(format!("data length does not decode: {e}")))?;
        let data_at = (probe.len() - data.len()) as u64;
        if data_at + base_len != total {
            return Err(corrupt(format!(
                "holds {total} bytes, its data ends at {}",
                data_at + base_len
            )));
        }
        let base = BaseId {
            index: meta.last_index,
            crc: header.crc,
        };
        let newest = (list(dir)?.last().map(|(i, _)| *i)).map_or(base.index, |i| i.max(base.index));
        if newest < wanted {
            return Ok(Opened::Older(newest));
        }
        let mut links = Vec::new();
        walk(dir, base, base_len, base.index, |link, _| {
            links.push(link);
            Ok(())
        })?;
        let Some(last) = links.last() else {
            let pieces = vec![Piece::File {
                at: 0,
                file,
                from: 0,
                len: total,
            }];
            let out = Outgoing {
                meta,
                total,
                crc: header.crc,
                pieces,
            };
            return Ok(out.ready_for(wanted));
        };
        let meta = last.meta.clone();
        let data_len = base_len + links.iter().map(|l| l.data_len).sum::<u64>();
        let encode = |e: postcard::Error| corrupt(format!("cannot encode the meta: {e}"));
        let mut head = vec![0u8; SNAPSHOT_HEADER];
        head.extend(postcard::to_stdvec(&meta).map_err(encode)?);
        head.extend(postcard::to_stdvec(&data_len).map_err(encode)?);
        let mut at = head.len() as u64;
        let mut pieces = vec![Piece::File {
            at,
            file,
            from: data_at,
            len: base_len,
        }];
        at += base_len;
        for l in links {
            pieces.push(Piece::File {
                at,
                file: l.file,
                from: l.data_at,
                len: l.data_len,
            });
            at += l.data_len;
        }
        let mut out = Outgoing {
            meta,
            total: at,
            crc: 0,
            pieces,
        };
        // The CRC covers everything after the header: the meta, the length, the data.
        // The base file's own CRC is checked on the way (over its meta and data), so
        // damage in it is not passed on under a fresh checksum.
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head[SNAPSHOT_HEADER..]);
        let mut base_crc = crc32fast::Hasher::new();
        base_crc.update(&probe[SNAPSHOT_HEADER..data_at as usize]);
        let base_end = head.len() as u64 + base_len;
        let mut buf = vec![0u8; 1 << 20];
        let mut offset = head.len() as u64;
        while offset < out.total {
            let n = (out.total - offset).min(buf.len() as u64) as usize;
            out.read_pieces(offset, &mut buf[..n])
                .map_err(|e| corrupt(format!("cannot read a piece: {e}")))?;
            hasher.update(&buf[..n]);
            if offset < base_end {
                base_crc.update(&buf[..n.min((base_end - offset) as usize)]);
            }
            offset += n as u64;
        }
        if base_crc.finalize() != header.crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        out.crc = hasher.finalize();
        head[..8].copy_from_slice(SNAPSHOT_MAGIC);
        head[8..16].copy_from_slice(&(out.total - SNAPSHOT_HEADER as u64).to_le_bytes());
        head[16..20].copy_from_slice(&out.crc.to_le_bytes());
        out.pieces.insert(0, Piece::Mem { at: 0, bytes: head });
        Ok(out.ready_for(wanted))
    }

    fn ready_for(self, wanted: Index) -> Opened {
        match self.meta.last_index < wanted {
            true => Opened::Older(self.meta.last_index),
            false => Opened::Ready(self),
        }
    }

    /// How many delta files the snapshot file is sent with.
    pub fn deltas(&self) -> usize {
        // The head and the base's data make two pieces when there are deltas.
        self.pieces.len().saturating_sub(2)
    }

    /// Fills `buf` with the file's bytes from `offset` (blocking).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        if offset + buf.len() as u64 > self.total {
            return Err(std::io::Error::other(format!(
                "read past the end ({} of {})",
                offset + buf.len() as u64,
                self.total
            )));
        }
        self.read_pieces(offset, buf)
    }

    fn read_pieces(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let end = offset + buf.len() as u64;
        for p in &self.pieces {
            let (at, len) = p.span();
            let (lo, hi) = (offset.max(at), end.min(at + len));
            if lo >= hi {
                continue;
            }
            let dst = &mut buf[(lo - offset) as usize..(hi - offset) as usize];
            match p {
                Piece::Mem { bytes, .. } => {
                    dst.copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize])
                }
                Piece::File { file, from, .. } => file.read_exact_at(dst, from + (lo - at))?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Membership;

    fn snap(last_index: Index, data: Vec<u8>) -> Snapshot {
        Snapshot {
            meta: SnapshotMeta {
                last_index,
                last_term: 2,
                membership: Membership::default(),
            },
            data: data.into(),
        }
    }

    fn ready(dir: &Path, wanted: Index) -> Outgoing {
        match Outgoing::open(dir, wanted) {
            Ok(Opened::Ready(out)) => out,
            Ok(Opened::Older(i)) => panic!("holds only {i}"),
            Ok(Opened::None) => panic!("no snapshot"),
            Err(e) => panic!("{e}"),
        }
    }

    fn read_all(out: &Outgoing) -> Vec<u8> {
        let mut all = vec![0u8; out.total as usize];
        // In uneven pieces, as chunks cross piece boundaries.
        let mut at = 0;
        while at < all.len() {
            let n = 777.min(all.len() - at);
            out.read_at(at as u64, &mut all[at..at + n]).expect("read");
            at += n;
        }
        all
    }

    #[test]
    fn the_outgoing_file_of_a_chain_is_the_file_of_the_whole_snapshot() {
        let dir = tempfile::tempdir().expect("tmp");
        let d = dir.path();
        let image: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        let base = snap(10, image.clone());
        let (tmp, crc) = files::prepare_snapshot(d, &base, true, Pace::default()).expect("base");
        files::rename_into(d, &tmp, SNAPSHOT_FILE, true).expect("place");
        let alone = ready(d, 10);
        assert_eq!(alone.deltas(), 0);
        assert_eq!(
            read_all(&alone),
            fs::read(d.join(SNAPSHOT_FILE)).expect("read")
        );

        let mut saved = SavedSnapshot {
            base: BaseId { index: 10, crc },
            data: base.data.clone(),
        };
        let mut data = image;
        for (index, add) in [(20, &b"one"[..]), (30, &[9u8; 70_000][..])] {
            data.extend_from_slice(add);
            let s = snap(index, data.clone());
            assert!(extends(&s, &saved));
            let (tmp, _) = prepare(d, &s, &saved, true, Pace::default()).expect("delta");
            place(d, &tmp, index, true).expect("place");
            saved.data = s.data.clone();
        }
        assert!(matches!(Outgoing::open(d, 31), Ok(Opened::Older(30))));
        let out = ready(d, 30);
        assert_eq!(out.deltas(), 2);
        let want = files::encode_snapshot(&snap(30, data.clone())).expect("encode");
        assert_eq!(out.meta.last_index, 30);
        assert_eq!(out.total, want.len() as u64);
        assert_eq!(read_all(&out), want);
        assert_eq!(out.crc, parse_snapshot_header(&want).expect("header").crc);
        assert!(out.read_at(out.total - 1, &mut [0u8; 2]).is_err());
        // What recovery reads is the same snapshot.
        let (loaded, again) = load(d).expect("load").expect("a snapshot");
        assert_eq!(loaded, snap(30, data));
        assert_eq!(again, saved);
        // Damage in the base is not passed on under the whole's fresh checksum.
        let path = d.join(SNAPSHOT_FILE);
        let mut bytes = fs::read(&path).expect("read");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        fs::write(&path, bytes).expect("write");
        assert!(Outgoing::open(d, 30).is_err());
    }
}
