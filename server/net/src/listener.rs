//! Listening sockets: one SO_REUSEPORT listener per server thread, and an
//! optional Unix domain socket whose one listener every thread accepts on.
//!
//! Why per-thread listeners rather than one listener shared by every ring:
//! with SO_REUSEPORT the kernel hashes each new connection to one of the
//! listeners, so connections spread evenly over the threads and no two rings
//! contend on one accept queue. A shared listener with a multishot accept in
//! every ring wakes whichever ring's waiter is first, which piles connections
//! onto a few threads. The cost, that a second process of the same user
//! could silently join the port group, is closed by [`ensure_port_free`].

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::Door;

/// Backlog of each listener (the kernel caps it at net.core.somaxconn).
const BACKLOG: i32 = 4096;

/// Fails with `AddrInUse` when anything already listens on `addr`, including
/// another process's SO_REUSEPORT group (which a reuseport bind would join).
pub fn ensure_port_free(addr: SocketAddr) -> io::Result<()> {
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.bind(&addr.into())?;
    Ok(())
}

/// A listening socket bound with SO_REUSEPORT (and SO_REUSEADDR, so a restart
/// does not wait for TIME_WAIT connections to expire). Nonblocking: the
/// ring's accepts arm a poll either way, and a peer relieving a stalled
/// thread (relief.rs) takes what is queued without ever waiting.
pub fn bind_reuseport(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// How long a busy port is retried. A killed predecessor's listeners can
/// outlive it briefly: its io_uring holds them until the kernel's
/// asynchronous ring teardown cancels the pending accepts.
const BUSY_RETRY: Duration = Duration::from_secs(3);

/// Binds `count` listeners on `addr` after checking nobody else holds it.
pub fn bind_all(addr: SocketAddr, count: usize) -> io::Result<Vec<TcpListener>> {
    let deadline = Instant::now() + BUSY_RETRY;
    loop {
        match ensure_port_free(addr) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            result => break result?,
        }
    }
    (0..count).map(|_| bind_reuseport(addr)).collect()
}

/// A Unix domain socket listening at `path`, with mode `perm` when not 0
/// (Redis's `unixsocketperm`). A stale socket file left by a dead server is
/// replaced; one a live server answers on is `AddrInUse`.
pub fn bind_unix(path: &Path, perm: u32) -> io::Result<Socket> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "exists and is not a socket",
            ));
        }
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another server listens on it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.bind(&SockAddr::unix(path)?)?;
    if perm != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(perm))?;
    }
    socket.listen(BACKLOG)?;
    // Nonblocking, as the TCP listeners (`bind_reuseport`).
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// One listening socket of this thread, and whether its multishot accept
/// is armed.
pub struct Listening {
    /// None once closed at shutdown (its accept may still be finishing).
    pub(super) socket: Option<Socket>,
    /// For a Unix socket: its path (the name of clients' unnamed ends).
    pub(super) unix_path: Option<Arc<str>>,
    /// Which front door its connections came in by.
    pub(super) door: Door,
    pub(super) armed: bool,
}

impl Listening {
    pub(super) fn tcp(door: Door, listener: TcpListener) -> Listening {
        Listening {
            socket: Some(listener.into()),
            unix_path: None,
            door,
            armed: false,
        }
    }

    pub(super) fn unix(door: Door, socket: Socket, path: &Path) -> Listening {
        Listening {
            socket: Some(socket),
            unix_path: Some(Arc::from(path.to_string_lossy().as_ref())),
            door,
            armed: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_group_is_refused() {
        let first = bind_all("127.0.0.1:0".parse().unwrap(), 1).unwrap();
        let addr = first[0].local_addr().unwrap();
        let err = bind_all(addr, 2).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    }
}
