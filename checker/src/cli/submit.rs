//! `checker submit FILE --server URL [--wait]`: the client of `checker serve`, so a CI
//! job can use a shared checker and gate on its exit status.
//!
//! The history is streamed from the file (never read whole). While the service is
//! unreachable or its queue is full (503) the submission is retried for `--retry-for`
//! seconds; with `--wait` the check is polled until it ends, riding out a restart of
//! the service (which runs cut-off checks again). Exit status: 0, 1 or 2 as the verdict
//! says (with `--wait`), 0 once accepted (without), 3 for anything else: a refused
//! submission, a check that ended in error (a history that does not parse), or a
//! service that could not be reached.

use super::{EXIT_BAD_INPUT, SubmitArgs};
use crate::serve::encode_query;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame};
use hyper::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, ReadBuf};

type ReqBody = BoxBody<Bytes, std::io::Error>;

/// The first pause between polls and retries; it doubles up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// Any one request (the upload excepted) must answer within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a submission went wrong: the message, and whether trying again may help.
struct Trouble {
    message: String,
    retry: bool,
}

fn trouble(message: impl Into<String>, retry: bool) -> Trouble {
    Trouble {
        message: message.into(),
        retry,
    }
}

pub(super) fn run(args: &SubmitArgs) -> anyhow::Result<ExitCode> {
    if !(args.retry_for.is_finite() && args.retry_for >= 0.0) {
        anyhow::bail!(
            "--retry-for must be a number of seconds, not {}",
            args.retry_for
        );
    }
    let wait_limit = match args.wait_limit {
        None => None,
        Some(s) if s.is_finite() && s > 0.0 => Some(Duration::from_secs_f64(s)),
        Some(s) => anyhow::bail!("--wait-limit must be a positive number of seconds, not {s}"),
    };
    let base = base_url(&args.server)?;
    let options = args.model.options()?;
    if !args.history.is_file() {
        eprintln!("checker: {}: not a readable file", args.history.display());
        return Ok(ExitCode::from(EXIT_BAD_INPUT));
    }
    let query = encode_query(
        options.model.name(),
        args.model.initial.as_deref(),
        args.model.knossos,
        args.model.time_limit,
        args.model.allow_empty,
    );
    let client = Client::builder(TokioExecutor::new()).build::<_, ReqBody>(HttpConnector::new());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let session = Session {
        client,
        base,
        token: args.token.token.clone(),
        retry_for: Duration::from_secs_f64(args.retry_for),
    };
    rt.block_on(async {
        let accepted = match session.submit(&args.history, &query).await {
            Ok(v) => v,
            Err(message) => {
                eprintln!("checker: {message}");
                return Ok(ExitCode::from(EXIT_BAD_INPUT));
            }
        };
        let id = accepted["id"].as_str().unwrap_or_default().to_string();
        if !args.wait {
            if args.json {
                super::out::println(&serde_json::to_string_pretty(&accepted)?)?;
            } else {
                super::out::println(&format!("{id} {}/v1/checks/{id}", session.base))?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("checker: submitted as {id}; waiting for the verdict");
        let done = match session.wait(&id, wait_limit).await {
            Ok(v) => v,
            Err(message) => {
                eprintln!("checker: {message}");
                return Ok(ExitCode::from(match wait_limit {
                    Some(_) if message.contains("no verdict within") => super::EXIT_UNKNOWN,
                    _ => EXIT_BAD_INPUT,
                }));
            }
        };
        if args.json {
            super::out::println(&serde_json::to_string_pretty(&done)?)?;
        }
        Ok(ExitCode::from(verdict_status(
            &session.base,
            &id,
            &done,
            args.json,
        )?))
    })
}

/// The service's base URL, without a trailing slash.
fn base_url(server: &str) -> anyhow::Result<String> {
    let base = server.trim_end_matches('/').to_string();
    if base.starts_with("https://") {
        anyhow::bail!(
            "--server {server}: https is not spoken here; reach the service over http (through a TLS proxy's plain side or a tunnel)"
        );
    }
    if !base.starts_with("http://") {
        anyhow::bail!("--server {server}: expected http://HOST:PORT");
    }
    base.parse::<Uri>()
        .map_err(|e| anyhow::anyhow!("--server {server}: {e}"))?;
    Ok(base)
}

/// The exit status a finished check stands for, with its one-line summary.
fn verdict_status(base: &str, id: &str, done: &Value, json: bool) -> anyhow::Result<u8> {
    if done["state"] == "error" {
        eprintln!(
            "checker: check {id} ended in error: {}",
            done["error"].as_str().unwrap_or("(no message)")
        );
        return Ok(EXIT_BAD_INPUT);
    }
    let (word, status) = match &done["valid"] {
        Value::Bool(true) => ("linearizable", super::EXIT_LINEARIZABLE),
        Value::Bool(false) => ("NOT linearizable", super::EXIT_NOT_LINEARIZABLE),
        _ => ("unknown", super::EXIT_UNKNOWN),
    };
    if !json {
        super::out::println(&format!(
            "check {id}: {word} ({} ops, check {:.3} s); report: {base}/v1/checks/{id}/report",
            done["ops"],
            done["check_s"].as_f64().unwrap_or(0.0)
        ))?;
    }
    Ok(status)
}

struct Session {
    client: Client<HttpConnector, ReqBody>,
    base: String,
    token: Option<String>,
    retry_for: Duration,
}

impl Session {
    /// Posts the history until it is accepted, refused for good, or `retry_for` ran out.
    async fn submit(&self, path: &std::path::Path, query: &str) -> Result<Value, String> {
        let uri = format!("{}/v1/checks?{query}", self.base);
        let deadline = Instant::now() + self.retry_for;
        let mut pause = FIRST_PAUSE;
        loop {
            let file = tokio::fs::File::open(path)
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            let len = file
                .metadata()
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?
                .len();
            let body = FileBody {
                file,
                buf: vec![0; 1 << 16].into_boxed_slice(),
                done: false,
            };
            let req = self.request(
                Method::POST,
                &uri,
                body.boxed(),
                &[
                    (CONTENT_LENGTH, len.to_string()),
                    (CONTENT_TYPE, "application/octet-stream".to_string()),
                ],
            )?;
            match self.send(req, None).await {
                Ok((StatusCode::ACCEPTED, v)) => return Ok(v),
                Ok((status, v)) => {
                    let t = refusal(status, &v);
                    if !t.retry || Instant::now() >= deadline {
                        return Err(format!("{uri}: {}", t.message));
                    }
                }
                Err(t) if t.retry && Instant::now() < deadline => {}
                Err(t) => return Err(format!("{uri}: {}", t.message)),
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// Polls the check until it is done or ended in error.
    async fn wait(&self, id: &str, limit: Option<Duration>) -> Result<Value, String> {
        let uri = format!("{}/v1/checks/{id}", self.base);
        let started = Instant::now();
        let mut last_answer = Instant::now();
        let mut pause = FIRST_PAUSE;
        loop {
            let req = self.request(Method::GET, &uri, empty(), &[])?;
            match self.send(req, Some(REQUEST_TIMEOUT)).await {
                Ok((StatusCode::OK, v)) => {
                    last_answer = Instant::now();
                    if v["state"] == "done" || v["state"] == "error" {
                        return Ok(v);
                    }
                }
                Ok((status, v)) => {
                    let t = refusal(status, &v);
                    if !t.retry || last_answer.elapsed() >= self.retry_for {
                        return Err(format!("{uri}: {}", t.message));
                    }
                }
                Err(t) if t.retry && last_answer.elapsed() < self.retry_for => {}
                Err(t) => return Err(format!("{uri}: {}", t.message)),
            }
            if let Some(limit) = limit
                && started.elapsed() >= limit
            {
                return Err(format!(
                    "no verdict within {:.0} s (--wait-limit); the check goes on: {uri}",
                    limit.as_secs_f64()
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
    }

    /// A request with the token (when there is one) and `headers`.
    fn request(
        &self,
        method: Method,
        uri: &str,
        body: ReqBody,
        headers: &[(HeaderName, String)],
    ) -> Result<Request<ReqBody>, String> {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = &self.token {
            b = b.header(AUTHORIZATION, format!("Bearer {t}"));
        }
        for (name, value) in headers {
            b = b.header(name, value);
        }
        b.body(body)
            .map_err(|e| format!("building the request: {e}"))
    }

    /// Sends a request; the answer's status and JSON body.
    async fn send(
        &self,
        req: Request<ReqBody>,
        timeout: Option<Duration>,
    ) -> Result<(StatusCode, Value), Trouble> {
        let call = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| trouble(format!("cannot reach the service: {e}"), true))?;
            let status = resp.status();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| trouble(format!("reading the answer: {e}"), true))?
                .to_bytes();
            let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                serde_json::json!({ "error": String::from_utf8_lossy(&body).trim().to_string() })
            });
            Ok((status, v))
        };
        match timeout {
            None => call.await,
            Some(t) => tokio::time::timeout(t, call)
                .await
                .unwrap_or_else(|_| Err(trouble("the service did not answer in time", true))),
        }
    }
}

/// What a status other than the one hoped for means.
fn refusal(status: StatusCode, v: &Value) -> Trouble {
    let said = v["error"].as_str().unwrap_or("").to_string();
    match status {
        StatusCode::SERVICE_UNAVAILABLE => trouble(format!("503: {said}"), true),
        StatusCode::UNAUTHORIZED => trouble(
            format!("401: {said} (give --token or set CHECKER_TOKEN)"),
            false,
        ),
        s if s.is_server_error() => trouble(format!("{s}: {said}"), true),
        s => trouble(format!("{s}: {said}"), false),
    }
}

fn empty() -> ReqBody {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

/// A file as a request body, read in 64 KiB frames.
struct FileBody {
    file: tokio::fs::File,
    buf: Box<[u8]>,
    done: bool,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let mut rb = ReadBuf::new(&mut this.buf);
        match Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) if rb.filled().is_empty() => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => {
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(rb.filled())))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }
}
