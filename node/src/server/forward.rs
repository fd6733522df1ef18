//! Forwarding client requests from a follower to the leader.
//!
//! A forwarded request carries a hop header; a node that receives one and is not the
//! leader answers 503 instead of forwarding again, so two nodes with stale views of
//! the leader cannot bounce a request between them. A failure before the request
//! reached the leader is a 503 (certainly not applied); after it may have reached the
//! leader, a write is indeterminate: 504.

use super::api::{ApiError, CLIENT_HEADER, SEQ_HEADER};
use super::app::{App, HttpResponse, wait_for_leader};
use super::transport::TOKEN_HEADER;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// Marks a request as already forwarded once; its value is the forwarding node's id.
pub const HOP_HEADER: &str = "x-forwarded-by";
/// Largest answer accepted from the leader (a value is at most the body limit).
const MAX_ANSWER: usize = 4 << 20;

/// The parts of the original request needed to replay it at the leader.
pub struct Ctx {
    pub method: Method,
    pub path_and_query: String,
    pub body: Bytes,
    pub deadline: Instant,
    /// The request already came from another node.
    pub forwarded: bool,
    pub is_read: bool,
    /// `(Client-Id, Request-Seq)`, passed on so the leader deduplicates retries.
    pub identity: Option<(u64, u64)>,
}

pub async fn to_leader(app: &App, ctx: &Ctx, hint: Option<u64>) -> Result<HttpResponse, ApiError> {
    let me = app.config.id;
    if ctx.forwarded {
        return Err(ApiError::unavailable(format!(
            "node {me} is not the leader (request already forwarded once)"
        )));
    }
    let known = hint.or(app.status.borrow().leader).filter(|l| *l != me);
    let leader = match known {
        Some(l) => l,
        None => wait_for_leader(app, ctx.deadline)
            .await
            .filter(|l| *l != me)
            .ok_or_else(|| ApiError::unavailable("no leader known"))?,
    };
    let addr = app
        .config
        .peers
        .get(&leader)
        .ok_or_else(|| ApiError::unavailable(format!("no address for leader {leader}")))?;
    let mut req = Request::builder()
        .method(ctx.method.clone())
        .uri(format!("http://{addr}{}", ctx.path_and_query))
        .header(CONTENT_TYPE, "application/json")
        .header(HOP_HEADER, me.to_string());
    if let Some(t) = &app.config.cluster_token {
        req = req.header(TOKEN_HEADER, t);
    }
    if let Some((client, seq)) = ctx.identity {
        req = req
            .header(CLIENT_HEADER, client.to_string())
            .header(SEQ_HEADER, seq.to_string());
    }
    let req = req
        .body(Full::new(ctx.body.clone()))
        .map_err(|e| ApiError::unavailable(format!("building forwarded request: {e}")))?;
    app.metrics.forwarded.fetch_add(1, Relaxed);
    let maybe_sent = |why: String| {
        if ctx.is_read {
            ApiError::unavailable(why)
        } else {
            ApiError::timeout(format!("{why}; the write may or may not take effect"))
        }
    };
    let resp = match tokio::time::timeout_at(ctx.deadline.into(), app.client.request(req)).await {
        Err(_) => {
            return Err(maybe_sent(format!(
                "leader {leader} did not answer in time"
            )));
        }
        Ok(Err(e)) if e.is_connect() => {
            return Err(ApiError::unavailable(format!(
                "cannot reach leader {leader}: {e}"
            )));
        }
        Ok(Err(e)) => return Err(maybe_sent(format!("forwarding to leader {leader}: {e}"))),
        Ok(Ok(r)) => r,
    };
    let (parts, body) = resp.into_parts();
    let body = tokio::time::timeout_at(
        ctx.deadline.into(),
        Limited::new(body, MAX_ANSWER).collect(),
    )
    .await
    .map_err(|_| maybe_sent(format!("leader {leader} answer timed out")))?
    .map_err(|e| maybe_sent(format!("reading leader {leader} answer: {e}")))?
    .to_bytes();
    let mut out = hyper::Response::new(Full::new(body));
    *out.status_mut() = parts.status;
    let ct = parts
        .headers
        .get(CONTENT_TYPE)
        .cloned()
        .unwrap_or(HeaderValue::from_static("application/json"));
    out.headers_mut().insert(CONTENT_TYPE, ct);
    Ok(out)
}
