//! The shared-memory RPC transport in a worker (`--shm`, Citadel's `--shm-socket`): one
//! ring pair per connection (`citadel_proto::rpc::shm::ShmLink`), driven from the
//! worker's loop instead of io_uring.
//!
//! Sending copies each whole frame the protocol queued in the connection's `pending`
//! buffer into the request ring (one frame per record, as the server requires); receiving
//! parses reply frames in place in the reply ring with the protocol's own parser and the
//! connection's in-flight table, so latency and hit/miss accounting match the socket
//! transports exactly. Waiting: while replies are due the worker spins (the server
//! busy-polls ~100 µs after traffic, so a reply is usually microseconds away), then it
//! parks in one `ppoll` on every connection's reply eventfd and handshake socket (whose
//! end means the server is gone) until the loop's next deadline. Nothing here allocates
//! per request.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::Duration;

use citadel_proto::rpc::shm::{ShmLink, ShmLinkError, ShmParker, ShmReceiver, ShmSender};
use citadel_proto::rpc::FrameHeader;

use crate::protocol::{Protocol, ProtocolError};
use crate::stats::ErrorKind;

use super::conn::{answer_replies, Conn, State};
use super::recorder::Recorder;
use super::transport::Stream;

/// How long the worker spins after a frame last moved before it parks: the server's
/// attentive window, past which a slow reply costs the server a wake-up anyway.
const SPIN_NS: u64 = 100_000;

/// One connection's ring pair (both halves) and what its worker parks on.
pub struct ShmStream {
    tx: ShmSender,
    rx: ShmReceiver,
    parker: ShmParker,
}

impl fmt::Debug for ShmStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShmStream")
    }
}

impl ShmStream {
    /// Handshakes with the server's shm socket at `path` (default ring capacity).
    pub fn connect(path: &Path) -> io::Result<ShmStream> {
        let (tx, rx) = ShmLink::connect(path, 0)
            .map_err(|e| match e {
                ShmLinkError::Io(e) => e,
                e => io::Error::other(e),
            })?
            .split();
        let parker = rx.parker()?;
        Ok(ShmStream { tx, rx, parker })
    }

    /// Ends the link: the server drops the rings.
    pub fn shutdown(&self) {
        self.tx.shutdown();
    }
}

/// A connection's ring pair while it is up (takes the fields, not the `Conn`, so that
/// its in-flight table stays free to borrow).
fn up(sock: &mut Option<Stream>, state: State) -> Option<&mut ShmStream> {
    match (sock, state) {
        (Some(Stream::Shm(s)), State::Up) => Some(s),
        _ => None,
    }
}

impl Conn {
    /// Moves the frames queued in `pending` into the request ring while they fit (the
    /// rest waits for the next turn); true if any moved.
    pub fn shm_send(&mut self, now: u64, rec: &mut Recorder) -> bool {
        let Some(s) = up(&mut self.sock, self.state) else {
            return false;
        };
        let mut sent = 0;
        let result = loop {
            let rest = &self.pending[sent..];
            // `pending` holds whole frames only; an unparsable rest cannot happen.
            let Ok(Some((_, len))) = FrameHeader::parse(rest) else {
                break Ok(());
            };
            match s.tx.send_frame(&rest[..len], Duration::ZERO) {
                Ok(()) => sent += len,
                Err(ShmLinkError::Stalled) => break Ok(()), // ring full
                Err(e) => break Err(e),
            }
        };
        self.pending.drain(..sent);
        if let Err(e) = result {
            self.fail(ErrorKind::ConnectionLost, &format!("shm: {e}"), now, rec);
        }
        sent > 0
    }

