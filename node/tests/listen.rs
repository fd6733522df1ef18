//! How a node gets its listening socket: bound by its parent and inherited
//! (`--listen-inherited`, what the test harness and `workloads run` use), or bound by
//! the node itself (`--listen ADDR`, for users).

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn wait_status(port: u16) -> bool {
    let end = Instant::now() + Duration::from_secs(30);
    while Instant::now() < end {
        if matches!(http(port, "GET", "/status", None), Ok((200, _))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_killed_member_refuses_connections_keeps_its_port_and_comes_back_there() {
    let mut c = Cluster::start(1);
    let port = c.port(1);
    assert!(wait_status(port), "node did not serve:\n{}", c.logs());
    c.kill(1);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let refused = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
        .expect_err("a dead member's port must not accept connections");
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "another program could take a dead member's port"
    );
    c.spawn(1);
    assert!(
        wait_status(port),
        "restarted node did not serve:\n{}",
        c.logs()
    );
}

#[test]
fn listen_inherited_without_a_socket_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_node"))
        .args([
            "--id",
            "1",
            "--listen-inherited",
            "--peers",
            "1=127.0.0.1:1",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env_remove("LISTEN_FDS")
        .output()
        .expect("run node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--listen-inherited") && stderr.contains("LISTEN_FDS"),
        "{stderr}"
    );
}

#[test]
fn a_node_binds_listen_itself() {
    let dir = tempfile::tempdir().expect("temp dir");
    // Port 0: the node binds a free port and says which in its "serving" line.
    let mut child = Command::new(env!("CARGO_BIN_EXE_node"))
        .args(["--id", "1", "--listen", "127.0.0.1:0"])
        .args(["--peers", "1=127.0.0.1:0"])
        .arg("--data-dir")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let stderr = child.stderr.take().expect("stderr");
    let port = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.split_once("serving addr=")?.1;
            let addr: SocketAddr = rest.split_whitespace().next()?.parse().ok()?;
            Some(addr.port())
        });
    let served = port.is_some_and(wait_status);
    let _ = child.kill();
    let _ = child.wait();
    assert!(port.is_some_and(|p| p != 0), "no serving line");
    assert!(served, "the node did not answer on the port it bound");
}
