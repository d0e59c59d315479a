//! Test images drawn with the `ffmpeg` CLI as raw pixels.
#![allow(dead_code)]

use std::process::Command;

use citadel_ocr::{Image, OcrConfig, OcrEngine, PixelFormat};

pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// An owned raw image.
pub struct Raw {
    pub w: u32,
    pub h: u32,
    pub format: PixelFormat,
    pub data: Vec<u8>,
}

impl Raw {
    pub fn image(&self) -> Image<'_> {
        Image::packed(self.w, self.h, self.format, &self.data)
    }
}

/// One `drawtext` filter: text, font size, x, y.
pub fn text(t: &str, size: u32, x: u32, y: u32) -> String {
    format!("drawtext=fontfile={FONT}:text='{t}':fontsize={size}:fontcolor=black:x={x}:y={y}")
}

/// Renders `source` (a lavfi source such as `color=c=white`) of `w x h`
/// with `filters` into raw pixels of `format`.
pub fn render(source: &str, w: u32, h: u32, filters: &[String], format: PixelFormat) -> Raw {
    let pix = match format {
        PixelFormat::Bgr24 => "bgr24",
        PixelFormat::Rgb24 => "rgb24",
        PixelFormat::Gray8 => "gray",
    };
    let src = format!("{source}:size={w}x{h}");
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-f", "lavfi", "-i", &src]);
    if !filters.is_empty() {
        cmd.args(["-vf", &filters.join(",")]);
    }
    cmd.args(["-frames:v", "1", "-f", "rawvideo", "-pix_fmt", pix, "-"]);
    let out = cmd.output().expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = (w * h * format.bytes_per_pixel()) as usize;
    assert_eq!(out.stdout.len(), want, "ffmpeg output size");
    Raw {
        w,
        h,
        format,
        data: out.stdout,
    }
}

/// Three lines of different sizes on white (640x360). The model is
/// sensitive to narrow spaces in DejaVuSans: in other layouts it (and
/// rapidocr alike) reads "frame7" or splits "Hello Pipeline"; this one is
/// read right by both.
pub fn three_lines(format: PixelFormat) -> Raw {
    let f = [
        text("CITADEL 42", 48, 20, 30),
        text("Hello Pipeline", 32, 40, 150),
        text("frame 7", 28, 300, 270),
    ];
    render("color=c=white", 640, 360, &f, format)
}

/// Words on a busy `testsrc` background inside a drawn white box.
pub fn busy(word: &str) -> Raw {
    let f = [format!(
        "drawtext=fontfile={FONT}:text='{word}':fontsize=40:fontcolor=black:x=160:y=150:box=1:boxcolor=white:boxborderw=10"
    )];
    render("testsrc=rate=1", 640, 360, &f, PixelFormat::Bgr24)
}

/// A 640x360 frame with two lines.
pub fn frame(n: u32) -> Raw {
    let f = [
        text(&format!("frame {n}"), 36, 40, 60),
        text("Hello Pipeline", 36, 40, 220),
    ];
    render("color=c=white", 640, 360, &f, PixelFormat::Bgr24)
}

pub fn engine(threads: usize) -> OcrEngine {
    let cfg = OcrConfig {
        intra_threads: threads,
        ..OcrConfig::from_env_defaults()
    };
    OcrEngine::load(&cfg)
        .expect("load the OCR engine (needs the rapidocr_onnxruntime and onnxruntime wheels)")
}

pub fn texts(lines: &[citadel_ocr::TextLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}