    /// Answers every reply frame waiting in the reply ring; true if there was one.
    pub fn shm_recv<P: Protocol>(&mut self, proto: &P, now: u64, rec: &mut Recorder) -> bool {
        let mut got = false;
        let whole = ProtocolError {
            protocol: proto.name(),
            what: "a ring record is not exactly one frame",
        };
        loop {
            let inflight = &mut self.inflight;
            let Some(s) = up(&mut self.sock, self.state) else {
                return got;
            };
            let read = s.rx.try_recv_in_place(|frame| {
                let used = answer_replies(proto, inflight, frame, now, rec)?;
                if used == frame.len() {
                    Ok(())
                } else {
                    Err(whole.clone())
                }
            });
            let (kind, why) = match read {
                Ok(None) => return got,
                Ok(Some(Ok(()))) => {
                    got = true;
                    continue;
                }
                Ok(Some(Err(e))) => (ErrorKind::ProtocolError, e.to_string()),
                Err(e) => (ErrorKind::ConnectionLost, format!("shm: {e}")),
            };
            tracing::warn!(server = %self.server, "{why}");
            self.fail(kind, &why, now, rec);
            return true;
        }
    }
}

/// A worker's waiting strategy over its shm connections.
pub struct ShmWaiter {
    /// Two per parked connection: reply eventfd, handshake socket.
    pollfds: Vec<libc::pollfd>,
    /// The connections `pollfds` belong to, in order.
    parked: Vec<usize>,
    /// When a frame last moved either way (run-clock ns).
    active_ns: u64,
    /// A frame moved in this turn of the loop: a reply frees room to send.
    moved: bool,
}

impl ShmWaiter {
    pub fn new(conns: usize) -> ShmWaiter {
        ShmWaiter {
            pollfds: Vec::with_capacity(conns * 2),
            parked: Vec::with_capacity(conns),
            active_ns: 0,
            moved: false,
        }
    }

    /// A frame moved at `now`: look again at once, and keep spinning.
    pub fn moved(&mut self, now: u64) {
        self.active_ns = now;
        self.moved = true;
    }

    /// Returns when the loop should look at its connections again: at once while replies
    /// are due soon or the next deadline is close (spinning), else once a reply eventfd is
    /// rung, a server goes away, or `wake` (run-clock ns) comes.
    pub fn wait(
        &mut self,
        conns: &mut [Conn],
        now: u64,
        wake: u64,
        rec: &mut Recorder,
    ) -> io::Result<()> {
        if std::mem::take(&mut self.moved) {
            return Ok(());
        }
        let awaiting = conns.iter().any(|c| !c.inflight.is_empty());
        if (awaiting && now < self.active_ns + SPIN_NS) || wake <= now + SPIN_NS {
            std::hint::spin_loop();
            return Ok(());
        }
        self.pollfds.clear();
        self.parked.clear();
        for (i, c) in conns.iter_mut().enumerate() {
            let Some(s) = up(&mut c.sock, c.state) else {
                continue;
            };
            if !s.rx.prepare_park() {
                // A reply is already there.
                self.unpark(conns);
                return Ok(());
            }
            self.parked.push(i);
            for fd in s.parker.fds() {
                self.pollfds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let polled = ppoll(&mut self.pollfds, wake - now);
        for (k, &i) in self.parked.iter().enumerate() {
            let c = &mut conns[i];
            let Some(s) = up(&mut c.sock, c.state) else {
                continue;
            };
            s.rx.unpark();
            let ready = |j: usize| self.pollfds[2 * k + j].revents != 0;
            if let Err(e) = s.parker.woken(ready(0), ready(1)) {
                let why = match e {
                    ShmLinkError::Closed => "connection closed by server".to_string(),
                    e => format!("shm: {e}"),
                };
                c.fail(ErrorKind::ConnectionLost, &why, now, rec);
            }
        }
        polled
    }

    fn unpark(&self, conns: &mut [Conn]) {
        for &i in &self.parked {
            if let Some(s) = up(&mut conns[i].sock, conns[i].state) {
                s.rx.unpark();
            }
        }
    }
}

/// Blocks until one of `fds` is readable or `timeout_ns` passes (nanosecond precision,
/// unlike poll's milliseconds: open-loop deadlines need it); EINTR is a wake-up.
fn ppoll(fds: &mut [libc::pollfd], timeout_ns: u64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: `fds` is a live, correctly sized pollfd array and `ts` a live timespec for
    // the duration of the call; a null signal mask leaves the thread's mask as it is.
    let ret = unsafe {
        libc::ppoll(
            fds.as_mut_ptr(),
            fds.len() as libc::nfds_t,
            &ts,
            std::ptr::null(),
        )
    };
    if ret < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}
