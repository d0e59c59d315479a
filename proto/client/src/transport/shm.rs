//! The shared-memory transport (same host): frames travel as records of
//! two rings the server maps for this client (`citadel_proto::rpc::shm`).
//! The link splits into a sender (the request ring's producer, used by
//! callers' threads under the client's writer lock) and the reply ring's
//! receiver, shared behind a lock by two kinds of reader:
//!
//! * a caller waiting for its reply spins on the ring for a few µs and
//!   reads whatever is there itself ([`CallerReceive`]): at low
//!   concurrency the reply then costs no wake-up and no system call (the
//!   client stops spinning where it does not pay: `crate::spin`);
//! * the reader thread reads what nobody else does: it parks on the reply
//!   eventfd and the handshake socket (without the lock, so callers can
//!   still read) and wakes when the server publishes or the link ends.
//!
//! Frames are handed on under the lock, so those of one request (a
//! stream's partials, then its final) keep their order. The socket's end,
//! whether the server died or [`Shutdown`](super::Shutdown) ran here,
//! makes the reader report a clean end: in-flight calls fail with
//! [`Error::Closed`](crate::Error::Closed) instead of hanging.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use citadel_proto::rpc::shm::{ShmLink, ShmLinkError, ShmParker, ShmReceiver, ShmSender};
use citadel_proto::rpc::{peek_frame_len, HEADER_LEN};

use super::stream::Closer;
use super::{CallerReceive, FrameReceiver, FrameSender, Transport};
use crate::error::{Error, ProtocolError, Result};
use crate::frame::{parse_header, Frame};

/// How long a request waits for room in a full request ring before the
/// server counts as stuck (a dead server is noticed at once instead).
const FULL_RING_PATIENCE: Duration = Duration::from_secs(30);

pub(super) fn connect(path: &Path, ring_capacity: u64) -> Result<Transport> {
    let (sender, receiver) = ShmLink::connect(path, ring_capacity)
        .map_err(link_error)?
        .split();
    let closer = Closer(UnixStream::try_clone(sender.socket())?);
    let parker = receiver.parker()?;
    let replies = Arc::new(Replies::new(receiver));
    Ok(Transport {
        sender: Box::new(Sender(sender)),
        receiver: Box::new(Reader {
            replies: Arc::clone(&replies),
            parker,
            ended: false,
        }),
        shutdown: Box::new(closer),
        caller_receive: Some(Box::new(CallerSide(replies))),
    })
}

struct Sender(ShmSender);

impl FrameSender for Sender {
    /// One record per frame: `frames` may hold several back to back.
    fn send(&mut self, mut frames: &[u8]) -> Result<()> {
        while !frames.is_empty() {
            let len = frame_len(frames).ok_or(Error::InvalidRequest("a partial frame"))?;
            let (frame, rest) = frames.split_at(len);
            self.0
                .send_frame(frame, FULL_RING_PATIENCE)
                .map_err(link_error)?;
            frames = rest;
        }
        Ok(())
    }
}

/// The reply ring's receiver, shared by the reader thread and callers.
struct Replies {
    receiver: Mutex<ShmReceiver>,
    /// When a caller last read the ring (µs since `epoch`): while callers
    /// spin, the reader thread must not ask the server to ring its eventfd
    /// (a system call per reply, and a wake-up that steals the spinning
    /// caller's core), so it naps instead of parking.
    caller_polled_us: AtomicU64,
    epoch: Instant,
}

/// How recently a caller must have read the ring for the reader to nap.
const CALLERS_ACTIVE: Duration = Duration::from_micros(50);
/// The reader's nap while callers spin (it re-checks after).
const NAP: Duration = Duration::from_micros(50);

