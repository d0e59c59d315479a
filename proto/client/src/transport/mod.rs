//! Where a server is ([`Endpoint`]) and the blocking transports that carry
//! whole frames to and from it.
//!
//! A transport is three parts, so the connection can write from callers'
//! threads, read on its reader thread and stop the reader from anywhere:
//! a [`FrameSender`] (whole request frames out), a [`FrameReceiver`]
//! (whole reply frames in) and a [`Shutdown`] that makes a blocked
//! receive return; shared memory adds a fourth, [`CallerReceive`], so
//! that a caller waiting for its reply reads the ring itself instead of
//! waiting for the reader thread to hand it over. Each transport is one file that builds a [`Transport`]
//! (`stream`: TCP and Unix sockets; `shm`: shared-memory rings), plus its
//! [`Endpoint`] variant and the arm of [`connect`] that calls it.

mod shm;
mod stream;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::Result;
use crate::frame::Frame;
use crate::options::ClientOptions;

/// How to reach a server.
///
/// ```
/// use citadel_client::Endpoint;
///
/// let tcp: Endpoint = "127.0.0.1:7379".parse().unwrap();
/// let unix: Endpoint = "unix:/run/citadel/rpc.sock".parse().unwrap();
/// let shm: Endpoint = "shm:/run/citadel/shm.sock".parse().unwrap();
/// assert_eq!(tcp, Endpoint::tcp("127.0.0.1:7379"));
/// assert_eq!(unix.to_string(), "unix:/run/citadel/rpc.sock");
/// assert_eq!(shm, Endpoint::shm("/run/citadel/shm.sock"));
/// assert_eq!(shm.to_string(), "shm:/run/citadel/shm.sock");
/// ```
// Non-exhaustive: room for more transports.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `host:port` of the RPC listener (`--rpc-port`).
    Tcp(String),
    /// Path of the RPC Unix socket (`--rpc-unixsocket`).
    Unix(PathBuf),
    /// Path of the shared-memory handshake socket (`--shm-socket`): same
    /// host, the fastest transport (blocking clients only; the async
    /// client speaks TCP and Unix sockets).
    Shm(PathBuf),
}

impl Endpoint {
    pub fn tcp(addr: impl Into<String>) -> Self {
        Self::Tcp(addr.into())
    }

    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::Unix(path.into())
    }

    pub fn shm(path: impl Into<PathBuf>) -> Self {
        Self::Shm(path.into())
    }

    /// True for the transports that only reach this host.
    pub fn is_local(&self) -> bool {
        matches!(self, Self::Unix(_) | Self::Shm(_))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(addr) => write!(f, "{addr}"),
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Shm(path) => write!(f, "shm:{}", path.display()),
        }
    }
}

/// `unix:PATH`, `shm:PATH`, `tcp:ADDR`, a path (starts with `/` or `.`:
/// a Unix socket), or `host:port`.
impl FromStr for Endpoint {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(if let Some(path) = s.strip_prefix("unix:") {
            Self::unix(path)
        } else if let Some(path) = s.strip_prefix("shm:") {
            Self::shm(path)
        } else if let Some(addr) = s.strip_prefix("tcp:") {
            Self::tcp(addr)
        } else if s.starts_with('/') || s.starts_with('.') {
            Self::unix(s)
        } else {
            Self::tcp(s)
        })
    }
}

impl From<&str> for Endpoint {
    fn from(s: &str) -> Self {
        match s.parse() {
            Ok(e) => e,
            Err(never) => match never {},
        }
    }
}

impl From<String> for Endpoint {
    fn from(s: String) -> Self {
        Self::from(s.as_str())
    }
}

impl From<std::net::SocketAddr> for Endpoint {
    fn from(addr: std::net::SocketAddr) -> Self {
        Self::Tcp(addr.to_string())
    }
}

/// Writes whole request frames (one or more, back to back). An error
/// that is not [`Error::is_transport`](crate::Error::is_transport) (a
/// frame the transport cannot carry) leaves the connection usable.
pub(crate) trait FrameSender: Send {
    fn send(&mut self, frames: &[u8]) -> Result<()>;
}

/// Reads whole reply frames.
pub(crate) trait FrameReceiver: Send {
    /// Waits for the next reply frames and hands them to `deliver`, in
    /// order; false when the server closed cleanly.
    fn recv_into(&mut self, deliver: &mut dyn FnMut(Frame)) -> Result<bool>;
}

/// Reply frames a waiting caller can read itself (never blocks).
pub(crate) trait CallerReceive: Send + Sync {
    /// Hands the frames there now to `deliver`, in order; nothing if
    /// another thread is reading them at the moment.
    fn try_recv_into(&self, deliver: &mut dyn FnMut(Frame)) -> Result<()>;
}

/// Ends the transport in both directions: a blocked `recv` returns.
pub(crate) trait Shutdown: Send + Sync {
    fn shutdown(&self);
}

pub(crate) struct Transport {
    pub sender: Box<dyn FrameSender>,
    pub receiver: Box<dyn FrameReceiver>,
    pub shutdown: Box<dyn Shutdown>,
    pub caller_receive: Option<Box<dyn CallerReceive>>,
}

/// Opens a blocking transport to `endpoint`.
pub(crate) fn connect(endpoint: &Endpoint, options: &ClientOptions) -> Result<Transport> {
    match endpoint {
        Endpoint::Tcp(addr) => stream::connect_tcp(addr, options.connect_timeout),
        Endpoint::Unix(path) => stream::connect_unix(path),
        Endpoint::Shm(path) => shm::connect(path, options.shm_ring),
    }
}
