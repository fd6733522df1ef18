//! The HTTP service: one function per request that routes, reads the body within its
//! limit, and either hands the operation to the local driver (leader, reads), forwards
//! it to the leader, or answers from the published status.

use super::api::{self, ApiError, Route};
use super::app::{App, HttpResponse};
use super::conn::Conn;
use super::driver::DriverMsg;
use super::forward;
use super::metrics::OpKind;
use super::snapshot_stream;
use super::transport::{self, MAX_RAFT_BODY, TOKEN_HEADER};
use crate::kv::KvOp;
use crate::replica::{ClientRequest, Response, Role, Status};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Request, StatusCode};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Pause before retrying an operation that certainly did not happen.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// No retry starts with less than this left before the deadline: a late attempt
/// would more likely end indeterminate (504) than succeed.
const RETRY_RESERVE: Duration = Duration::from_millis(500);

/// Entry point for hyper: never fails, every error is a JSON answer.
pub async fn serve(
    app: Arc<App>,
    conn: &Conn,
    req: Request<Incoming>,
) -> Result<HttpResponse, Infallible> {
    let t0 = Instant::now();
    let (resp, kind) = match handle(&app, conn, req).await {
        Ok(r) => r,
        Err((e, kind)) => (error_response(&e), kind),
    };
    if resp.status().is_client_error() || resp.status().is_server_error() {
        app.metrics.http_errors.fetch_add(1, Relaxed);
    }
    if let Some(kind) = kind {
        app.metrics.observe_request(kind, t0.elapsed());
    }
    Ok(resp)
}

type Handled = Result<(HttpResponse, Option<OpKind>), (ApiError, Option<OpKind>)>;

async fn handle(app: &App, conn: &Conn, req: Request<Incoming>) -> Handled {
    let deadline = Instant::now() + app.config.request_timeout;
    let route =
        api::route(req.method(), req.uri().path(), req.uri().query()).map_err(|e| (e, None))?;
    let kind = op_kind(&route);
    let fail = |e: ApiError| (e, kind);
    let token = token_ok(app, &req);
    if route.needs_token() && !token {
        return Err(fail(ApiError::unauthorized()));
    }
    let limit = match route {
        Route::RaftMsg => MAX_RAFT_BODY,
        Route::RaftSnapshot => snapshot_stream::MAX_CHUNK_BYTES,
        _ => app.config.max_body_bytes,
    };
    // A snapshot chunk says what it is in its headers, read before the body.
    let chunk = match route {
        Route::RaftSnapshot => Some(
            snapshot_stream::ChunkHeader::from_headers(req.headers())
                .map_err(|e| fail(ApiError::bad_request(e)))?,
        ),
        _ => None,
    };
    if route.has_body() {
        let ct = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        api::check_content_type(ct).map_err(fail)?;
    }
    let forwarded = req.headers().contains_key(forward::HOP_HEADER);
    if forwarded && token {
        conn.mark_peer();
    }
    let identity = if kind.is_some_and(|k| k != OpKind::Other) {
        api::request_identity(
            req.headers().get(api::CLIENT_HEADER).map(|v| v.as_bytes()),
            req.headers().get(api::SEQ_HEADER).map(|v| v.as_bytes()),
        )
        .map_err(fail)?
    } else {
        None
    };
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let method = req.method().clone();
    let body = read_body(req, limit, app.config.read_timeout)
        .await
        .map_err(|e| {
            if e.status == StatusCode::REQUEST_TIMEOUT {
                app.metrics.body_timeouts.fetch_add(1, Relaxed);
            }
            fail(e)
        })?;
    conn.request_read();
    let resp = match route {
        Route::Status => json_response(StatusCode::OK, &status_json(&app.status.borrow())),
        Route::Metrics => {
            let text = app.metrics.render(&app.status.borrow());
            let mut r = hyper::Response::new(Full::new(Bytes::from(text)));
            r.headers_mut().insert(
                CONTENT_TYPE,
                HeaderValue::from_static(super::metrics::CONTENT_TYPE),
            );
            r
        }
        Route::RaftMsg => {
            let r = raft_msg(app, &body).map_err(fail)?;
            conn.mark_peer();
            r
        }
        Route::RaftSnapshot => match chunk {
            Some(h) => {
                let r = snapshot_chunk(app, h, body).await;
                conn.mark_peer();
                r
            }
            None => error_response(&ApiError::bad_request("no chunk header")),
        },
        Route::Snapshot => take_snapshot(app, deadline).await.map_err(fail)?,
        Route::MembershipGet => {
            let s = status_json(&app.status.borrow());
            json_response(
                StatusCode::OK,
                &json!({"voters": s["voters"], "learners": s["learners"], "joint": s["joint"]}),
            )
        }
        _ => {
            let ctx = forward::Ctx {
                method,
                path_and_query,
                body,
                deadline,
                forwarded,
                is_read: matches!(route, Route::Get { .. }),
                identity,
            };
            client_op(app, &route, ctx).await.map_err(fail)?
        }
    };
    Ok((resp, kind))
}