impl Replies {
    fn new(receiver: ShmReceiver) -> Replies {
        Replies {
            receiver: Mutex::new(receiver),
            caller_polled_us: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ShmReceiver> {
        self.receiver.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn callers_active(&self) -> bool {
        // ORDERING: Relaxed; a hint (a stale value costs one nap or one
        // eventfd write, never a lost reply: the reader re-checks the ring).
        let last = self.caller_polled_us.load(Ordering::Relaxed);
        last != 0 && self.now_us().saturating_sub(last) < CALLERS_ACTIVE.as_micros() as u64
    }
}

/// Hands every frame there now to `deliver`.
fn drain(receiver: &mut ShmReceiver, deliver: &mut dyn FnMut(Frame)) -> Result<usize> {
    let mut n = 0;
    while let Some(frame) = receiver.try_recv_in_place(to_frame).map_err(link_error)? {
        deliver(frame?);
        n += 1;
    }
    Ok(n)
}

/// The reader thread's end.
struct Reader {
    replies: Arc<Replies>,
    parker: ShmParker,
    /// The link ended; replies published before that are still read.
    ended: bool,
}

impl FrameReceiver for Reader {
    fn recv_into(&mut self, deliver: &mut dyn FnMut(Frame)) -> Result<bool> {
        loop {
            {
                let mut receiver = self.replies.lock();
                if drain(&mut receiver, deliver)? > 0 {
                    return Ok(true);
                }
                if self.ended {
                    return Ok(false);
                }
                if self.replies.callers_active() {
                    drop(receiver);
                    std::thread::sleep(NAP);
                    continue;
                }
                if !receiver.prepare_park() {
                    continue; // a reply came meanwhile
                }
            }
            // Unlocked: callers may read the ring while this thread sleeps.
            let parked = self.parker.park(None);
            self.replies.lock().unpark();
            match parked {
                Ok(()) => {}
                Err(ShmLinkError::Closed) => self.ended = true,
                Err(e) => return Err(link_error(e)),
            }
        }
    }
}

/// A waiting caller's end.
struct CallerSide(Arc<Replies>);

impl CallerReceive for CallerSide {
    fn try_recv_into(&self, deliver: &mut dyn FnMut(Frame)) -> Result<()> {
        // ORDERING: Relaxed; see `Replies::callers_active`.
        self.0
            .caller_polled_us
            .store(self.0.now_us().max(1), Ordering::Relaxed);
        let mut receiver = match self.0.receiver.try_lock() {
            Ok(receiver) => receiver,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(()),
        };
        drain(&mut receiver, deliver).map(drop)
    }
}

/// A reply record: exactly one whole frame, body copied out once.
fn to_frame(bytes: &[u8]) -> Result<Frame> {
    let head = bytes
        .first_chunk::<HEADER_LEN>()
        .ok_or(Error::Io(io::ErrorKind::UnexpectedEof.into()))?;
    let header = parse_header(head)?;
    let body = &bytes[HEADER_LEN..];
    if body.len() != header.body_len as usize {
        return Err(ProtocolError::RecordLength {
            record: bytes.len(),
            frame: HEADER_LEN + header.body_len as usize,
        }
        .into());
    }
    Ok(Frame {
        header,
        body: body.to_vec(),
    })
}

/// Length of the frame `bytes` starts with, if it is all there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    peek_frame_len(bytes).filter(|&len| bytes.len() >= len)
}

fn link_error(e: ShmLinkError) -> Error {
    match e {
        ShmLinkError::Io(e) => Error::Io(e),
        ShmLinkError::TooLarge { len, max } => Error::TooLarge { len, max },
        ShmLinkError::Closed => Error::Closed,
        ShmLinkError::Ring(e) => Error::Io(io::Error::new(io::ErrorKind::InvalidData, e)),
        ShmLinkError::Stalled => Error::Io(io::Error::new(io::ErrorKind::TimedOut, e)),
        // Refused or odd handshakes, failed waits.
        other => Error::Io(io::Error::other(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_at_their_header_lengths() {
        let mut frames = vec![0u8; HEADER_LEN];
        frames[4] = 3;
        frames.extend_from_slice(b"abc");
        assert_eq!(frame_len(&frames), Some(HEADER_LEN + 3));
        assert_eq!(frame_len(&frames[..HEADER_LEN + 2]), None);
        assert_eq!(frame_len(&frames[..10]), None);
    }

    #[test]
    fn a_record_must_hold_exactly_one_frame() {
        use citadel_proto::rpc::{ErrorCode, Method, ReplyWriter};
        let mut frame = Vec::new();
        ReplyWriter::new().error_frame(&mut frame, 7, Method::Get, ErrorCode::Invalid, "x");
        let whole = to_frame(&frame).unwrap();
        assert_eq!(whole.header.id, 7);
        assert_eq!(HEADER_LEN + whole.body.len(), frame.len());
        assert!(to_frame(&frame[..frame.len() - 1]).is_err());
        frame.push(0);
        assert!(to_frame(&frame).is_err());
        assert!(to_frame(&[0u8; 5]).is_err());
    }

    #[test]
    fn link_errors_keep_their_meaning() {
        assert!(matches!(link_error(ShmLinkError::Closed), Error::Closed));
        let big = link_error(ShmLinkError::TooLarge { len: 9, max: 8 });
        assert!(matches!(big, Error::TooLarge { len: 9, max: 8 }));
        assert!(!big.is_transport());
        assert!(link_error(ShmLinkError::Stalled).is_transport());
    }
}
