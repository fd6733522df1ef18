//! Finding the `node` binary: `--node-bin`, else beside our own executable, else built
//! with cargo in the same profile (a bare `cargo run -p workloads` builds only our
//! crate, not node's binary).

use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const NODE_EXE: &str = if cfg!(windows) { "node.exe" } else { "node" };

/// Returns the binary to start, building it when needed (and saying so on stderr).
pub fn find_node_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        bail!("--node-bin {}: no such file", p.display());
    }
    let exe = std::env::current_exe().context("locating the workloads executable")?;
    let mut dir = exe
        .parent()
        .context("the workloads executable has no parent directory")?
        .to_path_buf();
    // Test binaries live in target/<profile>/deps.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let beside = dir.join(NODE_EXE);
    if beside.is_file() {
        return Ok(beside);
    }
    build_node(&dir)?;
    if beside.is_file() {
        return Ok(beside);
    }
    bail!(
        "built node, but {} still does not exist; pass --node-bin",
        beside.display()
    )
}

/// Builds `node` into the target directory `profile_dir` (…/target/<profile>).
fn build_node(profile_dir: &Path) -> anyhow::Result<()> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workloads crate has no parent directory")?;
    let manifest = workspace.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "no node binary beside the workloads executable and no workspace at {} to build it; pass --node-bin",
            workspace.display()
        );
    }
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("debug")
        .to_string();
    let target_dir = profile_dir
        .parent()
        .context("the executable is not inside a target directory")?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("-p")
        .arg("node")
        .arg("--bin")
        .arg("node")
        .arg("--target-dir")
        .arg(target_dir);
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.arg("--profile").arg(other);
        }
    }
    eprintln!(
        "workloads: no node binary in {}; building it: cargo build -p node ({profile} profile)",
        profile_dir.display()
    );
    let status = cmd
        .status()
        .with_context(|| format!("running {}", Path::new(&cargo).display()))?;
    if !status.success() {
        bail!("cargo build -p node failed ({status})");
    }
    Ok(())
}
