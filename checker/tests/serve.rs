//! `checker serve` as a client sees it: the real binary on 127.0.0.1:0, spoken to over
//! plain HTTP/1.1. Every wait is a bounded poll.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// How long any check in these tests may take to finish.
const CHECK_WAIT: Duration = Duration::from_secs(60);

fn testdata(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A running service; stopped (SIGKILL) when dropped.
struct Service {
    child: Child,
    addr: String,
    /// Sent as a bearer token with every request, when set.
    token: Option<String>,
}

impl Service {
    fn start(data: &Path, extra: &[&str]) -> Service {
        // Loopback on a free port, unless the test names an address.
        let listen: &[&str] = if extra.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(env!("CARGO_BIN_EXE_checker"))
            .arg("serve")
            .args(listen)
            .arg("--data")
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting checker serve");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads stderr to its end (so the service never blocks on a full pipe) and
        // passes on the address it prints at start.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the service prints its address at start");
        // A service on every address is reached on loopback.
        let addr = addr.replace("0.0.0.0", "127.0.0.1");
        let token = extra
            .iter()
            .position(|a| *a == "--token")
            .map(|i| extra[i + 1].to_string());
        Service { child, addr, token }
    }

    fn request(&self, method: &str, path: &str, body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(&self.addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let auth = self
            .token
            .as_ref()
            .map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).expect("reading the answer");
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a complete head");
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("a status code");
        (status, head, raw[split + 4..].to_vec())
    }

    fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.request("GET", path, b"");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, body) = self.get(path);
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        (status, v)
    }

    /// Submits a history; returns the check's id.
    fn submit(&self, query: &str, body: &[u8]) -> String {
        let (status, _, answer) = self.request("POST", &format!("/v1/checks?{query}"), body);
        let v: Value = serde_json::from_slice(&answer).expect("JSON answer");
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["state"], "queued");
        let id = v["id"].as_str().expect("an id").to_string();
        assert_eq!(v["url"], format!("/v1/checks/{id}"));
        id
    }

    /// Polls until the check is done or ended in error.
    fn wait(&self, id: &str) -> Value {
        let until = Instant::now() + CHECK_WAIT;
        loop {
            let (status, v) = self.get_json(&format!("/v1/checks/{id}"));
            assert_eq!(status, 200, "{v}");
            if v["state"] == "done" || v["state"] == "error" {
                return v;
            }
            assert!(Instant::now() < until, "check {id} still {}", v["state"]);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends SIGTERM and waits (bounded) for the exit.
    fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(Instant::now() < until, "no exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn linearizable_and_not_with_report_edn_and_jsonl() {
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &[]);
    let ok = svc.submit(
        "model=cas-register",
        &testdata("reference/etcd/etcd_002.edn"),
    );
    let bad = svc.submit(
        "model=cas-register",
        &testdata("reference/etcd/etcd_000.edn"),
    );
    let kv = svc.submit(
        "model=kv&initial=%22%22",
        &testdata("reference/kv/c10-ok.edn"),
    );
    let jsonl = br#"{"process":0,"type":"invoke","f":"write","key":"a","value":1}
{"process":0,"type":"ok","f":"write","key":"a","value":1}
{"process":1,"type":"invoke","f":"read","key":"a","value":null}
{"process":1,"type":"ok","f":"read","key":"a","value":2}
"#;
    let stale = svc.submit("model=register&time_limit=5", jsonl);
    // A budget that runs out at once: "unknown", never a pass.
    let budget = svc.submit(
        "model=cas-register&time_limit=0.000000001",
        &testdata("reference/etcd/etcd_002.edn"),
    );

    let v = svc.wait(&ok);
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["model"], "cas-register");
    assert!(
        v["check_s"].is_f64() && v["counts"]["ops"].as_u64() > Some(0),
        "{v}"
    );
    assert!(v["created"].as_str().is_some_and(|c| c.ends_with('Z')));
    let (status, page) = svc.get(&format!("/v1/checks/{ok}/report"));
    assert_eq!(status, 200);
    assert!(page.contains("class=\"banner ok\""), "green banner");

    let v = svc.wait(&bad);
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["keys"][0]["valid"], false);
    assert!(v["keys"][0]["counterexample"]["stuck"].is_array(), "{v}");
    // The same verdict `checker check --json --report` prints for the same file.
    let scratch = tempfile::tempdir().unwrap();
    let file =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/reference/etcd/etcd_000.edn");
    let cli = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(["check", "--model", "cas-register", "--json", "--report"])
        .arg(scratch.path())
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(cli.status.code(), Some(1));
    let cli: Value = serde_json::from_slice(&cli.stdout).expect("--json prints JSON");
    for field in ["valid", "model", "events", "ops", "keys", "counts"] {
        assert_eq!(v[field], cli[field], "{field}");
    }
    let (status, page) = svc.get(&format!("/v1/checks/{bad}/report"));
    assert_eq!(status, 200);
    assert!(
        page.contains("id=\"counterexamples\""),
        "counterexample shown"
    );
    assert!(page.contains("class=\"banner bad\""));

    let v = svc.wait(&kv);
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["initial"], "\"\"");

    let v = svc.wait(&stale);
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["time_limit"], 5.0);
    assert_eq!(v["keys"][0]["key"], "a");

    let v = svc.wait(&budget);
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["valid"], "unknown", "{v}");

    // The index lists them newest first, with links to their reports.
    let (status, index) = svc.get("/");
    assert_eq!(status, 200);
    let pos = |id: &str| index.find(id).unwrap_or_else(|| panic!("{id} listed"));
    assert!(
        pos(&budget) < pos(&stale)
            && pos(&stale) < pos(&kv)
            && pos(&kv) < pos(&bad)
            && pos(&bad) < pos(&ok)
    );
    assert!(index.contains(&format!("/v1/checks/{bad}/report")));
    assert!(index.contains("NOT linearizable"));

    let (status, metrics) = svc.get("/metrics");
    assert_eq!(status, 200);
    for line in [
        "checker_checks{state=\"done\"} 5",
        "checker_verdicts{valid=\"true\"} 2",
        "checker_verdicts{valid=\"false\"} 2",
        "checker_verdicts{valid=\"unknown\"} 1",
        "checker_check_seconds_count 5",
        "checker_queue_depth 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in\n{metrics}");
    }
    assert_eq!(svc.get("/healthz"), (200, "ok\n".to_string()));
}

