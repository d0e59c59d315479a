//! The shared-memory transport (same host): frames travel as records of
//! two rings the server maps for this client (`citadel_proto::rpc::shm`).
//! The link splits into a sender (the request ring's producer, used by
//! callers' threads under the client's writer lock) and a receiver (the
//! reply ring's consumer, owned by the reader thread, which spins briefly
//! and then parks on the reply eventfd and the handshake socket). The
//! socket's end, whether the server died or [`Shutdown`] ran here, makes
//! the receiver report a clean end, so in-flight calls fail with
//! [`Error::Closed`](crate::Error::Closed) instead of hanging.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use citadel_proto::ring::SpinPolicy;
use citadel_proto::rpc::shm::{ShmLink, ShmLinkError, ShmReceiver, ShmSender};
use citadel_proto::rpc::HEADER_LEN;

use super::stream::Closer;
use super::{FrameReceiver, FrameSender, Transport};
use crate::error::{Error, ProtocolError, Result};
use crate::frame::{parse_header, Frame};

/// The reader thread's wait for a reply: about 10 µs of spinning (~25 ns
/// a spin), then it parks. Not the rings' default (~100 µs, then yields):
/// every reply still wakes a caller's thread, and a reader spinning long
/// keeps a core from that caller and from the server (on a busy 2-core
/// host the default made a 64 B GET take ~240 µs instead of ~25 µs).
const READER_SPIN: SpinPolicy = SpinPolicy {
    spins: 400,
    yields: 0,
};

/// How long a request waits for room in a full request ring before the
/// server counts as stuck (a dead server is noticed at once instead).
const FULL_RING_PATIENCE: Duration = Duration::from_secs(30);

pub(super) fn connect(path: &Path, ring_capacity: u64) -> Result<Transport> {
    let (sender, receiver) = ShmLink::connect(path, ring_capacity)
        .map_err(link_error)?
        .split();
    let closer = Closer(UnixStream::try_clone(sender.socket())?);
    let mut receiver = receiver;
    receiver.set_spin(READER_SPIN);
    Ok(Transport {
        sender: Box::new(Sender(sender)),
        receiver: Box::new(Receiver(receiver)),
        shutdown: Box::new(closer),
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

struct Receiver(ShmReceiver);

impl FrameReceiver for Receiver {
    fn recv(&mut self) -> Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.0.try_recv_in_place(to_frame).map_err(link_error)? {
                return frame.map(Some);
            }
            match self.0.wait(None) {
                Ok(_) => {}
                Err(ShmLinkError::Closed) => return Ok(None),
                Err(e) => return Err(link_error(e)),
            }
        }
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
    let h = bytes.first_chunk::<HEADER_LEN>()?;
    let len = HEADER_LEN + u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    (bytes.len() >= len).then_some(len)
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
