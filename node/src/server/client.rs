//! The one HTTP client the node uses to reach peers (Raft messages and forwarded
//! client requests). Pooled keep-alive connections with TCP_NODELAY: a Raft round
//! is many small requests, and Nagle's delay would add to every one.

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::time::Duration;

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// `idle` is how long a pooled connection may sit unused: below the peers'
/// `--read-timeout-ms`, so a request never goes out on a connection the other side
/// is closing as idle (a write lost that way would be indeterminate).
pub fn new_client(idle: Duration) -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_nodelay(true);
    conn.set_connect_timeout(Some(Duration::from_millis(500)));
    conn.enforce_http(true);
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle)
        .pool_max_idle_per_host(64)
        .build(conn)
}
