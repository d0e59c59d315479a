//! Where a connection goes: TCP or a Unix stream socket. Both are byte streams on a file
//! descriptor, which the worker sends to and receives from with io_uring; protocols do
//! not know which one carries them.
//!
//! Seam for a shared-memory transport (Citadel's `--shm-socket`, RPC only): a third
//! `Endpoint` variant whose `connect` does the CSHM handshake (16-byte request, reply with
//! the memfd and two eventfds over SCM_RIGHTS) and a `Stream` variant holding the mapped
//! rings, the eventfds and the handshake socket (kept open: closing it frees the rings).
//! The worker's `post_send`/`post_recv` would then branch on the stream: copy whole frames
//! into the request ring and write the doorbell, and post an io_uring READ on the reply
//! eventfd, copying reply records into `rbuf` when it completes, so completions keep
//! arriving through the one ring and `Conn::parse_replies` stays as it is.

use std::fmt;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// A server's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A connected socket.
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Endpoint {
    /// Connects (TCP with TCP_NODELAY; `timeout` bounds the TCP handshake, a Unix connect
    /// is local and answers at once).
    pub fn connect(&self, timeout: Duration) -> io::Result<Stream> {
        match self {
            Endpoint::Tcp(addr) => {
                let s = TcpStream::connect_timeout(addr, timeout)?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Endpoint::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
        }
    }
}

impl Stream {
    /// Shuts both directions down, which also completes the kernel operations in flight.
    pub fn shutdown(&self) {
        let _ = match self {
            Stream::Tcp(s) => s.shutdown(Shutdown::Both),
            Stream::Unix(s) => s.shutdown(Shutdown::Both),
        };
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }
}
