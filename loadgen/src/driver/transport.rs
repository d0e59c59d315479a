//! Where a connection goes: TCP, a Unix stream socket, or Citadel's shared-memory RPC
//! transport (`--shm-socket`). TCP and Unix are byte streams on a file descriptor, which
//! the worker sends to and receives from with io_uring; protocols do not know which one
//! carries them.
//!
//! Shared memory (`shm.rs`) is a ring pair per connection instead of a descriptor: the
//! worker copies whole frames from the connection's send buffer into the request ring,
//! parses reply frames in place in the reply ring with the same protocol code and
//! in-flight table, and waits by spinning, then parking on the reply eventfds.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::shm::ShmStream;

/// A server's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
    /// A Citadel `--shm-socket` handshake socket (RPC only).
    Shm(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Shm(p) => write!(f, "shm:{}", p.display()),
        }
    }
}

/// A connected socket, or an attached ring pair.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    Shm(ShmStream),
}

impl Endpoint {
    /// Connects (TCP with TCP_NODELAY; `timeout` bounds the TCP handshake, a Unix connect
    /// or shm handshake is local and answers at once).
    pub fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        match self {
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, timeout)?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Endpoint::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
            Endpoint::Shm(path) => ShmStream::connect(path).map(Stream::Shm),
        }
    }
}

impl Stream {
    /// Shuts both directions down, which also completes the kernel operations in flight
    /// (shm: tells the server to drop the rings).
    pub fn shutdown(&self) {
        // Already shut down or reset: nothing left to end.
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
            Stream::Shm(s) => {
                s.shutdown();
                Ok(())
            }
        };
    }

    /// The socket io_uring sends to and receives from; `None` for shm, which has none.
    pub fn socket_fd(&self) -> Option<RawFd> {
        match self {
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Unix(s) => Some(s.as_raw_fd()),
            Stream::Shm(_) => None,
        }
    }
}
