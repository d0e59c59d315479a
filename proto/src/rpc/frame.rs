//! The 24-byte frame header (layout in the module doc): parsing for a
//! streaming decoder and writing.

use super::schema::ErrorCode;
use super::{Limits, MAGIC, VERSION};

/// Bytes of the header in front of every body.
pub const HEADER_LEN: usize = 24;

/// A frame's method: the request's operation (the `Op` union's
/// discriminant), echoed by its replies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Method {
    /// No method: only in an error reply to a frame whose method is unknown.
    None = 0,
    Get = 1,
    Set = 2,
    Delete = 3,
    Exists = 4,
    Expire = 5,
    Ttl = 6,
    Incr = 7,
    MGet = 8,
    MSet = 9,
    Scan = 10,
    Call = 11,
    Stats = 12,
    Hello = 13,
    Batch = 14,
}

impl Method {
    /// Every method, in code order (`ALL[m as usize] == m`).
    pub const ALL: [Method; 15] = [
        Self::None,
        Self::Get,
        Self::Set,
        Self::Delete,
        Self::Exists,
        Self::Expire,
        Self::Ttl,
        Self::Incr,
        Self::MGet,
        Self::MSet,
        Self::Scan,
        Self::Call,
        Self::Stats,
        Self::Hello,
        Self::Batch,
    ];

    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.get(usize::from(code)).copied()
    }

    /// The body's union discriminant of this method.
    pub fn op_type(self) -> super::schema::Op {
        super::schema::Op(self as u8)
    }
}

// The header's codes are the schema's union discriminants.
const _: () = assert!(super::schema::Op::ENUM_MAX == Method::Batch as u8);
const _: () = assert!(super::schema::Op::Batch.0 == Method::Batch as u8);
const _: () = assert!(super::schema::Op::Get.0 == Method::Get as u8);

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub flags: u8,
    pub method: Method,
    /// Bytes of the body after the header.
    pub body_len: u32,
    pub id: u64,
}

/// Why the bytes at the front of a stream are not a usable frame. Each is
/// answered with an error frame of [`FrameError::code`] (to [`id`], or 0);
/// after one that [`must_close`]s, the stream cannot be resynchronised.
///
/// [`id`]: FrameError::id
/// [`must_close`]: FrameError::must_close
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame starts with {0:#04x}, not the magic {MAGIC:#04x}")]
    BadMagic(u8),
    #[error("frame version {0}, this server speaks {VERSION}")]
    Version(u8),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { id: u64, len: u64, max: usize },
    /// The whole frame is buffered: skip its `frame_len` bytes and go on.
    #[error("unknown method {method}")]
    UnknownMethod {
        id: u64,
        method: u8,
        frame_len: usize,
    },
}

impl FrameError {
    /// True when the stream is out of sync (or not ours): answer, then close.
    pub fn must_close(&self) -> bool {
        !matches!(self, Self::UnknownMethod { .. })
    }

    /// The request id the header named, when it could be read.
    pub fn id(&self) -> Option<u64> {
        match self {
            Self::TooLarge { id, .. } | Self::UnknownMethod { id, .. } => Some(*id),
            Self::BadMagic(_) | Self::Version(_) => None,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::BadMagic(_) => ErrorCode::BadFrame,
            Self::Version(_) => ErrorCode::Version,
            Self::TooLarge { .. } => ErrorCode::TooLarge,
            Self::UnknownMethod { .. } => ErrorCode::UnknownMethod,
        }
    }
}

impl FrameHeader {
    /// Parses the frame at the front of `buf` with the default
    /// [`Limits::max_frame`]; see [`FrameHeader::parse_with`].
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        Self::parse_with(buf, Limits::default().max_frame)
    }

    /// Parses the frame at the front of `buf`: `Ok(Some((header, frame_len)))`
    /// once the whole frame (header and body, `frame_len` bytes) is in
    /// `buf`, `Ok(None)` while more bytes are needed. A bad magic or version
    /// is reported from the first bytes, a length over `max_frame` as soon
    /// as the header is complete (nothing of the body need be buffered), an
    /// unknown method once the whole frame is there (to be skipped).
    pub fn parse_with(
        buf: &[u8],
        max_frame: usize,
    ) -> Result<Option<(FrameHeader, usize)>, FrameError> {
        match buf {
            [m, ..] if *m != MAGIC => return Err(FrameError::BadMagic(*m)),
            [_, v, ..] if *v != VERSION => return Err(FrameError::Version(*v)),
            _ => {}
        }
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let (body_len, id) = (peek_body_len(head), peek_id(head));
        let len = HEADER_LEN as u64 + u64::from(body_len);
        if len > max_frame as u64 {
            return Err(FrameError::TooLarge {
                id,
                len,
                max: max_frame,
            });
        }
        let frame_len = len as usize;
        if buf.len() < frame_len {
            return Ok(None);
        }
        let Some(method) = Method::from_code(head[3]) else {
            return Err(FrameError::UnknownMethod {
                id,
                method: head[3],
                frame_len,
            });
        };
        let header = FrameHeader {
            flags: head[2],
            method,
            body_len,
            id,
        };
        Ok(Some((header, frame_len)))
    }

    /// The header's 24 bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = MAGIC;
        b[1] = VERSION;
        b[2] = self.flags;
        b[3] = self.method as u8;
        b[4..8].copy_from_slice(&self.body_len.to_le_bytes());
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        b
    }

    /// True if any of `flags` is set.
    pub fn has(&self, flags: u8) -> bool {
        self.flags & flags != 0
    }
}

/// The body length a header declares (unchecked: [`FrameHeader::parse`]
/// is what validates a frame).
pub fn peek_body_len(head: &[u8; HEADER_LEN]) -> u32 {
    u32::from_le_bytes([head[4], head[5], head[6], head[7]])
}

/// The request id a header carries (unchecked).
pub fn peek_id(head: &[u8; HEADER_LEN]) -> u64 {
    u64::from_le_bytes([
        head[8], head[9], head[10], head[11], head[12], head[13], head[14], head[15],
    ])
}

/// The whole length (header and body) of the frame `bytes` starts with,
/// once its header is there (unchecked; the body may not be).
pub fn peek_frame_len(bytes: &[u8]) -> Option<usize> {
    let head = bytes.first_chunk::<HEADER_LEN>()?;
    Some(HEADER_LEN + peek_body_len(head) as usize)
}

/// The request id of the frame `bytes` starts with (0 before its header).
pub fn peek_frame_id(bytes: &[u8]) -> u64 {
    bytes.first_chunk::<HEADER_LEN>().map_or(0, peek_id)
}
