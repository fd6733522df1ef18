//! Log records and their framing.
//!
//! A frame is `len: u32 LE | crc: u32 LE | payload`, where `payload` is the postcard
//! encoding of a [`Record`] and `crc` is CRC-32 over the four length bytes followed by
//! the payload (so a damaged length cannot pair with a valid checksum). A length of 0
//! is never written: a zero-filled region (what a file extended by a crash often holds)
//! therefore never parses as a record.

use super::error::{Result, StorageError};
use crate::raft::types::{Entry, HardState, Identity, Index, Term};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Bytes of frame header before the payload.
pub(crate) const FRAME_HEADER_BYTES: usize = 8;
/// The largest payload we write or accept. An entry larger than this is refused at
/// write time; a larger length field on disk is damage, not a record.
pub const MAX_RECORD_BYTES: usize = 32 << 20;

/// One step of the log's history. Replaying the records of all segments in order
/// rebuilds the log, the hard state and the snapshot boundary.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub(crate) enum Record {
    /// Append `entry`; its index is exactly one past the current last index.
    Entry(Entry),
    /// Drop every entry with index >= `from`.
    Truncate { from: Index },
    /// The hard state from here on.
    HardState(HardState),
    /// A snapshot through `last_index` was saved (the snapshot file holds it): entries
    /// up to it are covered. `keep_tail` records the Raft §7 decision taken when it
    /// was written: the log held `last_index` with `last_term`, so the entries after
    /// it stay; otherwise the whole log was discarded.
    Snapshot {
        last_index: Index,
        last_term: Term,
        keep_tail: bool,
    },
    /// The node's identity from here on (its cluster and incarnation).
    Identity(Identity),
}