#[test]
fn bad_requests_get_json_errors() {
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &["--max-body-bytes", "1000"]);
    let h = testdata("reference/etcd/etcd_002.edn");
    for query in ["model=btree", "time_limit=0", "colour=red", "initial=%5B1"] {
        let (status, _, body) = svc.request("POST", &format!("/v1/checks?{query}"), &h);
        let v: Value = serde_json::from_slice(&body).expect("JSON error");
        assert_eq!(status, 400, "{query}: {v}");
        assert!(v["error"].is_string(), "{v}");
    }
    // The body limit: 413, and nothing is kept.
    assert!(h.len() > 1000);
    let (status, _, body) = svc.request("POST", "/v1/checks?model=cas-register", &h);
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"].is_string());

    let (status, v) = svc.get_json("/v1/checks/20990101T000000Z-000000");
    assert_eq!(status, 404, "{v}");
    assert!(v["error"].as_str().unwrap().contains("no check"));
    let (status, _) = svc.get_json("/v1/checks/nope/report");
    assert_eq!(status, 404);
    let (status, _) = svc.get_json("/no/such/path");
    assert_eq!(status, 404);
    let (status, head, body) = svc.request("DELETE", "/v1/checks", b"");
    assert_eq!(status, 405, "{head}");
    assert!(
        head.to_ascii_lowercase().contains("allow: get, post"),
        "{head}"
    );
    assert!(serde_json::from_slice::<Value>(&body).unwrap()["error"].is_string());
    let (status, _, _) = svc.request("POST", "/healthz", b"");
    assert_eq!(status, 405);
    // Bytes that are not HTTP get hyper's 400, and the service keeps serving.
    let mut raw = TcpStream::connect(&svc.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    raw.write_all(b"GARBAGE \x00\xff\r\n\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = raw.read_to_end(&mut answer);
    assert!(answer.starts_with(b"HTTP/1.1 400"), "{answer:?}");
    assert_eq!(svc.get("/healthz").0, 200);

    // A history that does not parse is accepted, and its check ends in "error" with
    // the line and the reason.
    let garbage =
        b"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\nthis is not json\n";
    let id = svc.submit("model=register", garbage);
    let v = svc.wait(&id);
    assert_eq!(v["state"], "error", "{v}");
    let error = v["error"].as_str().unwrap();
    assert!(error.starts_with("history:2:"), "{error}");
    let (status, v) = svc.get_json(&format!("/v1/checks/{id}/report"));
    assert_eq!(status, 409, "{v}");
    assert_eq!(svc.get("/").0, 200);
    let (_, metrics) = svc.get("/metrics");
    assert!(metrics.contains("checker_rejected_total{reason=\"too_large\"} 1"));
    assert!(metrics.contains("checker_rejected_total{reason=\"bad_request\"} 4"));
}

#[test]
fn finished_checks_survive_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &[]);
    let id = svc.submit(
        "model=cas-register",
        &testdata("reference/etcd/etcd_010.edn"),
    );
    let before = svc.wait(&id);
    assert_eq!(before["valid"], false, "{before}");
    let (_, report_before) = svc.get(&format!("/v1/checks/{id}/report"));
    // SIGTERM stops the service cleanly.
    assert!(svc.terminate().success());

    let svc = Service::start(data.path(), &[]);
    let (status, after) = svc.get_json(&format!("/v1/checks/{id}"));
    assert_eq!(status, 200);
    assert_eq!(after, before, "the same record and verdict after a restart");
    let (status, report_after) = svc.get(&format!("/v1/checks/{id}/report"));
    assert_eq!(status, 200);
    assert_eq!(report_after, report_before);
    assert!(svc.get("/").1.contains(&id), "listed after the restart");
    // New ids stay unique next to the old ones.
    let next = svc.submit(
        "model=cas-register",
        &testdata("reference/etcd/etcd_002.edn"),
    );
    assert_ne!(next, id);
    assert_eq!(svc.wait(&next)["valid"], true);
}

