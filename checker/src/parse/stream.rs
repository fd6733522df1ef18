//! The reading pipeline: this thread reads the input in blocks of whole lines (JSONL)
//! or of whole EDN forms, worker threads parse blocks into events, and one thread takes
//! the parsed blocks in input order and builds the history. The input is never held
//! whole: at most [`IN_FLIGHT`] blocks exist at a time, whatever the file's size.
//!
//! Errors keep input order too: the error reported is the first one in the file, with
//! its line, whether reading, parsing or pairing found it.

use super::{Interner, MAX_LINE_BYTES};
use crate::build::RawEvent;
use crate::error::{ErrorKind, HistoryError};
use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel, sync_channel};

/// Bytes read per block: large enough to amortise the hand-offs, small enough that the
/// blocks in flight stay a few megabytes.
pub(crate) const BLOCK_BYTES: usize = 1 << 20;
/// Blocks read ahead of the one being built into the history.
const IN_FLIGHT: usize = 8;
/// Parsing threads at most.
const MAX_WORKERS: usize = 8;

/// A unit of parsing work, in input order.
pub(crate) enum Batch {
    /// Whole JSONL lines, the first numbered `first`.
    Lines { first: usize, bytes: Vec<u8> },
    /// Whole EDN forms with the line each starts on.
    Forms(Vec<(usize, String)>),
    /// Reading failed here; nothing after it is read.
    Failed(HistoryError),
}

/// A parsed batch: its events up to the first error, and that error.
pub(crate) struct Parsed {
    pub events: Vec<RawEvent>,
    pub error: Option<HistoryError>,
}

/// Reads blocks of whole lines.
pub(crate) struct Blocks<R> {
    reader: R,
    name: String,
    /// The incomplete last line of the previous block.
    carry: Vec<u8>,
    /// The number of the first line of the next block.
    next_line: usize,
    eof: bool,
    started: bool,
}

impl<R: BufRead> Blocks<R> {
    pub fn new(reader: R, name: &str) -> Self {
        Blocks {
            reader,
            name: name.to_string(),
            carry: Vec::new(),
            next_line: 1,
            eof: false,
            started: false,
        }
    }

    /// True once the input is used up.
    pub fn done(&self) -> bool {
        self.eof && self.carry.is_empty()
    }

    /// The next block of whole lines and the number of its first line; `None` at the end.
    pub fn next_block(&mut self) -> Result<Option<(usize, Vec<u8>)>, HistoryError> {
        let mut buf = std::mem::take(&mut self.carry);
        loop {
            if self.eof {
                if buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(self.emit(buf)));
            }
            let n = loop {
                match (&mut self.reader)
                    .take(BLOCK_BYTES as u64)
                    .read_to_end(&mut buf)
                {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        return Err(HistoryError::new(
                            &self.name,
                            self.next_line,
                            ErrorKind::Io(e.to_string()),
                        ));
                    }
                }
            };
            if !self.started && buf.len() >= 3 {
                self.started = true;
                if buf.starts_with(b"\xEF\xBB\xBF") {
                    buf.drain(..3);
                }
            }
            if n == 0 {
                self.eof = true;
                self.started = true;
                continue;
            }
            match memchr::memrchr(b'\n', &buf) {
                Some(pos) => {
                    self.carry = buf[pos + 1..].to_vec();
                    buf.truncate(pos + 1);
                    return Ok(Some(self.emit(buf)));
                }
                None if buf.len() > MAX_LINE_BYTES => {
                    return Err(HistoryError::new(
                        &self.name,
                        self.next_line,
                        ErrorKind::LineTooLong {
                            limit: MAX_LINE_BYTES,
                        },
                    ));
                }
                None => {}
            }
        }
    }

    fn emit(&mut self, mut block: Vec<u8>) -> (usize, Vec<u8>) {
        let first = self.next_line;
        let newlines = memchr::memchr_iter(b'\n', &block).count();
        self.next_line += newlines;
        if block.last() == Some(&b'\n') {
            block.pop();
        } else {
            // The last line without a newline still counts as a line.
            self.next_line += 1;
        }
        (first, block)
    }
}

