//! Test machinery shared by the tests that run real `node` processes on loopback:
//! a [`Cluster`] of processes (its `Drop` kills every one, so a failing assertion
//! never leaves nodes behind), a raw HTTP/1.1 client, and careful-client helpers.
#![allow(dead_code)]

use node::server::listen::ReservedPort;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A cluster of node processes and their data directories. Every member's port is
/// reserved before any member starts and stays reserved across kills and restarts;
/// each start gets a listener on it (node::server::listen).
pub struct Cluster {
    ports: Vec<ReservedPort>,
    /// Flags added to every node's command line.
    extra: Vec<String>,
    dir: tempfile::TempDir,
    pub procs: Vec<Option<Child>>,
}

impl Cluster {
    pub fn start(n: usize) -> Cluster {
        Cluster::start_with(n, &[])
    }

    pub fn start_with(n: usize, extra: &[&str]) -> Cluster {
        let ports: Vec<ReservedPort> = (0..n)
            .map(|_| ReservedPort::loopback().expect("reserve a loopback port"))
            .collect();
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = Cluster {
            ports,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            dir,
            procs: (0..n).map(|_| None).collect(),
        };
        for id in 1..=n as u64 {
            c.spawn(id);
        }
        c
    }

    pub fn peers(&self) -> String {
        self.ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("{}={}", i + 1, p.addr()))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("n{id}"))
    }

    pub fn spawn(&mut self, id: u64) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("n{id}.log")))
            .expect("log file");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_node"));
        cmd.args(["--id", &id.to_string()])
            .arg("--listen-inherited")
            .args(["--peers", &self.peers()])
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log);
        self.ports[(id - 1) as usize]
            .pass_to(&mut cmd)
            .expect("pass the listener");
        let child = cmd.spawn().expect("start node");
        self.procs[(id - 1) as usize] = Some(child);
    }

    pub fn kill(&mut self, id: u64) {
        if let Some(mut c) = self.procs[(id - 1) as usize].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The process id of node `id`, while it runs.
    pub fn pid(&self, id: u64) -> Option<u32> {
        self.procs[(id - 1) as usize].as_ref().map(Child::id)
    }

    pub fn port(&self, id: u64) -> u16 {
        self.ports[(id - 1) as usize].addr().port()
    }

    pub fn ids(&self) -> impl Iterator<Item = u64> + use<> {
        1..=self.ports.len() as u64
    }

    pub fn status(&self, id: u64) -> Option<Value> {
        let (code, body) = http(self.port(id), "GET", "/status", None).ok()?;
        (code == 200).then(|| serde_json::from_str(&body).ok())?
    }

    /// The id of a node that reports itself leader, other than `except`.
    pub fn leader(&self, except: Option<u64>) -> Option<u64> {
        self.ids().filter(|i| Some(*i) != except).find_map(|i| {
            let s = self.status(i)?;
            (s["role"] == "leader").then(|| s["id"].as_u64())?
        })
    }

    pub fn wait_leader(&self, timeout: Duration, except: Option<u64>) -> Option<u64> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Some(l) = self.leader(except) {
                return Some(l);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Dumps node logs to help explain a failure.
    pub fn logs(&self) -> String {
        self.ids()
            .map(|i| {
                let p = self.dir.path().join(format!("n{i}.log"));
                let text = std::fs::read_to_string(p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(15).collect();
                format!(
                    "--- n{i}\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for c in self.procs.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One HTTP/1.1 request on a fresh connection; returns status and body.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    http_raw(
        port,
        method,
        path,
        body.map(|b| ("application/json", b.as_bytes())),
    )
}

pub fn http_raw(
    port: u16,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> std::io::Result<(u16, String)> {
    http_with(port, method, path, &[], body)
}

/// [`http_raw`] with extra request headers.
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<(&str, &[u8])>,
) -> std::io::Result<(u16, String)> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some((ct, b)) = body {
        req.push_str(&format!(
            "content-type: {ct}\r\ncontent-length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    if let Some((_, b)) = body {
        // The server may answer (413) and close before reading everything.
        let _ = s.write_all(b);
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let text = String::from_utf8_lossy(&buf).to_string();
    let code = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((code, body))
}

/// Writes as a careful client would: a 503 (certainly not applied, e.g. no leader
/// for a moment after an election) or a 504 (indeterminate; writing the same value
/// again is harmless) is retried for a few seconds. True once a write is acknowledged.
pub fn put(c: &Cluster, via: u64, key: &str, value: Value) -> bool {
    put_answer(c, via, key, value).is_ok()
}

/// [`put`], saying what the last attempt got when no write was acknowledged.
pub fn put_answer(c: &Cluster, via: u64, key: &str, value: Value) -> Result<(), String> {
    let body = json!({ "value": value }).to_string();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        match http(c.port(via), "PUT", &format!("/kv/{key}"), Some(&body)) {
            Ok((200, _)) => return Ok(()),
            Ok((503 | 504, _)) if Instant::now() < end => {}
            other => return Err(format!("PUT /kv/{key} via {via}: {other:?}")),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn get(c: &Cluster, via: u64, key: &str) -> Option<Value> {
    let (code, body) = http(c.port(via), "GET", &format!("/kv/{key}"), None).ok()?;
    if code != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    Some(v["value"].clone())
}

/// Retries a read briefly: right after an election a node may still answer 503.
pub fn get_eventually(c: &Cluster, via: u64, key: &str) -> Option<Value> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(v) = get(c, via, key) {
            return Some(v);
        }
        if Instant::now() > end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A counter from a node's /metrics page.
pub fn metric(c: &Cluster, id: u64, name: &str) -> Option<u64> {
    let (code, text) = http(c.port(id), "GET", "/metrics", None).ok()?;
    if code != 200 {
        return None;
    }
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Writes `bytes` on a fresh connection and reads until the server closes it (or
/// five seconds pass); returns everything read.
pub fn send_raw(port: u16, bytes: &[u8]) -> std::io::Result<String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.set_write_timeout(Some(Duration::from_secs(5)))?;
    // The server may answer and close before reading everything.
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    Ok(String::from_utf8_lossy(&buf).to_string())
}
