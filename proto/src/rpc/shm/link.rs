//! The client's end of the shared-memory transport: [`ShmLink`], and its
//! two halves ([`ShmLink::split`]) so that one thread can send while
//! another receives, with no lock between them: the request ring has a
//! single producer ([`ShmSender`]) and the reply ring a single consumer
//! ([`ShmReceiver`]).
//!
//! Both halves share the handshake socket. The server never writes on it
//! after the grant, so it becomes readable only at its end: the server
//! exited or dropped us (or [`ShmSender::shutdown`] ended it here). The
//! receiver parks on the reply eventfd *and* that socket, so a dead server
//! ends its wait with [`ShmLinkError::Closed`] instead of a hang.
//!
//! A receiver shared by several threads (behind a lock, so that a caller
//! waiting for its reply may read the ring itself instead of waiting to be
//! handed it) parks with a [`ShmParker`]: `prepare_park` under the lock,
//! `park` without it (others may read the ring meanwhile), `unpark` under
//! it again. Only the parking thread sets and clears the sleeping flag, so
//! no wake-up is lost.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{message, recv_with_fds, unpack, GrantRefused, GRANT_FDS, SHM_VERSION};
use crate::envelope::Envelope;
use crate::ring::{
    clear_sleeping, prepare_park, wait_any, Consumer, EventFd, Producer, ReadError, Ring,
    SendError, SpinPolicy, WaitError, Wakeup,
};
use crate::shm::ShmRegion;
use crate::sys;

