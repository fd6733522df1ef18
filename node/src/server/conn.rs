//! Connections: the `--max-connections` budget, shedding stalled clients when it is
//! spent, and JSON bodies for the errors the HTTP library answers by itself.
//!
//! Every open connection holds one slot, and the accept loop takes a slot *before*
//! it accepts, so the node never holds more connections than the budget (later
//! ones wait in the listen backlog). When every slot is taken, the node closes the
//! client connection that has waited longest for request bytes (idle between
//! requests, or stalled in a request head or body), once it has waited
//! [`SHED_AFTER`]. A connection whose request is being carried out is never closed,
//! so shedding never loses an operation: a shed client sent nothing that ran.
//!
//! Peers and clients share one listen address, so a connection is told apart by
//! what it sends: it counts as a peer's once a request on it is node-to-node
//! traffic (a `/raft/msg` batch that decodes, or a request another node forwarded),
//! carrying the cluster token when one is set. Peer connections are never shed for
//! clients, and new peer connections get a slot by shedding a client's, so clients
//! cannot lock peers out whatever they do with their connections. At most half the
//! budget counts as peers.
//!
//! A request head must arrive within `--read-timeout-ms` (which also closes idle
//! keep-alive connections), and so must its body after it (408).

use super::metrics::Metrics;
use bytes::Bytes;
use http_body_util::Full;
use hyper::StatusCode;
use hyper::body::{Body, Frame, SizeHint};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// A client connection is shed only after waiting this long for request bytes, so
/// a head that is on its way is not cut off.
pub const SHED_AFTER: Duration = Duration::from_millis(250);
/// While every slot is held by connections that cannot be shed yet, how often the
/// accept loop looks again.
const SHED_POLL: Duration = Duration::from_millis(20);
/// `waiting_since` of a connection whose request is being carried out.
const BUSY: u64 = u64::MAX;

/// The connection budget and every open connection.
pub struct Conns {
    slots: Arc<Semaphore>,
    max: usize,
    open: Mutex<BTreeMap<u64, Arc<Conn>>>,
    next_id: AtomicU64,
    peers: Arc<AtomicUsize>,
    epoch: Instant,
    metrics: Arc<Metrics>,
}

/// One open connection, shared by its task, its service and its I/O wrapper.
pub struct Conn {
    epoch: Instant,
    /// Nanoseconds since `epoch` at which it began waiting for request bytes;
    /// [`BUSY`] while a request is carried out.
    waiting_since: AtomicU64,
    peer: AtomicBool,
    peers: Arc<AtomicUsize>,
    peer_cap: usize,
    shed_requested: AtomicBool,
    shed: Notify,
    /// Requests handed to the service, and their responses done with.
    requests: AtomicU64,
    responses: AtomicU64,
    /// Every response is written and flushed: whatever is written now is the HTTP
    /// library's own answer to a request it could not read.
    quiet: AtomicBool,
}

impl Conns {
    pub fn new(max: usize, metrics: Arc<Metrics>) -> Arc<Conns> {
        Arc::new(Conns {
            slots: Arc::new(Semaphore::new(max)),
            max,
            open: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            peers: Arc::new(AtomicUsize::new(0)),
            epoch: Instant::now(),
            metrics,
        })
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(BUSY - 1)
    }

