//! End-to-end tests with real `node` processes on loopback: election, writes and
//! reads through every node, failover after SIGKILL, durability across a full
//! restart (including a torn last WAL record), and the JSON error contract.
//!
//! Every process is owned by a [`Cluster`] whose `Drop` kills it, so a failing
//! assertion never leaves nodes behind.

mod common;

use common::*;
use serde_json::{Value, json};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

#[test]
fn three_nodes_elect_a_leader_and_every_node_serves_every_write() {
    let c = Cluster::start(3);
    let leader = c.wait_leader(Duration::from_secs(10), None);
    assert!(leader.is_some(), "no leader within 10 s\n{}", c.logs());
    for k in 0..30u64 {
        let via = k % 3 + 1;
        assert!(
            put(&c, via, &format!("k{k}"), json!(k)),
            "write k{k} via n{via}\n{}",
            c.logs()
        );
    }
    for via in c.ids() {
        for k in 0..30u64 {
            assert_eq!(
                get_eventually(&c, via, &format!("k{k}")),
                Some(json!(k)),
                "k{k} via n{via}"
            );
        }
    }
    // Every node reports the same committed prefix and membership.
    let s = c.status(1).expect("status");
    for field in [
        "id",
        "role",
        "term",
        "leader",
        "commit_index",
        "applied_index",
        "first_log_index",
        "last_log_index",
        "snapshot_index",
        "voters",
        "learners",
        "joint",
        "consensus",
    ] {
        assert!(s.get(field).is_some(), "/status lacks {field}: {s}");
    }
    assert_eq!(s["voters"], json!([1, 2, 3]));
    assert_eq!(s["consensus"], json!("raft"), "{s}");
}

#[test]
fn a_new_leader_is_elected_within_two_seconds_after_sigkill() {
    let mut c = Cluster::start(3);
    let old = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("first leader");
    assert!(put(&c, old, "before", json!(1)));
    c.kill(old);
    let t0 = Instant::now();
    let new = c.wait_leader(Duration::from_secs(5), Some(old));
    let took = t0.elapsed();
    assert!(new.is_some(), "no new leader\n{}", c.logs());
    assert!(
        took <= Duration::from_secs(2),
        "new leader took {took:?}\n{}",
        c.logs()
    );
    let new = new.expect("checked");
    assert_eq!(get_eventually(&c, new, "before"), Some(json!(1)));
    assert!(put(&c, new, "after", json!(2)));
}

#[test]
fn acknowledged_writes_survive_a_full_restart_with_a_torn_wal_tail() {
    let mut c = Cluster::start(3);
    c.wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let mut acked = Vec::new();
    for k in 0..40u64 {
        if put(&c, k % 3 + 1, &format!("d{k}"), json!(k * 10)) {
            acked.push(k);
        }
    }
    assert!(
        acked.len() >= 35,
        "only {} of 40 writes acknowledged\n{}",
        acked.len(),
        c.logs()
    );
    for id in c.ids() {
        c.kill(id);
    }
    // A write cut short by the crash: garbage after the last record of the newest
    // segment of every node.
    for id in c.ids() {
        let seg = newest_segment(&c.data_dir(id));
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&seg)
            .expect("open segment");
        f.write_all(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37])
            .expect("append garbage");
    }
    for id in c.ids() {
        c.spawn(id);
    }
    let leader = c.wait_leader(Duration::from_secs(10), None);
    assert!(leader.is_some(), "no leader after restart\n{}", c.logs());
    for k in &acked {
        let via = k % 3 + 1;
        assert_eq!(
            get_eventually(&c, via, &format!("d{k}")),
            Some(json!(k * 10)),
            "lost d{k}\n{}",
            c.logs()
        );
    }
    assert!(put(&c, 1, "after-restart", json!(true)), "{}", c.logs());
}

fn newest_segment(dir: &std::path::Path) -> PathBuf {
    let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(dir)
        .expect("read data dir")
        .filter_map(|e| {
            let p = e.ok()?.path();
            let name = p.file_name()?.to_str()?.to_string();
            let seq = name.strip_suffix(".wal")?.split('-').next()?.parse().ok()?;
            Some((seq, p))
        })
        .collect();
    segs.sort();
    segs.pop().expect("a WAL segment").1
}

/// Method, path, (content type, body), expected status, expected error code.
type BadCase<'a> = (&'a str, &'a str, Option<(&'a str, &'a [u8])>, u16, &'a str);

