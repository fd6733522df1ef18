//! A TCP proxy for one directed node-to-node link. Node `i` reaches node `j` through
//! the proxy `i -> j`, so the runner can cut the link without the nodes knowing.
//! The proxy may listen in one member's network namespace and dial into another's
//! (see [`super::host`]).
//!
//! Cutting drops every open connection at once and closes every new one as soon as it
//! is accepted (the dialer sees a reset/EOF, as with a firewall rule that rejects);
//! healing lets new connections through again.

use super::host::Host;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

/// Open connections per link; a node needs a handful, so more means a leak.
pub const MAX_CONNECTIONS: usize = 256;

/// One running proxy. Dropping it stops the listener and every connection.
#[derive(Debug)]
pub struct Proxy {
    listen: SocketAddr,
    target: SocketAddr,
    /// `true` = cut. Connection tasks watch it and hang up when it turns true.
    cut: watch::Sender<bool>,
    accept_task: JoinHandle<()>,
}

impl Proxy {
    /// Binds a free loopback port and forwards whatever arrives to `target`.
    pub async fn start(target: SocketAddr) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        Proxy::start_on(listener, target, None)
    }

    /// Forwards what arrives on `listener` to `target`, dialing from `dial_from`'s
    /// network namespace (this process's own when `None`).
    pub fn start_on(
        listener: TcpListener,
        target: SocketAddr,
        dial_from: Option<Arc<Host>>,
    ) -> std::io::Result<Proxy> {
        let listen = listener.local_addr()?;
        let (cut, cut_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(listener, target, dial_from, cut_rx));
        Ok(Proxy {
            listen,
            target,
            cut,
            accept_task,
        })
    }

    /// Where the dialing node should connect.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen
    }

    pub fn target_addr(&self) -> SocketAddr {
        self.target
    }

    /// Drops open connections and refuses new ones until [`Proxy::heal`].
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    pub fn heal(&self) {
        self.cut.send_replace(false);
    }

    pub fn is_cut(&self) -> bool {
        *self.cut.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Connection tasks end when they see the sender gone.
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    dial_from: Option<Arc<Host>>,
    cut: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok((inbound, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off instead of spinning.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        };
        if *cut.borrow() {
            drop(inbound);
            continue;
        }
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(inbound);
            continue;
        };
        let mut cut = cut.clone();
        let dial_from = dial_from.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = inbound.set_nodelay(true);
            tokio::select! {
                () = forward(inbound, target, dial_from) => {}
                () = wait_for_cut(&mut cut) => {}
            }
        });
    }
}

async fn forward(mut inbound: TcpStream, target: SocketAddr, dial_from: Option<Arc<Host>>) {
    let outbound = match &dial_from {
        Some(host) => host.connect(target).await,
        None => TcpStream::connect(target).await,
    };
    let Ok(mut outbound) = outbound else {
        return;
    };
    let _ = outbound.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}

/// Returns when the link is cut or the proxy is gone.
async fn wait_for_cut(cut: &mut watch::Receiver<bool>) {
    loop {
        if *cut.borrow_and_update() {
            return;
        }
        if cut.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
        s.write_all(msg).await?;
        let mut buf = vec![0u8; msg.len()];
        s.read_exact(&mut buf).await?;
        Ok(buf)
    }

    #[tokio::test]
    async fn forwards_then_cuts_then_heals() {
        let echo = echo_server().await;
        let proxy = Proxy::start(echo).await.expect("proxy");
        let mut a = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("connect");
        assert_eq!(roundtrip(&mut a, b"hello").await.expect("echo"), b"hello");

        proxy.cut();
        assert!(proxy.is_cut());
        // The open connection is dropped: the next read sees EOF or a reset.
        let mut buf = [0u8; 8];
        let r = a.read(&mut buf).await;
        assert!(
            matches!(r, Ok(0) | Err(_)),
            "open connection survived a cut: {r:?}"
        );
        // New connections are closed before any byte goes through.
        let mut b = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("tcp accept");
        assert!(roundtrip(&mut b, b"x").await.is_err());

        proxy.heal();
        let mut c = TcpStream::connect(proxy.listen_addr())
            .await
            .expect("connect");
        assert_eq!(roundtrip(&mut c, b"again").await.expect("echo"), b"again");
    }
}