    fn table(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
        // A std Mutex: it is never held across an await.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a free slot; while there is none, sheds the client connection that
    /// has waited longest for request bytes.
    pub async fn slot(&self) -> OwnedSemaphorePermit {
        loop {
            if let Ok(p) = self.slots.clone().try_acquire_owned() {
                return p;
            }
            self.shed_stalest();
            let wait = tokio::time::timeout(SHED_POLL, self.slots.clone().acquire_owned());
            if let Ok(Ok(p)) = wait.await {
                return p;
            }
        }
    }

    /// Asks the stalest sheddable client connection to close; false if none is.
    fn shed_stalest(&self) -> bool {
        let now = self.now_ns();
        let min_wait = u64::try_from(SHED_AFTER.as_nanos()).unwrap_or(u64::MAX);
        let table = self.table();
        let victim = table
            .values()
            .filter(|c| !c.peer.load(Relaxed) && !c.shed_requested.load(Relaxed))
            .filter_map(|c| {
                let since = c.waiting_since.load(Relaxed);
                (since != BUSY && now.saturating_sub(since) >= min_wait).then_some((since, c))
            })
            .min_by_key(|(since, _)| *since)
            .map(|(_, c)| c.clone());
        drop(table);
        let Some(c) = victim else { return false };
        c.shed_requested.store(true, Relaxed);
        c.shed.notify_one();
        self.metrics.connections_shed.fetch_add(1, Relaxed);
        true
    }

    /// Registers a new connection holding `permit`; dropping the result frees the
    /// slot.
    pub fn register(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Registered {
        let id = self.next_id.fetch_add(1, Relaxed);
        let conn = Arc::new(Conn {
            epoch: self.epoch,
            waiting_since: AtomicU64::new(self.now_ns()),
            peer: AtomicBool::new(false),
            peers: self.peers.clone(),
            peer_cap: (self.max / 2).max(1),
            shed_requested: AtomicBool::new(false),
            shed: Notify::new(),
            requests: AtomicU64::new(0),
            responses: AtomicU64::new(0),
            quiet: AtomicBool::new(true),
        });
        self.table().insert(id, conn.clone());
        self.metrics.connections_open.fetch_add(1, Relaxed);
        Registered {
            conns: self.clone(),
            id,
            conn,
            _permit: permit,
        }
    }

    /// Waits until every connection is closed, or `timeout`.
    pub async fn drained(&self, timeout: Duration) {
        let all = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = tokio::time::timeout(timeout, self.slots.acquire_many(all)).await;
    }
}

/// A registered connection; dropping it unregisters it and frees its slot.
pub struct Registered {
    conns: Arc<Conns>,
    id: u64,
    conn: Arc<Conn>,
    _permit: OwnedSemaphorePermit,
}

impl Registered {
    pub fn conn(&self) -> &Arc<Conn> {
        &self.conn
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.conns.table().remove(&self.id);
        if self.conn.peer.load(Relaxed) {
            self.conns.peers.fetch_sub(1, Relaxed);
        }
        self.conns.metrics.connections_open.fetch_sub(1, Relaxed);
    }
}

impl Conn {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(BUSY - 1)
    }

    /// A request head arrived; its body is awaited next.
    pub fn request_started(&self) {
        self.requests.fetch_add(1, Relaxed);
        self.quiet.store(false, Relaxed);
        self.waiting_since.store(self.now_ns(), Relaxed);
    }

    /// The request is read whole and is being carried out: not to be shed.
    pub fn request_read(&self) {
        self.waiting_since.store(BUSY, Relaxed);
    }

    /// The answer is on its way; the connection waits for the next request.
    pub fn request_done(&self) {
        self.waiting_since.store(self.now_ns(), Relaxed);
    }

    /// This connection carries node-to-node traffic (see the module docs).
    pub fn mark_peer(&self) {
        if self.peer.load(Relaxed) {
            return;
        }
        let took = self
            .peers
            .fetch_update(Relaxed, Relaxed, |n| (n < self.peer_cap).then_some(n + 1));
        if took.is_ok() {
            self.peer.store(true, Relaxed);
        }
    }

    pub fn is_peer(&self) -> bool {
        self.peer.load(Relaxed)
    }

    /// Completes when the accept loop sheds this connection.
    pub async fn shed(&self) {
        self.shed.notified().await
    }

    /// Whether a shed may close it now: no request of it is being carried out. If
    /// one is, the shed is called off and the connection may be picked again later.
    pub fn may_shed(&self) -> bool {
        let idle = self.waiting_since.load(Relaxed) != BUSY;
        if !idle {
            self.shed_requested.store(false, Relaxed);
        }
        idle
    }

    fn flushed(&self) {
        if self.requests.load(Relaxed) == self.responses.load(Relaxed) {
            self.quiet.store(true, Relaxed);
        }
    }
}

/// A response body that tells its connection when the HTTP library is done with it.
pub struct Tracked {
    inner: Full<Bytes>,
    conn: Arc<Conn>,
}

impl Tracked {
    pub fn new(inner: Full<Bytes>, conn: Arc<Conn>) -> Tracked {
        Tracked { inner, conn }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        // The library took every byte into its write buffer (or dropped the body);
        // the next flush puts them on the wire.
        self.conn.responses.fetch_add(1, Relaxed);
    }
}

/// The connection's I/O, rewriting the answers the HTTP library writes by itself
/// for requests it cannot read (400 bad request line or header, 414 URI too long,
/// 431 head too large: a status line with an empty body) into the node's JSON
/// errors. Such an answer is the only thing written while the connection is quiet
/// (every response of the service written and flushed), and the library closes the
/// connection after it.
pub struct JsonLibraryErrors<I> {
    inner: I,
    conn: Arc<Conn>,
    metrics: Arc<Metrics>,
    /// Our replacement and how much of it is written.
    substitute: Option<(Vec<u8>, usize)>,
    /// The replacement is written: drop whatever else the library writes.
    swallow: bool,
}

impl<I> JsonLibraryErrors<I> {
    pub fn new(inner: I, conn: Arc<Conn>, metrics: Arc<Metrics>) -> Self {
        JsonLibraryErrors {
            inner,
            conn,
            metrics,
            substitute: None,
            swallow: false,
        }
    }
}

/// The status of an error response head at the start of `buf`.
fn error_status(buf: &[u8]) -> Option<StatusCode> {
    let rest = buf.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    let code = std::str::from_utf8(rest).ok()?.parse::<u16>().ok()?;
    StatusCode::from_u16(code)
        .ok()
        .filter(|s| s.is_client_error() || s.is_server_error())
}

/// The whole JSON response that replaces the library's answer `status`.
pub fn library_error_response(status: StatusCode) -> Vec<u8> {
    let (code, message) = match status.as_u16() {
        414 => (
            "uri_too_long",
            "the request target is longer than this server reads",
        ),
        431 => (
            "request_header_fields_too_large",
            "the request head is larger than this server reads",
        ),
        400 => ("bad_request", "the request line or a header is malformed"),
        _ => ("bad_request", "the HTTP request could not be read"),
    };
    let body = serde_json::json!({"error": code, "message": message}).to_string();
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        body.len()
    )
    .into_bytes()
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for JsonLibraryErrors<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for JsonLibraryErrors<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.swallow {
            return Poll::Ready(Ok(buf.len()));
        }
        if this.substitute.is_none()
            && this.conn.quiet.load(Relaxed)
            && let Some(status) = error_status(buf)
        {
            this.metrics.http_errors.fetch_add(1, Relaxed);
            this.substitute = Some((library_error_response(status), 0));
        }
        let Some((bytes, written)) = &mut this.substitute else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *written < bytes.len() {
            let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += n;
        }
        this.substitute = None;
        this.swallow = true;
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = ready!(Pin::new(&mut self.inner).poll_flush(cx));
        if r.is_ok() {
            self.conn.flushed();
        }
        Poll::Ready(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// One buffer per write, so a response head always starts a write.
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_error_heads_are_recognised_and_replaced_by_json() {
        assert_eq!(
            error_status(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        assert_eq!(error_status(b"HTTP/1.1 200 OK\r\n"), None);
        assert_eq!(error_status(b"HTTP/1.1 100 Continue\r\n"), None);
        assert_eq!(error_status(b"{\"key\":\"HTTP/1.1 400\"}"), None);
        let text =
            String::from_utf8(library_error_response(StatusCode::URI_TOO_LONG)).expect("utf-8");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{head}");
        assert!(head.contains(&format!("content-length: {}", body.len())));
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        assert_eq!(v["error"], "uri_too_long");
        assert!(v["message"].is_string());
    }
}
