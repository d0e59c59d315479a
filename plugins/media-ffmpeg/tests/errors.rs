//! Bad inputs and bad options: each gives its `MediaError`, never a panic or a hang.

mod common;

use std::io;
use std::path::Path;

use citadel_media::{decode, probe, DecodeOptions, Input, MediaError, ReadAt, Selection};
use common::*;

fn decode_bytes(bytes: &[u8], options: &DecodeOptions) -> Result<Collect, MediaError> {
    let mut sink = Collect::default();
    decode(Input::Bytes(bytes), options, &mut sink).map(|_| sink)
}

fn err(bytes: &[u8]) -> MediaError {
    match decode_bytes(bytes, &DecodeOptions::default()) {
        Ok(sink) => panic!("decoded {} frames from a bad input", sink.frames.len()),
        Err(e) => e,
    }
}

/// Deterministic pseudo-random bytes.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn empty_input() {
    assert!(matches!(err(&[]), MediaError::Empty));
    let mut empty: &[u8] = &[];
    let e = decode(
        Input::Reader(&mut empty),
        &DecodeOptions::default(),
        &mut Collect::default(),
    );
    assert!(matches!(e, Err(MediaError::Empty)));
}

#[test]
fn empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.mp4");
    std::fs::write(&path, b"").unwrap();
    let e = decode(
        Input::Path(&path),
        &DecodeOptions::default(),
        &mut Collect::default(),
    );
    assert!(matches!(e, Err(MediaError::Empty)), "{e:?}");
}

#[test]
fn random_bytes_are_not_media() {
    for (len, seed) in [(1, 1), (100, 2), (4096, 3), (100_000, 4), (1_000_000, 5)] {
        let e = err(&noise(len, seed));
        assert!(matches!(e, MediaError::NotMedia(_)), "{len} bytes: {e:?}");
    }
    let e = err(b"hello, this is plain text and not a video at all\n");
    assert!(matches!(e, MediaError::NotMedia(_)), "{e:?}");
    assert_eq!(
        e.to_string(),
        "not a video: invalid data found when processing input"
    );
}

#[test]
fn truncated_files_are_corrupt() {
    let faststart = testsrc(
        "faststart.mp4",
        &[
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
        ],
    );
    let h264_mkv = testsrc("h264.mkv", &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    for path in [h264_mp4(), faststart, h264_mkv, mjpeg_mkv(), mpeg4_avi()] {
        let bytes = read(&path);
        for pct in [30, 60, 90] {
            let cut = &bytes[..bytes.len() * pct / 100];
            let e = err(cut);
            eprintln!("{path:?} cut at {pct}%: {e}");
            assert!(
                matches!(e, MediaError::Corrupt(_)),
                "{path:?} cut at {pct}%: {e:?}"
            );
        }
        // The first bytes only (the header is incomplete).
        let e = err(&bytes[..64]);
        assert!(
            matches!(e, MediaError::Corrupt(_) | MediaError::NotMedia(_)),
            "{path:?} first 64 bytes: {e:?}"
        );
    }
}

#[test]
fn audio_only_has_no_video_stream() {
    let path = video(
        "sine.m4a",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            "-c:a",
            "aac",
        ],
    );
    let e = err(&read(&path));
    assert!(matches!(e, MediaError::NoVideoStream), "{e:?}");
    assert!(matches!(
        probe(Input::Path(&path)),
        Err(MediaError::NoVideoStream)
    ));
}

#[test]
fn cover_art_is_not_video() {
    // An mp3 whose only picture is an attached cover (mjpeg, disposition attached_pic).
    let path = video(
        "cover.mp3",
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=duration=1",
            "-f",
            "lavfi",
            "-i",
            "color=c=red:size=64x64:duration=0.1",
            "-map",
            "0",
            "-map",
            "1",
            "-frames:v",
            "1",
            "-c:a",
            "libmp3lame",
            "-c:v",
            "mjpeg",
            "-id3v2_version",
            "3",
            "-disposition:v",
            "attached_pic",
        ],
    );
    let e = err(&read(&path));
    assert!(matches!(e, MediaError::NoVideoStream), "{e:?}");
}

#[test]
fn source_larger_than_the_limit() {
    let bytes = read(&h264_mp4());
    let options = DecodeOptions {
        max_source_pixels: 320 * 240 - 1,
        ..Default::default()
    };
    let e = decode_bytes(&bytes, &options).map(|_| ()).unwrap_err();
    assert!(
        matches!(
            e,
            MediaError::SourceTooLarge {
                width: 320,
                height: 240,
                ..
            }
        ),
        "{e:?}"
    );
    // Exactly at the limit is fine.
    let options = DecodeOptions {
        max_source_pixels: 320 * 240,
        max_frames: 1,
        ..Default::default()
    };
    assert!(decode_bytes(&bytes, &options).is_ok());
}

