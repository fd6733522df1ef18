//! The local cluster: `node` processes on free loopback ports, one TCP proxy per
//! directed link between them, and the signals the nemesis sends.
//!
//! [`Cluster`] owns the child processes; its `Drop` SIGKILLs and reaps every one of
//! them, so a normal return, an error, ctrl-c (which ends the runtime normally) and a
//! panic all leave no process behind.

use super::proxy::Proxy;
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

/// What a node process is doing, as far as the runner made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    Killed,
}

struct NodeProc {
    id: u64,
    addr: SocketAddr,
    data_dir: PathBuf,
    log: PathBuf,
    peers_arg: String,
    child: Option<Child>,
    state: NodeState,
}

/// Everything needed to start the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub nodes: usize,
    pub node_bin: PathBuf,
    /// Holds `n<i>/` data directories.
    pub data_root: PathBuf,
    /// Holds `n<i>.log`.
    pub log_dir: PathBuf,
    /// `node --snapshot-every`.
    pub snapshot_every: u64,
    pub unsafe_mutant: Option<String>,
}

pub struct Cluster {
    spec: ClusterSpec,
    nodes: Mutex<Vec<NodeProc>>,
    /// (from, to) -> the proxy `from` dials to reach `to`.
    proxies: BTreeMap<(u64, u64), Proxy>,
}

/// Finds a free loopback port by binding port 0 and letting it go. Another process
/// could take it before the node binds; the node then fails to start and the runner
/// reports a setup error.
fn free_port() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