/// Runs a client or admin operation here when this node leads (or the operation is
/// local), else at the leader. A read always goes to this node's replica first: the
/// replica decides whether it answers (as leader, after confirming it still leads)
/// or names the leader, and only then is the read forwarded. Outcomes that certainly did not apply the operation
/// (no leader yet, the leader just stepped down, the leader unreachable) are retried
/// after a short pause while enough of the deadline remains, so a leader change is
/// seen by clients as latency rather than as errors. Anything that may have applied
/// it is returned as is.
async fn client_op(app: &App, route: &Route, ctx: forward::Ctx) -> Result<HttpResponse, ApiError> {
    let mut hint = None;
    loop {
        if *app.shutdown.borrow() {
            return Err(ApiError::unavailable("shutting down"));
        }
        let outcome = if !route.needs_leader() || ctx.is_read || proposes_itself(app) {
            match on_leader(app, route, &ctx).await {
                Ok(Local::Answered(r)) => return Ok(r),
                Ok(Local::NotLeader(h)) if ctx.is_read => forward::to_leader(app, &ctx, h).await,
                Ok(Local::NotLeader(h)) => {
                    hint = h;
                    Err(ApiError::unavailable("leadership changed"))
                }
                Err(e) => Err(e),
            }
        } else {
            forward::to_leader(app, &ctx, hint.take()).await
        };
        let retryable = match &outcome {
            Ok(r) => r.status() == StatusCode::SERVICE_UNAVAILABLE,
            Err(e) => e.status == StatusCode::SERVICE_UNAVAILABLE,
        };
        let time_left = ctx.deadline.saturating_duration_since(Instant::now());
        if !retryable || ctx.forwarded || time_left < RETRY_RESERVE {
            return outcome;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

enum Local {
    Answered(HttpResponse),
    /// This node is not the leader after all (the replica said so): forward.
    NotLeader(Option<u64>),
}

/// Runs a client or admin operation on this node's replica.
async fn on_leader(app: &App, route: &Route, ctx: &forward::Ctx) -> Result<Local, ApiError> {
    let (body, deadline) = (&ctx.body[..], ctx.deadline);
    match route {
        Route::TransferLeader => {
            let b: api::TransferBody = api::parse_json(body)?;
            api::check_transfer(b.to, &app.status.borrow().membership)?;
            if b.to == app.config.id {
                return Ok(Local::Answered(json_response(
                    StatusCode::OK,
                    &json!({"transfer_to": b.to, "leader": b.to}),
                )));
            }
            submit(app, DriverMsg::Transfer { to: b.to })?;
            Ok(Local::Answered(json_response(
                StatusCode::ACCEPTED,
                &json!({"transfer_to": b.to}),
            )))
        }
        Route::MembershipChange => {
            let b: api::MembershipBody = api::parse_json(body)?;
            api::check_voters(&b.voters, &app.config.peers)?;
            let (tx, rx) = oneshot::channel();
            submit(
                app,
                DriverMsg::Membership {
                    voters: b.voters.clone(),
                    reply: tx,
                },
            )?;
            match wait(rx, deadline, false).await? {
                Response::Done(_) => Ok(Local::Answered(json_response(
                    StatusCode::OK,
                    &json!({"voters": b.voters}),
                ))),
                Response::NotLeader { leader } => Ok(Local::NotLeader(leader)),
                Response::Indeterminate => {
                    Err(ApiError::timeout("membership change indeterminate"))
                }
                Response::Rejected { reason } => Err(ApiError::unavailable(reason)),
                // A membership change carries no command to skip: Invalid is the
                // engine saying it does not change membership at all (Paxos).
                Response::Invalid { reason } => Err(ApiError::new(
                    StatusCode::NOT_IMPLEMENTED,
                    "not_implemented",
                    reason,
                )),
            }
        }
        _ => {
            let op = api::kv_op(route, body)?;
            let is_read = matches!(op, KvOp::Get { .. });
            let (tx, rx) = oneshot::channel();
            // Without Client-Id and Request-Seq: client 0, which never deduplicates.
            let (client, seq) = ctx.identity.unwrap_or((0, 0));
            let request = ClientRequest {
                client,
                seq,
                op: op.clone(),
            };
            submit(app, DriverMsg::Client { request, reply: tx })?;
            match wait(rx, deadline, is_read).await? {
                Response::NotLeader { leader } => Ok(Local::NotLeader(leader)),
                other => {
                    let (status, v) = api::kv_answer(&op, other)?;
                    Ok(Local::Answered(json_response(status, &v)))
                }
            }
        }
    }
}

/// `POST /admin/snapshot`: this node snapshots its state and compacts its log;
/// answers with the index the newest snapshot covers.
async fn take_snapshot(app: &App, deadline: Instant) -> Result<HttpResponse, ApiError> {
    let (tx, rx) = oneshot::channel();
    submit(app, DriverMsg::Snapshot { reply: tx })?;
    match tokio::time::timeout_at(deadline.into(), rx).await {
        Ok(Ok(index)) => Ok(json_response(
            StatusCode::OK,
            &json!({"snapshot_index": index}),
        )),
        Ok(Err(_)) => Err(ApiError::unavailable("shutting down")),
        Err(_) => Err(ApiError::timeout("the snapshot did not finish in time")),
    }
}

fn submit(app: &App, msg: DriverMsg) -> Result<(), ApiError> {
    app.driver.try_send(msg).map_err(|e| match e {
        mpsc::error::TrySendError::Full(_) => {
            ApiError::unavailable("node overloaded: input queue full")
        }
        mpsc::error::TrySendError::Closed(_) => ApiError::unavailable("shutting down"),
    })
}

/// Waits for the replica's answer. A write that timed out may still commit: 504.
async fn wait(
    rx: oneshot::Receiver<Response>,
    deadline: Instant,
    is_read: bool,
) -> Result<Response, ApiError> {
    match tokio::time::timeout_at(deadline.into(), rx).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(_)) if is_read => Err(ApiError::unavailable("shutting down")),
        Ok(Err(_)) => Err(ApiError::timeout(
            "node stopped before answering; the write may or may not take effect",
        )),
        Err(_) => Err(ApiError::timeout(
            "no answer before the request deadline; the operation may or may not take effect",
        )),
    }
}

fn raft_msg(app: &App, body: &[u8]) -> Result<HttpResponse, ApiError> {
    let batch = transport::decode_batch(body)
        .map_err(|e| ApiError::bad_request(format!("raft batch: {e}")))?;
    app.metrics
        .peer_received_msgs
        .fetch_add(batch.len() as u64, Relaxed);
    for m in batch {
        if m.to() != app.config.id {
            continue;
        }
        // Drop on a full queue: the sender will retry, as Raft does for any loss.
        if app.driver.try_send(DriverMsg::Peer(m)).is_err() {
            app.metrics.peer_dropped_msgs.fetch_add(1, Relaxed);
        }
    }
    let mut r = hyper::Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::NO_CONTENT;
    Ok(r)
}

/// `POST /raft/snapshot`: one chunk of a snapshot a leader streams to this node
/// (see [`snapshot_stream`]). The chunk is written on a blocking thread; when it
/// completes the file, the file is read back and stepped into the core as its
/// `InstallSnapshot`.
async fn snapshot_chunk(app: &App, h: snapshot_stream::ChunkHeader, body: Bytes) -> HttpResponse {
    if h.to != app.config.id {
        return error_response(&ApiError::bad_request(format!(
            "chunk addressed to node {}, this is node {}",
            h.to, app.config.id
        )));
    }
    let term = app.status.borrow().term;
    let receiver = app.snapshots.clone();
    // Written on a blocking thread; the lock makes the chunks of a stream take turns.
    let taken = tokio::task::spawn_blocking(move || {
        let mut r = receiver
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        r.take(&h, term, &body)
    })
    .await
    .unwrap_or_else(|e| {
        Err(snapshot_stream::Refusal::Bad(format!(
            "chunk writer failed: {e}"
        )))
    });
    match &taken {
        Ok(_) => app.metrics.snapshot_chunks_received.fetch_add(1, Relaxed),
        Err(_) => app.metrics.snapshot_chunks_refused.fetch_add(1, Relaxed),
    };
    if let Ok(snapshot_stream::Taken::Complete(path)) = &taken {
        let (driver, path) = (app.driver.clone(), path.clone());
        // Read back and handed over after the answer: the leader need not wait.
        tokio::spawn(async move {
            let read =
                tokio::task::spawn_blocking(move || snapshot_stream::received_message(&h, &path))
                    .await;
            match read {
                Ok(Ok(m)) => {
                    let _ = driver.send(DriverMsg::Peer(m)).await;
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "received snapshot not installed"),
                Err(e) => tracing::error!(error = %e, "reading a received snapshot failed"),
            }
        });
    }
    snapshot_stream::answer(&taken, h.total)
}

/// This node takes client operations itself: a leader, or (Basic Paxos, which has
/// none) any proposer.
pub fn proposes_itself(app: &App) -> bool {
    matches!(app.status.borrow().role, Role::Leader | Role::Proposer)
}

fn token_ok(app: &App, req: &Request<Incoming>) -> bool {
    match &app.config.cluster_token {
        None => true,
        Some(t) => req
            .headers()
            .get(TOKEN_HEADER)
            .is_some_and(|v| same_secret(v.as_bytes(), t.as_bytes())),
    }
}

/// Compares without stopping at the first difference, so the time an answer takes
/// does not tell how much of a guessed token was right.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the whole body within `timeout` (408), refusing more than `limit` bytes
/// (413). A declared length over the limit is refused before reading anything.
async fn read_body(
    req: Request<Incoming>,
    limit: usize,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    let read = tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect());
    let Ok(read) = read.await else {
        return Err(ApiError::body_timeout(timeout));
    };
    match read {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ApiError::too_large(limit)),
        Err(e) => Err(ApiError::bad_request(format!("reading body: {e}"))),
    }
}

