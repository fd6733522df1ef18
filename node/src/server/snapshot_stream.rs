//! Streamed InstallSnapshot: a Raft snapshot of any size travels in chunks, read from
//! the leader's snapshot file and written to a file on the follower, so neither side
//! holds more than one chunk of it in memory while it moves.
//!
//! The consensus core is unchanged by this: it sends `InstallSnapshot` and receives
//! it whole. Between the two cores the server layer replaces the message:
//! - **Leader.** [`Transport`](super::transport::Transport) hands an `InstallSnapshot`
//!   for a peer to that peer's [`Streamer`] instead of its message queue. The streamer
//!   opens the snapshot file once it holds the snapshot the core asked for (the
//!   file is written in the background after the core compacts) and posts it in
//!   chunks to `POST /raft/snapshot`. One stream per peer at a time:
//!   the core's resends while a stream runs are dropped.
//! - **Follower.** [`Receiver`] appends each chunk to `snapshot-incoming.tmp` in the
//!   data directory and answers the offset it now has. It refuses a chunk whose CRC
//!   does not match, one from a term older than its own, and one at an offset other
//!   than the one it has (answering that offset, so the leader resumes there). A chunk
//!   of a different snapshot (another leader, term, index or file) at offset 0 starts
//!   over. When the last byte is in, the whole file's header and checksum are checked,
//!   then it is read back and stepped into the core as the `InstallSnapshot` it
//!   stands for, with the leader's term and incarnation from the chunk headers. The
//!   core decides, as for any message, whether to install it.
//!
//! A crash loses a partial transfer (recovery deletes `*.tmp` files): the next
//! stream starts from 0. Without a data directory (tests on a memory disk) the
//! message goes whole through `/raft/msg`, as before.

use super::app::HttpResponse;
use super::client::HttpClient;
use super::http::json_response;
use super::metrics::Metrics;
use super::transport::TOKEN_HEADER;
use crate::engine::{Index, NodeId, PeerMessage};
use crate::raft::types::{Message, MessageBody};
use crate::raft::validate::MAX_TERM_STEP;
use crate::storage::{
    Opened, Outgoing, SNAPSHOT_HEADER, TMP_SUFFIX, load_raft_snapshot, parse_snapshot_header,
};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use serde_json::json;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Bytes per chunk unless the node is told otherwise (`--snapshot-chunk-kib`).
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;
/// The largest chunk a node accepts (the `/raft/snapshot` body limit).
pub const MAX_CHUNK_BYTES: usize = 16 << 20;
/// Bound on one chunk's request, answer included.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a stream waits for the snapshot file the core asked for to be written,
/// and how often it looks.
const FILE_WAIT: Duration = Duration::from_secs(300);
const FILE_POLL: Duration = Duration::from_millis(200);
/// How long after a complete stream the same snapshot is not sent again (plus the
/// time the stream took): the peer is reading and installing it meanwhile.
const RESEND_AFTER: Duration = Duration::from_secs(5);
/// A stream gives up after this many answers in a row that moved it nowhere.
const MAX_STALLS: u32 = 3;
/// Name of the file a follower assembles a snapshot in.
const INCOMING: &str = "snapshot-incoming";
/// Prefix of the chunk headers.
const H: &str = "x-snapshot-";

/// What each chunk carries besides its bytes: who sends it in which term, which
/// snapshot it belongs to (index and term from the file, its total length and the
/// CRC-32 its header records), and where the bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkHeader {
    pub from: NodeId,
    pub to: NodeId,
    /// The sender's term and incarnation, as in the `InstallSnapshot` it stands for.
    pub term: u64,
    pub incarnation: u64,
    /// The snapshot's last included index and its term.
    pub index: u64,
    pub index_term: u64,
    /// Length of the whole snapshot file, header included.
    pub total: u64,
    /// The payload CRC-32 the file's header records.
    pub file_crc: u32,
    /// Where this chunk's bytes start in the file.
    pub offset: u64,
    /// CRC-32 of this chunk's bytes.
    pub chunk_crc: u32,
}

/// The fields in header order, with their header-name suffixes.
const FIELDS: [&str; 10] = [
    "from",
    "to",
    "term",
    "incarnation",
    "index",
    "index-term",
    "total",
    "file-crc",
    "offset",
    "chunk-crc",
];

