//! etcd as a target, with a real etcd: every member in a network namespace of its
//! own, the runner's proxies on every directed link. Needs `etcd` on PATH and root
//! (for the namespaces); without them each test says SKIPPED and why, and fails
//! instead when WORKLOADS_REQUIRE_ETCD=1 (CI, whose ci/setup.sh installs etcd).

mod common;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use workloads::ops::Op;
use workloads::reply::Completion;
use workloads::run::api::Api;
use workloads::run::cluster::{Cluster, ClusterSpec};
use workloads::run::host::Host;
use workloads::run::http::{self, HttpClient};
use workloads::run::nemesis::{Grudge, grudge_links};
use workloads::run::status;
use workloads::run::target::{self, Protocol};

/// What a peer request from `host`'s namespace to `addr` got (`GET /version` on the
/// peer port, the path the proxies carry): etcd's answer, or why not. The answer is
/// complete at the end of its JSON body (etcd may keep the connection open a while).
async fn peer_version(host: &Host, addr: SocketAddr) -> Result<String, String> {
    let attempt = async {
        let mut s = host
            .connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(b"GET /version HTTP/1.0\r\n\r\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        loop {
            let text = String::from_utf8_lossy(&buf).to_string();
            if text.contains("\"etcdserver\"") && text.trim_end().ends_with('}') {
                return Ok(text);
            }
            match s.read(&mut chunk).await {
                Ok(0) => return Err(format!("closed after {text:?}")),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => return Err(format!("read: {e} after {text:?}")),
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(3), attempt).await {
        Ok(r) => r,
        Err(_) => Err("timeout".into()),
    }
}

/// Whether `addr` answers from `host`'s namespace, allowing a slow machine three tries.
async fn reachable(host: &Host, addr: SocketAddr) -> Result<(), Vec<String>> {
    let mut errors = Vec::new();
    for _ in 0..3 {
        match peer_version(host, addr).await {
            Ok(_) => return Ok(()),
            Err(e) => errors.push(e),
        }
    }
    Err(errors)
}

async fn execute(http: &HttpClient, api: &Api, addr: SocketAddr, op: Op) -> Completion {
    let input = match &op {
        Op::Write { value, .. } => json!(value),
        _ => Value::Null,
    };
    api.execute(http, addr, &op, &input, &[], Duration::from_secs(2))
        .await
}

#[test]
fn grudges_cut_exactly_the_links_they_name() {
    let _serial = common::serial();
    let Some(etcd) = common::etcd_or_skip("grudges_cut_exactly_the_links_they_name") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let tmp = tempfile::tempdir().expect("tmp");
        let cluster = Cluster::start(ClusterSpec {
            nodes: 5,
            target: target::etcd(&etcd),
            data_root: tmp.path().join("data"),
            log_dir: tmp.path().join("logs"),
        })
        .await
        .expect("cluster");
        let http = http::client_with_routes(cluster.client_routes());
        // Serializable reads show what one member holds.
        let api = Api::new(Protocol::Etcd, true, &cluster.peer_addrs());
        let addrs = cluster.addrs();
        let peers = cluster.peer_addrs();
        let ids = cluster.ids();
        let leader = status::wait_for_leader(&http, &api, &addrs, Duration::from_secs(30))
            .await
            .expect("a leader");

        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for grudge in [
            Grudge::IsolateLeader,
            Grudge::IsolateOne,
            Grudge::RandomHalves,
            Grudge::MajoritiesRing,
            Grudge::Bridge,
        ] {
            let cuts = grudge_links(grudge, &ids, Some(leader), &mut rng);
            for &(a, b) in &cuts {
                cluster.cut(a, b);
            }
            for &a in &ids {
                let host = cluster.host(a).expect("host");
                for &b in &ids {
                    if a != b {
                        let r = reachable(&host, peers[&b]).await;
                        assert_eq!(
                            r.is_ok(),
                            !cuts.contains(&(a, b)),
                            "{grudge:?} cuts {cuts:?}: link n{a} -> n{b}: {r:?}"
                        );
                    }
                }
            }
            cluster.heal_links();
        }
        for &a in &ids {
            let host = cluster.host(a).expect("host");
            for &b in &ids {
                if a != b {
                    let r = reachable(&host, peers[&b]).await;
                    assert!(r.is_ok(), "healed n{a} -> n{b}: {r:?}");
                }
            }
        }

        // etcd itself sees the cut: an isolated follower misses a write the others
        // commit, and catches up once healed.
        let leader = status::wait_for_leader(&http, &api, &addrs, Duration::from_secs(30))
            .await
            .expect("a leader");
        let victim = *ids.iter().find(|&&i| i != leader).expect("a follower");
        for &other in &ids {
            if other != victim {
                cluster.cut(victim, other);
                cluster.cut(other, victim);
            }
        }
        let write = execute(&http, &api, addrs[&leader], Op::Write { key: 0, value: 42 }).await;
        assert_eq!(write.kind, checker::history::EventType::Ok, "{write:?}");
        let stale = execute(&http, &api, addrs[&victim], Op::Read { key: 0 }).await;
        assert_eq!(stale.kind, checker::history::EventType::Ok, "{stale:?}");
        assert_ne!(stale.value, json!(42), "the isolated member saw the write");
        cluster.heal_links();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let read = execute(&http, &api, addrs[&victim], Op::Read { key: 0 }).await;
            if read.value == json!(42) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "n{victim} never caught up: {read:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cluster.shutdown();
    });
}

