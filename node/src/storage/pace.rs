//! Pacing for background bulk work (snapshots): a writer that yields the CPU every
//! chunk, holds an optional byte rate, and makes a file durable a piece at a time.
//!
//! Why: on a small machine a snapshot competes with the write-ahead log for the two
//! things client latency depends on, the CPU and the disk's flush queue. A snapshot
//! file written in one go and fsynced at the end leaves the kernel with a large pile
//! of dirty pages; the log's next fsync then waits behind them in the disk's queue.
//! Starting the writeback every few MiB keeps each batch small; doing it with
//! `posix_fadvise(DONTNEED)` rather than `fdatasync` adds no device cache flush of
//! ours for the log's fsyncs to queue behind (the file gets one fsync at its end).

use std::fs::File;
use std::io::{self, Write};
use std::time::{Duration, Instant};

/// How background bulk writes are paced. The default yields every 256 KiB, starts
/// a file's writeback every 4 MiB and sets no byte rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pace {
    /// Bytes between two yields of the CPU (and rate checks).
    pub chunk_bytes: usize,
    /// Most bytes per second; 0 for no limit.
    pub bytes_per_s: u64,
    /// Bytes between two starts of the writeback of a file being written; 0 leaves
    /// it all to the file's one fsync at the end.
    pub sync_every_bytes: u64,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            chunk_bytes: 256 << 10,
            bytes_per_s: 0,
            sync_every_bytes: 4 << 20,
        }
    }
}

/// A writer that paces the bytes going through it (see [`Pace`]). With `sync` set,
/// every `sync_every_bytes` it flushes `inner` and starts that file's writeback.
pub struct Paced<W: Write> {
    inner: W,
    pace: Pace,
    sync: Option<File>,
    started: Instant,
    written: u64,
    since_yield: usize,
    since_sync: u64,
}

impl<W: Write> Paced<W> {
    pub fn new(inner: W, pace: Pace, sync: Option<File>) -> Paced<W> {
        Paced {
            inner,
            pace,
            sync,
            started: Instant::now(),
            written: 0,
            since_yield: 0,
            since_sync: 0,
        }
    }

    /// Bytes written through so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer back (not flushed).
    pub fn into_inner(self) -> W {
        self.inner
    }

    fn account(&mut self, n: usize) -> io::Result<()> {
        self.written += n as u64;
        self.since_yield += n;
        self.since_sync += n as u64;
        if self.sync.is_some()
            && self.pace.sync_every_bytes > 0
            && self.since_sync >= self.pace.sync_every_bytes
        {
            self.since_sync = 0;
            self.inner.flush()?;
            if let Some(f) = &self.sync {
                // Start writing back what is dirty (and let go of the cached pages)
                // without waiting and without a device cache flush: the log's
                // fsyncs then never queue behind a large pile of dirty pages nor
                // behind flushes of ours. The file's one fsync comes at its end.
                nix::fcntl::posix_fadvise(
                    f,
                    0,
                    0,
                    nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
                )
                .map_err(io::Error::from)?;
            }
        }
        if self.since_yield >= self.pace.chunk_bytes.max(1) {
            self.since_yield = 0;
            if self.pace.bytes_per_s > 0 {
                let due =
                    Duration::from_secs_f64(self.written as f64 / self.pace.bytes_per_s as f64);
                let elapsed = self.started.elapsed();
                if due > elapsed {
                    std::thread::sleep(due - elapsed);
                    return Ok(());
                }
            }
            std::thread::yield_now();
        }
        Ok(())
    }
}

impl<W: Write> Write for Paced<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.account(n)?;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A writer that passes bytes through and keeps their CRC-32 and count.
pub struct Crc<W: Write> {
    pub inner: W,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Crc<W> {
    pub fn new(inner: W) -> Crc<W> {
        Crc {
            inner,
            hasher: crc32fast::Hasher::new(),
            len: 0,
        }
    }

    /// The checksum and length of everything written, and the inner writer.
    pub fn finish(self) -> (u32, u64, W) {
        (self.hasher.finalize(), self.len, self.inner)
    }
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_rate_is_held() {
        let pace = Pace {
            chunk_bytes: 1024,
            bytes_per_s: 100 << 10,
            sync_every_bytes: 0,
        };
        let mut w = Paced::new(Vec::new(), pace, None);
        let t0 = Instant::now();
        for _ in 0..20 {
            w.write_all(&[7u8; 1024]).expect("write to a Vec");
        }
        // 20 KiB at 100 KiB/s: at least about 0.2 s (the last chunk's wait included).
        assert!(
            t0.elapsed() >= Duration::from_millis(190),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(w.written(), 20 * 1024);
        assert_eq!(w.into_inner().len(), 20 * 1024);
    }

    #[test]
    fn crc_matches_the_one_shot_checksum() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31) as u8).collect();
        let mut w = Crc::new(Vec::new());
        for part in data.chunks(333) {
            w.write_all(part).expect("write to a Vec");
        }
        let (crc, len, inner) = w.finish();
        assert_eq!((crc, len), (crc32fast::hash(&data), data.len() as u64));
        assert_eq!(inner, data);
    }
}