impl ChunkHeader {
    fn values(&self) -> [u64; 10] {
        [
            self.from,
            self.to,
            self.term,
            self.incarnation,
            self.index,
            self.index_term,
            self.total,
            u64::from(self.file_crc),
            self.offset,
            u64::from(self.chunk_crc),
        ]
    }

    /// Reads every field from `headers`; names the first one missing or malformed.
    pub fn from_headers(headers: &HeaderMap) -> Result<ChunkHeader, String> {
        let mut v = [0u64; 10];
        for (slot, field) in v.iter_mut().zip(FIELDS) {
            let name = format!("{H}{field}");
            let text = headers
                .get(&name)
                .ok_or_else(|| format!("missing header {name}"))?
                .to_str()
                .map_err(|_| format!("header {name} is not text"))?;
            *slot = text
                .parse()
                .map_err(|_| format!("header {name} is not an unsigned integer: {text:?}"))?;
        }
        let crc = |x: u64, name: &str| {
            u32::try_from(x).map_err(|_| format!("header {H}{name} is not a CRC-32: {x}"))
        };
        Ok(ChunkHeader {
            from: v[0],
            to: v[1],
            term: v[2],
            incarnation: v[3],
            index: v[4],
            index_term: v[5],
            total: v[6],
            file_crc: crc(v[7], "file-crc")?,
            offset: v[8],
            chunk_crc: crc(v[9], "chunk-crc")?,
        })
    }

    /// The snapshot this chunk belongs to: chunks of one stream share it.
    fn stream(&self) -> (NodeId, u64, u64, u64, u64, u64, u32) {
        (
            self.from,
            self.term,
            self.incarnation,
            self.index,
            self.index_term,
            self.total,
            self.file_crc,
        )
    }
}

/// Why a chunk was not taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes belong elsewhere: the follower has `have` bytes of this snapshot
    /// (0 for another one) and wants the next chunk from there.
    Offset { have: u64 },
    /// From a term older than the one this follower is in, or than the snapshot
    /// it is receiving.
    Stale { term: u64 },
    /// The chunk or the assembled file is damaged or inconsistent.
    Bad(String),
}

/// What a taken chunk left.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// `have` bytes are in; more to come.
    More { have: u64 },
    /// The file is complete and checked; it is at this path.
    Complete(PathBuf),
}

/// A follower's snapshot in the making: at most one, in `dir/snapshot-incoming.tmp`.
#[derive(Debug)]
pub struct Receiver {
    dir: PathBuf,
    partial: Option<Partial>,
    /// Streams completed so far (names each completed file apart).
    completed: u64,
}

#[derive(Debug)]
struct Partial {
    header: ChunkHeader,
    file: File,
    have: u64,
    /// The file's first bytes, until there are enough to read its header.
    head: Vec<u8>,
    /// CRC-32 of the payload bytes received so far.
    crc: crc32fast::Hasher,
}