/// The borrowed twin of [`Record`], so appending never clones an entry. Variant order
/// and shapes must match `Record` exactly: postcard encodes the variant by position.
#[derive(Serialize)]
pub(crate) enum RecordRef<'a> {
    Entry(&'a Entry),
    Truncate {
        from: Index,
    },
    HardState(&'a HardState),
    Snapshot {
        last_index: Index,
        last_term: Term,
        keep_tail: bool,
    },
    Identity(&'a Identity),
}

/// Appends the frame of `record` (a [`RecordRef`], or another log's record type) to
/// `buf`. On error `buf` is unchanged.
pub(crate) fn encode<T: Serialize + ?Sized>(record: &T, buf: &mut Vec<u8>) -> Result<()> {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    // `to_io` writes through `&mut Vec`, so on error the buffer is still ours to trim.
    if let Err(e) = postcard::to_io(record, &mut *buf) {
        buf.truncate(start);
        return Err(StorageError::InvalidWrite(format!(
            "cannot encode record: {e}"
        )));
    }
    let len = buf.len() - start - FRAME_HEADER_BYTES;
    if len > MAX_RECORD_BYTES {
        buf.truncate(start);
        return Err(StorageError::InvalidWrite(format!(
            "record of {len} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes"
        )));
    }
    let len_bytes = (len as u32).to_le_bytes();
    let crc = checksum(&len_bytes, &buf[start + FRAME_HEADER_BYTES..]);
    buf[start..start + 4].copy_from_slice(&len_bytes);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

fn checksum(len_bytes: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_bytes);
    h.update(payload);
    h.finalize()
}

/// What lies at one offset of a segment body (records of type `T`: Raft's [`Record`]
/// or another log's).
#[derive(Debug)]
pub(crate) enum Frame<T = Record> {
    /// A record and the total bytes of its frame.
    Record(T, usize),
    /// The offset is the end of the data.
    End,
    /// The frame is incomplete or its checksum fails: a torn write if nothing valid
    /// follows it, damage otherwise.
    Broken(String),
    /// The checksum holds but the payload is not a record: never a torn write.
    Undecodable(String),
}

/// Reads the frame at `off` in `buf`.
pub(crate) fn decode_at<T: DeserializeOwned>(buf: &[u8], off: usize) -> Frame<T> {
    let rest = &buf[off.min(buf.len())..];
    if rest.is_empty() {
        return Frame::End;
    }
    let payload = match checked_payload(rest) {
        Ok(p) => p,
        Err(reason) => return Frame::Broken(reason),
    };
    match postcard::from_bytes::<T>(payload) {
        Ok(r) => Frame::Record(r, FRAME_HEADER_BYTES + payload.len()),
        Err(e) => Frame::Undecodable(format!("record payload does not decode: {e}")),
    }
}

/// True when a frame with a plausible length and a matching checksum starts at `off`.
/// Used after a broken frame to tell a torn tail (nothing valid after) from damage.
pub(crate) fn valid_frame_at(buf: &[u8], off: usize) -> bool {
    off < buf.len() && checked_payload(&buf[off..]).is_ok()
}

fn checked_payload(rest: &[u8]) -> std::result::Result<&[u8], String> {
    if rest.len() < FRAME_HEADER_BYTES {
        return Err(format!("incomplete record header ({} bytes)", rest.len()));
    }
    let len_bytes: [u8; 4] = [rest[0], rest[1], rest[2], rest[3]];
    let crc = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
    let len = u32::from_le_bytes(len_bytes) as usize;
    if len == 0 || len > MAX_RECORD_BYTES {
        return Err(format!("implausible record length {len}"));
    }
    let Some(payload) = rest.get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len) else {
        return Err(format!(
            "record of {len} bytes runs past the end of the file"
        ));
    };
    if checksum(&len_bytes, payload) != crc {
        return Err("record checksum mismatch".to_string());
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::Payload;

    fn entry(index: Index) -> Entry {
        Entry {
            term: 3,
            index,
            payload: Payload::Command(vec![7; 10]),
        }
    }

    #[test]
    fn borrowed_and_owned_records_share_one_encoding() {
        let e = entry(5);
        let hs = HardState {
            term: 2,
            vote: Some(1),
            commit: 4,
        };
        let id = Identity {
            cluster: 7,
            incarnation: 9,
            bootstrap: Default::default(),
        };
        let cases = [
            (RecordRef::Identity(&id), Record::Identity(id.clone())),
            (RecordRef::Entry(&e), Record::Entry(e.clone())),
            (
                RecordRef::Truncate { from: 9 },
                Record::Truncate { from: 9 },
            ),
            (RecordRef::HardState(&hs), Record::HardState(hs)),
            (
                RecordRef::Snapshot {
                    last_index: 4,
                    last_term: 2,
                    keep_tail: true,
                },
                Record::Snapshot {
                    last_index: 4,
                    last_term: 2,
                    keep_tail: true,
                },
            ),
        ];
        for (r, want) in cases {
            let mut buf = Vec::new();
            encode(&r, &mut buf).unwrap();
            match decode_at::<Record>(&buf, 0) {
                Frame::Record(got, n) => {
                    assert_eq!(got, want);
                    assert_eq!(n, buf.len());
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(matches!(decode_at::<Record>(&buf, buf.len()), Frame::End));
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let e = entry(1);
        let mut buf = Vec::new();
        encode(&RecordRef::Entry(&e), &mut buf).unwrap();
        for i in 0..buf.len() {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert!(
                !matches!(decode_at::<Record>(&bad, 0), Frame::Record(..)),
                "byte {i}"
            );
        }
    }

    #[test]
    fn zeros_and_short_tails_are_broken_frames() {
        assert!(matches!(
            decode_at::<Record>(&[0u8; 64], 0),
            Frame::Broken(_)
        ));
        let mut buf = Vec::new();
        encode(&RecordRef::Entry(&entry(1)), &mut buf).unwrap();
        for cut in 1..buf.len() {
            assert!(matches!(
                decode_at::<Record>(&buf[..cut], 0),
                Frame::Broken(_)
            ));
            assert!(!valid_frame_at(&buf[..cut], 0));
        }
    }
}
