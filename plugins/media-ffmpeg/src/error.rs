//! Errors returned by [`crate::decode`] and [`crate::probe`].

use std::fmt;

use ffmpeg_next as ffmpeg;

/// Why a decode (or probe) failed. A decode that stops on `max_frames` is not an error.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The input has no bytes.
    #[error("empty input")]
    Empty,
    /// The input is longer than `DecodeOptions::max_input_bytes`.
    #[error("input too large: {len} bytes (max {max})")]
    TooLarge { len: u64, max: u64 },
    /// The container could not be recognised or opened.
    #[error("not a video: {0}")]
    NotMedia(String),
    /// The container has no (decodable) video stream, e.g. an audio file.
    #[error("no video stream")]
    NoVideoStream,
    /// FFmpeg has no decoder for the video codec.
    #[error("unsupported codec: {0}")]
    UnsupportedCodec(String),
    /// The container was recognised but its data is damaged or truncated.
    #[error("corrupt video: {0}")]
    Corrupt(String),
    /// The coded video is larger than `DecodeOptions::max_source_pixels`.
    #[error("video too large: {width}x{height} (max {max_pixels} pixels)")]
    SourceTooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    /// Reading the input failed (file or [`crate::ReadAt`] error).
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The sink refused a frame; decoding stopped.
    #[error("sink error: {0}")]
    Sink(#[from] SinkError),
    /// The options are inconsistent (e.g. `EveryNth(0)`).
    #[error("bad options: {0}")]
    BadOptions(String),
    /// Any other FFmpeg failure (allocation, internal error).
    #[error("ffmpeg: {0}")]
    Ffmpeg(String),
}

/// An error from a [`crate::FrameSink`]; it stops decoding and is returned as [`MediaError::Sink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SinkError(pub String);

impl fmt::Display for SinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SinkError {}

impl SinkError {
    pub fn new(msg: impl Into<String>) -> Self {
        SinkError(msg.into())
    }
}

/// FFmpeg's message for an error code, lower-cased first letter ("invalid data found ...").
pub(crate) fn describe(e: ffmpeg::Error) -> String {
    let s = e.to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}