impl Receiver {
    pub fn new(dir: &Path) -> Receiver {
        Receiver {
            dir: dir.to_path_buf(),
            partial: None,
            completed: 0,
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(format!("{INCOMING}{TMP_SUFFIX}"))
    }

    /// Takes one chunk of a snapshot. `term` is the follower's current term.
    pub fn take(&mut self, h: &ChunkHeader, term: u64, bytes: &[u8]) -> Result<Taken, Refusal> {
        if crc32fast::hash(bytes) != h.chunk_crc {
            return Err(Refusal::Bad("chunk checksum mismatch".into()));
        }
        let end = h.offset.checked_add(bytes.len() as u64);
        if h.total < SNAPSHOT_HEADER as u64 || end.is_none_or(|end| end > h.total) {
            return Err(Refusal::Bad(format!(
                "chunk of {} bytes at offset {} lies outside a file of {} bytes",
                bytes.len(),
                h.offset,
                h.total
            )));
        }
        if bytes.is_empty() && h.offset < h.total {
            return Err(Refusal::Bad("empty chunk".into()));
        }
        // A partial snapshot from a term this node has left is abandoned.
        if self.partial.as_ref().is_some_and(|p| p.header.term < term) {
            self.partial = None;
        }
        // As the core refuses a message from a term too far ahead, which would
        // otherwise shut out every real leader's stream until a restart.
        if h.term > term.saturating_add(MAX_TERM_STEP) {
            return Err(Refusal::Bad(format!(
                "term {} is more than {MAX_TERM_STEP} ahead of this node's {term}",
                h.term
            )));
        }
        let current = self.partial.as_ref().map(|p| p.header);
        if h.term < term || current.is_some_and(|c| h.term < c.term) {
            return Err(Refusal::Stale {
                term: term.max(current.map_or(0, |c| c.term)),
            });
        }
        if current.is_none_or(|c| c.stream() != h.stream()) {
            if h.offset != 0 {
                return Err(Refusal::Offset { have: 0 });
            }
            // Another snapshot: start over.
            self.partial = None;
            let path = self.path();
            let file = File::create(&path)
                .map_err(|e| Refusal::Bad(format!("cannot create {}: {e}", path.display())))?;
            self.partial = Some(Partial {
                header: *h,
                file,
                have: 0,
                head: Vec::with_capacity(SNAPSHOT_HEADER),
                crc: crc32fast::Hasher::new(),
            });
        }
        let path = self.path();
        let Some(p) = self.partial.as_mut() else {
            return Err(Refusal::Offset { have: 0 });
        };
        if h.offset != p.have {
            return Err(Refusal::Offset { have: p.have });
        }
        let io = |e: std::io::Error| Refusal::Bad(format!("cannot write {}: {e}", path.display()));
        p.file.seek(SeekFrom::Start(p.have)).map_err(io)?;
        p.file.write_all(bytes).map_err(io)?;
        let in_head = (SNAPSHOT_HEADER as u64).saturating_sub(p.have) as usize;
        let (head, payload) = bytes.split_at(in_head.min(bytes.len()));
        p.head.extend_from_slice(head);
        p.crc.update(payload);
        p.have += bytes.len() as u64;
        if p.have < h.total {
            return Ok(Taken::More { have: p.have });
        }
        let Some(done) = self.partial.take() else {
            return Err(Refusal::Offset { have: 0 });
        };
        let file_header = parse_snapshot_header(&done.head).map_err(|e| Refusal::Bad(e.into()))?;
        let crc = done.crc.finalize();
        if file_header.payload_len + SNAPSHOT_HEADER as u64 != h.total
            || file_header.crc != h.file_crc
            || crc != h.file_crc
        {
            return Err(Refusal::Bad(format!(
                "assembled snapshot does not check: header says {} payload bytes with CRC \
                 {:08x}, the stream announced {} bytes with CRC {:08x}, the bytes hash to {crc:08x}",
                file_header.payload_len,
                file_header.crc,
                h.total - SNAPSHOT_HEADER as u64,
                h.file_crc
            )));
        }
        // A name of its own: the next stream may start in the incoming file while
        // this one is still being read back.
        self.completed += 1;
        let done_path = self.dir.join(format!(
            "{INCOMING}-{}-{}{TMP_SUFFIX}",
            h.index, self.completed
        ));
        drop(done.file);
        std::fs::rename(&path, &done_path)
            .map_err(|e| Refusal::Bad(format!("cannot rename {}: {e}", path.display())))?;
        Ok(Taken::Complete(done_path))
    }
}

/// Reads the snapshot a completed stream assembled and makes it the
/// `InstallSnapshot` message it stands for. Its meta must be the one the chunks
/// announced. The file is deleted once read.
pub fn received_message(h: &ChunkHeader, path: &Path) -> Result<PeerMessage, String> {
    let snapshot = load_raft_snapshot(path).map_err(|e| e.to_string());
    let _ = std::fs::remove_file(path);
    let snapshot = snapshot?;
    if snapshot.meta.last_index != h.index || snapshot.meta.last_term != h.index_term {
        return Err(format!(
            "snapshot file holds index {} term {}, the stream announced index {} term {}",
            snapshot.meta.last_index, snapshot.meta.last_term, h.index, h.index_term
        ));
    }
    Ok(PeerMessage::Raft(Message {
        from: h.from,
        to: h.to,
        term: h.term,
        incarnation: h.incarnation,
        body: MessageBody::InstallSnapshot { snapshot },
    }))
}

/// The JSON answer to a chunk: the offset the follower has now, or why it refused.
pub fn answer(r: &Result<Taken, Refusal>, total: u64) -> HttpResponse {
    match r {
        Ok(Taken::More { have }) => json_response(StatusCode::OK, &json!({ "offset": have })),
        Ok(Taken::Complete(_)) => json_response(StatusCode::OK, &json!({ "offset": total })),
        Err(Refusal::Offset { have }) => json_response(
            StatusCode::CONFLICT,
            &json!({"error": "wrong_offset", "message": "resume from offset", "offset": have}),
        ),
        Err(Refusal::Stale { term }) => json_response(
            StatusCode::CONFLICT,
            &json!({"error": "stale_term", "message": format!("this node is in term {term}"), "term": term}),
        ),
        Err(Refusal::Bad(m)) => json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "bad_request", "message": m}),
        ),
    }
}

