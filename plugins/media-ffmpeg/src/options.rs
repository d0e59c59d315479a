//! Decode options: which frames, what size, what pixel format, and the limits.

use crate::MediaError;

/// Which frames and what pixels: the pipeline protocol's own types, so a
/// stage passes a call's options through unchanged.
pub use citadel_proto::pipeline::{PixelFormat, Selection};

/// Largest output width or height accepted in [`DecodeOptions`].
pub const MAX_OUTPUT_DIMENSION: u32 = 16_384;

/// What to decode and how to deliver it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    pub selection: Selection,
    /// Output width. `None` with `height: None`: the source size. Only one given: the other
    /// follows the source aspect ratio, rounded to an even number.
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub pixel_format: PixelFormat,
    /// Stop (successfully) after this many selected frames.
    pub max_frames: u32,
    /// Refuse inputs longer than this ([`MediaError::TooLarge`]).
    pub max_input_bytes: u64,
    /// Refuse videos whose coded width*height exceeds this ([`MediaError::SourceTooLarge`]).
    pub max_source_pixels: u64,
    /// Decoder threads; 0 lets FFmpeg choose (one per core).
    pub threads: u32,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            selection: Selection::All,
            width: None,
            height: None,
            pixel_format: PixelFormat::Bgr24,
            max_frames: 10_000,
            max_input_bytes: 4 << 30,
            max_source_pixels: 8192 * 8192,
            threads: 0,
        }
    }
}

impl DecodeOptions {
    /// Checks the options; [`MediaError::BadOptions`] says what is wrong.
    pub fn validate(&self) -> Result<(), MediaError> {
        let bad = |m: String| Err(MediaError::BadOptions(m));
        match self.selection {
            Selection::EveryNth(0) => return bad("EveryNth(0): n must be at least 1".into()),
            Selection::PerSecond(f) if !(f.is_finite() && f > 0.0) => {
                return bad(format!(
                    "PerSecond({f}): the rate must be a positive number"
                ));
            }
            Selection::PerSecond(f) if f > 1000.0 => {
                return bad(format!("PerSecond({f}): at most 1000 frames per second"));
            }
            _ => {}
        }
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if let Some(v) = v {
                if v == 0 || v > MAX_OUTPUT_DIMENSION {
                    return bad(format!("{name} {v}: must be 1..={MAX_OUTPUT_DIMENSION}"));
                }
            }
        }
        if self.max_frames == 0 {
            return bad("max_frames must be at least 1".into());
        }
        if self.max_source_pixels == 0 {
            return bad("max_source_pixels must be at least 1".into());
        }
        Ok(())
    }

    /// The output size for a source frame of `src_w` x `src_h` (both non-zero).
    pub fn output_size(&self, src_w: u32, src_h: u32) -> (u32, u32) {
        let follow = |given: u32, a: u32, b: u32| -> u32 {
            // given * b / a, rounded to the nearest even number, at least 2.
            let a = u64::from(a).max(1);
            let even = (u64::from(given) * u64::from(b) + a) / (2 * a) * 2;
            even.clamp(2, u64::from(MAX_OUTPUT_DIMENSION)) as u32
        };
        match (self.width, self.height) {
            (None, None) => (src_w, src_h),
            (Some(w), Some(h)) => (w, h),
            (Some(w), None) => (w, follow(w, src_w, src_h)),
            (None, Some(h)) => (follow(h, src_h, src_w), h),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_size_keeps_aspect() {
        let o = |w, h| DecodeOptions {
            width: w,
            height: h,
            ..Default::default()
        };
        assert_eq!(o(None, None).output_size(320, 240), (320, 240));
        assert_eq!(o(Some(160), None).output_size(320, 240), (160, 120));
        assert_eq!(o(None, Some(120)).output_size(320, 240), (160, 120));
        assert_eq!(o(Some(100), None).output_size(320, 240), (100, 76)); // 75 -> even
        assert_eq!(o(Some(101), Some(77)).output_size(320, 240), (101, 77));
        assert_eq!(o(Some(1), None).output_size(1000, 10), (1, 2));
        assert_eq!(o(Some(131), None).output_size(65, 47), (131, 94)); // 94.7 -> 94
        assert_eq!(o(Some(33), None).output_size(65, 47), (33, 24));
    }

    #[test]
    fn pixel_format_names() {
        for f in [PixelFormat::Rgb24, PixelFormat::Bgr24, PixelFormat::Gray8] {
            assert_eq!(f.name().parse::<PixelFormat>().unwrap(), f);
        }
        assert!("yuv".parse::<PixelFormat>().is_err());
    }
}