#[test]
fn a_full_queue_answers_503_and_the_accepted_checks_finish() {
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &["--queue", "1", "--workers", "1"]);
    // A check (with its report) of c50-bad takes far longer than a submission, so
    // submissions in a row find the one queue slot taken.
    let h = testdata("reference/kv/c50-bad.edn");
    let mut accepted = Vec::new();
    let mut refused = 0;
    // The first check is running before the rest arrive, so the one slot is free
    // for exactly one of them.
    let (status, _, body) = svc.request("POST", "/v1/checks?model=kv&initial=%22%22", &h);
    assert_eq!(status, 202);
    let first: Value = serde_json::from_slice(&body).expect("JSON answer");
    let first = first["id"].as_str().unwrap().to_string();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while svc.get_json(&format!("/v1/checks/{first}")).1["state"] == "queued" {
        assert!(
            std::time::Instant::now() < end,
            "the first check never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    accepted.push(first);
    for _ in 0..7 {
        let (status, _, body) = svc.request("POST", "/v1/checks?model=kv&initial=%22%22", &h);
        let v: Value = serde_json::from_slice(&body).expect("JSON answer");
        match status {
            202 => accepted.push(v["id"].as_str().unwrap().to_string()),
            503 => {
                assert!(
                    v["error"].as_str().unwrap().contains("queue is full"),
                    "{v}"
                );
                refused += 1;
            }
            other => panic!("status {other}: {v}"),
        }
    }
    assert!(
        refused > 0,
        "a queue of one refuses some of 8 quick submissions"
    );
    assert!(accepted.len() >= 2, "one running and one queued at least");
    for id in &accepted {
        assert_eq!(svc.wait(id)["valid"], false);
    }
    // Refused submissions leave nothing behind.
    let (_, list) = svc.get_json("/v1/checks");
    assert_eq!(list["checks"].as_array().unwrap().len(), accepted.len());
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        accepted.len()
    );
}

