//! Routing and the request handlers. Every answer, error or not, is built here; a
//! handler never panics and never fails (errors are JSON with a fitting status).

use super::metrics::Metrics;
use super::pages;
use super::params::Params;
use super::store::{HISTORY_FILE, REPORT_DIR, Record, State, Store, VERDICT_FILE};
use super::{ServeConfig, clock};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, HeaderValue, LOCATION,
    WWW_AUTHENTICATE,
};
use hyper::{Method, Request, StatusCode};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

pub type Response = hyper::Response<Full<Bytes>>;

/// The longest an upload may take, so a stalled client cannot hold a slot forever.
const BODY_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of a refused body is read and dropped, and for how long at most.
const LINGER_BYTES: u64 = 64 << 20;
const LINGER_TIMEOUT: Duration = Duration::from_secs(5);
/// Rows on `GET /` and `GET /v1/checks`.
const LIST_LIMIT: usize = 200;

/// Everything the handlers share.
pub struct App {
    pub config: ServeConfig,
    pub store: Arc<Store>,
    pub metrics: Arc<Metrics>,
    pub queue: mpsc::Sender<String>,
}

impl App {
    fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// An error answer: status and message, as `{"error": message}`.
struct Fail {
    status: StatusCode,
    message: String,
    allow: Option<&'static str>,
    /// Ask for a bearer token (401).
    challenge: bool,
}

fn fail(status: StatusCode, message: impl Into<String>) -> Fail {
    Fail {
        status,
        message: message.into(),
        allow: None,
        challenge: false,
    }
}

/// True if the request carries `Authorization: Bearer <token>`. The comparison takes
/// the same time wherever the first difference is.
fn authorized(req: &Request<Incoming>, token: &str) -> bool {
    let Some(given) = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    else {
        return false;
    };
    let want = token.as_bytes();
    let mut diff = given.len() ^ want.len();
    for (i, w) in want.iter().enumerate() {
        diff |= usize::from(given.get(i).copied().unwrap_or(0) ^ w);
    }
    diff == 0
}

enum Route<'a> {
    Index,
    Healthz,
    Metrics,
    Checks,
    Check(&'a str),
    Report(&'a str),
}

/// What a path names, before its id is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Resource {
    Index,
    Healthz,
    Metrics,
    Checks,
    Check,
    Report,
}

/// Every path the service serves, and the methods each allows.
const PATHS: [(&str, Resource, &str); 7] = [
    ("/", Resource::Index, "GET"),
    ("/healthz", Resource::Healthz, "GET"),
    ("/metrics", Resource::Metrics, "GET"),
    ("/v1/checks", Resource::Checks, "GET, POST"),
    ("/v1/checks/", Resource::Checks, "GET, POST"),
    ("/v1/checks/{id}", Resource::Check, "GET"),
    ("/v1/checks/{id}/report", Resource::Report, "GET"),
];

/// [`PATHS`] as a matchit tree. The table is constant, and a test checks that every
/// entry was inserted (an insert that failed would show there as a path not found).
static ROUTER: LazyLock<matchit::Router<(Resource, &'static str)>> = LazyLock::new(|| {
    let mut router = matchit::Router::new();
    for (path, resource, allow) in PATHS {
        let _ = router.insert(path, (resource, allow));
    }
    router
});

/// Which resource a path names, and the methods it allows.
fn route(path: &str) -> Option<(Route<'_>, &'static str)> {
    let found = ROUTER.at(path).ok()?;
    let (resource, allow) = *found.value;
    let id = found.params.get("id").unwrap_or_default();
    let route = match resource {
        Resource::Index => Route::Index,
        Resource::Healthz => Route::Healthz,
        Resource::Metrics => Route::Metrics,
        Resource::Checks => Route::Checks,
        Resource::Check => Route::Check(id),
        Resource::Report => Route::Report(id),
    };
    Some((route, allow))
}

/// Entry point for hyper.
pub async fn serve(app: Arc<App>, req: Request<Incoming>) -> Result<Response, Infallible> {
    Ok(match handle(&app, req).await {
        Ok(r) => r,
        Err(f) => {
            let mut r = json_response(f.status, &json!({"error": f.message}));
            if let Some(allow) = f.allow {
                r.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            if f.challenge {
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"checker\""),
                );
            }
            r
        }
    })
}

