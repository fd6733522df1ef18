//! A small JSON-over-HTTP/1.1 client on hyper-util's pooled (keep-alive) client, which
//! says whether a failed request may have reached the server.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// Largest response body we read; the node's replies are tiny.
pub const MAX_BODY_BYTES: usize = 1 << 20;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client with keep-alive connections and a short connect timeout (the nodes are on
/// loopback: a slow connect means a paused node). Idle connections are dropped well
/// before a node closes them (`--read-timeout-ms`, 10 s), so no request goes out on
/// a connection the node is closing.
pub fn new_client() -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(Duration::from_millis(500)));
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(32)
        .pool_idle_timeout(Duration::from_secs(4))
        .build(conn)
}

/// What became of one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    /// The server answered. `body` is `Null` when it was empty or not JSON.
    Response { status: u16, body: Value },
    /// The request certainly never reached the server (the connection was refused).
    NotSent(String),
    /// It may or may not have been handled: timeout, or the connection broke after
    /// the request was written.
    Indeterminate(String),
}

/// Sends one request with a JSON body (or none) and waits at most `timeout` for the
/// whole reply.
pub async fn request(
    client: &HttpClient,
    method: Method,
    addr: SocketAddr,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Reply {
    request_with(client, method, addr, path, body, &[], timeout).await
}

/// [`request`] with extra headers.
pub async fn request_with(
    client: &HttpClient,
    method: Method,
    addr: SocketAddr,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, String)],
    timeout: Duration,
) -> Reply {
    let uri = format!("http://{addr}{path}");
    let bytes = match body {
        Some(v) => Bytes::from(v.to_string()),
        None => Bytes::new(),
    };
    let mut builder = Request::builder().method(method).uri(uri);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    for (name, value) in headers {
        builder = builder.header(*name, value);
    }
    let req = match builder.body(Full::new(bytes)) {
        Ok(r) => r,
        Err(e) => return Reply::NotSent(format!("bad request: {e}")),
    };
    let call = async {
        let resp = match client.request(req).await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Reply::NotSent(format!("connect: {e}")),
            Err(e) => return Reply::Indeterminate(format!("{e}")),
        };
        let status = resp.status().as_u16();
        let collected = Limited::new(resp.into_body(), MAX_BODY_BYTES)
            .collect()
            .await;
        match collected {
            Ok(c) => {
                let b = c.to_bytes();
                let body = serde_json::from_slice(&b).unwrap_or(Value::Null);
                Reply::Response { status, body }
            }
            // The status line arrived, so the server did handle it; a broken body
            // still leaves the outcome unknown to us.
            Err(e) => Reply::Indeterminate(format!("reading body: {e}")),
        }
    };
    match tokio::time::timeout(timeout, call).await {
        Ok(r) => r,
        Err(_) => Reply::Indeterminate("timeout".to_string()),
    }
}