#[test]
fn without_a_token_only_loopback_addresses_are_served() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args(["serve", "--listen", "0.0.0.0:0", "--data"])
        .arg(data.path())
        .env_remove("CHECKER_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("loopback"), "{stderr}");
    // A token too short to be one is refused too.
    let out = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--token",
            "secret",
            "--data",
        ])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16"));
}

const TOKEN: &str = "correct-horse-battery-staple";

/// With a token the service may listen on every address; every request but /healthz
/// must carry the token.
#[test]
fn a_token_guards_every_request_and_allows_any_address() {
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &["--listen", "0.0.0.0:0", "--token", TOKEN]);
    let anonymous = Service {
        child: Command::new("true").spawn().unwrap(),
        addr: svc.addr.clone(),
        token: None,
    };
    let wrong = Service {
        child: Command::new("true").spawn().unwrap(),
        addr: svc.addr.clone(),
        token: Some(format!("{TOKEN}x")),
    };
    let body = testdata("reference/etcd/etcd_002.edn");
    for client in [&anonymous, &wrong] {
        for (method, path) in [
            ("POST", "/v1/checks?model=cas-register"),
            ("GET", "/v1/checks"),
            ("GET", "/"),
            ("GET", "/metrics"),
        ] {
            let (status, head, answer) = client.request(method, path, &body);
            assert_eq!(status, 401, "{method} {path}");
            assert!(
                head.to_lowercase().contains("www-authenticate: bearer"),
                "{head}"
            );
            let v: Value = serde_json::from_slice(&answer).unwrap();
            assert!(v["error"].as_str().unwrap().contains("Bearer"), "{v}");
        }
    }
    assert_eq!(anonymous.get("/healthz").0, 200);
    // Nothing was stored for the refused submissions.
    assert_eq!(std::fs::read_dir(data.path()).unwrap().count(), 0);
    let id = svc.submit("model=cas-register", &body);
    assert_eq!(svc.wait(&id)["valid"], true);
    let (_, metrics) = svc.get("/metrics");
    assert!(
        metrics.contains("checker_rejected_total{reason=\"unauthorized\"} 8"),
        "{metrics}"
    );
}

