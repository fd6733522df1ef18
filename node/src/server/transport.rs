//! Peer transport: engine messages travel as `POST /raft/msg` with a postcard-encoded
//! `Vec<PeerMessage>` body.
//!
//! Each peer has its own bounded queue and its own task, so a slow or dead peer only
//! fills (and then drops from) its own queue: Raft tolerates lost messages, and the
//! driver must never wait on the network. A task sends whatever accumulated while its
//! previous request was in flight as one batch, and backs off after a failure.
//!
//! A Raft `InstallSnapshot` does not take that road when the node has a data
//! directory: it goes to the peer's snapshot [`Streamer`], which sends the snapshot
//! file in chunks (see [`super::snapshot_stream`]).

use super::client::HttpClient;
use super::metrics::Metrics;
use super::snapshot_stream::Streamer;
use crate::engine::{NodeId, PeerMessage};
use crate::raft::types::{Message, MessageBody, Snapshot, SnapshotData};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages queued per peer before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// Most messages in one request.
const MAX_BATCH: usize = 256;
/// Most bytes in one request, unless its one message is larger.
const MAX_BATCH_BYTES: usize = 32 << 20;
/// Bound on one peer request; a peer slower than this counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// The largest `/raft/msg` body a node accepts (a snapshot travels this way only
/// from a node without a data directory, or under Paxos).
pub const MAX_RAFT_BODY: usize = 256 << 20;
/// Header carrying the cluster token on /raft and /admin.
pub const TOKEN_HEADER: &str = "x-cluster-token";

/// The driver's handle: one queue per peer.
pub struct Transport {
    queues: BTreeMap<NodeId, mpsc::Sender<PeerMessage>>,
    /// One snapshot stream per peer, when snapshots are streamed from files.
    streams: BTreeMap<NodeId, mpsc::Sender<Message>>,
    metrics: Arc<Metrics>,
}

/// Where a node streams its snapshots from: its data directory, and the chunk size.
pub struct StreamFrom {
    pub dir: PathBuf,
    pub chunk_bytes: usize,
}

impl Transport {
    /// Starts one sending task per peer other than `me`, and with `stream_from` one
    /// snapshot streamer per peer.
    pub fn start(
        me: NodeId,
        peers: &BTreeMap<NodeId, SocketAddr>,
        token: Option<String>,
        client: HttpClient,
        metrics: Arc<Metrics>,
        stream_from: Option<StreamFrom>,
    ) -> Transport {
        let mut queues = BTreeMap::new();
        let mut streams = BTreeMap::new();
        for (&id, &addr) in peers.iter().filter(|(id, _)| **id != me) {
            if let Some(from) = &stream_from {
                let (tx, rx) = mpsc::channel(1);
                streams.insert(id, tx);
                let streamer = Streamer {
                    to: id,
                    uri: format!("http://{addr}/raft/snapshot"),
                    token: token.clone(),
                    client: client.clone(),
                    metrics: metrics.clone(),
                    dir: from.dir.clone(),
                    chunk_bytes: from.chunk_bytes,
                };
                tokio::spawn(streamer.run(rx));
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            queues.insert(id, tx);
            let peer = Peer {
                id,
                uri: format!("http://{addr}/raft/msg"),
                token: token.clone(),
                client: client.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(peer.run(rx));
        }
        Transport {
            queues,
            streams,
            metrics,
        }
    }

    /// Queues `m` for its peer; drops it when the queue is full or the peer unknown.
    /// An InstallSnapshot asks the peer's streamer for a stream instead (dropped
    /// while one runs: the core resends until it is answered).
    pub fn send(&self, m: PeerMessage) {
        if let PeerMessage::Raft(Message {
            from,
            to,
            term,
            incarnation,
            body: MessageBody::InstallSnapshot { snapshot },
        }) = &m
            && let Some(stream) = self.streams.get(to)
        {
            // The request names the snapshot (its meta); the bytes come from its file.
            let request = Message {
                from: *from,
                to: *to,
                term: *term,
                incarnation: *incarnation,
                body: MessageBody::InstallSnapshot {
                    snapshot: Snapshot {
                        meta: snapshot.meta.clone(),
                        data: SnapshotData::default(),
                    },
                },
            };
            if stream.try_send(request).is_err() {
                self.metrics.peer_dropped_msgs.fetch_add(1, Relaxed);
            }
            return;
        }
        match self.queues.get(&m.to()) {
            Some(q) => {
                if q.try_send(m).is_err() {
                    self.metrics.peer_dropped_msgs.fetch_add(1, Relaxed);
                }
            }
            None => {
                self.metrics.peer_dropped_msgs.fetch_add(1, Relaxed);
                tracing::debug!(to = m.to(), "no address for peer; message dropped");
            }
        }
    }
}

struct Peer {
    id: NodeId,
    uri: String,
    token: Option<String>,
    client: HttpClient,
    metrics: Arc<Metrics>,
}

impl Peer {
    async fn run(self, mut rx: mpsc::Receiver<PeerMessage>) {
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        let mut carry = None;
        loop {
            let first = match carry.take() {
                Some(m) => m,
                None => match rx.recv().await {
                    Some(m) => m,
                    None => break,
                },
            };
            let mut batch = Batch::default();
            batch.push(&first);
            while batch.count < MAX_BATCH {
                let Ok(m) = rx.try_recv() else { break };
                if !batch.push(&m) {
                    carry = Some(m);
                    break;
                }
            }
            let n = batch.count as u64;
            match self.post(batch.finish()).await {
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
                    let mut stale = u64::from(carry.take().is_some());
                    while rx.try_recv().is_ok() {
                        stale += 1;
                    }
                    self.metrics.peer_dropped_msgs.fetch_add(stale, Relaxed);
                }
            }
        }
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let mut req = Request::post(&self.uri).header("content-type", "application/octet-stream");
        if let Some(t) = &self.token {
            req = req.header(TOKEN_HEADER, t);
        }
        let req = req
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let resp = tokio::time::timeout(SEND_TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| "timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let status = resp.status();
        // Drain the (empty) body so the connection returns to the pool.
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("peer answered {status}"))
        }
    }
}

