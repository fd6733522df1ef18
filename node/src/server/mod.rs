//! The tokio side: HTTP API, peer transport, the driver task that owns the replica,
//! and the only clock in the node.
//!
//! - [`config`]: command line and validation.
//! - [`driver`]: the task that owns the [`Replica`] and carries out its outputs.
//! - [`disk`]: group commit of `Output::Persist` on a blocking thread.
//! - [`transport`]: per-peer queues and tasks sending `POST /raft/msg`.
//! - [`http`], [`api`], [`forward`]: the HTTP API, its codecs, forwarding to the leader.
//! - [`metrics`]: counters and histograms for `/metrics`.
//!
//! [`run`] takes its dependencies (a bound listener, an opened disk, a shutdown
//! future), so tests and the binary start it the same way.

pub mod api;
pub mod client;
pub mod config;
pub mod disk;
pub mod driver;
pub mod forward;
pub mod http;
pub mod metrics;
pub mod transport;

use crate::replica::{Recovered, Replica};
use config::NodeConfig;
use disk::Disk;
use driver::{Driver, DriverMsg, INPUT_QUEUE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use transport::Transport;

/// How long shutdown waits for open connections to finish their current request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A client that sends no complete request head for this long is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves until `shutdown` completes (or the driver fails), then stops accepting,
/// answers every waiting request, makes everything queued durable and returns.
pub async fn run<D: Disk>(
    config: NodeConfig,
    listener: TcpListener,
    disk: D,
    recovered: Recovered,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let metrics = Arc::new(Metrics::default());
    let client = client::new_client();
    let replica = Replica::try_new(config.replica_config(), recovered)?;
    let (status_tx, status_rx) = watch::channel(replica.status());
    let transport = Transport::start(
        config.id,
        &config.peers,
        config.cluster_token.clone(),
        client.clone(),
        metrics.clone(),
    );
    let (driver_tx, driver_rx) = mpsc::channel::<DriverMsg>(INPUT_QUEUE);
    let (stop_tx, stop_rx) = watch::channel(false);
    let driver = Driver::new(
        config.id,
        replica,
        disk,
        transport,
        status_tx,
        metrics.clone(),
    );
    let mut driver_task = tokio::spawn(driver.run(driver_rx, config.tick, stop_rx.clone()));
    let max_conns = config.max_connections;
    let app = Arc::new(http::App {
        config,
        driver: driver_tx,
        status: status_rx,
        metrics,
        client,
        shutdown: stop_rx.clone(),
    });
    let conns = Arc::new(Semaphore::new(max_conns));
    tracing::info!(addr = %listener.local_addr()?, id = app.config.id, "serving");
    tokio::pin!(shutdown);
    let mut driver_done = None;
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            r = &mut driver_task => { driver_done = Some(r); break; }
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Usually EMFILE: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(permit) = conns.clone().try_acquire_owned() else {
                    tracing::warn!("connection limit reached; refusing a connection");
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| http::serve(app.clone(), req));
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = stop.changed() => {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(DRAIN_TIMEOUT, conn).await;
                        }
                    }
                    drop(permit);
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tracing::info!("shutting down");
    let result = match driver_done {
        Some(r) => r,
        None => driver_task.await,
    };
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conns.acquire_many(max_conns as u32)).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("storage failed: {e}")),
        Err(e) => Err(anyhow::anyhow!("driver task failed: {e}")),
    }
}