#[test]
fn bad_requests_get_json_errors_and_the_node_keeps_serving() {
    let c = Cluster::start(3);
    c.wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let p = c.port(1);
    let cases: Vec<BadCase> = vec![
        (
            "PUT",
            "/kv/a",
            Some(("application/json", b"{not json")),
            400,
            "bad_request",
        ),
        (
            "PUT",
            "/kv/a",
            Some(("application/json", br#"{"val":1}"#)),
            400,
            "bad_request",
        ),
        (
            "PUT",
            "/kv/a",
            Some(("application/json", br#"[1]"#)),
            400,
            "bad_request",
        ),
        (
            "POST",
            "/kv/a/cas",
            Some(("application/json", br#"{"from":1}"#)),
            400,
            "bad_request",
        ),
        (
            "PUT",
            "/kv/a",
            Some(("text/plain", br#"{"value":1}"#)),
            415,
            "unsupported_media_type",
        ),
        ("GET", "/nope/x", None, 404, "not_found"),
        ("POST", "/kv/a", None, 405, "method_not_allowed"),
        ("GET", "/kv/%zz", None, 400, "bad_request"),
        ("GET", "/kv/never-written", None, 404, "not_found"),
    ];
    for (method, path, body, want, code) in cases {
        let (got, text) = http_raw(p, method, path, body).expect("answer");
        assert_eq!(got, want, "{method} {path}: {text}");
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
        assert_eq!(v["error"], code, "{method} {path}: {text}");
        assert!(v["message"].is_string());
    }
    let big = vec![b'a'; 2 << 20];
    let (got, text) =
        http_raw(p, "PUT", "/kv/big", Some(("application/json", &big))).expect("answer");
    assert_eq!(got, 413, "{text}");
    // A CAS that does not match says what it saw.
    assert!(put(&c, 2, "c", json!(1)));
    let (got, text) = http(p, "POST", "/kv/c/cas", Some(r#"{"from":2,"to":3}"#)).expect("answer");
    assert_eq!(got, 409);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        (v["error"].clone(), v["current"].clone()),
        (json!("cas_mismatch"), json!(1))
    );
    // Still serving.
    assert!(put(&c, 1, "still", json!("here")));
    assert_eq!(get_eventually(&c, 3, "still"), Some(json!("here")));
}

#[test]
fn sigterm_stops_a_node_cleanly_and_the_rest_keep_serving() {
    let mut c = Cluster::start(3);
    let leader = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    assert!(put(&c, leader, "t", json!(1)));
    let child = c.procs[(leader - 1) as usize].take().expect("running");
    send_sigterm(&child);
    let status = wait_exit(child, Duration::from_secs(10));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "exit after SIGTERM\n{}",
        c.logs()
    );
    let new = c
        .wait_leader(Duration::from_secs(5), Some(leader))
        .expect("new leader");
    assert_eq!(get_eventually(&c, new, "t"), Some(json!(1)));
    c.spawn(leader);
    assert_eq!(
        get_eventually(&c, leader, "t"),
        Some(json!(1)),
        "{}",
        c.logs()
    );
}

fn send_sigterm(child: &Child) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success());
}

fn wait_exit(mut child: Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if let Ok(Some(s)) = child.try_wait() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[test]
fn the_cluster_token_guards_raft_and_admin_but_not_clients() {
    let c = Cluster::start_with(3, &["--cluster-token", "s3cret"]);
    let leader = c.wait_leader(Duration::from_secs(10), None);
    assert!(
        leader.is_some(),
        "peers with the token elect a leader\n{}",
        c.logs()
    );
    let (code, _) = http_raw(
        c.port(1),
        "POST",
        "/raft/msg",
        Some(("application/octet-stream", b"\x00")),
    )
    .expect("answer");
    assert_eq!(code, 401);
    let (code, _) = http(c.port(1), "GET", "/admin/membership", None).expect("answer");
    assert_eq!(code, 401);
    let (code, _) = http(c.port(1), "POST", "/admin/snapshot", None).expect("answer");
    assert_eq!(code, 401);
    assert!(put(&c, 2, "open", json!("to clients")));
    assert_eq!(get_eventually(&c, 3, "open"), Some(json!("to clients")));
}

#[test]
fn leadership_moves_on_request_through_any_node() {
    let c = Cluster::start(3);
    let old = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let target = old % 3 + 1;
    let via = target % 3 + 1; // the third node: a follower that must forward
    let body = json!({ "to": target }).to_string();
    let (code, text) =
        http(c.port(via), "POST", "/admin/transfer-leader", Some(&body)).expect("answer");
    assert_eq!(code, 202, "{text}");
    let end = Instant::now() + Duration::from_secs(5);
    while c.leader(None) != Some(target) {
        assert!(
            Instant::now() < end,
            "leadership did not move to {target}\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(put(&c, old, "moved", json!(target)));
}

#[test]
fn a_voter_is_removed_and_added_back_through_the_admin_api() {
    let c = Cluster::start(3);
    let leader = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let other = leader % 3 + 1;
    let change = |voters: Value| {
        let body = json!({ "voters": voters }).to_string();
        http(c.port(other), "POST", "/admin/membership", Some(&body)).expect("answer")
    };
    let remaining: Vec<u64> = c.ids().filter(|i| *i != other).collect();
    let (code, text) = change(json!(remaining));
    assert_eq!(code, 200, "{text}\n{}", c.logs());
    let s = c.status(leader).expect("status");
    assert_eq!(s["voters"], json!(remaining));
    assert!(put(&c, leader, "two-voters", json!(2)));
    let (code, text) = change(json!([1, 2, 3]));
    assert_eq!(code, 200, "{text}\n{}", c.logs());
    let (code, text) = http(c.port(leader), "GET", "/admin/membership", None).expect("answer");
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        (v["voters"].clone(), v["joint"].clone()),
        (json!([1, 2, 3]), Value::Null)
    );
    let (code, _) = http(
        c.port(leader),
        "POST",
        "/admin/membership",
        Some(r#"{"voters":[]}"#),
    )
    .expect("answer");
    assert_eq!(code, 400);
}

/// A node cut off from the majority must not answer a linearizable read; with the
/// `stale-read` mutant it answers from its own state (the bug the pipeline must catch).
#[test]
fn a_lone_node_refuses_linearizable_reads_unless_the_stale_read_mutant_is_on() {
    for (flags, lone_answers) in [(&[][..], false), (&["--unsafe", "stale-read"][..], true)] {
        let mut c = Cluster::start_with(3, flags);
        let leader = c
            .wait_leader(Duration::from_secs(10), None)
            .expect("leader");
        assert!(put(&c, leader, "r", json!("v")));
        let lone = leader % 3 + 1;
        assert_eq!(get_eventually(&c, lone, "r"), Some(json!("v")));
        // A linearizable read may have been answered by the leader: wait until the
        // lone node's own state holds the write too.
        let end = Instant::now() + Duration::from_secs(10);
        while http(c.port(lone), "GET", "/kv/r?stale=true", None).map_or(0, |r| r.0) != 200 {
            assert!(Instant::now() < end, "n{lone} never applied the write");
            std::thread::sleep(Duration::from_millis(20));
        }
        for id in c.ids().filter(|i| *i != lone) {
            c.kill(id);
        }
        let (code, text) = http(c.port(lone), "GET", "/kv/r", None).expect("answer");
        if lone_answers {
            assert_eq!(code, 200, "{text}");
        } else {
            assert_eq!(code, 503, "{text}");
            let v: Value = serde_json::from_str(&text).expect("json");
            assert_eq!(v["error"], "unavailable");
        }
        let (code, _) = http(c.port(lone), "GET", "/kv/r?stale=true", None).expect("answer");
        assert_eq!(code, 200, "explicitly stale reads are always local");
    }
}

/// Leadership moving during a stream of writes shows up as latency, not as errors:
/// operations refused before they were proposed are retried at the new leader.
#[test]
fn writes_through_a_follower_ride_out_leader_transfers() {
    let c = Cluster::start(3);
    let first = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let port = c.port(first % 3 + 1);
    let writer = std::thread::spawn(move || {
        let mut codes = Vec::new();
        for k in 0..150u64 {
            let body = json!({ "value": k }).to_string();
            let t0 = Instant::now();
            let (code, text) = http(port, "PUT", &format!("/kv/w{}", k % 10), Some(&body))
                .unwrap_or((0, String::new()));
            if code != 200 {
                eprintln!("write {k}: {code} {text} after {:?}", t0.elapsed());
            }
            codes.push(code);
        }
        codes
    });
    for round in 0..4u64 {
        std::thread::sleep(Duration::from_millis(150));
        let Some(leader) = c.leader(None) else {
            continue;
        };
        let to = (leader + round) % 3 + 1;
        let to = if to == leader { to % 3 + 1 } else { to };
        let body = json!({ "to": to }).to_string();
        let _ = http(
            c.port(leader),
            "POST",
            "/admin/transfer-leader",
            Some(&body),
        );
    }
    let codes = writer.join().expect("writer thread");
    let unavailable = codes.iter().filter(|c| **c == 503).count();
    let other: Vec<&u16> = codes
        .iter()
        .filter(|c| ![200, 503, 504].contains(*c))
        .collect();
    assert!(other.is_empty(), "unexpected answers {other:?}");
    assert_eq!(
        unavailable,
        0,
        "writes refused during leader changes: {codes:?}\n{}",
        c.logs()
    );
}

/// Total size of a node's WAL segments.
fn wal_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().extension().is_some_and(|x| x == "wal"))
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn a_follower_behind_the_snapshot_catches_up_and_everything_survives_a_full_restart() {
    let mut c = Cluster::start_with(
        3,
        &[
            "--snapshot-every",
            "50",
            "--wal-segment-bytes",
            "4096",
            // Streamed in 1 KiB chunks: the snapshot of 500 keys takes several.
            "--snapshot-chunk-kib",
            "1",
            // One worker: a single-threaded runtime (as ci/bench/node-vs-etcd.sh runs
            // nodes on 2 cores), which the driver, the HTTP handlers and the chunk
            // streams share; only fsyncs and file work leave it.
            "--worker-threads",
            "1",
        ],
    );
    let leader = c
        .wait_leader(Duration::from_secs(10), None)
        .expect("leader");
    let away = c.ids().find(|&i| i != leader).expect("a follower");
    c.kill(away);
    let mut acked = Vec::new();
    for k in 0..500u64 {
        let via = c.ids().find(|&i| i != away).expect("a live node");
        if put(&c, via, &format!("s{k}"), json!(k)) {
            acked.push(k);
        }
    }
    assert!(
        acked.len() >= 490,
        "only {} of 500 writes acknowledged\n{}",
        acked.len(),
        c.logs()
    );
    c.spawn(away);
    // The returning follower's own state (stale reads are served locally) catches
    // up with every acknowledged write.
    let last = *acked.last().expect("some writes");
    let end = Instant::now() + Duration::from_secs(20);
    let stale = |k: u64| {
        let path = format!("/kv/s{k}?stale=true");
        let (code, body) = http(c.port(away), "GET", &path, None).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (code == 200).then(|| v["value"].clone())
    };
    while stale(last) != Some(json!(last)) {
        assert!(
            Instant::now() < end,
            "n{away} did not catch up\n{}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for &k in &acked {
        assert_eq!(stale(k), Some(json!(k)), "n{away} lacks s{k}");
    }
    let s = c.status(away).expect("status");
    assert!(
        s["snapshot_index"].as_u64().unwrap_or(0) > 0 && s["first_log_index"].as_u64() > Some(1),
        "n{away} did not compact: {s}"
    );
    assert!(
        metric(&c, away, "node_snapshots_installed_total").unwrap_or(0) >= 1,
        "n{away} caught up without a snapshot\n{}",
        c.logs()
    );
    let chunks = metric(&c, away, "node_snapshot_chunks_received_total").unwrap_or(0);
    let streams: u64 = c
        .ids()
        .filter(|&i| i != away)
        .map(|i| metric(&c, i, "node_snapshot_streams_total").unwrap_or(0))
        .sum();
    assert!(
        chunks > 1 && streams >= 1,
        "the snapshot did not arrive as a stream of chunks ({chunks} chunks, {streams} \
         streams)\n{}",
        c.logs()
    );
    // Snapshots every 50 entries of a growing store: most are deltas beside the
    // snapshot file, which the stream above and the restart below read as one.
    let deltas: u64 = c
        .ids()
        .map(|i| metric(&c, i, "node_snapshot_deltas_total").unwrap_or(0))
        .sum();
    assert!(deltas >= 3, "only {deltas} delta snapshots\n{}", c.logs());
    // Every compaction file a node wrote was put in place, except where a snapshot
    // from the leader replaced what it extended: none wasted on the other nodes.
    for id in c.ids().filter(|&i| i != away) {
        let dropped = metric(&c, id, "node_snapshots_dropped_total");
        assert_eq!(dropped, Some(0), "n{id} dropped compactions\n{}", c.logs());
    }
    // The nodes that took all 500 entries wrote tens of kilobytes of WAL;
    // compaction keeps only the segments after the last snapshot (at most ~50
    // entries plus partly covered segments).
    for id in c.ids() {
        let wal = wal_bytes(&c.data_dir(id));
        assert!(wal <= 4 * 4096, "n{id} keeps {wal} bytes of WAL");
    }
    // A snapshot on request.
    let (code, body) = http(c.port(leader), "POST", "/admin/snapshot", None).expect("snapshot");
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert!(v["snapshot_index"].as_u64().unwrap_or(0) >= acked.len() as u64);
    // Every node restarts from its snapshot plus the log after it.
    for id in c.ids() {
        c.kill(id);
    }
    for id in c.ids() {
        c.spawn(id);
    }
    c.wait_leader(Duration::from_secs(10), None)
        .expect("leader after restart");
    for &k in &acked {
        let via = k % 3 + 1;
        assert_eq!(
            get_eventually(&c, via, &format!("s{k}")),
            Some(json!(k)),
            "lost s{k}\n{}",
            c.logs()
        );
    }
}

/// How a node loses its state in [`a_node_that_lost_its_state_costs_no_acknowledged_write`].
#[derive(Clone, Copy, Debug)]
enum Loss {
    DataDir,
    WalWithSnapshotKept,
    SegmentCutToHeader,
}

fn signal(c: &Cluster, id: u64, sig: nix::sys::signal::Signal) {
    if let Some(child) = &c.procs[(id - 1) as usize] {
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).expect("signal a node");
    }
}

/// A node restarted with the same command line after losing its data directory,
/// its write-ahead log (snapshot kept) or the records of its log segment must not
/// vote as the node it was: pause a follower, have the leader and the other
/// follower acknowledge a write, kill both, wipe the second, resume the first and
/// restart the wiped node before the leader. The wiped node must not help the stale
/// follower win, and the write must still be there once the leader is back.
#[test]
fn a_node_that_lost_its_state_costs_no_acknowledged_write() {
    use nix::sys::signal::Signal;
    for (round, loss) in [
        Loss::DataDir,
        Loss::WalWithSnapshotKept,
        Loss::SegmentCutToHeader,
    ]
    .into_iter()
    .enumerate()
    {
        let mut c = Cluster::start(3);
        let l = c
            .wait_leader(Duration::from_secs(10), None)
            .expect("leader");
        let others: Vec<u64> = c.ids().filter(|&i| i != l).collect();
        let (stale, wiped) = (others[0], others[1]);
        for k in 0..5 {
            assert!(put(&c, l, &format!("pre{k}"), json!(k)), "{}", c.logs());
        }
        assert_eq!(get_eventually(&c, wiped, "pre4"), Some(json!(4)));
        // A follower that has applied nothing yet answers at once with index 0 and
        // writes no file; ask again until its snapshot covers something.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, body) = http(c.port(wiped), "POST", "/admin/snapshot", None).expect("snap");
            assert_eq!(code, 200, "{body}");
            let v: Value = serde_json::from_str(&body).expect("json");
            if v["snapshot_index"].as_u64().unwrap_or(0) > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "no snapshot taken: {body}");
            std::thread::sleep(Duration::from_millis(50));
        }
        signal(&c, stale, Signal::SIGSTOP);
        let key = format!("w{round}");
        assert!(put(&c, l, &key, json!(round)), "{:?}: {}", loss, c.logs());
        c.kill(l);
        c.kill(wiped);
        let dir = c.data_dir(wiped);
        match loss {
            Loss::DataDir => std::fs::remove_dir_all(&dir).expect("wipe"),
            Loss::WalWithSnapshotKept => {
                assert!(dir.join("snapshot").exists(), "no snapshot to keep");
                for e in std::fs::read_dir(&dir).expect("read dir") {
                    let p = e.expect("entry").path();
                    if p.extension().is_some_and(|x| x == "wal") {
                        std::fs::remove_file(p).expect("delete segment");
                    }
                }
            }
            Loss::SegmentCutToHeader => {
                let seg = newest_segment(&dir);
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&seg)
                    .expect("open segment");
                f.set_len(28).expect("cut to the header");
            }
        }
        signal(&c, stale, Signal::SIGCONT);
        c.spawn(wiped);
        std::thread::sleep(Duration::from_secs(1));
        c.spawn(l);
        let end = Instant::now() + Duration::from_secs(20);
        let mut seen = None;
        while Instant::now() < end && seen.is_none() {
            seen = c.ids().find_map(|i| get(&c, i, &key));
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(
            seen,
            Some(json!(round)),
            "{loss:?}: acknowledged write lost\n{}",
            c.logs()
        );
        // The wiped node comes back as a new incarnation and is re-admitted.
        let end = Instant::now() + Duration::from_secs(20);
        let mut role = Value::Null;
        while Instant::now() < end {
            role = c.status(wiped).map_or(Value::Null, |s| s["role"].clone());
            if role == "follower" || role == "leader" {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(
            role == "follower" || role == "leader",
            "{loss:?}: the wiped node is still {role}\n{}",
            c.logs()
        );
        assert_eq!(get_eventually(&c, wiped, &key), Some(json!(round)));
    }
}
