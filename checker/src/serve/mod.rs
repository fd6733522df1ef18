//! `checker serve`: what `checker check` does, as an HTTP service.
//!
//! - [`http`]: routes and handlers (`POST /v1/checks`, `GET /v1/checks/{id}`, ...).
//! - [`worker`]: the bounded queue and the checks on blocking threads.
//! - [`store`]: the checks in memory and in `--data DIR`, reloaded at start.
//! - [`params`]: the query of a submission; [`pages`]: `GET /`; [`metrics`]: `/metrics`.
//!
//! | request | answer |
//! |---|---|
//! | `POST /v1/checks?model=&initial=&knossos=&time_limit=&allow_empty=` + history | 202 `{id, state, url}`; 400 bad query, 413 too large, 503 queue full |
//! | `GET /v1/checks` | 200 `{checks: [...]}`, the newest first |
//! | `GET /v1/checks/{id}` | 200 the record; once done also every field of `checker check --json` |
//! | `GET /v1/checks/{id}/report` | 200 the HTML report; 409 until done |
//! | `GET /`, `/healthz`, `/metrics` | recent checks (HTML), `ok`, Prometheus text |
//!
//! Errors are `{"error": "..."}` with 404 (unknown path or id) and 405 (wrong method,
//! with `Allow`) as well, and 401 (with `WWW-Authenticate: Bearer`) for a request
//! without the token, when one is set.
//!
//! A history that does not parse is accepted (202) and its check ends in state
//! "error" with the parser's line and reason: parsing a large history takes as long
//! as a small check, and belongs on the workers, not in the request.
//!
//! Without `--token` the service listens on loopback addresses only: it would run
//! CPU-heavy work for whoever asks. With a token every request but `/healthz` must
//! carry it (`Authorization: Bearer`), and any address may be served. The token is
//! sent in clear: across an untrusted network, put TLS in front.
//!
//! Checks accepted are never lost: those queued or running when the service stopped
//! (SIGKILL included) run again at the next start, before new ones.

mod clock;
mod http;
mod metrics;
mod pages;
mod params;

pub(crate) use params::encode_query;
mod store;
mod worker;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};

/// How long shutdown waits for open connections to finish their current request.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A client that sends no complete request head for this long is disconnected.
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// The shortest bearer token accepted.
pub const MIN_TOKEN_CHARS: usize = 16;

#[derive(Clone, Debug)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    /// Bearer token every request but `/healthz` must carry; needed beyond loopback.
    pub token: Option<String>,
    pub data: PathBuf,
    pub max_body_bytes: u64,
    /// Checks waiting for a worker; more are refused with 503.
    pub queue: usize,
    /// Checks run at once.
    pub workers: usize,
    /// Threads of one check (0 = one per core).
    pub threads: usize,
    /// Cap and default of a check's `time_limit`.
    pub max_time_limit_s: f64,
    /// Finished checks kept in `--data`; the oldest beyond are deleted.
    pub keep: usize,
    pub max_connections: usize,
}

/// Runs the service until SIGTERM or ctrl-c.
pub fn run(config: ServeConfig) -> anyhow::Result<()> {
    match &config.token {
        Some(t) if t.chars().count() < MIN_TOKEN_CHARS => anyhow::bail!(
            "--token must be at least {MIN_TOKEN_CHARS} characters (a long random string)"
        ),
        Some(t) if t.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            anyhow::bail!("--token must not contain spaces or control characters")
        }
        Some(_) => {}
        None if !config.listen.ip().is_loopback() => anyhow::bail!(
            "--listen {}: without --token only loopback addresses (127.0.0.1, ::1) are served; give a bearer token to serve beyond",
            config.listen
        ),
        None => {}
    }
    if config.queue == 0 || config.workers == 0 || config.max_connections == 0 {
        anyhow::bail!("--queue, --workers and --max-connections must be at least 1");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = rt.block_on(async {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("--listen {}: {e}", config.listen))?;
        serve(config, listener, shutdown_signal()).await
    });
    // A running check cannot be cut short; its record says "running", and it runs
    // again at the next start.
    rt.shutdown_timeout(Duration::from_millis(100));
    result
}

/// Serves on `listener` until `shutdown` completes, then stops accepting and gives
/// open connections [`DRAIN_TIMEOUT`] to finish their request.
pub async fn serve(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (store, resume, problems) = store::Store::open(&config.data, config.keep)?;
    for p in problems {
        eprintln!("checker serve: {p}");
    }
    if !resume.is_empty() {
        eprintln!(
            "checker serve: {} check(s) cut off by the last stop run again",
            resume.len()
        );
    }
    let store = Arc::new(store);
    let metrics = Arc::new(metrics::Metrics::default());
    let addr = listener.local_addr()?;
    let (queue_tx, queue_rx) = mpsc::channel::<String>(config.queue);
    tokio::spawn(worker::dispatch(
        store.clone(),
        metrics.clone(),
        resume,
        queue_rx,
        config.workers,
        config.threads,
    ));
    let max_conns = config.max_connections;
    eprintln!(
        "checker serve: listening on http://{addr} (data {}, {} checks loaded)",
        config.data.display(),
        store.len()
    );
    let app = Arc::new(http::App {
        config,
        store,
        metrics,
        queue: queue_tx,
    });
    let conns = Arc::new(Semaphore::new(max_conns));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((s, _)) => s,
                    Err(e) => {
                        // Usually EMFILE: pause instead of spinning.
                        eprintln!("checker serve: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                // Over the limit the connection is closed at once.
                let Ok(permit) = conns.clone().try_acquire_owned() else { continue };
                let app = app.clone();
                let mut stop = stop_rx.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| http::serve(app.clone(), req));
                    let conn = http1::Builder::new()
                        .timer(TokioTimer::new())
                        .header_read_timeout(HEADER_TIMEOUT)
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
    eprintln!("checker serve: shutting down");
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, conns.acquire_many(max_conns as u32)).await;
    Ok(())
}

/// Completes on ctrl-c or SIGTERM.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            // Without a SIGTERM handler, ctrl-c still works.
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