async fn handle(app: &App, req: Request<Incoming>) -> Result<Response, Fail> {
    let path = req.uri().path().to_string();
    let Some((route, allow)) = route(&path) else {
        return Err(fail(StatusCode::NOT_FOUND, format!("no such path: {path}")));
    };
    if let Some(token) = &app.config.token
        && !matches!(route, Route::Healthz)
        && !authorized(&req, token)
    {
        app.metrics.rejected_unauthorized.fetch_add(1, Relaxed);
        linger(req).await;
        return Err(Fail {
            challenge: true,
            ..fail(
                StatusCode::UNAUTHORIZED,
                "this service needs `Authorization: Bearer <token>` (the token given to checker serve)",
            )
        });
    }
    let method = req.method().clone();
    let allowed = allow.split(", ").any(|m| m == method.as_str());
    if !allowed {
        return Err(Fail {
            allow: Some(allow),
            ..fail(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {path} (allowed: {allow})"),
            )
        });
    }
    match route {
        Route::Index => pages::index(&app.store.recent(LIST_LIMIT), app.store.len())
            .map(html_response)
            .map_err(|e| {
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("rendering the page: {e}"),
                )
            }),
        Route::Healthz => Ok(text_response("ok\n", "text/plain; charset=utf-8")),
        Route::Metrics => Ok(text_response(
            app.metrics
                .render(&app.store, app.queue_depth(), app.queue.max_capacity()),
            super::metrics::CONTENT_TYPE,
        )),
        Route::Checks if method == Method::POST => submit(app, req).await,
        Route::Checks => {
            let list: Vec<Value> = app
                .store
                .recent(LIST_LIMIT)
                .iter()
                .map(record_json)
                .collect();
            Ok(json_response(StatusCode::OK, &json!({ "checks": list })))
        }
        Route::Check(id) => check_status(app, id).await,
        Route::Report(id) => report(app, id).await,
    }
}

/// `POST /v1/checks`: validate the query, store the body, queue the check.
async fn submit(app: &App, req: Request<Incoming>) -> Result<Response, Fail> {
    let params = match Params::from_query(req.uri().query(), app.config.max_time_limit_s) {
        Ok(p) => p,
        Err(e) => {
            app.metrics.rejected_bad_request.fetch_add(1, Relaxed);
            linger(req).await;
            return Err(fail(StatusCode::BAD_REQUEST, e));
        }
    };
    let limit = app.config.max_body_bytes;
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        linger(req).await;
        return Err(too_large(app, limit));
    }
    if app.queue.capacity() == 0 {
        linger(req).await;
        return Err(queue_full(app));
    }
    let (id, dir) = app
        .store
        .reserve()
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let mut body = req.into_body();
    let stored = tokio::time::timeout(
        BODY_TIMEOUT,
        store_body(&mut body, &dir.join(HISTORY_FILE), limit),
    )
    .await
    .unwrap_or_else(|_| Err(Upload::Client("the upload took too long".into())));
    let bytes = match stored {
        Ok(n) => n,
        Err(e) => {
            app.store.discard(&id);
            return Err(match e {
                Upload::TooLarge => {
                    discard_body(body).await;
                    too_large(app, limit)
                }
                Upload::Client(m) => fail(StatusCode::BAD_REQUEST, m),
                Upload::Disk(m) => fail(StatusCode::INTERNAL_SERVER_ERROR, m),
            });
        }
    };
    let rec = Record::queued(id.clone(), params, clock::now(), bytes);
    if let Err(e) = app.store.insert(rec) {
        app.store.discard(&id);
        return Err(fail(StatusCode::INTERNAL_SERVER_ERROR, e));
    }
    if let Err(e) = app.queue.try_send(id.clone()) {
        app.store.discard(&id);
        return Err(match e {
            mpsc::error::TrySendError::Full(_) => queue_full(app),
            mpsc::error::TrySendError::Closed(_) => fail(
                StatusCode::SERVICE_UNAVAILABLE,
                "the service is shutting down",
            ),
        });
    }
    app.metrics.submitted.fetch_add(1, Relaxed);
    let url = format!("/v1/checks/{id}");
    let mut r = json_response(
        StatusCode::ACCEPTED,
        &json!({"id": id, "state": "queued", "url": url}),
    );
    if let Ok(v) = HeaderValue::from_str(&url) {
        r.headers_mut().insert(LOCATION, v);
    }
    Ok(r)
}

/// Before refusing a request whose body is unread: a client that waits for
/// `100 Continue` gets the answer at once and sends nothing; any other client is
/// already sending, and its body is read and dropped (within limits), because closing
/// a socket with unread data resets the connection, and the client may lose the answer.
async fn linger(req: Request<Incoming>) {
    let expects_continue = req
        .headers()
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if !expects_continue {
        discard_body(req.into_body()).await;
    }
}

/// Reads and drops at most `LINGER_BYTES` of a body, for at most `LINGER_TIMEOUT`.
async fn discard_body(mut body: Incoming) {
    let drain = async {
        let mut n: u64 = 0;
        while let Some(Ok(frame)) = body.frame().await {
            n += frame.data_ref().map_or(0, |d| d.len() as u64);
            if n > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIMEOUT, drain).await;
}

fn too_large(app: &App, limit: u64) -> Fail {
    app.metrics.rejected_too_large.fetch_add(1, Relaxed);
    fail(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the history is larger than {limit} bytes (--max-body-bytes)"),
    )
}

fn queue_full(app: &App) -> Fail {
    app.metrics.rejected_queue_full.fetch_add(1, Relaxed);
    fail(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the queue is full ({} checks waiting); try again later",
            app.queue.max_capacity()
        ),
    )
}

enum Upload {
    TooLarge,
    Client(String),
    Disk(String),
}

