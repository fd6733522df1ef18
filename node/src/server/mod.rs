//! The tokio side: HTTP API, peer transport, the driver task that owns the replica,
//! and the only clock in the node.
//!
//! - [`config`]: command line and validation.
//! - [`driver`]: the task that owns the [`Replica`] and carries out its outputs.
//! - [`disk`]: group commit of `Output::Persist` on a blocking thread.
//! - [`transport`]: per-peer queues and tasks sending `POST /raft/msg`.
//! - [`http`], [`api`], [`forward`]: the HTTP API, its codecs, forwarding to the leader;
//!   [`app`]: the state and helpers they share.
//! - [`background`]: the low-priority thread that writes snapshot files.
//! - [`conn`]: the connection budget, timeouts, shedding stalled clients.
//! - [`metrics`]: counters and histograms for `/metrics`.
//!
//! [`run`] takes its dependencies (a bound listener, an opened disk, a shutdown
//! future), so tests and the binary start it the same way.

pub mod api;
pub mod app;
pub mod background;
pub mod client;
pub mod config;
pub mod conn;
pub mod disk;
pub mod driver;
pub mod forward;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod snapshot_stream;
pub mod transport;

use crate::replica::{Recovered, Replica};
use background::Background;
use config::NodeConfig;
use conn::{Conns, JsonLibraryErrors, Tracked};
use disk::Disk;
use driver::{Driver, DriverMsg, INPUT_QUEUE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use metrics::Metrics;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use transport::Transport;

/// How long shutdown waits for open connections to finish their current request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// The most a connection buffers while it reads a request head.
const MAX_HEAD_BYTES: usize = 80 << 10;

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`):
/// while every slot is taken, new connections wait here instead of being refused.
pub(crate) const LISTEN_BACKLOG: u32 = 4096;

/// Binds the listen address with a backlog deep enough for connections to wait
/// while the node frees a slot (see [`conn`]).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

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
    let client = client::new_client(config.read_timeout / 2);
    anyhow::ensure!(
        recovered.kind() == config.consensus,
        "the data directory holds {} state but the node runs {}",
        recovered.kind(),
        config.consensus
    );
    let replica = Replica::try_new(config.replica_config(), recovered)?;
    let (status_tx, status_rx) = watch::channel(replica.status());
    // Raft snapshots stream from the snapshot file where there is one.
    let stream_from = disk.snapshot_dir().map(|d| transport::StreamFrom {
        dir: d.dir,
        chunk_bytes: config.snapshot_chunk_bytes,
    });
    let transport = Transport::start(
        config.id,
        &config.peers,
        config.cluster_token.clone(),
        client.clone(),
        metrics.clone(),
        stream_from,
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
        Background::start(config.snapshot_nice, config.snapshot_pace)?,
    );
    let mut driver_task = tokio::spawn(driver.run(driver_rx, config.tick, stop_rx.clone()));
    let max_conns = config.max_connections;
    let app = Arc::new(app::App {
        snapshots: Arc::new(std::sync::Mutex::new(snapshot_stream::Receiver::new(
            &config.data_dir,
        ))),
        config,
        driver: driver_tx,
        status: status_rx,
        metrics,
        client,
        shutdown: stop_rx.clone(),
    });
    let conns = Conns::new(max_conns, app.metrics.clone());
    tracing::info!(addr = %listener.local_addr()?, id = app.config.id, "serving");
    tokio::pin!(shutdown);
    let mut driver_done = None;
    loop {
        // A slot first, then the connection: never more open than the budget.
        let next = async {
            let permit = conns.slot().await;
            (permit, listener.accept().await)
        };
        tokio::select! {
            _ = &mut shutdown => break,
            r = &mut driver_task => { driver_done = Some(r); break; }
            (permit, accepted) = next => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Usually EMFILE: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let registered = conns.register(permit);
                tokio::spawn(serve_connection(app.clone(), stream, registered, stop_rx.clone()));
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
    conns.drained(DRAIN_TIMEOUT).await;
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("storage failed: {e}")),
        Err(e) => Err(anyhow::anyhow!("driver task failed: {e}")),
    }
}

/// Serves one connection until the client closes it, it is shed, or the node stops
/// (then the request in progress may finish, for at most [`DRAIN_TIMEOUT`]).
async fn serve_connection(
    app: Arc<app::App>,
    stream: tokio::net::TcpStream,
    registered: conn::Registered,
    mut stop: watch::Receiver<bool>,
) {
    let conn = registered.conn().clone();
    let io = JsonLibraryErrors::new(TokioIo::new(stream), conn.clone(), app.metrics.clone());
    let read_timeout = app.config.read_timeout;
    let svc = {
        let conn = conn.clone();
        service_fn(move |req| {
            conn.request_started();
            let (app, conn) = (app.clone(), conn.clone());
            async move {
                let resp = http::serve(app, &conn, req).await?;
                conn.request_done();
                Ok::<_, Infallible>(resp.map(|body| Tracked::new(body, conn)))
            }
        })
    };
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        // A request head may be this large (a 64 KiB request target fits; beyond
        // it, 431): it bounds what a connection buffers, and so the memory 1,024
        // stalled heads can hold (80 MiB rather than 400 MiB at hyper's default).
        .max_buf_size(MAX_HEAD_BYTES)
        // One buffer per write, as `JsonLibraryErrors` expects.
        .writev(false)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::pin!(served);
    loop {
        tokio::select! {
            _ = served.as_mut() => break,
            // Dropping the connection closes the socket. The service runs in this
            // task, so nothing it does can start between the check and the drop.
            _ = conn.shed() => if conn.may_shed() { break },
            _ = stop.changed() => {
                served.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(DRAIN_TIMEOUT, served).await;
                break;
            }
        }
    }
    drop(registered);
}