/// Runs the pipeline: `feed` (on this thread) hands batches in order to `send`, which
/// returns false once nothing more is wanted; `consume` (on its own thread) takes the
/// parsed batches in order and returns the result.
pub(crate) fn run<T: Send>(
    name: &str,
    feed: impl FnOnce(&mut dyn FnMut(Batch) -> bool),
    consume: impl FnOnce(&mut dyn Iterator<Item = Parsed>) -> Result<T, HistoryError> + Send,
) -> Result<T, HistoryError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_WORKERS);
    // A bounded semaphore: a permit is taken per batch read and given back when the
    // batch has been consumed, so at most IN_FLIGHT batches exist.
    let (permit_tx, permit_rx) = sync_channel::<()>(IN_FLIGHT);
    let (batch_tx, batch_rx) = channel::<(usize, Batch)>();
    let batch_rx = Mutex::new(batch_rx);
    let (done_tx, done_rx) = channel::<(usize, Parsed)>();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let batch_rx = &batch_rx;
            let done_tx = done_tx.clone();
            s.spawn(move || {
                let mut interner = Interner::default();
                loop {
                    let next = match batch_rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, batch)) = next else { return };
                    let parsed = super::parse_batch(batch, name, &mut interner);
                    if done_tx.send((seq, parsed)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let consumer = s.spawn(move || {
            let mut ordered = InOrder {
                rx: done_rx,
                permits: permit_rx,
                waiting: BTreeMap::new(),
                next: 0,
            };
            consume(&mut ordered)
        });
        let mut seq = 0usize;
        feed(&mut |batch| {
            if permit_tx.send(()).is_err() || batch_tx.send((seq, batch)).is_err() {
                return false;
            }
            seq += 1;
            true
        });
        drop(batch_tx);
        drop(permit_tx);
        consumer.join().unwrap_or_else(|_| {
            Err(HistoryError::new(
                name,
                0,
                ErrorKind::Structure("internal error: the history reader panicked".into()),
            ))
        })
    })
}

/// The parsed batches in input order, whatever order the workers finish them in.
struct InOrder {
    rx: Receiver<(usize, Parsed)>,
    permits: Receiver<()>,
    waiting: BTreeMap<usize, Parsed>,
    next: usize,
}

impl Iterator for InOrder {
    type Item = Parsed;

    fn next(&mut self) -> Option<Parsed> {
        loop {
            if let Some(p) = self.waiting.remove(&self.next) {
                self.next += 1;
                let _ = self.permits.try_recv();
                return Some(p);
            }
            let (seq, parsed) = self.rx.recv().ok()?;
            self.waiting.insert(seq, parsed);
        }
    }
}

/// Parses batches on this thread, for inputs that fit in one block.
pub(crate) fn run_inline<T>(
    name: &str,
    batches: Vec<Batch>,
    consume: impl FnOnce(&mut dyn Iterator<Item = Parsed>) -> Result<T, HistoryError>,
) -> Result<T, HistoryError> {
    let mut interner = Interner::default();
    let mut parsed = batches
        .into_iter()
        .map(|b| super::parse_batch(b, name, &mut interner));
    consume(&mut parsed)
}

/// Sends every batch of a `Blocks` reader as JSONL lines.
pub(crate) fn feed_lines<R: BufRead>(
    first: (usize, Vec<u8>),
    blocks: &mut Blocks<R>,
    send: &mut dyn FnMut(Batch) -> bool,
) {
    if !send(Batch::Lines {
        first: first.0,
        bytes: first.1,
    }) {
        return;
    }
    loop {
        let batch = match blocks.next_block() {
            Ok(Some((first, bytes))) => Batch::Lines { first, bytes },
            Ok(None) => return,
            Err(e) => Batch::Failed(e),
        };
        let failed = matches!(batch, Batch::Failed(_));
        if !send(batch) || failed {
            return;
        }
    }
}
