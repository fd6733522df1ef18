//! Real `node` processes running the Paxos engines (`--consensus multi-paxos` and
//! `basic-paxos`) on loopback: writes and linearizable reads through every node,
//! SIGKILL and restart with no acknowledged write lost, the engine record in the
//! data directory, static membership (501) and the engines' metrics.

mod common;

use common::{Cluster, get_eventually, http, metric, put_answer};
use serde_json::{Value, json};
use std::process::Command;
use std::time::{Duration, Instant};

/// Waits until a write through `via` is acknowledged (the cluster may still be
/// electing, or a restarted node still catching up).
fn put_until(c: &Cluster, via: u64, key: &str, value: Value) {
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        match put_answer(c, via, key, value.clone()) {
            Ok(()) => return,
            Err(e) if Instant::now() > end => panic!("{e}\n{}", c.logs()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Reads `key` through every running node and checks it holds `want`.
fn read_everywhere(c: &Cluster, ids: &[u64], key: &str, want: &Value) {
    for &id in ids {
        let got = get_eventually(c, id, key);
        assert_eq!(got.as_ref(), Some(want), "{key} via n{id}\n{}", c.logs());
    }
}

fn serves_survives_and_keeps_its_engine(engine: &str) {
    let mut c = Cluster::start_with(3, &["--consensus", engine]);
    let all = [1, 2, 3];
    // A write through each node; each is read back (linearizably) through all.
    for id in all {
        let key = format!("k{id}");
        put_until(&c, id, &key, json!(id * 10));
        read_everywhere(&c, &all, &key, &json!(id * 10));
    }
    // Status and metrics name the engine.
    for id in all {
        let s = c.status(id).expect("status");
        assert_eq!(s["consensus"], engine, "{s}");
        let info = format!("node_info{{consensus=\"{engine}\"}}");
        assert_eq!(metric(&c, id, &info), Some(1), "n{id}");
        // The engine's counters reach /metrics on the node's next tick.
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            let decided = metric(&c, id, "node_paxos_decided_total").unwrap_or(0);
            if decided >= 3 {
                break;
            }
            assert!(
                Instant::now() < end,
                "n{id} decided {decided}\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(metric(&c, id, "node_paxos_duels_total").is_some());
    }
    // Membership is static: 501 with a JSON error, through any node.
    let (code, body) = http(
        c.port(1),
        "POST",
        "/admin/membership",
        Some(r#"{"voters":[1,2]}"#),
    )
    .expect("answer");
    assert_eq!(code, 501, "{body}");
    let err: Value = serde_json::from_str(&body).expect("JSON error");
    assert!(
        err.to_string().contains(&format!("static under {engine}")),
        "{body}"
    );

    // SIGKILL one node; the other two keep taking writes; it comes back with them.
    c.kill(2);
    for i in 0..20 {
        let via = if i % 2 == 0 { 1 } else { 3 };
        put_until(&c, via, &format!("during{i}"), json!(i));
    }
    c.spawn(2);
    for i in 0..20 {
        read_everywhere(&c, &[2], &format!("during{i}"), &json!(i));
    }
    put_until(&c, 2, "after", json!("restart"));

    // SIGKILL every node at once: every acknowledged write survives on disk.
    for id in all {
        c.kill(id);
    }
    for id in all {
        c.spawn(id);
    }
    for id in all {
        read_everywhere(&c, &all, &format!("k{id}"), &json!(id * 10));
    }
    for i in 0..20 {
        read_everywhere(&c, &[1, 3], &format!("during{i}"), &json!(i));
    }
    read_everywhere(&c, &all, "after", &json!("restart"));

    // Another engine on this data directory is refused, naming both, before it
    // serves anything; the node keeps its state for the right engine.
    c.kill(3);
    let other = if engine == "raft" {
        "multi-paxos"
    } else {
        "raft"
    };
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["--id", "3", "--listen", "127.0.0.1:0"])
        .args(["--peers", &c.peers()])
        .arg("--data-dir")
        .arg(c.data_dir(3))
        .args(["--consensus", other])
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(engine) && stderr.contains(&format!("--consensus {other}")),
        "{stderr}"
    );
    c.spawn(3);
    read_everywhere(&c, &[3], "after", &json!("restart"));
}

#[test]
fn multi_paxos_serves_through_every_node_and_survives_sigkill() {
    serves_survives_and_keeps_its_engine("multi-paxos");
}

#[test]
fn basic_paxos_serves_through_every_node_and_survives_sigkill() {
    serves_survives_and_keeps_its_engine("basic-paxos");
}

#[test]
fn a_raft_data_directory_refuses_a_paxos_engine() {
    let mut c = Cluster::start(1);
    put_until(&c, 1, "x", json!(1));
    c.kill(1);
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["--id", "1", "--listen", "127.0.0.1:0"])
        .args(["--peers", &c.peers()])
        .arg("--data-dir")
        .arg(c.data_dir(1))
        .args(["--consensus", "basic-paxos"])
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("holds raft state") && stderr.contains("basic-paxos"),
        "{stderr}"
    );
}

/// A node that was down while the others compacted past what it holds catches up
/// from a peer's snapshot: its own state (read with `?stale=true`) gets every write.
fn a_lagging_node_catches_up_from_a_snapshot(engine: &str) {
    let mut c = Cluster::start_with(3, &["--consensus", engine, "--snapshot-every", "20"]);
    put_until(&c, 1, "first", json!(0));
    c.kill(3);
    for i in 0..80 {
        let via = if i % 2 == 0 { 1 } else { 2 };
        put_until(&c, via, &format!("k{i}"), json!(i));
    }
    let snap = |id| c.status(id).and_then(|s| s["snapshot_index"].as_u64());
    assert!(
        snap(1).unwrap_or(0) >= 40,
        "n1 compacted: {:?}",
        c.status(1)
    );
    c.spawn(3);
    let end = Instant::now() + Duration::from_secs(30);
    let local = |key: &str| {
        let (code, body) = http(c.port(3), "GET", &format!("/kv/{key}?stale=true"), None).ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (code == 200).then(|| v["value"].clone())
    };
    while local("k79") != Some(json!(79)) {
        assert!(Instant::now() < end, "n3 never caught up\n{}", c.logs());
        std::thread::sleep(Duration::from_millis(100));
        // Keep the others talking, so n3 hears how far they are.
        let _ = put_answer(&c, 1, "tick", json!(1));
    }
    for i in 0..80 {
        assert_eq!(local(&format!("k{i}")), Some(json!(i)), "k{i} at n3");
    }
    assert!(
        metric(&c, 3, "node_paxos_snapshots_installed_total").unwrap_or(0) >= 1,
        "n3 caught up without a snapshot\n{}",
        c.logs()
    );
}

#[test]
fn multi_paxos_lagging_node_catches_up_from_a_snapshot() {
    a_lagging_node_catches_up_from_a_snapshot("multi-paxos");
}

#[test]
fn basic_paxos_lagging_node_catches_up_from_a_snapshot() {
    a_lagging_node_catches_up_from_a_snapshot("basic-paxos");
}