#[test]
fn huge_declared_resolution() {
    // An mkv whose header declares 30000x30000 (the frames are a small mjpeg).
    let path = video(
        "320x256.mkv",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x256:rate=10",
            "-t",
            "1",
            "-c:v",
            "mjpeg",
        ],
    );
    let mut bytes = read(&path);
    let find = |b: &[u8], pat: &[u8]| b.windows(pat.len()).position(|x| x == pat);
    // PixelWidth (0xB0) = 320 and PixelHeight (0xBA) = 256, two bytes each.
    let wi = find(&bytes, &[0xB0, 0x82, 0x01, 0x40]).expect("PixelWidth 320");
    bytes[wi + 2..wi + 4].copy_from_slice(&30000u16.to_be_bytes());
    let hi = find(&bytes, &[0xBA, 0x82, 0x01, 0x00]).expect("PixelHeight 256");
    bytes[hi + 2..hi + 4].copy_from_slice(&30000u16.to_be_bytes());
    let e = err(&bytes);
    assert!(
        matches!(
            e,
            MediaError::SourceTooLarge {
                width: 30000,
                height: 30000,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string().starts_with("video too large: 30000x30000"),
        "{e}"
    );
}

#[test]
fn input_larger_than_max_input_bytes() {
    let bytes = read(&h264_mp4());
    let options = DecodeOptions {
        max_input_bytes: 1000,
        ..Default::default()
    };
    let e = decode_bytes(&bytes, &options).map(|_| ()).unwrap_err();
    assert!(
        matches!(e, MediaError::TooLarge { len, max: 1000 } if len == bytes.len() as u64),
        "{e:?}"
    );
}

#[test]
fn unknown_codec_is_unsupported() {
    let mut bytes = read(&mjpeg_mkv());
    let at = bytes
        .windows(7)
        .position(|w| w == b"V_MJPEG")
        .expect("codec id in the mkv header");
    bytes[at..at + 7].copy_from_slice(b"V_XJPEG");
    let e = err(&bytes);
    assert!(matches!(e, MediaError::UnsupportedCodec(_)), "{e:?}");
}

#[test]
fn bad_options() {
    let bytes = read(&h264_mp4());
    let bad = [
        DecodeOptions {
            selection: Selection::EveryNth(0),
            ..Default::default()
        },
        DecodeOptions {
            selection: Selection::PerSecond(0.0),
            ..Default::default()
        },
        DecodeOptions {
            selection: Selection::PerSecond(-1.0),
            ..Default::default()
        },
        DecodeOptions {
            selection: Selection::PerSecond(f64::NAN),
            ..Default::default()
        },
        DecodeOptions {
            width: Some(0),
            ..Default::default()
        },
        DecodeOptions {
            height: Some(100_000),
            ..Default::default()
        },
        DecodeOptions {
            max_frames: 0,
            ..Default::default()
        },
    ];
    for options in bad {
        let e = decode_bytes(&bytes, &options).map(|_| ()).unwrap_err();
        assert!(matches!(e, MediaError::BadOptions(_)), "{options:?}: {e:?}");
    }
    assert!("yuv420p".parse::<citadel_media::PixelFormat>().is_err());
}

#[test]
fn missing_file_is_io() {
    let e = decode(
        Input::Path(Path::new("/nonexistent/citadel-media/x.mp4")),
        &DecodeOptions::default(),
        &mut Collect::default(),
    )
    .unwrap_err();
    assert!(matches!(e, MediaError::Io(_)), "{e:?}");
}

/// Fails every read after `ok_reads`.
struct Failing {
    data: Vec<u8>,
    ok_reads: usize,
}

impl ReadAt for Failing {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if self.ok_reads == 0 {
            return Err(io::Error::other("shared memory value went away"));
        }
        self.ok_reads -= 1;
        let start = (offset as usize).min(self.data.len());
        let n = buf.len().min(4096).min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
}

#[test]
fn reader_errors_are_io() {
    let data = read(&mjpeg_mkv());
    for ok_reads in [0, 1, 3, 20] {
        let mut r = Failing {
            data: data.clone(),
            ok_reads,
        };
        let e = decode(
            Input::Reader(&mut r),
            &DecodeOptions::default(),
            &mut Collect::default(),
        )
        .unwrap_err();
        assert!(
            matches!(&e, MediaError::Io(io) if io.to_string().contains("went away")),
            "after {ok_reads} reads: {e:?}"
        );
    }
}

/// A reader that panics: reported as an I/O error, not unwound through FFmpeg.
struct Panics;

impl ReadAt for Panics {
    fn len(&self) -> u64 {
        1000
    }
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> io::Result<usize> {
        panic!("reader bug");
    }
}

#[test]
fn reader_panic_is_io() {
    let e = decode(
        Input::Reader(&mut Panics),
        &DecodeOptions::default(),
        &mut Collect::default(),
    )
    .unwrap_err();
    assert!(matches!(e, MediaError::Io(_)), "{e:?}");
}

#[test]
fn garbage_after_a_valid_header() {
    // A real mkv header followed by noise: recognised, but no frame decodes.
    let bytes = read(&mjpeg_mkv());
    let cluster = bytes
        .windows(4)
        .position(|w| w == [0x1F, 0x43, 0xB6, 0x75])
        .expect("first cluster");
    let mut bad = bytes[..cluster].to_vec();
    bad.extend(noise(50_000, 9));
    let e = err(&bad);
    assert!(matches!(e, MediaError::Corrupt(_)), "{e:?}");
}
