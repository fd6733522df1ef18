//! A small JSON-over-HTTP/1.1 client on hyper-util's pooled (keep-alive) client, which
//! says whether a failed request may have reached the server.
//!
//! Its connector reaches members that live in network namespaces of their own
//! ([`super::host`]): a connection to a routed address is made from that member's
//! host, so clients still talk straight to the member's client address.

use super::host::Host;
use crate::reply::Answer;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::net::TcpStream;

/// Largest response body we read; the members' replies are small.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The members are on loopback: a slow connect means a paused member.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

pub type HttpClient = Client<Connector, Full<Bytes>>;

/// Client addresses that live in a member's own network namespace.
pub type Routes = BTreeMap<SocketAddr, Arc<Host>>;

/// Dials TCP with no delay and a short timeout, from the host a route names, else
/// from this process's own namespace.
#[derive(Clone, Debug, Default)]
pub struct Connector {
    routes: Arc<Routes>,
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let routes = self.routes.clone();
        Box::pin(async move {
            let addr = uri_addr(&uri)?;
            let dial = async {
                match routes.get(&addr) {
                    Some(host) => host.connect(addr).await,
                    None => {
                        let s = TcpStream::connect(addr).await?;
                        s.set_nodelay(true)?;
                        Ok(s)
                    }
                }
            };
            match tokio::time::timeout(CONNECT_TIMEOUT, dial).await {
                Ok(s) => Ok(TokioIo::new(s?)),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connect to {addr} timed out"),
                )),
            }
        })
    }
}

/// The socket address of an `http://IP:PORT` URI (members are addressed by IP).
fn uri_addr(uri: &Uri) -> std::io::Result<SocketAddr> {
    let bad = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("not IP:PORT: {uri}"),
        )
    };
    let auth = uri.authority().ok_or_else(bad)?;
    let host = auth.host().trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = host.parse().map_err(|_| bad())?;
    Ok(SocketAddr::new(ip, auth.port_u16().unwrap_or(80)))
}

/// A client with keep-alive connections. Idle connections are dropped well before a
/// node closes them (`--read-timeout-ms`, 10 s), so no request goes out on a
/// connection the node is closing.
pub fn new_client() -> HttpClient {
    client_with_routes(Routes::new())
}

/// A client that reaches the routed addresses inside their members' namespaces.
pub fn client_with_routes(routes: Routes) -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(32)
        .pool_idle_timeout(Duration::from_secs(4))
        .build(Connector {
            routes: Arc::new(routes),
        })
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

impl Reply {
    /// The reply as the node classifier ([`crate::reply::classify`]) takes it.
    pub fn answer(&self) -> Answer<'_> {
        match self {
            Reply::Response { status, body } => Answer::Reply {
                status: *status,
                body,
            },
            Reply::NotSent(_) => Answer::NotSent("connection_refused"),
            Reply::Indeterminate(why) if why == "timeout" => Answer::Lost("timeout"),
            Reply::Indeterminate(_) => Answer::Lost("connection_lost"),
        }
    }

    /// The history's error word for a request that got no answer: `connection_refused`
    /// (never sent), `timeout` or `connection_lost`; `None` for an answer.
    pub fn transport_error(&self) -> Option<&str> {
        match self.answer() {
            Answer::Reply { .. } => None,
            Answer::NotSent(why) | Answer::Lost(why) => Some(why),
        }
    }
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