#[test]
fn an_etcd_run_under_partitions_kills_and_pauses_is_linearizable() {
    let _serial = common::serial();
    if common::etcd_or_skip("an_etcd_run_under_partitions_kills_and_pauses_is_linearizable")
        .is_none()
    {
        return;
    }
    let run = common::run_any(&[
        "--target",
        "etcd",
        "--nemesis",
        "partition,kill,pause",
        "--time-limit",
        "12",
        "--nemesis-interval",
        "2",
        "--seed",
        "3",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let run_json = run.run_json();
    assert_eq!(run_json["target"], "etcd");
    assert_eq!(run_json["config"]["protocol"], "etcd");
    assert_eq!(run_json["valid"], true);
    let ok = run.history().iter().filter(|v| v["type"] == "ok").count();
    assert!(ok >= 300, "only {ok} ok operations:\n{}", run.stderr);
    assert!(
        run_json["faults"].as_array().is_some_and(|f| f.len() >= 2),
        "{}",
        run_json["faults"]
    );
    let (code, out) = common::checker_check(&run.dir.join("history.edn"));
    assert_eq!(code, Some(0), "checker check history.edn:\n{out}");
}

#[test]
fn serializable_reads_under_partitions_show_a_stale_read() {
    let _serial = common::serial();
    if common::etcd_or_skip("serializable_reads_under_partitions_show_a_stale_read").is_none() {
        return;
    }
    let mut codes = Vec::new();
    for seed in 1..=3 {
        let seed = seed.to_string();
        let run = common::run_any(&[
            "--target",
            "etcd",
            "--etcd-serializable-reads",
            "--nemesis",
            "partition",
            "--time-limit",
            "15",
            "--nemesis-interval",
            "3",
            "--seed",
            &seed,
        ]);
        codes.push(run.code);
        if run.code == Some(1) {
            let run_json = run.run_json();
            assert_eq!(run_json["valid"], false);
            assert_eq!(run_json["config"]["serializable_reads"], true);
            // Jepsen's format reads back to the same verdict.
            let (code, out) = common::checker_check(&run.dir.join("history.edn"));
            assert_eq!(code, Some(1), "checker check history.edn:\n{out}");
            let (code, _) = common::checker_check(&run.dir.join("history.jsonl"));
            assert_eq!(code, Some(1));
            return;
        }
        assert_eq!(run.code, Some(0), "{}", run.stderr);
    }
    panic!("no stale read in 3 seeds (exit codes {codes:?})");
}

#[test]
fn etcd_members_are_removed_and_added_back_through_its_api() {
    let _serial = common::serial();
    if common::etcd_or_skip("etcd_members_are_removed_and_added_back_through_its_api").is_none() {
        return;
    }
    let run = common::run_any(&[
        "--target",
        "etcd",
        "--nemesis",
        "membership",
        "--time-limit",
        "12",
        "--nemesis-interval",
        "3",
        "--seed",
        "2",
    ]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let mut removed = 0;
    let mut ends = 0;
    let mut healed = None;
    for v in run.history() {
        match v["f"].as_str() {
            Some("membership-end") => {
                ends += 1;
                if v["value"]["removal"] == "removed" {
                    removed += 1;
                    assert_eq!(v["value"]["voters"], json!([1, 2, 3, 4, 5]), "{v}");
                }
            }
            Some("membership-heal") => healed = Some(v["value"]["whole"].clone()),
            _ => {}
        }
    }
    assert!(
        ends >= 1 && removed >= 1,
        "{ends} faults, {removed} removals:\n{}",
        run.stderr
    );
    assert_eq!(healed, Some(json!(true)), "{}", run.stderr);
    // A member added back starts afresh, joining the running cluster.
    let logs: String = (1..=5)
        .map(|i| {
            std::fs::read_to_string(run.dir.join(format!("nodes/n{i}.log"))).unwrap_or_default()
        })
        .collect();
    assert!(
        logs.contains("\"initial-cluster-state\":\"existing\""),
        "no member rejoined"
    );
}

/// A runner killed outright cannot tear its cluster down; etcd members were started
/// through `setpriv --pdeathsig KILL`, so the kernel ends them.
#[test]
fn etcd_members_of_a_killed_runner_end() {
    let _serial = common::serial();
    if common::etcd_or_skip("etcd_members_of_a_killed_runner_end").is_none() {
        return;
    }
    let (mut runner, _results) = common::spawn_runner(&[
        "--target",
        "etcd",
        "--time-limit",
        "60",
        "--nemesis",
        "none",
    ]);
    // The runner's children that are etcd (setpriv execs it, keeping the pid).
    let children = |pid: u32| -> Vec<u32> {
        let out = Command::new("pgrep")
            .args(["-P", &pid.to_string(), "-x", "etcd"])
            .output()
            .expect("pgrep");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let end = Instant::now() + Duration::from_secs(30);
    let members = loop {
        let c = children(runner.id());
        if c.len() == 5 {
            break c;
        }
        assert!(Instant::now() < end, "the cluster never came up");
        std::thread::sleep(Duration::from_millis(100));
    };
    runner.kill().expect("SIGKILL the runner");
    runner.wait().expect("reap the runner");
    let alive = |pid: &u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    };
    let end = Instant::now() + Duration::from_secs(10);
    while members.iter().any(alive) {
        assert!(
            Instant::now() < end,
            "etcd members outlived their runner by 10 s: {:?}",
            members.iter().filter(|p| alive(p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Without etcd the run is a setup error (exit 3) that says how to install it.
#[test]
fn a_missing_etcd_exits_3_with_advice() {
    let empty = tempfile::tempdir().expect("tmp");
    let out = Command::new(env!("CARGO_BIN_EXE_workloads"))
        .args(["run", "--target", "etcd", "--time-limit", "1", "--results"])
        .arg(empty.path().join("results"))
        .env("PATH", empty.path())
        .output()
        .expect("run workloads");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("etcd is not on PATH"), "{stderr}");
    assert!(
        stderr.contains("apt-get install -y etcd-server"),
        "{stderr}"
    );
    assert!(stderr.contains("release tarball"), "{stderr}");
}