/// A snapshot streamed to the last byte: the same one is not streamed again to the
/// same peer in the same term before `RESEND_AFTER` plus the time it took.
struct Sent {
    index: u64,
    /// Delta files sent with the snapshot file, as one file.
    deltas: usize,
    total: u64,
    file_crc: u32,
    term: u64,
    took: Duration,
    done: Instant,
}

/// Opens the saved snapshot of `dir` for sending once it covers `wanted`, off the
/// async threads: `Ok(Err(i))` when it only reaches index `i` so far.
async fn open_outgoing(dir: &Path, wanted: Index) -> Result<Result<Arc<Outgoing>, Index>, String> {
    let d = dir.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || Outgoing::open(&d, wanted))
        .await
        .map_err(|e| format!("opening the snapshot: {e}"))?;
    match opened.map_err(|e| e.to_string())? {
        Opened::Ready(out) => Ok(Ok(Arc::new(out))),
        Opened::Older(i) => Ok(Err(i)),
        Opened::None => Err(format!("no snapshot in {}", dir.display())),
    }
}

/// Reads `n` bytes of `out` at `offset`, off the async threads.
async fn read_chunk(out: &Arc<Outgoing>, offset: u64, n: usize) -> Result<Vec<u8>, String> {
    let out = out.clone();
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; n];
        out.read_at(offset, &mut buf).map(|()| buf)
    })
    .await
    .map_err(|e| format!("reading the snapshot: {e}"))?
    .map_err(|e| format!("reading the snapshot at {offset}: {e}"))
}

/// The leader's side for one peer: streams the snapshot file when asked.
pub struct Streamer {
    pub to: NodeId,
    pub uri: String,
    pub token: Option<String>,
    pub client: HttpClient,
    pub metrics: Arc<Metrics>,
    /// The data directory holding the snapshot file.
    pub dir: PathBuf,
    pub chunk_bytes: usize,
}

