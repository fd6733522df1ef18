//! Segment files: naming, header, creation and the recovery scan.
//!
//! A segment is `{seq:016x}-{first:016x}.wal`: `seq` orders segments (consecutive, so
//! a missing one is noticed) and `first` is the index the log expected next when the
//! segment was created (a truncation may later reach back before it). The file starts
//! with a 28-byte header (magic, seq, first, CRC-32 of those) followed by frames (see
//! `record`). Segments are created complete with their header under a temporary name
//! and renamed into place, so a header is never torn.

use super::error::{Result, StorageError, io_at};
use super::files::{TMP_SUFFIX, fsync_dir};
use super::record::{self, Frame};
use crate::raft::types::Index;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LKVWAL01";
/// Bytes of the segment header.
pub(crate) const HEADER_BYTES: u64 = 28;
const SUFFIX: &str = ".wal";
/// Recovery reads a whole segment into memory; a file larger than this (far above
/// any segment size plus one sync's records) is refused instead.
const MAX_SEGMENT_READ_BYTES: u64 = 1 << 30;

/// Identity of one segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct SegmentId {
    pub(crate) seq: u64,
    pub(crate) first: Index,
}

impl SegmentId {
    pub(crate) fn file_name(&self) -> String {
        format!("{:016x}-{:016x}{SUFFIX}", self.seq, self.first)
    }

    pub(crate) fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }

    /// Parses a file name; `None` if it is not a segment name at all.
    pub(crate) fn parse(name: &str) -> Option<SegmentId> {
        let stem = name.strip_suffix(SUFFIX)?;
        let (seq, first) = stem.split_once('-')?;
        if seq.len() != 16 || first.len() != 16 {
            return None;
        }
        let id = SegmentId {
            seq: u64::from_str_radix(seq, 16).ok()?,
            first: Index::from_str_radix(first, 16).ok()?,
        };
        // Only the exact spelling we write (lowercase hex) names a segment.
        (id.file_name() == name).then_some(id)
    }

    fn header(&self) -> [u8; HEADER_BYTES as usize] {
        let mut h = [0u8; HEADER_BYTES as usize];
        h[..8].copy_from_slice(MAGIC);
        h[8..16].copy_from_slice(&self.seq.to_le_bytes());
        h[16..24].copy_from_slice(&self.first.to_le_bytes());
        let crc = crc32fast::hash(&h[..24]);
        h[24..].copy_from_slice(&crc.to_le_bytes());
        h
    }
}

