//! The RPC's shared-memory transport for clients on the same host.
//!
//! A client connects to the server's handshake socket (`--shm-socket`)
//! and writes a [`ShmHello`] (16 bytes: `CSHM`, version, ring capacity).
//! The server answers a [`ShmGrant`] (16 bytes: `CSHM`, status, granted
//! capacity) with four descriptors passed by SCM_RIGHTS, in order: the
//! request ring's memfd, the reply ring's memfd, the server's doorbell
//! eventfd and the client's eventfd. From then on frames (header + body,
//! as on a socket) travel as ring records, one frame per record (envelope
//! id = the request id), with the plugin rings' wake-up protocol: a side
//! writes the other's eventfd only when that side said it sleeps. The
//! client keeps the handshake socket open for its whole life: when it
//! closes (the client exited or was killed) the server drops its rings.
//!
//! [`ShmLink`] (module `link`) is the client's end (Rust clients, the
//! load generator, tests), splittable into a sending and a receiving half;
//! the server's end lives in the server.

mod link;

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;

use crate::ring::{EventFd, Ring};

pub use link::{ShmLink, ShmLinkError, ShmParker, ShmReceiver, ShmSender};

pub const SHM_MAGIC: [u8; 4] = *b"CSHM";
pub const SHM_VERSION: u32 = 1;
/// Ring capacity when the client asks for 0.
pub const DEFAULT_CAPACITY: u64 = 1 << 20;
pub const MIN_CAPACITY: u64 = 64 << 10;
pub const MAX_CAPACITY: u64 = 64 << 20;
/// Descriptors a grant carries.
pub const GRANT_FDS: usize = 4;

/// The client's request: protocol version and ring capacity (0: default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmHello {
    pub version: u32,
    pub capacity: u64,
}

/// Why a grant was refused (its status; 0 is granted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefused {
    #[error("malformed handshake")]
    BadHello,
    #[error("handshake version not supported (this server speaks {SHM_VERSION})")]
    Version,
    #[error("ring capacity must be a power of two in 64 KiB..64 MiB")]
    Capacity,
    #[error("the server cannot create the rings")]
    Resources,
    #[error("refused with status {0}")]
    Other(u32),
}

impl GrantRefused {
    pub fn status(self) -> u32 {
        match self {
            Self::BadHello => 1,
            Self::Version => 2,
            Self::Capacity => 3,
            Self::Resources => 4,
            Self::Other(n) => n,
        }
    }

    fn from_status(status: u32) -> Self {
        match status {
            1 => Self::BadHello,
            2 => Self::Version,
            3 => Self::Capacity,
            4 => Self::Resources,
            n => Self::Other(n),
        }
    }
}

impl ShmHello {
    pub fn to_bytes(self) -> [u8; 16] {
        message(self.version, self.capacity)
    }

    /// Checks magic, version and capacity; the capacity granted (0 asks
    /// for the default).
    pub fn parse(bytes: &[u8; 16]) -> Result<ShmHello, GrantRefused> {
        let (version, capacity) = unpack(bytes).ok_or(GrantRefused::BadHello)?;
        if version != SHM_VERSION {
            return Err(GrantRefused::Version);
        }
        let capacity = if capacity == 0 {
            DEFAULT_CAPACITY
        } else {
            capacity
        };
        if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
            return Err(GrantRefused::Capacity);
        }
        Ok(ShmHello { version, capacity })
    }
}

/// The server's answer: granted capacity, or the refusal.
pub fn grant_bytes(result: Result<u64, GrantRefused>) -> [u8; 16] {
    match result {
        Ok(capacity) => message(0, capacity),
        Err(e) => message(e.status(), 0),
    }
}

fn message(word: u32, capacity: u64) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..4].copy_from_slice(&SHM_MAGIC);
    b[4..8].copy_from_slice(&word.to_le_bytes());
    b[8..].copy_from_slice(&capacity.to_le_bytes());
    b
}

fn unpack(b: &[u8; 16]) -> Option<(u32, u64)> {
    (b[..4] == SHM_MAGIC).then(|| {
        (
            u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            u64::from_le_bytes(b[8..].try_into().unwrap_or_default()),
        )
    })
}

/// A fresh ring pair and the client's eventfd: what the server creates
/// for one client.
pub struct ShmChannel {
    pub requests: Ring,
    pub replies: Ring,
    pub client_wake: EventFd,
}

impl ShmChannel {
    pub fn create(capacity: u64) -> io::Result<ShmChannel> {
        let ring = |name| Ring::create_memfd(name, capacity).map_err(io::Error::other);
        Ok(ShmChannel {
            requests: ring("citadel-shm-requests")?,
            replies: ring("citadel-shm-replies")?,
            client_wake: EventFd::new()?,
        })
    }

    /// Sends the grant with the four descriptors over `socket`.
    pub fn grant(&self, socket: &UnixStream, doorbell: &EventFd) -> io::Result<()> {
        let fds = [
            self.requests.region().fd(),
            self.replies.region().fd(),
            doorbell.as_fd(),
            self.client_wake.as_fd(),
        ];
        send_with_fds(socket, &grant_bytes(Ok(self.requests.capacity())), &fds)
    }
}

/// Writes `bytes` with `fds` attached (SCM_RIGHTS).
pub fn send_with_fds(socket: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let payload = std::mem::size_of_val(raw.as_slice());
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: zeroed msghdr is a valid "empty" value; fields set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: msg_control points at `space` bytes, enough for one cmsg
    // of `payload` bytes (CMSG_SPACE), so CMSG_FIRSTHDR is non-null and
    // CMSG_DATA has room for the descriptors.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(payload as u32) as _;
        std::ptr::copy_nonoverlapping(raw.as_ptr(), libc::CMSG_DATA(cmsg).cast(), raw.len());
    }
    // SAFETY: every pointer in `msg` refers to live locals for the call.
    let n = unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != bytes.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short handshake write",
        ));
    }
    Ok(())
}

/// Reads exactly `buf.len()` bytes (one message) and up to `max_fds`
/// descriptors passed with them.
pub fn recv_with_fds(
    socket: &UnixStream,
    buf: &mut [u8],
    max_fds: usize,
) -> io::Result<Vec<OwnedFd>> {
    let payload = max_fds * std::mem::size_of::<i32>();
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(payload as u32) } as usize;
    let mut control = vec![0u8; space];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: zeroed msghdr is a valid "empty" value; fields set below.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: every pointer in `msg` refers to live locals for the call.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: the kernel filled msg_control with msg_controllen bytes of
    // well-formed cmsgs; we walk them with the libc macros only.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<i32>();
                let count = ((*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize) / 4;
                for i in 0..count {
                    // The kernel installed these descriptors for us.
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if (n as usize) < buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "short handshake",
        ));
    }
    Ok(fds)
}