/// `checker submit --wait` exits with the verdict's status, so a CI job can gate on it.
#[test]
fn submit_waits_and_exits_with_the_verdict() {
    let data = tempfile::tempdir().unwrap();
    let svc = Service::start(data.path(), &["--token", TOKEN]);
    let server = format!("http://{}", svc.addr);
    let scratch = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &[u8]| {
        let p = scratch.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let bad = file("bad.edn", &testdata("reference/etcd/etcd_000.edn"));
    let ok = file("ok.edn", &testdata("reference/etcd/etcd_002.edn"));
    let broken = file("broken.jsonl", b"{\"process\":0,\"type\":\"invoke\"\n");
    let empty = file("empty.jsonl", b"");
    let submit = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_checker"))
            .arg("submit")
            .args(args)
            .args(["--server", &server])
            .env_remove("CHECKER_TOKEN")
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cas = [
        "--model",
        "cas-register",
        "--knossos",
        "--token",
        TOKEN,
        "--wait",
    ];
    for (path, want, word) in [(&bad, 1, "NOT linearizable"), (&ok, 0, "linearizable")] {
        let mut args = vec![path.as_str()];
        args.extend(cas);
        let (code, out, err) = submit(&args);
        assert_eq!(code, Some(want), "{path}: {out}{err}");
        assert!(out.contains(word) && out.contains("/report"), "{out}");
    }
    // A history that does not parse, and one with nothing in it: the check ends in
    // error, and so does the job (3), naming the line.
    let (code, _, err) = submit(&[&broken, "--token", TOKEN, "--wait"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("history:1:"), "{err}");
    let (code, _, err) = submit(&[&empty, "--token", TOKEN, "--wait"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("no client operations"), "{err}");
    let (code, _, err) = submit(&[&empty, "--token", TOKEN, "--wait", "--allow-empty"]);
    assert_eq!(code, Some(0), "{err}");
    // Without --wait: accepted is 0, with the check's id and URL; --json the whole answer.
    let (code, out, _) = submit(&[&ok, "--token", TOKEN, "--model", "cas-register"]);
    assert_eq!(code, Some(0));
    let id = out.split_whitespace().next().unwrap().to_string();
    assert!(out.contains(&format!("/v1/checks/{id}")), "{out}");
    let (code, out, _) = submit(&[&bad, "--token", TOKEN, "--json", "--wait", "--knossos"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!((code, v["state"].as_str()), (Some(1), Some("done")), "{v}");
    assert_eq!(v["valid"], false);
    // The wrong token, and no service at all: 3, and a reason.
    let (code, _, err) = submit(&[&ok, "--token", "not-the-right-token"]);
    assert_eq!(code, Some(3));
    assert!(err.contains("401"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args([
            "submit",
            &ok,
            "--server",
            "http://127.0.0.1:1",
            "--retry-for",
            "0.5",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

#[test]
fn checks_queued_or_running_at_a_crash_run_again_after_restart() {
    let data = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let big = scratch.path().join("big.jsonl");
    // Large enough that parsing, checking and reporting it takes a second or more.
    let out = Command::new(env!("CARGO_BIN_EXE_checker"))
        .args([
            "gen",
            "--ops",
            "300000",
            "--keys",
            "100",
            "--clients",
            "20",
            "-o",
        ])
        .arg(&big)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let svc = Service::start(data.path(), &["--workers", "1"]);
    let running = svc.submit("model=kv", &std::fs::read(&big).unwrap());
    let until = Instant::now() + CHECK_WAIT;
    loop {
        let (_, v) = svc.get_json(&format!("/v1/checks/{running}"));
        match v["state"].as_str() {
            Some("running") => break,
            Some("queued") => {}
            _ => panic!("expected the check to run: {v}"),
        }
        assert!(Instant::now() < until, "never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    // With one worker busy, these two wait in the queue.
    let queued = [
        svc.submit(
            "model=cas-register",
            &testdata("reference/etcd/etcd_000.edn"),
        ),
        svc.submit(
            "model=cas-register",
            &testdata("reference/etcd/etcd_002.edn"),
        ),
    ];
    let (_, v) = svc.get_json(&format!("/v1/checks/{}", queued[1]));
    assert_eq!(v["state"], "queued", "{v}");
    // SIGKILL while one runs and two wait.
    drop(svc);
    let svc = Service::start(data.path(), &["--workers", "1"]);
    let v = svc.wait(&running);
    assert_eq!(v["state"], "done", "{v}");
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(
        v["runs"], 2,
        "started once before the crash and once after: {v}"
    );
    let (status, _) = svc.get(&format!("/v1/checks/{running}/report"));
    assert_eq!(status, 200);
    for (id, valid) in queued.iter().zip([false, true]) {
        let v = svc.wait(id);
        assert_eq!(v["state"], "done", "{v}");
        assert_eq!(v["valid"], valid, "{v}");
    }
}
