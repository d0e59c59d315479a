//! Output sizes, pixel formats and pixel values.

mod common;

use citadel_media::{decode, DecodeOptions, DecodeSummary, Input, PixelFormat};
use common::*;

fn run(bytes: &[u8], options: &DecodeOptions) -> (DecodeSummary, Collect) {
    let mut sink = Collect::default();
    let summary = decode(Input::Bytes(bytes), options, &mut sink).expect("decode");
    assert_eq!(summary.frames as usize, sink.frames.len());
    (summary, sink)
}

#[test]
fn resize_and_formats() {
    let bytes = read(&h264_mp4());
    let cases = [
        (Some(160), None, PixelFormat::Rgb24, (160, 120)),
        (None, Some(60), PixelFormat::Bgr24, (80, 60)),
        (Some(100), None, PixelFormat::Gray8, (100, 76)),
        (Some(101), Some(77), PixelFormat::Rgb24, (101, 77)),
        (Some(640), None, PixelFormat::Bgr24, (640, 480)),
        (None, None, PixelFormat::Gray8, (320, 240)),
    ];
    for (width, height, pixel_format, (w, h)) in cases {
        let options = DecodeOptions {
            width,
            height,
            pixel_format,
            max_frames: 3,
            ..Default::default()
        };
        let (_, sink) = run(&bytes, &options);
        for (info, buf) in &sink.frames {
            let bpp = pixel_format.bytes_per_pixel();
            assert_eq!((info.width, info.height), (w, h), "{options:?}");
            assert_eq!(info.stride, w * bpp);
            assert_eq!(info.pixel_format, pixel_format);
            assert_eq!(buf.len(), (w * h * bpp) as usize);
        }
    }
}

#[test]
fn odd_source_size() {
    // 65x47 yuvj444p mjpeg: odd sizes through sws, and the guard bytes stay untouched.
    let path = video(
        "odd.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=65x47:rate=10",
            "-t",
            "1",
            "-c:v",
            "mjpeg",
            "-pix_fmt",
            "yuvj444p",
        ],
    );
    let bytes = read(&path);
    for (width, pixel_format, (w, h)) in [
        (None, PixelFormat::Bgr24, (65, 47)),
        (None, PixelFormat::Gray8, (65, 47)),
        (Some(33), PixelFormat::Rgb24, (33, 24)),
        (Some(131), PixelFormat::Rgb24, (131, 94)),
    ] {
        let options = DecodeOptions {
            width,
            pixel_format,
            ..Default::default()
        };
        let (s, sink) = run(&bytes, &options);
        assert_eq!(s.frames, 10);
        assert_eq!((s.source_width, s.source_height), (65, 47));
        let (info, buf) = &sink.frames[0];
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(buf.len(), (w * h * pixel_format.bytes_per_pixel()) as usize);
    }
}

fn solid(color: &str, codec: &[&str], ext: &str) -> Vec<u8> {
    let src = format!("color=c={color}:size=64x64:rate=10");
    let mut args = vec!["-f", "lavfi", "-i", &src, "-t", "1"];
    args.extend_from_slice(codec);
    read(&video(&format!("{color}.{ext}"), &args))
}

fn assert_all_near(buf: &[u8], px: &[u8], tol: i32) {
    for (i, got) in buf.chunks_exact(px.len()).enumerate() {
        for (g, want) in got.iter().zip(px) {
            assert!(
                (i32::from(*g) - i32::from(*want)).abs() <= tol,
                "pixel {i}: {got:?}, want about {px:?}"
            );
        }
    }
}

#[test]
fn pixel_values_red() {
    for (codec, ext) in [
        (&["-c:v", "libx264", "-pix_fmt", "yuv420p"][..], "mp4"),
        (&["-c:v", "mjpeg"][..], "mkv"),
    ] {
        let bytes = solid("red", codec, ext);
        let opts = |pixel_format| DecodeOptions {
            pixel_format,
            max_frames: 1,
            ..Default::default()
        };
        let (_, rgb) = run(&bytes, &opts(PixelFormat::Rgb24));
        assert_all_near(&rgb.frames[0].1, &[255, 0, 0], 8);
        let (_, bgr) = run(&bytes, &opts(PixelFormat::Bgr24));
        assert_all_near(&bgr.frames[0].1, &[0, 0, 255], 8);
        let (_, gray) = run(&bytes, &opts(PixelFormat::Gray8));
        // Luma of pure red: 0.299 * 255 = 76 (full range).
        assert_all_near(&gray.frames[0].1, &[76], 10);
        // Scaled output keeps the color.
        let options = DecodeOptions {
            width: Some(30),
            ..opts(PixelFormat::Rgb24)
        };
        let (_, small) = run(&bytes, &options);
        assert_eq!(
            (small.frames[0].0.width, small.frames[0].0.height),
            (30, 30)
        );
        assert_all_near(&small.frames[0].1, &[255, 0, 0], 8);
    }
    let bytes = solid("blue", &["-c:v", "libx264", "-pix_fmt", "yuv444p"], "mp4");
    let options = DecodeOptions {
        pixel_format: PixelFormat::Rgb24,
        ..Default::default()
    };
    let (s, rgb) = run(&bytes, &options);
    assert_eq!(s.frames, 10);
    assert_all_near(&rgb.frames[9].1, &[0, 0, 255], 8);
}

#[test]
fn rgb_source_is_copied() {
    // A source already in the output format and size (rgb24 in an mkv) takes the copy path.
    let path = video(
        "rgb.nut",
        &[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=66x34:rate=10",
            "-t",
            "1",
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
        ],
    );
    let options = DecodeOptions {
        pixel_format: PixelFormat::Rgb24,
        ..Default::default()
    };
    let (s, sink) = run(&read(&path), &options);
    assert_eq!((s.frames, s.codec.as_str()), (10, "rawvideo"));
    assert_eq!(sink.frames[0].1.len(), 66 * 34 * 3);
    assert_all_near(&sink.frames[0].1, &[255, 0, 0], 3);
}
