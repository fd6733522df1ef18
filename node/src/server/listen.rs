//! A node's listening socket when its parent binds it: the parent reserves a loopback
//! port, binds a listener on it and hands the listener to the child as fd 3 under the
//! socket-activation protocol systemd uses (`LISTEN_FDS=1`); the node, started with
//! `--listen-inherited`, serves on that socket instead of binding `--listen`.
//!
//! Binding in the parent is what lets a harness know every member's address before
//! any member starts, with no window in which another process could take the port
//! (picking a free port, letting it go and telling the child its number has one).
//!
//! A [`ReservedPort`] keeps the port for the member's whole life, across kills and
//! restarts: it is a socket bound to the port that never listens. Each start binds a
//! fresh listener on the same port beside it (both set `SO_REUSEPORT`, which the
//! kernel allows only to sockets of one user) and gives it to the child, keeping no
//! copy. So while the member is down its port refuses connections, as a dead
//! process's port does, yet no other program can bind it; and the restarted member
//! comes back at the same address. (Keeping the listener itself in the parent would
//! also hold the port, but the kernel would then accept connections for a dead member
//! into the backlog, where clients hang instead of being refused.)

use command_fds::{CommandFdExt, FdMapping};
use socket2::{Domain, SockRef, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::process::Command;

use super::LISTEN_BACKLOG;

/// The fd the socket-activation protocol passes the first socket at.
const FIRST_FD: i32 = 3;

/// A loopback port held for one member (see the module documentation).
pub struct ReservedPort {
    _socket: Socket,
    addr: SocketAddr,
}

/// A TCP socket bound to `addr` with `SO_REUSEPORT`, so that the reservation and a
/// listener can share the port. Only the listener also sets `SO_REUSEADDR` (to bind
/// past the previous start's connections in TIME_WAIT): Linux lets any socket with
/// `SO_REUSEADDR` share a port whose sockets all have it and none listens, so a
/// reservation with it would not keep other programs out.
fn bound(addr: SocketAddr, reuse_address: bool) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(reuse_address)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

impl ReservedPort {
    /// Reserves a free port on 127.0.0.1.
    pub fn loopback() -> io::Result<ReservedPort> {
        let socket = bound(SocketAddr::from(([127, 0, 0, 1], 0)), false)?;
        let addr = socket
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("a TCP socket without an IP address"))?;
        Ok(ReservedPort {
            _socket: socket,
            addr,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A listener on the reserved port, to hand to one start of the member.
    pub fn listener(&self) -> io::Result<TcpListener> {
        let socket = bound(self.addr, true)?;
        socket.listen(LISTEN_BACKLOG as i32)?;
        Ok(socket.into())
    }

    /// Sets `cmd` up to hand its child a fresh listener on this port as fd 3 (a node
    /// takes it with `--listen-inherited`). Drop `cmd` once it has spawned, so that
    /// the child holds the only copy of the listener.
    pub fn pass_to(&self, cmd: &mut Command) -> io::Result<()> {
        pass_listener(cmd, self.listener()?)
    }
}

/// Passes `listener` to the child `cmd` starts as fd 3, with `LISTEN_FDS=1` (and no
/// `LISTEN_PID`, which the child's pid cannot be known for in advance).
pub fn pass_listener(cmd: &mut Command, listener: TcpListener) -> io::Result<()> {
    cmd.env("LISTEN_FDS", "1")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDNAMES");
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: OwnedFd::from(listener),
        child_fd: FIRST_FD,
    }])
    .map_err(|e| io::Error::other(format!("passing the listener: {e}")))?;
    Ok(())
}

/// The listening TCP socket this process was given at fd 3 (`LISTEN_FDS`), made
/// non-blocking and with the node's backlog.
pub fn inherited() -> io::Result<TcpListener> {
    let listener = listenfd::ListenFd::from_env()
        .take_tcp_listener(0)?
        .ok_or_else(|| {
            io::Error::other(
                "no listening socket was passed (LISTEN_FDS must be 1 or more, the socket at fd 3)",
            )
        })?;
    // Listening again only sets the backlog (and makes a bound socket listen).
    SockRef::from(&listener).listen(LISTEN_BACKLOG as i32)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}
