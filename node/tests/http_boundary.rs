//! The node's HTTP boundary against hostile or careless clients, with real `node`
//! processes on loopback: stalled bodies, values that must not reach consensus,
//! exactly-once retries, and JSON errors for everything, including what the HTTP
//! library refuses by itself.

mod common;

use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Opens `n` connections to `port` that send a request head and one byte of a
/// 100-byte body, then stall. Connections the node has not accepted yet still
/// connect (the kernel queues them), as they would for an attacker.
fn stall_bodies(port: u16, n: usize) -> Vec<TcpStream> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let head = "PUT /kv/slow HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                content-length: 100\r\n\r\n{";
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
            s.write_all(head.as_bytes()).ok()?;
            Some(s)
        })
        .collect()
}

/// How many accepted TCP connections on its listen port the process `pid` holds,
/// as the kernel sees them (`/proc`): sockets in its descriptor table whose local
/// port is `port` and that are not the listener.
fn accepted_connections(pid: u32, port: u16) -> usize {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().to_string();
                    Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_hex = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            cols.len() > 9
                && cols[1].ends_with(&port_hex)
                && cols[3] != "0A"
                && inodes.contains(cols[9])
        })
        .count()
}

#[test]
fn stalled_bodies_keep_within_the_budget_and_lock_out_neither_clients_nor_peers() {
    const BUDGET: usize = 64;
    let budget = BUDGET.to_string();
    let mut c = Cluster::start_with(3, &["--max-connections", &budget]);
    let l = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    assert!(put(&c, l, "before", json!(0)));
    // Three times the budget of stalled bodies at every node.
    let mut stalled: Vec<TcpStream> = c
        .ids()
        .flat_map(|i| stall_bodies(c.port(i), 3 * BUDGET))
        .collect();
    assert!(
        stalled.len() >= 3 * 3 * BUDGET - 10,
        "{} connected",
        stalled.len()
    );
    // A new client is served at once, at the leader and through a follower (which
    // forwards: node-to-node traffic that needs a slot at the flooded leader).
    let f = c.ids().find(|&i| i != l).unwrap_or(1);
    let t0 = Instant::now();
    let answer = put_answer(&c, l, "fresh", json!(1));
    assert_eq!(answer, Ok(()), "{}", c.logs());
    let fresh = t0.elapsed();
    let answer = put_answer(&c, f, "forwarded", json!(2));
    assert_eq!(answer, Ok(()), "{}", c.logs());
    assert!(
        fresh < Duration::from_secs(3),
        "a new client waited {fresh:?}"
    );
    eprintln!(
        "new client served {fresh:?} into {} stalled bodies",
        stalled.len()
    );
    // Peers keep being served: a follower restarted under the flood makes every one
    // of its peer connections anew, and catches up.
    let g = c.ids().find(|&i| i != l && i != f).unwrap_or(1);
    c.kill(g);
    assert!(put(&c, l, "while-down", json!(3)));
    c.spawn(g);
    let end = Instant::now() + Duration::from_secs(10);
    while c.status(g).is_none() {
        assert!(Instant::now() < end, "node {g} did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let more = stall_bodies(c.port(g), 3 * BUDGET);
    assert!(more.len() >= 3 * BUDGET - 5, "{} connected", more.len());
    stalled.extend(more);
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let path = "/kv/while-down?stale=true";
        if let Ok((200, body)) = http(c.port(g), "GET", path, None)
            && serde_json::from_str::<Value>(&body)
                .ok()
                .map(|v| v["value"].clone())
                == Some(json!(3))
        {
            break;
        }
        assert!(
            Instant::now() < end,
            "node {g} did not catch up under the flood\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The budget holds, as the kernel counts the connections each node accepted.
    for i in c.ids() {
        let pid = c.pid(i).expect("running");
        let open = accepted_connections(pid, c.port(i));
        assert!(open <= BUDGET, "node {i} holds {open} connections");
        let reported = metric(&c, i, "node_connections_open").expect("gauge");
        assert!(reported <= BUDGET as u64, "node {i} reports {reported}");
        let shed = metric(&c, i, "node_connections_shed_total").expect("counter");
        assert!(shed > 0, "node {i} shed nothing");
    }
    drop(stalled);
}

#[test]
fn a_stalled_body_gets_a_json_408_and_a_stalled_head_is_closed() {
    let c = Cluster::start_with(1, &["--read-timeout-ms", "500"]);
    c.wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let p = c.port(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], p));
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let t0 = Instant::now();
    s.write_all(b"PUT /kv/a HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\n{")
        .expect("write");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    assert!(
        text.starts_with("HTTP/1.1 408"),
        "{text:?} after {:?}",
        t0.elapsed()
    );
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    let v: Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(v["error"], "request_timeout");
    // A head that never ends: closed without an answer.
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(b"GET /status HTTP/1.1\r\nhost:")
        .expect("write");
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(t0.elapsed() < Duration::from_secs(4), "head not timed out");
    assert_eq!(metric(&c, 1, "node_request_body_timeouts_total"), Some(1));
}

fn log_end(c: &Cluster, id: u64) -> u64 {
    c.status(id)
        .and_then(|s| s["last_log_index"].as_u64())
        .expect("status")
}

/// Nested arrays `d` deep inside `{"value": ...}`.
fn deep_body(d: usize) -> String {
    format!(r#"{{"value": {}{}}}"#, "[".repeat(d), "]".repeat(d))
}

#[test]
fn a_value_nested_126_deep_is_refused_before_consensus() {
    let c = Cluster::start(3);
    let l = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    assert!(put(&c, l, "k", json!("first")));
    let before = log_end(&c, l);
    for via in c.ids() {
        let (code, text) =
            http(c.port(via), "PUT", "/kv/k", Some(&deep_body(126))).expect("answer");
        assert_eq!(code, 400, "via {via}: {text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(v["error"], "bad_request");
    }
    let cas = format!(
        r#"{{"from": "first", "to": {}{}}}"#,
        "[".repeat(126),
        "]".repeat(126)
    );
    let (code, _) = http(c.port(l), "POST", "/kv/k/cas", Some(&cas)).expect("answer");
    assert_eq!(code, 400);
    // Nothing was proposed: the log did not grow, the value is unchanged.
    assert_eq!(log_end(&c, l), before);
    assert_eq!(get_eventually(&c, l, "k"), Some(json!("first")));
    // The deepest value accepted is stored and read back.
    let (code, text) = http(c.port(l), "PUT", "/kv/k", Some(&deep_body(100))).expect("answer");
    assert_eq!(code, 200, "{text}");
    assert_eq!(log_end(&c, l), before + 1);
}

#[test]
fn null_is_refused_as_a_value_so_absent_and_null_stay_apart() {
    let c = Cluster::start(1);
    c.wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let p = c.port(1);
    for (method, path, body) in [
        ("PUT", "/kv/n", r#"{"value": null}"#),
        ("POST", "/kv/n/cas", r#"{"from": null, "to": null}"#),
        ("POST", "/kv/n/cas", r#"{"from": 1, "to": null}"#),
    ] {
        let (code, text) = http(p, method, path, Some(body)).expect("answer");
        assert_eq!(code, 400, "{method} {path} {body}: {text}");
        let v: Value = serde_json::from_str(&text).expect("JSON");
        assert!(
            v["message"].as_str().is_some_and(|m| m.contains("null")),
            "{text}"
        );
    }
    let (code, _) = http(p, "GET", "/kv/n", None).expect("answer");
    assert_eq!(code, 404, "nothing was written");
    // `from: null` still means absent; DELETE removes; null inside a value is data.
    let (code, text) = http(
        p,
        "POST",
        "/kv/n/cas",
        Some(r#"{"from": null, "to": [null]}"#),
    )
    .expect("answer");
    assert_eq!(code, 200, "{text}");
    assert_eq!(get(&c, 1, "n"), Some(json!([null])));
    let (code, _) = http(p, "DELETE", "/kv/n", None).expect("answer");
    assert_eq!(code, 200);
    let (code, _) = http(p, "GET", "/kv/n", None).expect("answer");
    assert_eq!(code, 404);
}

fn put_as(c: &Cluster, via: u64, key: &str, value: Value, id: (&str, &str)) -> (u16, String) {
    let body = json!({ "value": value }).to_string();
    let headers = [("Client-Id", id.0), ("Request-Seq", id.1)];
    http_with(
        c.port(via),
        "PUT",
        &format!("/kv/{key}"),
        &headers,
        Some(("application/json", body.as_bytes())),
    )
    .expect("answer")
}

#[test]
fn a_write_repeated_with_its_client_id_and_seq_applies_once_through_any_node() {
    let c = Cluster::start(3);
    let l = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let f = c.ids().find(|&i| i != l).unwrap_or(1);
    for (seq, via) in [("1", l), ("2", f)] {
        let key = format!("once{via}");
        let (code, text) = put_as(&c, via, &key, json!("a"), ("9", seq));
        assert_eq!(code, 200, "{text}");
        assert!(put(&c, via, &key, json!("b")));
        // The same request again (as after a 504): answered from the first result,
        // not applied a second time over the later write.
        let (code, text) = put_as(&c, via, &key, json!("a"), ("9", seq));
        assert_eq!(code, 200, "{text}");
        assert_eq!(
            serde_json::from_str::<Value>(&text).expect("JSON")["value"],
            "a"
        );
        assert_eq!(get_eventually(&c, l, &key), Some(json!("b")), "via {via}");
    }
    // Bad identity headers are refused before anything happens.
    for (cid, seq) in [("0", "1"), ("x", "1"), ("9", "-1"), ("9", "")] {
        let (code, text) = put_as(&c, f, "bad", json!(1), (cid, seq));
        assert_eq!(code, 400, "{cid:?} {seq:?}: {text}");
        assert!(serde_json::from_str::<Value>(&text).is_ok(), "{text}");
    }
    let body = br#"{"value": 1}"#;
    let (code, _) = http_with(
        c.port(l),
        "PUT",
        "/kv/bad",
        &[("Client-Id", "9")],
        Some(("application/json", body)),
    )
    .expect("answer");
    assert_eq!(code, 400, "Client-Id without Request-Seq");
    assert_eq!(get(&c, l, "bad"), None);
}

/// Every response in `text` (a keep-alive stream), as status and JSON body.
fn responses(text: &str) -> Vec<(u16, Value)> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some((head, after)) = rest.split_once("\r\n\r\n") {
        let code = head
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let len = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        let body = after.get(..len).unwrap_or(after);
        out.push((code, serde_json::from_str(body).unwrap_or(Value::Null)));
        rest = after.get(len..).unwrap_or("");
    }
    out
}

#[test]
fn errors_the_http_library_makes_are_json_too() {
    let c = Cluster::start(1);
    c.wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let p = c.port(1);
    let long_uri = format!("GET /kv/{} HTTP/1.1\r\nhost: x\r\n\r\n", "k".repeat(70_000));
    let many_headers = format!(
        "GET /status HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("x-h{i}: v\r\n"))
            .collect::<String>()
    );
    let huge_header = format!(
        "GET /status HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
        "v".repeat(600_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "garbage",
            b"NOT HTTP AT ALL\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        (
            "bad header",
            b"GET /status HTTP/1.1\r\nbad header\r\n\r\n".to_vec(),
            400,
            "bad_request",
        ),
        ("long uri", long_uri.into_bytes(), 414, "uri_too_long"),
        (
            "200 headers",
            many_headers.into_bytes(),
            431,
            "request_header_fields_too_large",
        ),
        (
            "huge header",
            huge_header.into_bytes(),
            431,
            "request_header_fields_too_large",
        ),
    ];
    for (what, bytes, want, code) in cases {
        let text = send_raw(p, &bytes).expect("answer");
        let got = responses(&text);
        assert_eq!(got.len(), 1, "{what}: {text:?}");
        assert_eq!(got[0].0, want, "{what}: {text:?}");
        assert_eq!(got[0].1["error"], code, "{what}: {text:?}");
        assert!(got[0].1["message"].is_string(), "{what}");
    }
    // On a keep-alive connection: ordinary answers first, then the library's error.
    let text = send_raw(
        p,
        b"GET /status HTTP/1.1\r\nhost: x\r\n\r\nGET /kv/zz HTTP/1.1\r\nhost: x\r\n\r\nBAD\r\n\r\n",
    )
    .expect("answer");
    let got = responses(&text);
    let codes: Vec<u16> = got.iter().map(|r| r.0).collect();
    assert_eq!(codes, [200, 404, 400], "{text:?}");
    assert!(got[0].1["role"].is_string());
    assert_eq!(got[2].1["error"], "bad_request");
    // Still serving.
    assert!(put(&c, 1, "after", json!(1)));
}

#[test]
fn admin_requests_naming_nodes_outside_the_cluster_are_refused() {
    let c = Cluster::start(3);
    let l = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let f = c.ids().find(|&i| i != l).unwrap_or(1);
    for via in [l, f] {
        for body in [r#"{"to": 9}"#, r#"{"to": 0}"#] {
            let (code, text) =
                http(c.port(via), "POST", "/admin/transfer-leader", Some(body)).expect("answer");
            assert_eq!(code, 400, "via {via} {body}: {text}");
            assert!(serde_json::from_str::<Value>(&text).is_ok());
        }
        for body in [
            r#"{"voters": [1, 2, 9]}"#,
            r#"{"voters": [1, 1, 2]}"#,
            r#"{"voters": []}"#,
        ] {
            let (code, text) =
                http(c.port(via), "POST", "/admin/membership", Some(body)).expect("answer");
            assert_eq!(code, 400, "via {via} {body}: {text}");
        }
    }
    // Transfer to the leader itself: nothing to do.
    let (code, _) = http(
        c.port(f),
        "POST",
        "/admin/transfer-leader",
        Some(&json!({"to": l}).to_string()),
    )
    .expect("answer");
    assert_eq!(code, 200);
    assert_eq!(c.leader(None), Some(l));
    let s = c.status(l).expect("status");
    assert_eq!(s["voters"], json!([1, 2, 3]));
    // A malformed peer batch is refused, and the node keeps serving.
    let (code, text) = http_raw(
        c.port(f),
        "POST",
        "/raft/msg",
        Some(("application/octet-stream", b"\xff\xff\xff")),
    )
    .expect("answer");
    assert_eq!(code, 400, "{text}");
    assert!(put(&c, f, "still", json!(1)));
}

/// `POST /raft/snapshot` from something that is no leader streaming a snapshot: a
/// missing header, a damaged chunk, a stale term and an offset the node does not
/// hold each get their JSON answer, nothing is installed, and the node keeps serving.
#[test]
fn snapshot_chunks_that_do_not_belong_are_refused() {
    let c = Cluster::start(3);
    let l = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let f = c.ids().find(|&i| i != l).expect("a follower");
    let term = c.status(f).expect("status")["term"].as_u64().expect("term");
    let bytes = b"not a snapshot, but checksummed".as_slice();
    let crc = crc32fast::hash(bytes).to_string();
    let (to, total, term_s, stale) = (
        f.to_string(),
        (bytes.len() * 4).to_string(),
        term.to_string(),
        (term - 1).to_string(),
    );
    let chunk = |term: &str, offset: &str, chunk_crc: &str| {
        let headers = [
            ("x-snapshot-from", "9"),
            ("x-snapshot-to", to.as_str()),
            ("x-snapshot-term", term),
            ("x-snapshot-incarnation", "1"),
            ("x-snapshot-index", "100"),
            ("x-snapshot-index-term", "1"),
            ("x-snapshot-total", total.as_str()),
            ("x-snapshot-file-crc", "0"),
            ("x-snapshot-offset", offset),
            ("x-snapshot-chunk-crc", chunk_crc),
        ];
        let (code, text) = http_with(
            c.port(f),
            "POST",
            "/raft/snapshot",
            &headers,
            Some(("application/octet-stream", bytes)),
        )
        .expect("answer");
        (
            code,
            serde_json::from_str::<Value>(&text).expect("a JSON answer"),
        )
    };
    let (code, v) = chunk(&term_s, "0", "12345");
    assert_eq!((code, &v["error"]), (400, &json!("bad_request")), "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("checksum")),
        "{v}"
    );
    let (code, v) = chunk(&stale, "0", &crc);
    assert_eq!((code, &v["error"]), (409, &json!("stale_term")), "{v}");
    let (code, v) = chunk(&term_s, "31", &crc);
    assert_eq!(
        (code, &v["error"], &v["offset"]),
        (409, &json!("wrong_offset"), &json!(0)),
        "{v}"
    );
    let (code, v) = chunk(&term_s, "0", &crc);
    assert_eq!((code, &v["offset"]), (200, &json!(bytes.len())), "{v}");
    let (code, text) = http_with(
        c.port(f),
        "POST",
        "/raft/snapshot",
        &[("x-snapshot-from", "9")],
        Some(("application/octet-stream", bytes)),
    )
    .expect("answer");
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("missing header x-snapshot-"), "{text}");
    assert!(put(&c, f, "still", json!(1)));
    assert_eq!(c.status(f).expect("status")["snapshot_index"], json!(0));
}