/// A `/raft/msg` body in the making: the messages encoded one after another, as
/// postcard encodes a `Vec<PeerMessage>` after its length. Bounded in bytes as well
/// as in messages, so a batch never grows past what the peer reads.
struct Batch {
    count: usize,
    bytes: Vec<u8>,
    /// The byte bound ([`MAX_BATCH_BYTES`]).
    limit: usize,
}

impl Default for Batch {
    fn default() -> Batch {
        Batch {
            count: 0,
            bytes: Vec::new(),
            limit: MAX_BATCH_BYTES,
        }
    }
}

impl Batch {
    /// Adds `m` unless that would take the batch past its byte bound (a first
    /// message always goes in). A message that cannot be encoded is left out.
    fn push(&mut self, m: &PeerMessage) -> bool {
        let encoded = match postcard::to_allocvec(m) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "peer message does not encode; dropped");
                return true;
            }
        };
        if self.count > 0 && self.bytes.len() + encoded.len() > self.limit {
            return false;
        }
        self.bytes.extend_from_slice(&encoded);
        self.count += 1;
        true
    }

    /// The body: the count, then the messages.
    fn finish(self) -> Vec<u8> {
        let mut body = postcard::to_allocvec(&self.count).unwrap_or_default();
        body.extend_from_slice(&self.bytes);
        body
    }
}

/// Decodes a `/raft/msg` body.
pub fn decode_batch(body: &[u8]) -> Result<Vec<PeerMessage>, postcard::Error> {
    postcard::from_bytes(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::types::{Message, MessageBody};

    #[test]
    fn batches_round_trip_through_postcard() {
        let batch = vec![
            Message {
                from: 1,
                to: 2,
                term: 3,
                incarnation: 9,
                body: MessageBody::TimeoutNow,
            },
            Message {
                from: 1,
                to: 2,
                term: 3,
                incarnation: 9,
                body: MessageBody::VoteResponse {
                    pre_vote: false,
                    granted: true,
                },
            },
        ]
        .into_iter()
        .map(PeerMessage::Raft)
        .collect::<Vec<_>>();
        let bytes = postcard::to_allocvec(&batch).expect("encode");
        assert_eq!(decode_batch(&bytes).expect("decode"), batch);
        assert!(decode_batch(&bytes[..bytes.len() - 1]).is_err());
        // Built one message at a time, the body is the same.
        let mut b = Batch::default();
        for m in &batch {
            assert!(b.push(m));
        }
        assert_eq!(b.finish(), bytes);
    }

    #[test]
    fn a_batch_stops_before_it_outgrows_its_byte_bound() {
        let append = |i: u64, kib: usize| {
            PeerMessage::Raft(Message {
                from: 1,
                to: 2,
                term: 3,
                incarnation: i,
                body: MessageBody::Append {
                    prev_index: 0,
                    prev_term: 0,
                    entries: vec![crate::raft::types::Entry {
                        term: 1,
                        index: 1,
                        payload: crate::raft::types::Payload::Command(vec![7; kib << 10]),
                    }],
                    commit: 0,
                    read_ctx: 0,
                },
            })
        };
        let batch = || Batch {
            limit: 32 << 10,
            ..Batch::default()
        };
        let mut b = batch();
        assert!(b.push(&append(1, 12)) && b.push(&append(2, 12)));
        assert!(
            !b.push(&append(3, 12)),
            "a third 12 KiB message passes 32 KiB"
        );
        assert_eq!(b.count, 2);
        let decoded = decode_batch(&b.finish()).expect("decode");
        assert_eq!(decoded, vec![append(1, 12), append(2, 12)]);
        // One message larger than the bound still goes, alone.
        let mut one = batch();
        assert!(one.push(&append(4, 40)));
        assert_eq!(one.count, 1);
    }
}
