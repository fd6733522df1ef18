//! Shared by the real-run tests: the node binary, and the node processes still alive.
//!
//! Tests that count node processes must not overlap with other tests that start nodes
//! from the same binary: `.config/nextest.toml` puts them in one serial test group.

use std::path::{Path, PathBuf};
use std::process::Command;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The node binary of this profile: target/<profile>/node beside our binary, built
/// through the workspace when missing (cargo skips the work when it is up to date).
pub fn node_binary() -> PathBuf {
    let workloads = Path::new(env!("CARGO_BIN_EXE_workloads"));
    let dir = workloads
        .parent()
        .expect("the workloads binary has a folder");
    let node = dir.join("node");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace_root())
        .args(["build", "-p", "node", "--bin", "node", "--target-dir"])
        .arg(
            dir.parent()
                .expect("the profile folder has a target folder"),
        );
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo to build node");
    assert!(status.success(), "cargo build -p node failed ({status})");
    assert!(node.is_file(), "no node binary at {}", node.display());
    node
}

/// How many processes run this exact node binary.
pub fn nodes_running(node: &Path) -> usize {
    let out = Command::new("pgrep")
        .arg("-f")
        .arg(node.as_os_str())
        .output()
        .expect("running pgrep");
    String::from_utf8_lossy(&out.stdout).lines().count()
}