/// Failures of the client's end.
#[derive(Debug, thiserror::Error)]
pub enum ShmLinkError {
    #[error("shm handshake: {0}")]
    Io(#[from] io::Error),
    #[error("shm handshake refused: {0}")]
    Refused(#[from] GrantRefused),
    #[error("shm handshake: {0}")]
    Handshake(&'static str),
    #[error("frame of {len} bytes exceeds the ring's limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the server stopped reading its ring (gone?)")]
    Stalled,
    /// The handshake socket ended: the server exited, dropped this client,
    /// or the link was shut down here.
    #[error("the shm link is closed")]
    Closed,
    #[error("corrupt ring: {0}")]
    Ring(#[from] ReadError),
    #[error("waiting on the ring: {0}")]
    Wait(#[from] WaitError),
}

/// A client's end of the transport: frames out through the request ring,
/// frames in from the reply ring.
pub struct ShmLink {
    sender: ShmSender,
    receiver: ShmReceiver,
}

/// The request ring's producer half of a link.
pub struct ShmSender {
    /// Held open for the link's life: its close tells the server we are gone.
    socket: Arc<UnixStream>,
    requests: Producer,
}

/// The reply ring's consumer half of a link.
pub struct ShmReceiver {
    socket: Arc<UnixStream>,
    replies: Consumer,
    /// The socket reached its end; replies already published are still read.
    closed: bool,
}

impl ShmLink {
    /// Handshakes with the server listening at `path`; `capacity` 0 asks
    /// for the default ring size.
    pub fn connect(path: &Path, capacity: u64) -> Result<ShmLink, ShmLinkError> {
        let mut socket = UnixStream::connect(path)?;
        socket.set_read_timeout(Some(Duration::from_secs(10)))?;
        socket.write_all(&message(SHM_VERSION, capacity))?;
        let mut grant = [0u8; 16];
        let fds = recv_with_fds(&socket, &mut grant, GRANT_FDS)?;
        let (status, _) = unpack(&grant).ok_or(ShmLinkError::Handshake("bad magic"))?;
        if status != 0 {
            return Err(GrantRefused::from_status(status).into());
        }
        let [requests, replies, doorbell, wake]: [OwnedFd; GRANT_FDS] = fds
            .try_into()
            .map_err(|_| ShmLinkError::Handshake("expected four descriptors"))?;
        let ring = |fd| -> Result<Ring, ShmLinkError> {
            let region = ShmRegion::from_fd(fd).map_err(io::Error::other)?;
            Ring::attach(Arc::new(region)).map_err(|e| io::Error::other(e).into())
        };
        let requests = Producer::attach(ring(requests)?, EventFd::from_owned(doorbell));
        let replies = Consumer::attach(ring(replies)?, EventFd::from_owned(wake));
        // From now on the socket is only checked for its end, never waited on.
        socket.set_nonblocking(true)?;
        let socket = Arc::new(socket);
        Ok(ShmLink {
            sender: ShmSender {
                socket: Arc::clone(&socket),
                requests,
            },
            receiver: ShmReceiver {
                socket,
                replies,
                closed: false,
            },
        })
    }

    /// The two halves, for a sending and a receiving thread.
    pub fn split(self) -> (ShmSender, ShmReceiver) {
        (self.sender, self.receiver)
    }

    /// Largest frame one record carries.
    pub fn max_frame(&self) -> usize {
        self.sender.max_frame()
    }

    /// See [`ShmSender::send_frame`].
    pub fn send_frame(&mut self, frame: &[u8], patience: Duration) -> Result<(), ShmLinkError> {
        self.sender.send_frame(frame, patience)
    }

    /// See [`ShmReceiver::try_recv_frame`].
    pub fn try_recv_frame(&mut self, out: &mut Vec<u8>) -> Result<bool, ShmLinkError> {
        self.receiver.try_recv_frame(out)
    }

    /// See [`ShmReceiver::recv_frame`].
    pub fn recv_frame(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<bool, ShmLinkError> {
        self.receiver.recv_frame(out, timeout)
    }

    /// The handshake socket (readable at EOF: the server went away).
    pub fn socket(&self) -> &UnixStream {
        &self.receiver.socket
    }

    /// True once the server closed the handshake socket (never blocks).
    pub fn server_gone(&mut self) -> bool {
        socket_ended(&self.receiver.socket)
    }
}

impl ShmSender {
    /// Largest frame one record carries.
    pub fn max_frame(&self) -> usize {
        self.requests.ring().max_payload()
    }

    /// Publishes one frame (waking the server if it sleeps); waits up to
    /// `patience` while the ring is full, failing with `Closed` at once
    /// if the server goes away meanwhile.
    pub fn send_frame(&mut self, frame: &[u8], patience: Duration) -> Result<(), ShmLinkError> {
        let max = self.max_frame();
        if frame.len() > max {
            return Err(ShmLinkError::TooLarge {
                len: frame.len(),
                max,
            });
        }
        let id = crate::rpc::peek_frame_id(frame);
        let started = Instant::now();
        loop {
            match self.requests.send(&Envelope::request(id), frame) {
                Ok(()) => return Ok(()),
                Err(SendError::Reserve(_)) if socket_ended(&self.socket) => {
                    return Err(ShmLinkError::Closed)
                }
                Err(SendError::Reserve(_)) if started.elapsed() < patience => {
                    std::thread::yield_now();
                }
                Err(SendError::Reserve(_)) => return Err(ShmLinkError::Stalled),
                Err(SendError::Notify(e)) => return Err(io::Error::other(e.to_string()).into()),
            }
        }
    }

    /// Ends the link from this side: the receiver's wait returns
    /// [`ShmLinkError::Closed`] and the server drops the rings.
    pub fn shutdown(&self) {
        // Already ended by the server: nothing left to do.
        let _ = self.socket.shutdown(Shutdown::Both);
    }

    /// The handshake socket, e.g. to clone a handle that shuts the link
    /// down from a third thread.
    pub fn socket(&self) -> &UnixStream {
        &self.socket
    }
}

impl ShmReceiver {
    /// Appends the next reply frame to `out` if one is there (copied with
    /// atomic loads: safe against any writer of the ring).
    pub fn try_recv_frame(&mut self, out: &mut Vec<u8>) -> Result<bool, ShmLinkError> {
        Ok(self
            .try_read(|frame| frame.copy_payload_into(out))?
            .is_some())
    }

    /// Hands the next reply frame, in place in the ring, to `read` if one
    /// is there. The server is the ring's only writer and keeps the ring
    /// protocol, so the bytes are stable while `read` runs; a client that
    /// does not trust its server uses [`ShmReceiver::try_recv_frame`].
    pub fn try_recv_in_place<T>(
        &mut self,
        read: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, ShmLinkError> {
        self.try_read(|record| read(record.payload()))
    }

    fn try_read<T>(
        &mut self,
        read: impl FnOnce(&crate::ring::Record<'_>) -> T,
    ) -> Result<Option<T>, ShmLinkError> {
        let Some(record) = self.replies.read()? else {
            return Ok(None);
        };
        let value = read(&record);
        self.replies.commit_read();
        Ok(Some(value))
    }

    /// Waits (spinning first, then parked on the eventfd and the socket)
    /// for the next reply frame and appends it to `out`; false on timeout,
    /// `Closed` once the server is gone and its last reply was read.
    pub fn recv_frame(
        &mut self,
        out: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<bool, ShmLinkError> {
        loop {
            if self.try_recv_frame(out)? {
                return Ok(true);
            }
            if !self.wait(timeout)? {
                return Ok(false);
            }
        }
    }

    /// Waits until a reply is there (true) or `timeout` passes (false);
    /// `Closed` once the link has ended and every reply published before
    /// its end was read.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool, ShmLinkError> {
        loop {
            if self.replies.has_unread() {
                return Ok(true);
            }
            if self.closed {
                return Err(ShmLinkError::Closed);
            }
            let socket = [self.socket.as_fd()];
            match wait_any(&[&self.replies], &socket, SpinPolicy::default(), timeout)? {
                Wakeup::Data => return Ok(true),
                Wakeup::TimedOut => return Ok(false),
                Wakeup::Extra(_) => self.closed = socket_ended(&self.socket),
            }
        }
    }

    /// What to block on, apart from the receiver (see the module comment).
    pub fn parker(&self) -> io::Result<ShmParker> {
        Ok(ShmParker {
            wake: self.replies.eventfd().try_clone()?,
            socket: Arc::clone(&self.socket),
        })
    }

    /// Says the reader sleeps (the server then rings the reply eventfd)
    /// unless a reply is already there; true: park now.
    pub fn prepare_park(&self) -> bool {
        prepare_park(&[&self.replies])
    }

    /// After [`ShmParker::park`]: the reader is awake again.
    pub fn unpark(&self) {
        clear_sleeping(&[&self.replies]);
    }

    /// True once the link has ended (the server went away or it was shut
    /// down); never blocks.
    pub fn server_gone(&mut self) -> bool {
        self.closed = self.closed || socket_ended(&self.socket);
        self.closed
    }
}

/// Blocks a receiver's thread until the server rings or the link ends,
/// without holding the receiver.
pub struct ShmParker {
    wake: EventFd,
    socket: Arc<UnixStream>,
}

impl ShmParker {
    /// Waits for the reply eventfd or the socket's end (or `timeout`);
    /// `Closed` when the link has ended.
    pub fn park(&self, timeout: Option<Duration>) -> Result<(), ShmLinkError> {
        let ready = sys::poll_readable(&self.fds(), timeout).map_err(WaitError::Poll)?;
        self.woken(ready[0], ready[1])
    }

    /// The reply eventfd and the handshake socket, in that order: for a
    /// thread that waits on many links in one poll (then [`Self::woken`]).
    pub fn fds(&self) -> [BorrowedFd<'_>; 2] {
        [self.wake.as_fd(), self.socket.as_fd()]
    }

    /// After a poll of [`Self::fds`]: consumes the wake-up (`wake`: the
    /// eventfd was readable); `Closed` when the socket was readable at its end.
    pub fn woken(&self, wake: bool, socket: bool) -> Result<(), ShmLinkError> {
        if wake {
            self.wake.drain().map_err(WaitError::Poll)?;
        }
        if socket && socket_ended(&self.socket) {
            return Err(ShmLinkError::Closed);
        }
        Ok(())
    }
}

/// True when the (non-blocking) handshake socket has reached its end or
/// failed; bytes the server might write are read and ignored.
fn socket_ended(mut socket: &UnixStream) -> bool {
    let mut buf = [0u8; 16];
    match socket.read(&mut buf) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
        ),
    }
}
