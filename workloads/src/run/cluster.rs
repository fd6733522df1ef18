//! The local cluster: one process per member on its own data directory, a TCP proxy
//! on every directed member-to-member link, and the signals the nemesis sends.
//! What a member runs and how its peers find it come from its target
//! ([`super::target`]); kill, pause and restart are the same for every target.
//!
//! Members whose target gives each one a per-peer address map (our node) listen on
//! free loopback ports, and member `i` is told that `j` is at the proxy `i -> j`.
//! Members that advertise one peer address to everyone (etcd) each run in a network
//! namespace of their own ([`super::host`]) at `127.0.0.(10+i)`: in `i`'s namespace,
//! `j`'s address is the proxy `i -> j`, which dials into `j`'s namespace.
//!
//! [`Cluster`] owns the child processes; its `Drop` SIGKILLs and reaps every one of
//! them, so a normal return, an error, ctrl-c (which ends the runtime normally) and a
//! panic all leave no process behind.

use super::host::Host;
use super::http::Routes;
use super::proxy::Proxy;
use super::target::{self, MemberVars, Peers, TargetSpec};
use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use node::server::listen::ReservedPort;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// What a member process is doing, as far as the runner made it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Running,
    Paused,
    Killed,
}

struct NodeProc {
    id: u64,
    client: SocketAddr,
    peer: SocketAddr,
    host: Arc<Host>,
    data_dir: PathBuf,
    log: PathBuf,
    /// `{initial_cluster}` as this member sees it.
    initial_cluster: String,
    /// `{cluster_state}`: `new`, or `existing` once the member was added back.
    cluster_state: &'static str,
    /// The client port the runner holds for the member (targets that inherit their
    /// listener): each start gets a fresh listener on it.
    reserved: Option<Arc<ReservedPort>>,
    child: Option<Child>,
    state: NodeState,
}

/// Everything needed to start the cluster.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub nodes: usize,
    pub target: TargetSpec,
    /// Holds `n<i>/` data directories.
    pub data_root: PathBuf,
    /// Holds `n<i>.log`.
    pub log_dir: PathBuf,
}

pub struct Cluster {
    spec: ClusterSpec,
    nodes: Mutex<Vec<NodeProc>>,
    /// (from, to) -> the proxy `from` dials to reach `to`.
    proxies: BTreeMap<(u64, u64), Proxy>,
    /// `setpriv`, for members that do not end themselves when the runner dies.
    setpriv: Option<PathBuf>,
}

/// Finds a free loopback port by binding port 0 and letting it go, for members that
/// bind their addresses themselves. Another process could take it before the member
/// binds; the member then fails to start and the runner reports a setup error.
/// Members that inherit their listener ([`TargetSpec::inherits_listener`]) have no
/// such window: the runner holds their port ([`ReservedPort`]).
fn free_port() -> std::io::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    l.local_addr()
}

/// The client and peer ports of a member in a namespace of its own.
const NS_CLIENT_PORT: u16 = 2379;
const NS_PEER_PORT: u16 = 2380;

/// Member `id`'s address in its own namespace: `127.0.0.(10+id)`.
fn namespace_ip(id: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 10 + id as u8))
}

