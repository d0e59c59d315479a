//! A pipeline call's options and their canonical text. The server builds
//! them from `PIPELINE CALL ... EVERY 5 WIDTH 640`; the text travels in the
//! [`Call`](super::Call) and is part of the result cache's key, so one set
//! of options always has exactly one spelling.

use std::fmt;
use std::str::FromStr;

/// Layout of a frame's pixels (packed rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PixelFormat {
    Rgb24 = 1,
    Bgr24 = 2,
    Gray8 = 3,
}

impl PixelFormat {
    pub fn bytes_per_pixel(self) -> u32 {
        match self {
            PixelFormat::Rgb24 | PixelFormat::Bgr24 => 3,
            PixelFormat::Gray8 => 1,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PixelFormat::Rgb24 => "rgb24",
            PixelFormat::Bgr24 => "bgr24",
            PixelFormat::Gray8 => "gray",
        }
    }

    pub fn from_code(code: u8) -> Option<Self> {
        [Self::Rgb24, Self::Bgr24, Self::Gray8]
            .into_iter()
            .find(|f| *f as u8 == code)
    }
}

impl fmt::Display for PixelFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PixelFormat {
    type Err = OptionsError;
    fn from_str(s: &str) -> Result<Self, OptionsError> {
        match s.to_ascii_lowercase().as_str() {
            "rgb24" | "rgb" => Ok(PixelFormat::Rgb24),
            "bgr24" | "bgr" => Ok(PixelFormat::Bgr24),
            "gray" | "gray8" | "grey" => Ok(PixelFormat::Gray8),
            _ => Err(OptionsError::Invalid(format!(
                "pixel format '{s}' (rgb24, bgr24 or gray)"
            ))),
        }
    }
}

/// Which decoded frames a call wants.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Selection {
    /// Every decoded frame.
    All,
    /// Decoded frames 0, n, 2n, ... (`n >= 1`).
    EveryNth(u32),
    /// The first frame at or after each `1/f`-second boundary (by
    /// timestamp, from the first frame).
    PerSecond(f64),
    /// Frames flagged as keyframes (a decoder may skip the others).
    Keyframes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionsError {
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("unknown option '{0}'")]
    Unknown(String),
}

/// Options of one call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CallOptions {
    pub selection: Selection,
    /// Output width; 0 keeps the source's (or follows `height`'s aspect).
    pub width: u32,
    pub height: u32,
    pub format: PixelFormat,
    /// Most frames sent; later ones are not decoded.
    pub max_frames: u32,
}

/// Largest output side a call may ask for.
pub const MAX_SIDE: u32 = 8192;

impl Default for CallOptions {
    fn default() -> Self {
        Self {
            selection: Selection::All,
            width: 0,
            height: 0,
            format: PixelFormat::Bgr24,
            max_frames: 1000,
        }
    }
}

impl CallOptions {
    /// Checks ranges (the server does before sending; a stage does again).
    pub fn validate(&self) -> Result<(), OptionsError> {
        let bad = |s: String| Err(OptionsError::Invalid(s));
        match self.selection {
            Selection::EveryNth(0) => return bad("EVERY must be at least 1".into()),
            Selection::PerSecond(f) if !(f.is_finite() && f > 0.0 && f <= 1000.0) => {
                return bad(format!("FPS {f} (must be in (0, 1000])"))
            }
            _ => {}
        }
        if self.width > MAX_SIDE || self.height > MAX_SIDE {
            return bad(format!("output size above {MAX_SIDE} pixels"));
        }
        if self.max_frames == 0 {
            return bad("MAX-FRAMES must be at least 1".into());
        }
        Ok(())
    }

    /// Parses the canonical text (`select=every:5;width=640;...`); keys
    /// not given keep their defaults.
    pub fn parse(text: &str) -> Result<Self, OptionsError> {
        let mut o = CallOptions::default();
        for part in text.split(';').filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| OptionsError::Invalid(format!("'{part}' is not key=value")))?;
            let num = |v: &str| {
                v.parse::<u32>()
                    .map_err(|_| OptionsError::Invalid(format!("{k}={v}: not a count")))
            };
            match k {
                "select" => o.selection = parse_selection(v)?,
                "width" => o.width = num(v)?,
                "height" => o.height = num(v)?,
                "format" => o.format = v.parse()?,
                "max-frames" => o.max_frames = num(v)?,
                _ => return Err(OptionsError::Unknown(k.to_string())),
            }
        }
        o.validate()?;
        Ok(o)
    }
}

fn parse_selection(v: &str) -> Result<Selection, OptionsError> {
    let bad = || OptionsError::Invalid(format!("select={v}"));
    match v.split_once(':') {
        None if v == "all" => Ok(Selection::All),
        None if v == "keyframes" => Ok(Selection::Keyframes),
        Some(("every", n)) => n.parse().map(Selection::EveryNth).map_err(|_| bad()),
        Some(("fps", f)) => f.parse().map(Selection::PerSecond).map_err(|_| bad()),
        _ => Err(bad()),
    }
}

/// The canonical text: every key, fixed order, shortest float spelling.
impl fmt::Display for CallOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let select = match self.selection {
            Selection::All => "all".to_string(),
            Selection::EveryNth(n) => format!("every:{n}"),
            Selection::PerSecond(x) => format!("fps:{x}"),
            Selection::Keyframes => "keyframes".to_string(),
        };
        write!(
            f,
            "select={select};width={};height={};format={};max-frames={}",
            self.width,
            self.height,
            self.format.name(),
            self.max_frames
        )
    }
}