/// Streams the body into `path` (never more than `limit` bytes, never the whole body
/// in memory); returns its size.
async fn store_body(
    body: &mut Incoming,
    path: &std::path::Path,
    limit: u64,
) -> Result<u64, Upload> {
    let disk = |e: std::io::Error| Upload::Disk(format!("writing {}: {e}", path.display()));
    let file = tokio::fs::File::create(path).await.map_err(disk)?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut n: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Upload::Client(format!("reading the body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            n += data.len() as u64;
            if n > limit {
                return Err(Upload::TooLarge);
            }
            out.write_all(&data).await.map_err(disk)?;
        }
    }
    out.flush().await.map_err(disk)?;
    Ok(n)
}

/// The service's view of a record (no verdict details).
fn record_json(r: &Record) -> Value {
    let mut v = json!({
        "id": r.id,
        "state": r.state.name(),
        "model": r.params.model,
        "initial": r.params.initial,
        "knossos": r.params.knossos,
        "allow_empty": r.params.allow_empty,
        "time_limit": r.params.time_limit_s,
        "runs": r.runs,
        "created": r.created,
        "started": r.started,
        "finished": r.finished,
        "body_bytes": r.body_bytes,
        "url": format!("/v1/checks/{}", r.id),
    });
    let extra = [
        ("error", r.error.as_ref().map(|e| json!(e))),
        ("valid", r.valid.map(|v| json!(v))),
        ("report_error", r.report_error.as_ref().map(|e| json!(e))),
        (
            "report_url",
            (r.state == State::Done && r.report_error.is_none())
                .then(|| json!(format!("/v1/checks/{}/report", r.id))),
        ),
    ];
    if let Some(obj) = v.as_object_mut() {
        for (k, val) in extra {
            if let Some(val) = val {
                obj.insert(k.to_string(), val);
            }
        }
    }
    v
}

/// `GET /v1/checks/{id}`: the record, and once done every field of `verdict.json`.
async fn check_status(app: &App, id: &str) -> Result<Response, Fail> {
    let rec = app.store.get(id).ok_or_else(|| unknown(id))?;
    let mut out = record_json(&rec);
    if rec.state == State::Done {
        let path = app.store.check_dir(id).join(VERDICT_FILE);
        let verdict: Value = tokio::fs::read(&path)
            .await
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|e| {
                fail(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("reading the verdict of {id}: {e}"),
                )
            })?;
        if let (Some(o), Value::Object(v)) = (out.as_object_mut(), verdict) {
            for (k, val) in v {
                o.entry(k).or_insert(val);
            }
        }
    }
    Ok(json_response(StatusCode::OK, &out))
}

/// `GET /v1/checks/{id}/report`: the HTML report once the check is done.
async fn report(app: &App, id: &str) -> Result<Response, Fail> {
    let rec = app.store.get(id).ok_or_else(|| unknown(id))?;
    match rec.state {
        State::Done => {}
        State::Error => {
            return Err(fail(
                StatusCode::CONFLICT,
                format!(
                    "check {id} ended in error, so it has no report: {}",
                    rec.error.unwrap_or_default()
                ),
            ));
        }
        s => {
            return Err(fail(
                StatusCode::CONFLICT,
                format!(
                    "check {id} is {}; the report comes when it is done",
                    s.name()
                ),
            ));
        }
    }
    if let Some(e) = rec.report_error {
        return Err(fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the report of {id} could not be written: {e}"),
        ));
    }
    let path = app.store.check_dir(id).join(REPORT_DIR).join("report.html");
    let page = tokio::fs::read(&path).await.map_err(|e| {
        fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the report of {id}: {e}"),
        )
    })?;
    Ok(bytes_response(page, "text/html; charset=utf-8"))
}

fn unknown(id: &str) -> Fail {
    fail(StatusCode::NOT_FOUND, format!("no check with id {id:?}"))
}

fn bytes_response(body: impl Into<Bytes>, content_type: &'static str) -> Response {
    let mut r = hyper::Response::new(Full::new(body.into()));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text_response(body: impl Into<String>, content_type: &'static str) -> Response {
    bytes_response(body.into(), content_type)
}

fn html_response(page: String) -> Response {
    text_response(page, "text/html; charset=utf-8")
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let mut body = serde_json::to_vec_pretty(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    let mut r = bytes_response(body, "application/json");
    *r.status_mut() = status;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert!(matches!(route("/"), Some((Route::Index, "GET"))));
        assert!(matches!(route("/v1/checks"), Some((Route::Checks, _))));
        assert!(matches!(
            route("/v1/checks/a-1"),
            Some((Route::Check("a-1"), _))
        ));
        assert!(matches!(
            route("/v1/checks/a-1/report"),
            Some((Route::Report("a-1"), _))
        ));
        for bad in [
            "/v1",
            "/v1/checksx",
            "/v1/checks/a/b",
            "/v1/checks/a/report/x",
            "/x",
        ] {
            assert!(route(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn every_path_of_the_table_is_routed() {
        for (path, resource, _) in PATHS {
            let path = path.replace("{id}", "x");
            let found = ROUTER.at(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert_eq!(found.value.0, resource, "{path}");
        }
    }
}
