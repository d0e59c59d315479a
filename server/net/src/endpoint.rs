//! Where a connection comes from and arrives: an IP address and port, or a
//! Unix domain socket (its path; a client's own end is usually unnamed).

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Ip(SocketAddr),
    /// A Unix socket's path ("" for an unnamed end).
    Unix(Arc<str>),
}

impl Endpoint {
    /// True for a loopback address or a Unix socket (same host).
    pub fn is_local(&self) -> bool {
        match self {
            Endpoint::Ip(a) => a.ip().is_loopback(),
            Endpoint::Unix(_) => true,
        }
    }

    /// The endpoint of an accepted socket's address; a Unix socket end
    /// without a path (a client's) is named after `listening`, the path of
    /// the socket it connected to.
    pub(crate) fn from_sockaddr(
        addr: &socket2::SockAddr,
        listening: Option<&Arc<str>>,
    ) -> Endpoint {
        if let Some(ip) = addr.as_socket() {
            return Endpoint::Ip(ip);
        }
        match (addr.as_pathname(), listening) {
            (Some(p), _) => Endpoint::Unix(Arc::from(p.to_string_lossy().as_ref())),
            (None, Some(path)) => Endpoint::Unix(path.clone()),
            (None, None) => Endpoint::Unix(Arc::from("")),
        }
    }
}

/// As Redis prints it (CLIENT LIST `addr=`): `ip:port`, or `path:0`.
impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Ip(a) => write!(f, "{a}"),
            Endpoint::Unix(p) => write!(f, "{p}:0"),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Self {
        Endpoint::Ip(a)
    }
}
