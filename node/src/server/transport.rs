//! Peer transport: Raft messages travel as `POST /raft/msg` with a postcard-encoded
//! `Vec<Message>` body.
//!
//! Each peer has its own bounded queue and its own task, so a slow or dead peer only
//! fills (and then drops from) its own queue: Raft tolerates lost messages, and the
//! driver must never wait on the network. A task sends whatever accumulated while its
//! previous request was in flight as one batch, and backs off after a failure.

use super::metrics::Metrics;
use crate::raft::types::{Message, NodeId};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// Most messages in one request.
const MAX_BATCH: usize = 256;
/// Bound on one peer request; a peer slower than this counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// The largest `/raft/msg` body a node accepts (snapshots travel this way).
pub const MAX_RAFT_BODY: usize = 256 << 20;
/// Header carrying the cluster token on /raft and /admin.
pub const TOKEN_HEADER: &str = "x-cluster-token";

/// The driver's handle: one queue per peer.
pub struct Transport {
    queues: BTreeMap<NodeId, mpsc::Sender<Message>>,
    metrics: Arc<Metrics>,
}

impl Transport {
    /// Starts one sending task per peer other than `me`.
    pub fn start(
        me: NodeId,
        peers: &BTreeMap<NodeId, SocketAddr>,
        token: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Transport {
        let mut queues = BTreeMap::new();
        for (&id, &addr) in peers.iter().filter(|(id, _)| **id != me) {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            queues.insert(id, tx);
            let peer = Peer {
                id,
                addr,
                token: token.clone(),
                metrics: metrics.clone(),
                link: None,
            };
            tokio::spawn(peer.run(rx));
        }
        Transport { queues, metrics }
    }

    /// Queues `m` for its peer; drops it when the queue is full or the peer unknown.
    pub fn send(&self, m: Message) {
        match self.queues.get(&m.to) {
            Some(q) => {
                if q.try_send(m).is_err() {
                    self.metrics.peer_dropped_msgs.fetch_add(1, Relaxed);
                }
            }
            None => {
                self.metrics.peer_dropped_msgs.fetch_add(1, Relaxed);
                tracing::debug!(to = m.to, "no address for peer; message dropped");
            }
        }
    }
}

struct Peer {
    id: NodeId,
    addr: SocketAddr,
    token: Option<String>,
    metrics: Arc<Metrics>,
    /// The open connection, if any. Owned by this task and polled only by it, so a
    /// batch costs no hop through a separate connection task.
    link: Option<Link>,
}

type Conn = http1::Connection<TokioIo<TcpStream>, Full<Bytes>>;

struct Link {
    sender: http1::SendRequest<Full<Bytes>>,
    conn: Pin<Box<Conn>>,
}

impl Peer {
    async fn run(mut self, mut rx: mpsc::Receiver<Message>) {
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            match self.post(&batch).await {
                Ok(()) => {
                    self.metrics.peer_sent_msgs.fetch_add(n, Relaxed);
                    if failing {
                        tracing::info!(peer = self.id, "peer reachable again");
                    }
                    failing = false;
                    backoff = BACKOFF_MIN;
                }
                Err(e) => {
                    self.metrics.peer_send_errors.fetch_add(1, Relaxed);
                    self.metrics.peer_dropped_msgs.fetch_add(n, Relaxed);
                    if !failing {
                        tracing::warn!(peer = self.id, error = %e, "peer unreachable; backing off");
                    }
                    failing = true;
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    // What queued up during the pause is stale (heartbeats, old
                    // appends); Raft resends what still matters.
                    let mut stale = 0;
                    while rx.try_recv().is_ok() {
                        stale += 1;
                    }
                    self.metrics.peer_dropped_msgs.fetch_add(stale, Relaxed);
                }
            }
        }
    }

    async fn post(&mut self, batch: &[Message]) -> Result<(), String> {
        let body = postcard::to_allocvec(batch).map_err(|e| format!("encode: {e}"))?;
        let mut req = Request::post("/raft/msg")
            .header(HOST, self.addr.to_string())
            .header(CONTENT_TYPE, "application/octet-stream");
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let result = tokio::time::timeout(SEND_TIMEOUT, self.exchange(req))
            .await
            .unwrap_or_else(|_| Err("timed out".to_string()));
        if result.is_err() {
            // The connection's state is unknown: start afresh next time.
            self.link = None;
        }
        result
    }

    /// Sends one request on the open connection (connecting first if needed) and
    /// reads the answer, driving the connection from this task.
    async fn exchange(&mut self, req: Request<Full<Bytes>>) -> Result<(), String> {
        if self.link.is_none() {
            let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.addr))
                .await
                .map_err(|_| "connect timed out".to_string())?
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            let (sender, conn) = http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            self.link = Some(Link {
                sender,
                conn: Box::pin(conn),
            });
        }
        let Some(Link { sender, conn }) = self.link.as_mut() else {
            return Err("no connection".to_string());
        };
        let roundtrip = async {
            sender.ready().await.map_err(|e| e.to_string())?;
            let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
            let status = resp.status();
            resp.into_body()
                .collect()
                .await
                .map_err(|e| format!("reading answer: {e}"))?;
            Ok::<_, String>(status)
        };
        let status = tokio::select! {
            r = roundtrip => r?,
            closed = conn.as_mut() => {
                return Err(match closed {
                    Ok(()) => "connection closed".to_string(),
                    Err(e) => format!("connection: {e}"),
                });
            }
        };
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("peer answered {status}"))
        }
    }
}

/// Decodes a `/raft/msg` body.
pub fn decode_batch(body: &[u8]) -> Result<Vec<Message>, postcard::Error> {
    postcard::from_bytes(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::MessageBody;

    #[test]
    fn batches_round_trip_through_postcard() {
        let batch = vec![
            Message {
                from: 1,
                to: 2,
                term: 3,
                body: MessageBody::TimeoutNow,
            },
            Message {
                from: 1,
                to: 2,
                term: 3,
                body: MessageBody::VoteResponse {
                    pre_vote: false,
                    granted: true,
                },
            },
        ];
        let bytes = postcard::to_allocvec(&batch).expect("encode");
        assert_eq!(decode_batch(&bytes).expect("decode"), batch);
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_err());
    }
}
