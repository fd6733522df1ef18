//! Hosts: one long-lived thread per cluster member, from which the member's process is
//! started and from which the sockets that reach it are made.
//!
//! A host may own a network namespace of its own (Linux `unshare(CLONE_NEWNET)` on
//! its thread, then `ip link set lo up` there). A process started from that thread,
//! and a socket made on it, live in that namespace; nothing else does. Members of a
//! store that advertises one peer address to every other member (etcd) each get such
//! a host, so the same address can lead, in each member's namespace, to a proxy of
//! the runner's for that one directed link.
//!
//! The namespace needs no clean-up: it ends with the last process and socket in it,
//! so a runner killed outright leaves none behind. Processes started from a host's
//! thread may ask the kernel to kill them when that thread ends (`setpriv
//! --pdeathsig`), which is why the thread lives exactly as long as the cluster.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc;
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send>;

/// One member's host thread (see the module documentation).
#[derive(Debug)]
pub struct Host {
    name: String,
    isolated: bool,
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Host {
    /// Starts a host thread; with `isolated`, in a network namespace of its own whose
    /// loopback interface is up. Fails with the reason (not root, no `ip` command, ...)
    /// when the namespace cannot be made.
    pub fn start(name: &str, isolated: bool) -> anyhow::Result<Host> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let thread = std::thread::Builder::new()
            .name(format!("host-{name}"))
            .spawn(move || {
                if isolated && let Err(e) = enter_new_network_namespace() {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                while let Ok(job) = rx.recv() {
                    job();
                }
            })
            .context("starting a host thread")?;
        match ready_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = thread.join();
                bail!("{e}");
            }
            Err(_) => bail!("the host thread of {name} ended while starting"),
        }
        Ok(Host {
            name: name.to_string(),
            isolated,
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Whether this host has a network namespace of its own.
    pub fn isolated(&self) -> bool {
        self.isolated
    }

    fn send(&self, job: Job) -> std::io::Result<()> {
        let gone = || std::io::Error::other(format!("the host thread of {} is gone", self.name));
        self.jobs
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())
    }

    /// Runs `f` on the host's thread (in its namespace) and waits for the result.
    /// Jobs are short (a fork, a socket call), so a caller on the async runtime may
    /// wait for one in place.
    pub fn run<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.send(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.recv().map_err(|_| {
            std::io::Error::other(format!("the host thread of {} dropped a job", self.name))
        })
    }

    /// [`Host::run`] for async callers: waits without holding a runtime thread.
    pub async fn run_async<R: Send + 'static>(
        &self,
        f: impl FnOnce() -> R + Send + 'static,
    ) -> std::io::Result<R> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Box::new(move || {
            let _ = tx.send(f());
        }))?;
        rx.await.map_err(|_| {
            std::io::Error::other(format!("the host thread of {} dropped a job", self.name))
        })
    }

    /// A TCP connection to `addr` as seen from this host's namespace.
    pub async fn connect(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
        let socket = self
            .run_async(move || {
                if addr.is_ipv4() {
                    tokio::net::TcpSocket::new_v4()
                } else {
                    tokio::net::TcpSocket::new_v6()
                }
            })
            .await??;
        let stream = socket.connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// A listening socket bound to `addr` in this host's namespace.
    pub fn listen(&self, addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
        let l = self.run(move || {
            let l = std::net::TcpListener::bind(addr)?;
            l.set_nonblocking(true)?;
            Ok::<_, std::io::Error>(l)
        })??;
        tokio::net::TcpListener::from_std(l)
    }

    /// Starts `cmd` from this host's thread, so the process lives in its namespace.
    pub fn spawn(&self, mut cmd: Command) -> std::io::Result<std::process::Child> {
        self.run(move || cmd.spawn())?
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Moves the calling thread into a new network namespace and brings its loopback up.
fn enter_new_network_namespace() -> Result<(), String> {
    use nix::sched::{CloneFlags, unshare};
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| {
        format!(
            "cannot create a network namespace ({e}); members that advertise one peer \
             address need one each so that partitions can cut single links: run as root \
             (or with CAP_SYS_ADMIN)"
        )
    })?;
    let out = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .output()
        .map_err(|e| {
            format!("cannot run `ip link set lo up` ({e}); install iproute2 (Debian: apt-get install iproute2)")
        })?;
    if !out.status.success() {
        return Err(format!(
            "`ip link set lo up` failed in a new network namespace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this process may make network namespaces (root, as in CI).
    fn namespaces_allowed() -> bool {
        Host::start("probe", true).is_ok()
    }

    #[tokio::test]
    async fn an_isolated_host_has_its_own_loopback() {
        if !namespaces_allowed() {
            eprintln!("SKIPPED: network namespaces need root (or CAP_SYS_ADMIN)");
            return;
        }
        let a = Host::start("a", true).expect("host a");
        let b = Host::start("b", true).expect("host b");
        let addr: SocketAddr = "127.0.0.11:2380".parse().expect("addr");
        let la = a.listen(addr).expect("listen in a");
        // The same address is free in the other namespace: they are separate.
        let lb = b.listen(addr).expect("listen in b");
        let accept = tokio::spawn(async move { la.accept().await.map(|(_, p)| p) });
        let s = a.connect(addr).await.expect("connect inside a");
        let peer = accept.await.expect("join").expect("accept in a");
        assert_eq!(s.local_addr().expect("local"), peer);
        drop(lb);
        // Nothing listens there any more in b, and a's listener is not visible from b.
        assert!(b.connect(addr).await.is_err());
    }

    #[test]
    fn a_plain_host_runs_jobs_on_its_thread() {
        let h = Host::start("plain", false).expect("host");
        let name = h
            .run(|| std::thread::current().name().map(str::to_string))
            .expect("run");
        assert_eq!(name.as_deref(), Some("host-plain"));
        assert!(!h.isolated());
    }
}
