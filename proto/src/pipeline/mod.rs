//! The pipeline protocol: what flows through a pipeline's rings.
//!
//! ```text
//! server ──Call──▶ stage 1 ──Frame…, End──▶ stage 2 ──Result…, End──▶ … ──▶ server
//!   ▲                 │ (error: Kind::Error)     │                           │
//!   └─────────────────┴──────────────────────────┴───── reply rings ─────────┘
//! ```
//!
//! Every record of one call carries the call's id in its envelope. The
//! first stage gets a [`Call`] (where the input is, and the
//! [`CallOptions`]); it writes one [`FrameHeader`] record (pixels follow
//! the header in place) per selected frame into the next stage's ring, then
//! an [`End`]. A middle stage turns each record into its output record. The
//! last stage's records go to the server: one [`ResultHeader`] record per
//! frame (a JSON object after the header), then the [`End`]. Any stage may
//! answer the server directly with a `Kind::Error` reply; the server
//! completes the call on the first `End` or error and drops the rest.
//!
//! Delivery is at least once, so the server keeps one result per frame
//! index (a stage restarted after a crash sends its frames again).
//!
//! Layouts (little-endian; every message starts with its type byte and
//! the protocol version):
//!
//! ```text
//! Call    0 type=1 | 1 version | 2 source | 3 0 | 4 options_len:u32 | options (UTF-8) | source bytes
//! Frame   0 type=2 | 1 version | 2 pixel format | 3 flags | 4 index:u32 | 8 pts_ms:i64
//!         | 16 width:u32 | 20 height:u32 | 24 stride:u32 | 28 0:u32 | 32 pixels
//! Result  0 type=3 | 1 version | 2 0 | 3 0 | 4 index:u32 | 8 pts_ms:i64 | 16 JSON object
//! End     0 type=4 | 1 version | 2 0 | 3 0 | 4 frames:u32 | 8 JSON object (summary)
//! ```

mod options;

pub use options::{CallOptions, OptionsError, PixelFormat, Selection};

/// Version of the layouts above.
pub const VERSION: u8 = 1;
pub const FRAME_HEADER_LEN: usize = 32;
pub const RESULT_HEADER_LEN: usize = 16;
pub const END_HEADER_LEN: usize = 8;
const CALL_HEADER_LEN: usize = 8;
/// Frame flag: the decoder marked the frame as a keyframe.
pub const FLAG_KEYFRAME: u8 = 1;

/// What kind of message a record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    Call = 1,
    Frame = 2,
    Result = 3,
    End = 4,
}

/// Where a call's input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceKind {
    /// The bytes follow the options in the record.
    Data = 0,
    /// A key of the cache: the stage reads the value from the cache file.
    Key = 1,
    /// A path on the server's machine.
    Path = 2,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("pipeline message of {len} bytes is shorter than its {needed}-byte header")]
    Short { len: usize, needed: usize },
    #[error("pipeline message type {0} is unknown")]
    UnknownType(u8),
    #[error("pipeline message version {0}, this build speaks {VERSION}")]
    Version(u8),
    #[error("expected a {expected:?} message, got {got:?}")]
    WrongType {
        expected: MessageType,
        got: MessageType,
    },
    #[error("pipeline call: unknown source kind {0}")]
    UnknownSource(u8),
    #[error("pipeline call: options are not UTF-8")]
    OptionsNotUtf8,
    #[error("frame: {0}")]
    BadFrame(String),
}

/// The type of the message in `bytes` (checks the version).
pub fn message_type(bytes: &[u8]) -> Result<MessageType, MessageError> {
    if bytes.len() < 2 {
        return Err(MessageError::Short {
            len: bytes.len(),
            needed: 2,
        });
    }
    if bytes[1] != VERSION {
        return Err(MessageError::Version(bytes[1]));
    }
    match bytes[0] {
        1 => Ok(MessageType::Call),
        2 => Ok(MessageType::Frame),
        3 => Ok(MessageType::Result),
        4 => Ok(MessageType::End),
        t => Err(MessageError::UnknownType(t)),
    }
}

fn expect(bytes: &[u8], t: MessageType, header: usize) -> Result<(), MessageError> {
    let got = message_type(bytes)?;
    if got != t {
        return Err(MessageError::WrongType { expected: t, got });
    }
    if bytes.len() < header {
        return Err(MessageError::Short {
            len: bytes.len(),
            needed: header,
        });
    }
    Ok(())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    i64::from_le_bytes(w)
}

/// A call to a pipeline, as its first stage reads it (in place).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    pub source: SourceKind,
    /// Canonical options text (see [`CallOptions`]).
    pub options: &'a str,
    /// The input bytes, the key, or the path.
    pub input: &'a [u8],
}

impl<'a> Call<'a> {
    /// Bytes the encoded call takes.
    pub fn encoded_len(options: &str, input_len: usize) -> usize {
        CALL_HEADER_LEN + options.len() + input_len
    }