/// Lists the segments in `dir`, ordered by `seq`. A `.wal` file with a malformed
/// name is an error: something other than us wrote into the directory.
pub(crate) fn list(dir: &Path) -> Result<Vec<SegmentId>> {
    let mut out = Vec::new();
    for item in fs::read_dir(dir).map_err(io_at(dir))? {
        let item = item.map_err(io_at(dir))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if !name.ends_with(SUFFIX) {
            continue;
        }
        match SegmentId::parse(&name) {
            Some(id) => out.push(id),
            None => {
                return Err(StorageError::Inconsistent {
                    dir: dir.to_path_buf(),
                    reason: format!("{name} looks like a segment but its name is malformed"),
                });
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The first segment that holds no record at all (its file ends with the header).
/// Every segment is created with at least the hard-state record, so such a segment
/// was cut back after it was written.
pub(crate) fn first_without_records(
    dir: &Path,
    segments: &[SegmentId],
) -> Result<Option<SegmentId>> {
    for &id in segments {
        let path = id.path(dir);
        let len = fs::metadata(&path).map_err(io_at(&path))?.len();
        if len <= HEADER_BYTES {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

/// Creates segment `id` holding the header and `initial` (complete frames), durable
/// before it appears under its name. Returns the open file and its length.
pub(crate) fn create(
    dir: &Path,
    id: SegmentId,
    initial: &[u8],
    no_fsync: bool,
) -> Result<(File, u64)> {
    let path = id.path(dir);
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", id.file_name()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_at(&tmp))?;
    f.write_all(&id.header()).map_err(io_at(&tmp))?;
    f.write_all(initial).map_err(io_at(&tmp))?;
    if !no_fsync {
        f.sync_data().map_err(io_at(&tmp))?;
    }
    fs::rename(&tmp, &path).map_err(io_at(&path))?;
    if !no_fsync {
        fsync_dir(dir)?;
    }
    Ok((f, HEADER_BYTES + initial.len() as u64))
}

/// Hands `buf` (complete frames) to the OS at the end of segment file `file`
/// (`path`, `len` bytes long so far), with no fsync; `buf` is emptied and `len`
/// grows by what was written. On error nothing is known about the file.
pub(crate) fn append(file: &mut File, path: &Path, buf: &mut Vec<u8>, len: &mut u64) -> Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    file.write_all(buf).map_err(io_at(path))?;
    *len += buf.len() as u64;
    buf.clear();
    Ok(())
}

/// Cuts the torn record at `offset` off the end of the last segment `path` (a write
/// cut short by a crash: never acknowledged).
pub(crate) fn cut_torn_tail(path: &Path, offset: u64, reason: &str, no_fsync: bool) -> Result<()> {
    tracing::warn!(
        path = %path.display(), offset, %reason,
        "cutting off a torn record at the end of the log (an unacknowledged write)"
    );
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_at(path))?;
    f.set_len(offset).map_err(io_at(path))?;
    if !no_fsync {
        f.sync_data().map_err(io_at(path))?;
    }
    Ok(())
}

/// How a scanned segment ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Every byte belongs to a valid record.
    Clean,
    /// A broken frame at `offset` with nothing valid after it: a write cut short.
    Torn { offset: u64, reason: String },
}

/// Reads segment `id`, calling `on_record(offset, record)` for each record in order.
/// A broken frame followed by any valid frame is damage (an error naming the file and
/// offset); a broken frame with nothing valid after it is reported as `Torn` and the
/// caller decides whether a tear is acceptable there.
pub(crate) fn scan<T: serde::de::DeserializeOwned>(
    dir: &Path,
    id: SegmentId,
    mut on_record: impl FnMut(u64, T) -> Result<()>,
) -> Result<Ending> {
    let path = id.path(dir);
    let corrupt = |offset: u64, reason: String| StorageError::Corrupt {
        path: path.clone(),
        offset,
        reason,
    };
    let mut file = File::open(&path).map_err(io_at(&path))?;
    let len = file.metadata().map_err(io_at(&path))?.len();
    if len > MAX_SEGMENT_READ_BYTES {
        return Err(corrupt(
            0,
            format!(
                "segment of {len} bytes is larger than any we write ({MAX_SEGMENT_READ_BYTES})"
            ),
        ));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.read_to_end(&mut bytes).map_err(io_at(&path))?;
    let header = HEADER_BYTES as usize;
    if bytes.len() < header || bytes[..header] != id.header() {
        return Err(corrupt(
            0,
            "segment header is missing, damaged, or does not match the file name".into(),
        ));
    }
    let mut off = header;
    loop {
        match record::decode_at::<T>(&bytes, off) {
            Frame::End => return Ok(Ending::Clean),
            Frame::Record(r, n) => {
                on_record(off as u64, r)?;
                off += n;
            }
            Frame::Undecodable(reason) => return Err(corrupt(off as u64, reason)),
            Frame::Broken(reason) => {
                if let Some(later) =
                    (off + 1..bytes.len()).find(|&p| record::valid_frame_at(&bytes, p))
                {
                    return Err(corrupt(
                        off as u64,
                        format!("{reason}, yet a valid record follows at offset {later}"),
                    ));
                }
                return Ok(Ending::Torn {
                    offset: off as u64,
                    reason,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_our_spelling_parses() {
        let id = SegmentId {
            seq: 0x2a,
            first: 1_000_001,
        };
        let name = id.file_name();
        assert_eq!(name, "000000000000002a-00000000000f4241.wal");
        assert_eq!(SegmentId::parse(&name), Some(id));
        assert_eq!(
            SegmentId::parse(&name.to_uppercase().replace(".WAL", ".wal")),
            None
        );
        assert_eq!(SegmentId::parse("2a-f4241.wal"), None);
        assert_eq!(
            SegmentId::parse("000000000000002a-00000000000f4241.log"),
            None
        );
    }
}
