//! Exactly-once retries over HTTP, with real node processes and a real one-way
//! partition: a write that got 504 (indeterminate) and did take effect is retried
//! with the same `Client-Id` and `Request-Seq`, and is not applied a second time.

mod common;

use hyper::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use workloads::run::cluster::{Cluster, ClusterSpec};
use workloads::run::http::{HttpClient, Reply, new_client, request, request_with};
use workloads::run::target;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn leader(http: &HttpClient, addrs: &BTreeMap<u64, SocketAddr>) -> Option<u64> {
    for (&id, &addr) in addrs {
        if let Reply::Response { status: 200, body } =
            request(http, Method::GET, addr, "/status", None, TIMEOUT).await
            && body["role"] == "leader"
        {
            return Some(id);
        }
    }
    None
}

async fn put(http: &HttpClient, addr: SocketAddr, value: &str, id: Option<(u64, u64)>) -> Reply {
    let headers: Vec<(&str, String)> = id
        .map(|(c, s)| vec![("client-id", c.to_string()), ("request-seq", s.to_string())])
        .unwrap_or_default();
    let body = json!({ "value": value });
    request_with(
        http,
        Method::PUT,
        addr,
        "/kv/k",
        Some(&body),
        &headers,
        TIMEOUT,
    )
    .await
}

async fn read(http: &HttpClient, addr: SocketAddr) -> Option<Value> {
    match request(http, Method::GET, addr, "/kv/k", None, TIMEOUT).await {
        Reply::Response { status: 200, body } => Some(body["value"].clone()),
        _ => None,
    }
}

/// Polls every node until one reads `want` at `k`, for at most `limit`.
async fn read_eventually(
    http: &HttpClient,
    addrs: &BTreeMap<u64, SocketAddr>,
    want: &Value,
    limit: Duration,
) -> Option<Value> {
    let end = Instant::now() + limit;
    let mut last = None;
    while Instant::now() < end {
        for &addr in addrs.values() {
            last = read(http, addr).await;
            if last.as_ref() == Some(want) {
                return last;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[test]
fn a_write_retried_after_a_504_with_its_client_id_and_seq_applies_once() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let spec = ClusterSpec {
        nodes: 3,
        target: target::node(
            &common::node_binary(),
            &target::NodeOptions {
                snapshot_every: 0,
                ..target::NodeOptions::default()
            },
        ),
        data_root: dir.path().join("data"),
        log_dir: dir.path().join("logs"),
    };
    let logs = dir.path().join("logs");
    let show_logs = || {
        (1..=3)
            .map(|i| std::fs::read_to_string(logs.join(format!("n{i}.log"))).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let cluster = Cluster::start(spec).await.expect("cluster");
        let http = new_client();
        let addrs = cluster.addrs();
        let end = Instant::now() + Duration::from_secs(15);
        let l = loop {
            if let Some(l) = leader(&http, &addrs).await {
                break l;
            }
            assert!(Instant::now() < end, "no leader\n{}", show_logs());
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // The followers still hear the leader but can no longer answer it: they log
        // the write, the leader never learns it is replicated, and cannot commit.
        // A leader change just before the cut can spoil an attempt (the write then
        // fails or succeeds outright); a new attempt starts from the new leader.
        let mut attempt = 0;
        let (seq, followers) = loop {
            attempt += 1;
            let seq = attempt;
            let l = leader(&http, &addrs).await.unwrap_or(l);
            let followers: Vec<u64> = addrs.keys().copied().filter(|&i| i != l).collect();
            for &f in &followers {
                cluster.cut(f, l);
            }
            let first = put(&http, addrs[&l], &format!("v{seq}"), Some((7, seq))).await;
            cluster.heal_links();
            if matches!(first, Reply::Response { status: 504, .. }) {
                break (seq, followers);
            }
            assert!(attempt < 3, "no 504: {first:?}\n{}", show_logs());
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        // The write took effect after all: every node had it in its log.
        let first = json!(format!("v{seq}"));
        let seen = read_eventually(&http, &addrs, &first, Duration::from_secs(15)).await;
        assert_eq!(seen, Some(first.clone()), "{}", show_logs());
        // Another client writes after it.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let r = put(&http, addrs[&followers[0]], "later", None).await;
            if matches!(r, Reply::Response { status: 200, .. }) {
                break;
            }
            assert!(Instant::now() < end, "{r:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The client retries its indeterminate write, through a follower (which
        // forwards the identity to the leader): answered with the first result...
        let retry = put(
            &http,
            addrs[&followers[1]],
            &format!("v{seq}"),
            Some((7, seq)),
        )
        .await;
        match &retry {
            Reply::Response { status: 200, body } => assert_eq!(body["value"], first),
            other => panic!("retry answered {other:?}"),
        }
        // ...and not applied again over the later write.
        for &addr in addrs.values() {
            assert_eq!(read(&http, addr).await, Some(json!("later")));
        }
        cluster.shutdown();
    });
}
