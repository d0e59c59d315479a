//! Citadel media library: decodes the video frames of a container held in memory (or a
//! file, or any [`ReadAt`]) with FFmpeg, selects some of them, and scales/converts each one
//! straight into memory the caller provides ([`FrameSink`]).
//!
//! ```no_run
//! use citadel_media::{decode, DecodeOptions, FrameInfo, FrameSink, Input, SinkError};
//! struct Collect(Vec<Vec<u8>>);
//! impl FrameSink for Collect {
//!     fn frame(&mut self, info: &FrameInfo, fill: &mut dyn FnMut(&mut [u8])) -> Result<(), SinkError> {
//!         let mut buf = vec![0; info.byte_len()];
//!         fill(&mut buf);
//!         self.0.push(buf);
//!         Ok(())
//!     }
//! }
//! let bytes = std::fs::read("clip.mp4").unwrap();
//! let summary = decode(Input::Bytes(&bytes), &DecodeOptions::default(), &mut Collect(vec![])).unwrap();
//! println!("{} frames of {}", summary.frames, summary.codec);
//! ```

mod avio;
mod decode;
mod error;
mod log;
mod open;
mod options;
mod scale;
mod select;

pub use avio::ReadAt;
pub use decode::{decode, probe};
pub use error::{MediaError, SinkError};
pub use options::{DecodeOptions, PixelFormat, Selection, MAX_OUTPUT_DIMENSION};

/// The FFmpeg bindings this crate is built on (e.g. to set FFmpeg's log level).
pub use ffmpeg_next;

/// Where the encoded video comes from.
pub enum Input<'a> {
    /// The whole container in memory (read in place, never copied whole).
    Bytes(&'a [u8]),
    /// A file, opened and read by this crate (no FFmpeg protocols: the path is only a path).
    Path(&'a std::path::Path),
    /// Any random-access source, read in pieces.
    Reader(&'a mut dyn ReadAt),
}

/// Describes one delivered frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameInfo {
    /// 0.. among the selected frames.
    pub index: u32,
    /// Presentation time in milliseconds (stream time; best-effort timestamp).
    pub pts_ms: i64,
    pub width: u32,
    pub height: u32,
    /// Bytes per row: `width * bytes_per_pixel` (packed, no padding).
    pub stride: u32,
    pub pixel_format: PixelFormat,
    pub keyframe: bool,
}

impl FrameInfo {
    /// `stride * height`: the size of the buffer `fill` writes.
    pub fn byte_len(&self) -> usize {
        self.stride as usize * self.height as usize
    }
}

/// Receives frames. The caller owns the destination memory: `frame` is called once per
/// selected frame and should call `fill` with a buffer of at least `info.byte_len()` bytes
/// (only the first `byte_len()` are written); the decoder converts the frame straight into
/// it. Returning `Err` stops decoding and `decode` returns [`MediaError::Sink`]. A sink that
/// returns `Ok` without calling `fill` drops the frame (it still counts as delivered).
pub trait FrameSink {
    fn frame(&mut self, info: &FrameInfo, fill: &mut dyn FnMut(&mut [u8]))
        -> Result<(), SinkError>;
}

/// What a successful decode did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeSummary {
    /// Frames delivered to the sink.
    pub frames: u32,
    /// Frames the decoder produced (selected or not).
    pub decoded: u64,
    /// True when decoding stopped because `max_frames` frames were delivered.
    pub hit_max_frames: bool,
    /// Packets or frames the decoder rejected (damaged data that was skipped).
    pub decode_errors: u32,
    /// Duration of the video stream (or the container) in ms; 0 when unknown.
    pub duration_ms: i64,
    pub source_width: u32,
    pub source_height: u32,
    /// FFmpeg's codec name, e.g. "h264".
    pub codec: String,
}

/// The video stream of an input, as declared by the container (see [`probe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamInfo {
    /// FFmpeg's demuxer name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2".
    pub container: String,
    pub codec: String,
    pub width: u32,
    pub height: u32,
    /// 0 when unknown.
    pub duration_ms: i64,
    /// Average frame rate; 0.0 when unknown.
    pub frame_rate: f64,
    /// Frame count the container declares; 0 when unknown.
    pub frames: u64,
}
