//! What every request handler shares: the [`App`] state, the response type, and the
//! wait for a known leader (the HTTP handlers and forwarding both use them).

use super::client::HttpClient;
use super::config::NodeConfig;
use super::driver::DriverMsg;
use super::metrics::Metrics;
use crate::replica::Status;
use bytes::Bytes;
use http_body_util::Full;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};

pub type HttpResponse = hyper::Response<Full<Bytes>>;

/// Longest a request without a known leader waits for an election to finish.
const LEADER_WAIT: Duration = Duration::from_millis(1000);

/// Everything a request handler needs; shared by all connections.
pub struct App {
    pub config: NodeConfig,
    pub driver: mpsc::Sender<DriverMsg>,
    pub status: watch::Receiver<Status>,
    pub metrics: Arc<Metrics>,
    pub client: HttpClient,
    pub shutdown: watch::Receiver<bool>,
    /// The snapshot a leader is streaming to this node, if any.
    pub snapshots: Arc<std::sync::Mutex<super::snapshot_stream::Receiver>>,
}

/// Waits (bounded) until the published status names a leader.
pub async fn wait_for_leader(app: &App, deadline: Instant) -> Option<u64> {
    let mut rx = app.status.clone();
    let until = deadline.min(Instant::now() + LEADER_WAIT);
    loop {
        if let Some(l) = rx.borrow_and_update().leader {
            return Some(l);
        }
        match tokio::time::timeout_at(until.into(), rx.changed()).await {
            Ok(Ok(())) => continue,
            _ => return None,
        }
    }
}