impl Cluster {
    /// Starts the proxies and every node. Node ids are 1..=n.
    pub async fn start(spec: ClusterSpec) -> anyhow::Result<Cluster> {
        if spec.nodes == 0 {
            bail!("--nodes must be at least 1");
        }
        std::fs::create_dir_all(&spec.log_dir)
            .with_context(|| format!("creating {}", spec.log_dir.display()))?;
        let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
        let mut addrs = BTreeMap::new();
        for &id in &ids {
            addrs.insert(id, free_port().context("finding a free loopback port")?);
        }
        let mut proxies = BTreeMap::new();
        for &from in &ids {
            for &to in &ids {
                if from != to {
                    let p = Proxy::start(addrs[&to])
                        .await
                        .context("starting a link proxy")?;
                    proxies.insert((from, to), p);
                }
            }
        }
        let mut nodes = Vec::new();
        for &id in &ids {
            let peers: Vec<String> = ids
                .iter()
                .map(|&j| {
                    let a = if j == id {
                        addrs[&id]
                    } else {
                        proxies[&(id, j)].listen_addr()
                    };
                    format!("{j}={a}")
                })
                .collect();
            let data_dir = spec.data_root.join(format!("n{id}"));
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            nodes.push(NodeProc {
                id,
                addr: addrs[&id],
                data_dir,
                log: spec.log_dir.join(format!("n{id}.log")),
                peers_arg: peers.join(","),
                child: None,
                state: NodeState::Killed,
            });
        }
        let cluster = Cluster {
            spec,
            nodes: Mutex::new(nodes),
            proxies,
        };
        for &id in &ids {
            cluster.restart(id)?;
        }
        Ok(cluster)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<NodeProc>> {
        match self.nodes.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn ids(&self) -> Vec<u64> {
        self.lock().iter().map(|n| n.id).collect()
    }

    /// Client address of every node.
    pub fn addrs(&self) -> BTreeMap<u64, SocketAddr> {
        self.lock().iter().map(|n| (n.id, n.addr)).collect()
    }

    pub fn state(&self, id: u64) -> Option<NodeState> {
        self.lock().iter().find(|n| n.id == id).map(|n| n.state)
    }

    /// Whether the process died on its own (not by our SIGKILL).
    pub fn crashed(&self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for n in self.lock().iter_mut() {
            if n.state == NodeState::Killed {
                continue;
            }
            if let Some(c) = n.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                out.push((n.id, status.to_string()));
            }
        }
        out
    }

    /// Starts (or starts again, on the same data directory) node `id`. Its output is
    /// appended to its log, so one log tells the whole story across restarts.
    pub fn restart(&self, id: u64) -> anyhow::Result<()> {
        let mut nodes = self.lock();
        let Some(n) = nodes.iter_mut().find(|n| n.id == id) else {
            bail!("no node {id}");
        };
        if n.state != NodeState::Killed {
            return Ok(());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .with_context(|| format!("opening {}", n.log.display()))?;
        let log2 = log.try_clone().context("duplicating a log handle")?;
        let mut cmd = Command::new(&self.spec.node_bin);
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(n.addr.to_string())
            .arg("--peers")
            .arg(&n.peers_arg)
            .arg("--data-dir")
            .arg(&n.data_dir)
            .arg("--exit-with-parent")
            .arg("--snapshot-every")
            .arg(self.spec.snapshot_every.to_string());
        if let Some(m) = &self.spec.unsafe_mutant {
            cmd.arg("--unsafe").arg(m);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", self.spec.node_bin.display()))?;
        n.child = Some(child);
        n.state = NodeState::Running;
        Ok(())
    }

    fn signal(&self, id: u64, sig: Signal) -> anyhow::Result<()> {
        let nodes = self.lock();
        let Some(n) = nodes.iter().find(|n| n.id == id) else {
            bail!("no node {id}");
        };
        if let Some(c) = &n.child {
            let pid = Pid::from_raw(i32::try_from(c.id()).context("pid out of range")?);
            kill(pid, sig).with_context(|| format!("sending {sig} to node {id}"))?;
        }
        Ok(())
    }

    /// SIGKILL, and reap the process so it leaves no zombie.
    pub fn kill(&self, id: u64) -> anyhow::Result<()> {
        let mut nodes = self.lock();
        let Some(n) = nodes.iter_mut().find(|n| n.id == id) else {
            bail!("no node {id}");
        };
        if let Some(mut c) = n.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        n.state = NodeState::Killed;
        Ok(())
    }

    /// A lost disk: SIGKILL node `id` and delete its data directory (left empty);
    /// [`Cluster::restart`] starts it again with the same command line.
    pub fn wipe(&self, id: u64) -> anyhow::Result<()> {
        self.kill(id)?;
        let dir = {
            let nodes = self.lock();
            let Some(n) = nodes.iter().find(|n| n.id == id) else {
                bail!("no node {id}");
            };
            n.data_dir.clone()
        };
        std::fs::remove_dir_all(&dir).with_context(|| format!("deleting {}", dir.display()))?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(())
    }

    pub fn pause(&self, id: u64) -> anyhow::Result<()> {
        if self.state(id) == Some(NodeState::Running) {
            self.signal(id, Signal::SIGSTOP)?;
            self.set_state(id, NodeState::Paused);
        }
        Ok(())
    }

    pub fn resume(&self, id: u64) -> anyhow::Result<()> {
        if self.state(id) == Some(NodeState::Paused) {
            self.signal(id, Signal::SIGCONT)?;
            self.set_state(id, NodeState::Running);
        }
        Ok(())
    }

    fn set_state(&self, id: u64, state: NodeState) {
        if let Some(n) = self.lock().iter_mut().find(|n| n.id == id) {
            n.state = state;
        }
    }

    /// Cuts the directed link `from -> to` (both directions of its connections).
    pub fn cut(&self, from: u64, to: u64) {
        if let Some(p) = self.proxies.get(&(from, to)) {
            p.cut();
        }
    }

    pub fn heal_links(&self) {
        for p in self.proxies.values() {
            p.heal();
        }
    }

    /// Heals every fault: links, paused and killed nodes.
    pub fn heal_all(&self) -> anyhow::Result<()> {
        self.heal_links();
        for id in self.ids() {
            match self.state(id) {
                Some(NodeState::Paused) => self.resume(id)?,
                Some(NodeState::Killed) => self.restart(id)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Kills and reaps every node (idempotent).
    pub fn shutdown(&self) {
        let mut nodes = self.lock();
        for n in nodes.iter_mut() {
            if let Some(mut c) = n.child.take() {
                // SIGKILL ends a stopped process too.
                let _ = c.kill();
                let _ = c.wait();
            }
            n.state = NodeState::Killed;
        }
    }

    pub fn data_root(&self) -> &Path {
        &self.spec.data_root
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