fn op_kind(route: &Route) -> Option<OpKind> {
    match route {
        Route::Get { .. } => Some(OpKind::Get),
        Route::Put { .. } => Some(OpKind::Put),
        Route::Cas { .. } => Some(OpKind::Cas),
        Route::Delete { .. } => Some(OpKind::Delete),
        Route::TransferLeader | Route::MembershipChange => Some(OpKind::Other),
        _ => None,
    }
}

/// `/status` as docs/design.md ("HTTP API") lists it.
pub fn status_json(s: &Status) -> Value {
    let m = &s.membership;
    json!({
        "id": s.id,
        "role": s.role.as_str(),
        "term": s.term,
        "leader": s.leader,
        "commit_index": s.commit_index,
        "applied_index": s.applied_index,
        "first_log_index": s.first_log_index,
        "last_log_index": s.last_log_index,
        "snapshot_index": s.snapshot_index,
        // Hex strings: random 64-bit numbers do not survive a JSON double.
        "incarnation": format!("{:016x}", s.incarnation),
        "cluster": format!("{:016x}", s.cluster),
        "voters": m.voters,
        "learners": m.learners,
        "joint": m.voters_old.as_ref().map(|old| json!({"old": old, "new": m.voters})),
        "consensus": s.consensus.as_str(),
    })
}

pub fn json_response(status: StatusCode, v: &Value) -> HttpResponse {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    let mut r = hyper::Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

pub fn error_response(e: &ApiError) -> HttpResponse {
    let mut r = json_response(e.status, &e.body());
    if let Some(allow) = e.allow {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static(allow));
    }
    // The body was not read (whole): the connection cannot carry another request.
    if matches!(
        e.status,
        StatusCode::REQUEST_TIMEOUT | StatusCode::PAYLOAD_TOO_LARGE
    ) {
        r.headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    r
}

#[cfg(test)]
mod tests {
    use super::same_secret;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(same_secret(b"", b""));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cre"));
        assert!(!same_secret(b"", b"x"));
    }
}