impl Cluster {
    /// Starts the hosts, the proxies and every member. Member ids are 1..=n.
    pub async fn start(spec: ClusterSpec) -> anyhow::Result<Cluster> {
        if spec.nodes == 0 || spec.nodes > 200 {
            bail!("--nodes must be between 1 and 200");
        }
        spec.target
            .validate()
            .map_err(|e| anyhow::anyhow!("target {}: {e}", spec.target.name))?;
        std::fs::create_dir_all(&spec.log_dir)
            .with_context(|| format!("creating {}", spec.log_dir.display()))?;
        let ids: Vec<u64> = (1..=spec.nodes as u64).collect();
        let isolated = spec.target.peers == Peers::Advertised;
        let mut hosts = BTreeMap::new();
        let mut clients = BTreeMap::new();
        let mut peers = BTreeMap::new();
        let mut reserved = BTreeMap::new();
        for &id in &ids {
            hosts.insert(id, Arc::new(Host::start(&format!("n{id}"), isolated)?));
            let (client, peer) = if isolated {
                let ip = namespace_ip(id);
                let peer_port = if spec.target.shared_address {
                    NS_CLIENT_PORT
                } else {
                    NS_PEER_PORT
                };
                (
                    SocketAddr::new(ip, NS_CLIENT_PORT),
                    SocketAddr::new(ip, peer_port),
                )
            } else {
                let client = if spec.target.inherits_listener {
                    let port = ReservedPort::loopback().context("reserving a loopback port")?;
                    let addr = port.addr();
                    reserved.insert(id, Arc::new(port));
                    addr
                } else {
                    free_port().context("finding a free loopback port")?
                };
                let peer = if spec.target.shared_address {
                    client
                } else {
                    free_port().context("finding a free loopback port")?
                };
                (client, peer)
            };
            clients.insert(id, client);
            peers.insert(id, peer);
        }
        let mut proxies = BTreeMap::new();
        for &from in &ids {
            for &to in &ids {
                if from == to {
                    continue;
                }
                let p = if isolated {
                    let listener = hosts[&from].listen(peers[&to]).with_context(|| {
                        format!("listening for n{from} -> n{to} in n{from}'s namespace")
                    })?;
                    Proxy::start_on(listener, peers[&to], Some(hosts[&to].clone()))
                } else {
                    Proxy::start(peers[&to]).await
                }
                .context("starting a link proxy")?;
                proxies.insert((from, to), p);
            }
        }
        let mut nodes = Vec::new();
        for &id in &ids {
            let entries: Vec<(u64, String)> = ids
                .iter()
                .map(|&j| {
                    let a = if j == id || isolated {
                        peers[&j]
                    } else {
                        proxies[&(id, j)].listen_addr()
                    };
                    (j, a.to_string())
                })
                .collect();
            let data_dir = spec.data_root.join(format!("n{id}"));
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            nodes.push(NodeProc {
                id,
                client: clients[&id],
                peer: peers[&id],
                host: hosts[&id].clone(),
                data_dir,
                log: spec.log_dir.join(format!("n{id}.log")),
                initial_cluster: spec.target.initial_cluster(&entries),
                cluster_state: "new",
                reserved: reserved.get(&id).cloned(),
                child: None,
                state: NodeState::Killed,
            });
        }
        let setpriv = if spec.target.exits_with_parent {
            None
        } else {
            let s = target::on_path("setpriv");
            if s.is_none() {
                eprintln!(
                    "workloads: warning: setpriv (util-linux) not found: if workloads is killed outright, {} members outlive it",
                    spec.target.name
                );
            }
            s
        };
        let cluster = Cluster {
            spec,
            nodes: Mutex::new(nodes),
            proxies,
            setpriv,
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

    /// Client address of every member.
    pub fn addrs(&self) -> BTreeMap<u64, SocketAddr> {
        self.lock().iter().map(|n| (n.id, n.client)).collect()
    }

    /// Peer address of every member (what its peers dial, before the proxies).
    pub fn peer_addrs(&self) -> BTreeMap<u64, SocketAddr> {
        self.lock().iter().map(|n| (n.id, n.peer)).collect()
    }

    /// The client addresses that live in a member's own network namespace, for the
    /// HTTP client's connector.
    pub fn client_routes(&self) -> Routes {
        self.lock()
            .iter()
            .filter(|n| n.host.isolated())
            .map(|n| (n.client, n.host.clone()))
            .collect()
    }

    /// The host member `id` runs on (its network namespace, when it has one).
    pub fn host(&self, id: u64) -> Option<Arc<Host>> {
        self.lock()
            .iter()
            .find(|n| n.id == id)
            .map(|n| n.host.clone())
    }

    pub fn target(&self) -> &TargetSpec {
        &self.spec.target
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

    /// Starts (or starts again, on the same data directory) member `id`, from its
    /// host. Its output is appended to its log, so one log tells the whole story
    /// across restarts.
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
        let argv = self.spec.target.argv(&MemberVars {
            id,
            data_dir: n.data_dir.display().to_string(),
            client_addr: n.client.to_string(),
            peer_addr: n.peer.to_string(),
            initial_cluster: n.initial_cluster.clone(),
            cluster_state: n.cluster_state,
        });
        let mut cmd = match &self.setpriv {
            Some(setpriv) => {
                let mut c = Command::new(setpriv);
                c.args(["--pdeathsig", "KILL", "--"]).args(&argv);
                c
            }
            None => {
                let mut c = Command::new(&argv[0]);
                c.args(&argv[1..]);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2));
        if let Some(port) = &n.reserved {
            port.pass_to(&mut cmd)
                .with_context(|| format!("handing n{id} its listener"))?;
        }
        let child = n
            .host
            .spawn(cmd)
            .with_context(|| format!("starting {}", argv[0]))?;
        n.child = Some(child);
        n.state = NodeState::Running;
        Ok(())
    }

    /// Deletes member `id`'s data directory and leaves it empty, so its next start
    /// begins with no state. The member must be killed first.
    pub fn delete_data(&self, id: u64) -> anyhow::Result<()> {
        let nodes = self.lock();
        let Some(n) = nodes.iter().find(|n| n.id == id) else {
            bail!("no node {id}");
        };
        if n.state != NodeState::Killed {
            bail!("n{id} is running: kill it before deleting its data");
        }
        if n.data_dir.exists() {
            std::fs::remove_dir_all(&n.data_dir)
                .with_context(|| format!("deleting {}", n.data_dir.display()))?;
        }
        std::fs::create_dir_all(&n.data_dir)
            .with_context(|| format!("creating {}", n.data_dir.display()))?;
        Ok(())
    }

    /// From now on member `id` starts as one added to a running cluster
    /// (`{cluster_state}` = `existing`).
    pub fn mark_joining(&self, id: u64) {
        if let Some(n) = self.lock().iter_mut().find(|n| n.id == id) {
            n.cluster_state = "existing";
        }
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
        self.delete_data(id)
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

    /// Whether the link `from -> to` is cut now.
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.proxies.get(&(from, to)).is_some_and(Proxy::is_cut)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}