    /// Writes the call into `out` (at least `encoded_len` bytes); returns
    /// the length written.
    pub fn encode(source: SourceKind, options: &str, input: &[u8], out: &mut [u8]) -> usize {
        let len = Self::encoded_len(options, input.len());
        out[0] = MessageType::Call as u8;
        out[1] = VERSION;
        out[2] = source as u8;
        out[3] = 0;
        out[4..8].copy_from_slice(&(options.len() as u32).to_le_bytes());
        out[8..8 + options.len()].copy_from_slice(options.as_bytes());
        out[8 + options.len()..len].copy_from_slice(input);
        len
    }

    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        expect(bytes, MessageType::Call, CALL_HEADER_LEN)?;
        let source = match bytes[2] {
            0 => SourceKind::Data,
            1 => SourceKind::Key,
            2 => SourceKind::Path,
            s => return Err(MessageError::UnknownSource(s)),
        };
        let options_len = u32_at(bytes, 4) as usize;
        let rest = &bytes[CALL_HEADER_LEN..];
        if options_len > rest.len() {
            return Err(MessageError::Short {
                len: bytes.len(),
                needed: CALL_HEADER_LEN + options_len,
            });
        }
        let options =
            std::str::from_utf8(&rest[..options_len]).map_err(|_| MessageError::OptionsNotUtf8)?;
        Ok(Call {
            source,
            options,
            input: &rest[options_len..],
        })
    }
}

/// The header of a frame record; `byte_len()` pixel bytes follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub index: u32,
    pub pts_ms: i64,
    pub width: u32,
    pub height: u32,
    /// Bytes per row (packed: width x bytes per pixel).
    pub stride: u32,
    pub format: PixelFormat,
    pub keyframe: bool,
}

impl FrameHeader {
    /// Pixel bytes after the header.
    pub fn byte_len(&self) -> usize {
        self.stride as usize * self.height as usize
    }

    /// Bytes of the whole record payload.
    pub fn record_len(&self) -> usize {
        FRAME_HEADER_LEN + self.byte_len()
    }

    pub fn write(&self, out: &mut [u8]) {
        out[0] = MessageType::Frame as u8;
        out[1] = VERSION;
        out[2] = self.format as u8;
        out[3] = if self.keyframe { FLAG_KEYFRAME } else { 0 };
        out[4..8].copy_from_slice(&self.index.to_le_bytes());
        out[8..16].copy_from_slice(&self.pts_ms.to_le_bytes());
        out[16..20].copy_from_slice(&self.width.to_le_bytes());
        out[20..24].copy_from_slice(&self.height.to_le_bytes());
        out[24..28].copy_from_slice(&self.stride.to_le_bytes());
        out[28..32].copy_from_slice(&0u32.to_le_bytes());
    }

    /// The header and the pixels of a frame record, checked: the stride
    /// holds a row and the record holds every row.
    pub fn decode(bytes: &[u8]) -> Result<(Self, &[u8]), MessageError> {
        expect(bytes, MessageType::Frame, FRAME_HEADER_LEN)?;
        let format = PixelFormat::from_code(bytes[2])
            .ok_or_else(|| MessageError::BadFrame(format!("pixel format {}", bytes[2])))?;
        let h = FrameHeader {
            index: u32_at(bytes, 4),
            pts_ms: i64_at(bytes, 8),
            width: u32_at(bytes, 16),
            height: u32_at(bytes, 20),
            stride: u32_at(bytes, 24),
            format,
            keyframe: bytes[3] & FLAG_KEYFRAME != 0,
        };
        let row = h.width as u64 * format.bytes_per_pixel() as u64;
        if h.width == 0 || h.height == 0 || (h.stride as u64) < row {
            return Err(MessageError::BadFrame(format!(
                "{}x{} with stride {}",
                h.width, h.height, h.stride
            )));
        }
        let pixels = &bytes[FRAME_HEADER_LEN..];
        if (pixels.len() as u64) < h.stride as u64 * h.height as u64 {
            return Err(MessageError::BadFrame(format!(
                "{} pixel bytes for {}x{} (stride {})",
                pixels.len(),
                h.width,
                h.height,
                h.stride
            )));
        }
        Ok((h, &pixels[..h.byte_len()]))
    }
}

/// One frame's result: a JSON object after the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultMessage<'a> {
    pub index: u32,
    pub pts_ms: i64,
    pub json: &'a [u8],
}

impl<'a> ResultMessage<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(RESULT_HEADER_LEN + self.json.len());
        out.extend_from_slice(&[MessageType::Result as u8, VERSION, 0, 0]);
        out.extend_from_slice(&self.index.to_le_bytes());
        out.extend_from_slice(&self.pts_ms.to_le_bytes());
        out.extend_from_slice(self.json);
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        expect(bytes, MessageType::Result, RESULT_HEADER_LEN)?;
        Ok(ResultMessage {
            index: u32_at(bytes, 4),
            pts_ms: i64_at(bytes, 8),
            json: &bytes[RESULT_HEADER_LEN..],
        })
    }
}

/// The end of a call's stream: how many frames the first stage sent, and
/// its summary (a JSON object, e.g. the codec and source size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct End<'a> {
    pub frames: u32,
    pub json: &'a [u8],
}

impl<'a> End<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(END_HEADER_LEN + self.json.len());
        out.extend_from_slice(&[MessageType::End as u8, VERSION, 0, 0]);
        out.extend_from_slice(&self.frames.to_le_bytes());
        out.extend_from_slice(self.json);
        out
    }

    pub fn decode(bytes: &'a [u8]) -> Result<Self, MessageError> {
        expect(bytes, MessageType::End, END_HEADER_LEN)?;
        Ok(End {
            frames: u32_at(bytes, 4),
            json: &bytes[END_HEADER_LEN..],
        })
    }
}

#[cfg(test)]
mod tests;