impl Streamer {
    /// Streams once per request (an `InstallSnapshot` from the core). Requests that
    /// arrive during a stream are dropped: they ask for what is being sent.
    pub async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut last: Option<Sent> = None;
        while let Some(m) = rx.recv().await {
            match self.stream(&m, &last).await {
                Ok(None) => {}
                Ok(Some(sent)) => {
                    self.metrics.snapshot_streams.fetch_add(1, Relaxed);
                    tracing::info!(
                        peer = self.to,
                        index = sent.index,
                        bytes = sent.total,
                        deltas = sent.deltas,
                        took = ?sent.took,
                        "snapshot streamed"
                    );
                    last = Some(sent);
                }
                Err(e) => {
                    self.metrics.snapshot_stream_errors.fetch_add(1, Relaxed);
                    tracing::warn!(peer = self.to, error = %e, "snapshot stream stopped");
                }
            }
            while rx.try_recv().is_ok() {}
        }
    }

    /// Sends the current snapshot file; returns what went, or `None` when it is the
    /// one `last` sent so recently that the peer is most likely still installing it
    /// (the core asks again every election timeout until the peer answers).
    async fn stream(&self, m: &Message, last: &Option<Sent>) -> Result<Option<Sent>, String> {
        let started = Instant::now();
        let wanted = match &m.body {
            MessageBody::InstallSnapshot { snapshot } => snapshot.meta.last_index,
            _ => 0,
        };
        // The core compacts as soon as a snapshot's bytes exist; its file is written
        // in the background after. An older file would be a wasted transfer (the
        // follower would then need entries the leader no longer has): wait for it.
        let out = loop {
            let has = match open_outgoing(&self.dir, wanted).await? {
                Ok(out) => break out,
                Err(has) => has,
            };
            if started.elapsed() > FILE_WAIT {
                return Err(format!(
                    "the snapshot in {} holds index {has}, not yet the {wanted} asked for",
                    self.dir.display(),
                ));
            }
            tokio::time::sleep(FILE_POLL).await;
        };
        let (meta, total) = (out.meta.clone(), out.total);
        let mut h = ChunkHeader {
            from: m.from,
            to: m.to,
            term: m.term,
            incarnation: m.incarnation,
            index: meta.last_index,
            index_term: meta.last_term,
            total,
            file_crc: out.crc,
            offset: 0,
            chunk_crc: 0,
        };
        if let Some(l) = last
            && (l.index, l.total, l.file_crc, l.term) == (h.index, h.total, h.file_crc, h.term)
            && l.done.elapsed() < RESEND_AFTER + l.took
        {
            return Ok(None);
        }
        let mut stalls = 0;
        while h.offset < total {
            let n = (total - h.offset).min(self.chunk_bytes.max(1) as u64) as usize;
            let chunk = read_chunk(&out, h.offset, n).await?;
            h.chunk_crc = crc32fast::hash(&chunk);
            let next = self.post(&h, Bytes::from(chunk)).await?;
            self.metrics.snapshot_chunks_sent.fetch_add(1, Relaxed);
            if next > total {
                return Err(format!("peer claims offset {next} of {total}"));
            }
            if next == h.offset {
                stalls += 1;
                if stalls >= MAX_STALLS {
                    return Err(format!("peer stays at offset {next}"));
                }
            } else {
                stalls = 0;
            }
            if next > h.offset {
                self.metrics
                    .snapshot_bytes_sent
                    .fetch_add(next - h.offset, Relaxed);
            }
            h.offset = next;
        }
        Ok(Some(Sent {
            index: meta.last_index,
            deltas: out.deltas(),
            total,
            file_crc: h.file_crc,
            term: h.term,
            took: started.elapsed(),
            done: Instant::now(),
        }))
    }

    /// Posts one chunk; returns the offset the peer asks for next.
    async fn post(&self, h: &ChunkHeader, body: Bytes) -> Result<u64, String> {
        let mut req = Request::post(&self.uri).header("content-type", "application/octet-stream");
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        for (field, value) in FIELDS.iter().zip(h.values()) {
            req = req.header(format!("{H}{field}"), value);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| format!("request: {e}"))?;
        let resp = tokio::time::timeout(CHUNK_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| "chunk timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        let body = tokio::time::timeout(CHUNK_TIMEOUT, resp.into_body().collect())
            .await
            .map_err(|_| "answer timed out".to_string())?
            .map_err(|e| e.to_string())?
            .to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| format!("peer answered {status} with no JSON: {e}"))?;
        match (status, v["offset"].as_u64()) {
            (StatusCode::OK | StatusCode::CONFLICT, Some(offset)) => Ok(offset),
            _ => Err(format!("peer answered {status}: {v}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{Membership, Snapshot, SnapshotMeta};

    fn file(data_len: usize) -> (Snapshot, Vec<u8>) {
        let snapshot = Snapshot {
            meta: SnapshotMeta {
                last_index: 42,
                last_term: 3,
                membership: Membership::default(),
            },
            data: Bytes::from((0..data_len).map(|i| (i * 7) as u8).collect::<Vec<_>>()).into(),
        };
        let bytes = crate::storage::encode_snapshot(&snapshot).expect("encode");
        (snapshot, bytes)
    }

    fn header(bytes: &[u8], offset: u64, chunk: &[u8]) -> ChunkHeader {
        let fh = parse_snapshot_header(bytes).expect("header");
        ChunkHeader {
            from: 1,
            to: 2,
            term: 5,
            incarnation: 7,
            index: 42,
            index_term: 3,
            total: bytes.len() as u64,
            file_crc: fh.crc,
            offset,
            chunk_crc: crc32fast::hash(chunk),
        }
    }

    /// Sends `bytes` from `offset` on in chunks of `n`, each header passed through
    /// `tweak`, following the receiver's offset as the streamer does; returns the
    /// completed path, or the first other refusal.
    fn stream_from(
        r: &mut Receiver,
        bytes: &[u8],
        mut offset: usize,
        n: usize,
        tweak: impl Fn(&mut ChunkHeader),
    ) -> Result<PathBuf, Refusal> {
        loop {
            let chunk = &bytes[offset..(offset + n).min(bytes.len())];
            let mut h = header(bytes, offset as u64, chunk);
            tweak(&mut h);
            match r.take(&h, 5, chunk) {
                Ok(Taken::More { have }) => offset = have as usize,
                Ok(Taken::Complete(p)) => return Ok(p),
                Err(Refusal::Offset { have }) if have as usize != offset => offset = have as usize,
                Err(e) => return Err(e),
            }
        }
    }

    /// [`stream_from`] of a whole file that must complete.
    fn send_all(r: &mut Receiver, bytes: &[u8], n: usize) -> PathBuf {
        stream_from(r, bytes, 0, n, |_| {}).expect("a complete stream")
    }

    #[test]
    fn chunks_in_order_assemble_the_file_and_its_message() {
        let dir = tempfile::tempdir().expect("tmp");
        let (snapshot, bytes) = file(100_000);
        let mut r = Receiver::new(dir.path());
        let path = send_all(&mut r, &bytes, 4096);
        assert_eq!(std::fs::read(&path).expect("read"), bytes);
        let h = header(&bytes, 0, &bytes[..1]);
        let m = received_message(&h, &path).expect("message");
        let PeerMessage::Raft(Message {
            from: 1,
            to: 2,
            term: 5,
            incarnation: 7,
            body: MessageBody::InstallSnapshot { snapshot: got },
        }) = m
        else {
            panic!("not the InstallSnapshot it stands for: {m:?}");
        };
        assert_eq!(got, snapshot);
        assert!(!path.exists(), "the assembled file is deleted once read");
    }

    #[test]
    fn a_wrong_offset_is_answered_with_the_offset_held_and_the_stream_resumes() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_, bytes) = file(10_000);
        let mut r = Receiver::new(dir.path());
        let c0 = &bytes[..1000];
        assert_eq!(
            r.take(&header(&bytes, 0, c0), 5, c0),
            Ok(Taken::More { have: 1000 })
        );
        // A chunk from further on (one went missing): refused, with where to resume.
        let c2 = &bytes[2000..3000];
        assert_eq!(
            r.take(&header(&bytes, 2000, c2), 5, c2),
            Err(Refusal::Offset { have: 1000 })
        );
        // A resent chunk already held: refused the same way (not written twice).
        assert_eq!(
            r.take(&header(&bytes, 0, c0), 5, c0),
            Err(Refusal::Offset { have: 1000 })
        );
        let p = stream_from(&mut r, &bytes, 1000, 1500, |_| {}).expect("complete");
        assert_eq!(std::fs::read(p).expect("read"), bytes);
    }

    #[test]
    fn damaged_chunks_and_stale_terms_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_, bytes) = file(10_000);
        let mut r = Receiver::new(dir.path());
        let c0 = &bytes[..1000];
        let mut h = header(&bytes, 0, c0);
        h.chunk_crc ^= 1;
        assert!(matches!(r.take(&h, 5, c0), Err(Refusal::Bad(_))));
        // The follower is in term 6: a chunk of term 5 is stale.
        assert_eq!(
            r.take(&header(&bytes, 0, c0), 6, c0),
            Err(Refusal::Stale { term: 6 })
        );
        // Past the end of the file.
        let mut h = header(&bytes, bytes.len() as u64 - 10, c0);
        h.chunk_crc = crc32fast::hash(c0);
        assert!(matches!(r.take(&h, 5, c0), Err(Refusal::Bad(_))));
        // Nothing was taken: a stream must start at 0.
        let c1 = &bytes[1000..2000];
        assert_eq!(
            r.take(&header(&bytes, 1000, c1), 5, c1),
            Err(Refusal::Offset { have: 0 })
        );
    }

    #[test]
    fn another_snapshot_starts_over_and_an_older_term_cannot_take_over() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_, bytes) = file(10_000);
        let mut r = Receiver::new(dir.path());
        let c0 = &bytes[..4000];
        assert!(r.take(&header(&bytes, 0, c0), 5, c0).is_ok());
        // A newer leader's snapshot at offset 0: the partial one is dropped.
        let (_, other) = file(20_000);
        let o0 = &other[..4000];
        let mut h = header(&other, 0, o0);
        h.term = 6;
        h.from = 3;
        assert_eq!(r.take(&h, 5, o0), Ok(Taken::More { have: 4000 }));
        // The old leader's next chunk is from an older term than the stream held.
        let c1 = &bytes[4000..8000];
        assert_eq!(
            r.take(&header(&bytes, 4000, c1), 5, c1),
            Err(Refusal::Stale { term: 6 })
        );
        // The new stream completes.
        let p = stream_from(&mut r, &other, 4000, 4000, |h| {
            h.term = 6;
            h.from = 3;
        })
        .expect("complete");
        assert_eq!(std::fs::read(p).expect("read"), other);
        assert!(
            r.partial.is_none(),
            "a completed stream leaves nothing partial"
        );
    }

    #[test]
    fn a_file_that_does_not_match_its_announcement_is_refused_at_the_end() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_, mut bytes) = file(5_000);
        let fh = parse_snapshot_header(&bytes).expect("header");
        // Flip a payload byte: every chunk checks, the whole file does not.
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let mut r = Receiver::new(dir.path());
        match stream_from(&mut r, &bytes, 0, 2048, |h| h.file_crc = fh.crc) {
            Ok(_) => panic!("a damaged file completed"),
            Err(Refusal::Bad(m)) => assert!(m.contains("does not check"), "{m}"),
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn a_stream_from_a_left_term_is_dropped_and_far_terms_are_refused() {
        let dir = tempfile::tempdir().expect("tmp");
        let (_, bytes) = file(10_000);
        let mut r = Receiver::new(dir.path());
        let c0 = &bytes[..1000];
        assert!(r.take(&header(&bytes, 0, c0), 5, c0).is_ok());
        // The node moved to term 6: the partial stream of term 5 is gone, and its
        // next chunk is stale.
        let c1 = &bytes[1000..2000];
        assert_eq!(
            r.take(&header(&bytes, 1000, c1), 6, c1),
            Err(Refusal::Stale { term: 6 })
        );
        assert!(r.partial.is_none());
        // A term far ahead cannot take the receiver over.
        let mut h = header(&bytes, 0, c0);
        h.term = 6 + MAX_TERM_STEP + 1;
        assert!(matches!(r.take(&h, 6, c0), Err(Refusal::Bad(_))));
        assert!(r.partial.is_none());
    }

    #[test]
    fn a_completed_file_keeps_its_own_name_while_the_next_stream_starts() {
        let dir = tempfile::tempdir().expect("tmp");
        let (snapshot, bytes) = file(10_000);
        let mut r = Receiver::new(dir.path());
        let first = send_all(&mut r, &bytes, 3000);
        // The same snapshot again, from offset 0, before the first file is read.
        let c0 = &bytes[..3000];
        assert_eq!(
            r.take(&header(&bytes, 0, c0), 5, c0),
            Ok(Taken::More { have: 3000 })
        );
        let m = received_message(&header(&bytes, 0, c0), &first).expect("first file");
        let PeerMessage::Raft(Message {
            body: MessageBody::InstallSnapshot { snapshot: got },
            ..
        }) = m
        else {
            panic!("not an InstallSnapshot");
        };
        assert_eq!(got, snapshot);
        let second = send_all(&mut r, &bytes, 3000);
        assert_ne!(first, second);
        assert_eq!(std::fs::read(second).expect("second file"), bytes);
    }

    #[test]
    fn chunk_headers_round_trip_and_name_what_is_wrong() {
        let h = ChunkHeader {
            from: 1,
            to: 2,
            term: 3,
            incarnation: u64::MAX,
            index: 5,
            index_term: 6,
            total: 7,
            file_crc: u32::MAX,
            offset: 0,
            chunk_crc: 9,
        };
        let mut map = HeaderMap::new();
        for (field, value) in FIELDS.iter().zip(h.values()) {
            map.insert(
                hyper::header::HeaderName::try_from(format!("{H}{field}")).expect("name"),
                value.into(),
            );
        }
        assert_eq!(ChunkHeader::from_headers(&map), Ok(h));
        map.insert("x-snapshot-offset", "-1".parse().expect("value"));
        let e = ChunkHeader::from_headers(&map).expect_err("bad offset");
        assert!(e.contains("x-snapshot-offset"), "{e}");
        map.insert("x-snapshot-file-crc", (1u64 << 40).into());
        map.remove("x-snapshot-term");
        let e = ChunkHeader::from_headers(&map).expect_err("missing term");
        assert!(e.contains("missing header x-snapshot-term"), "{e}");
    }
}
