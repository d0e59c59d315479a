//! Decoding real (generated) videos: selection, sizes, formats, pixels, input kinds.

mod common;

use std::io;

use citadel_media::{
    decode, probe, DecodeOptions, DecodeSummary, Input, PixelFormat, ReadAt, Selection,
};
use common::*;

fn run(bytes: &[u8], options: &DecodeOptions) -> (DecodeSummary, Collect) {
    let mut sink = Collect::default();
    let summary = decode(Input::Bytes(bytes), options, &mut sink).expect("decode");
    assert_eq!(summary.frames as usize, sink.frames.len());
    (summary, sink)
}

fn with(selection: Selection) -> DecodeOptions {
    DecodeOptions {
        selection,
        ..Default::default()
    }
}

#[test]
fn all_frames_h264_mp4() {
    let bytes = read(&h264_mp4());
    let (s, sink) = run(&bytes, &DecodeOptions::default());
    assert_eq!(s.frames, 30);
    assert_eq!(s.decoded, 30);
    assert!(!s.hit_max_frames);
    assert_eq!(s.codec, "h264");
    assert_eq!((s.source_width, s.source_height), (320, 240));
    assert!((2900..=3100).contains(&s.duration_ms), "{}", s.duration_ms);
    for (i, (info, buf)) in sink.frames.iter().enumerate() {
        assert_eq!(info.index as usize, i);
        assert_eq!((info.width, info.height, info.stride), (320, 240, 960));
        assert_eq!(info.pixel_format, PixelFormat::Bgr24);
        assert_eq!(buf.len(), 320 * 240 * 3);
        assert_eq!(info.pts_ms, sink.frames[0].0.pts_ms + 100 * i as i64);
    }
    // Consecutive testsrc frames differ (the counter and the moving gradient).
    assert_ne!(sink.frames[0].1, sink.frames[1].1);
}

#[test]
fn every_nth() {
    let bytes = read(&h264_mp4());
    let (s, sink) = run(&bytes, &with(Selection::EveryNth(5)));
    assert_eq!(s.frames, 6);
    assert_eq!(s.decoded, 30);
    let pts: Vec<i64> = sink.frames.iter().map(|(i, _)| i.pts_ms).collect();
    let t0 = pts[0];
    assert_eq!(pts, [0, 500, 1000, 1500, 2000, 2500].map(|p| t0 + p));
    let (s, _) = run(&bytes, &with(Selection::EveryNth(1)));
    assert_eq!(s.frames, 30);
    let (s, _) = run(&bytes, &with(Selection::EveryNth(100)));
    assert_eq!(s.frames, 1);
}

#[test]
fn per_second() {
    let bytes = read(&h264_mp4());
    let (s, sink) = run(&bytes, &with(Selection::PerSecond(2.0)));
    assert_eq!(s.frames, 6);
    let t0 = sink.frames[0].0.pts_ms;
    let pts: Vec<i64> = sink.frames.iter().map(|(i, _)| i.pts_ms - t0).collect();
    assert_eq!(pts, [0, 500, 1000, 1500, 2000, 2500]);
    assert_eq!(run(&bytes, &with(Selection::PerSecond(1.0))).0.frames, 3);
    assert_eq!(run(&bytes, &with(Selection::PerSecond(0.25))).0.frames, 1);
    assert_eq!(run(&bytes, &with(Selection::PerSecond(50.0))).0.frames, 30);
}

#[test]
fn keyframes_h264() {
    let bytes = read(&h264_mp4());
    let (s, sink) = run(&bytes, &with(Selection::Keyframes));
    assert_eq!(s.frames, 3);
    assert!(sink.frames.iter().all(|(i, _)| i.keyframe));
    let t0 = sink.frames[0].0.pts_ms;
    let pts: Vec<i64> = sink.frames.iter().map(|(i, _)| i.pts_ms - t0).collect();
    assert_eq!(pts, [0, 1000, 2000]);
}

#[test]
fn keyframes_mpeg4_avi() {
    let bytes = read(&mpeg4_avi());
    let (s, sink) = run(&bytes, &with(Selection::Keyframes));
    assert_eq!(s.frames, 3);
    assert_eq!(s.codec, "mpeg4");
    assert!(sink.frames.iter().all(|(i, _)| i.keyframe));
}

#[test]
fn max_frames_stops_early() {
    let bytes = read(&h264_mp4());
    let options = DecodeOptions {
        max_frames: 4,
        ..Default::default()
    };
    let (s, sink) = run(&bytes, &options);
    assert_eq!(s.frames, 4);
    assert!(s.hit_max_frames);
    assert_eq!(sink.frames.last().unwrap().0.index, 3);
    let options = DecodeOptions {
        max_frames: 2,
        selection: Selection::EveryNth(10),
        ..Default::default()
    };
    let (s, _) = run(&bytes, &options);
    assert_eq!((s.frames, s.hit_max_frames), (2, true));
    // Exactly as many as there are: not "hit".
    let options = DecodeOptions {
        max_frames: 30,
        ..Default::default()
    };
    assert_eq!(run(&bytes, &options).0.frames, 30);
}

#[test]
fn other_codecs_and_containers() {
    for (path, codec) in [(mpeg4_avi(), "mpeg4"), (mjpeg_mkv(), "mjpeg")] {
        let bytes = read(&path);
        let (s, sink) = run(&bytes, &DecodeOptions::default());
        assert_eq!((s.frames, s.codec.as_str()), (30, codec), "{path:?}");
        assert_eq!(sink.frames[0].1.len(), 320 * 240 * 3);
        let (s, _) = run(&bytes, &with(Selection::EveryNth(5)));
        assert_eq!(s.frames, 6, "{path:?}");
        let (s, _) = run(&bytes, &with(Selection::PerSecond(2.0)));
        assert_eq!(s.frames, 6, "{path:?}");
    }
}

#[test]
fn vp9_webm_when_libvpx_is_available() {
    if !has_encoder("libvpx-vp9") {
        eprintln!("NOTE: ffmpeg has no libvpx-vp9 encoder; vp9/webm not tested");
        return;
    }
    let path = testsrc(
        "vp9.webm",
        &[
            "-c:v",
            "libvpx-vp9",
            "-g",
            "10",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ],
    );
    let bytes = read(&path);
    let (s, _) = run(&bytes, &DecodeOptions::default());
    assert_eq!((s.frames, s.codec.as_str()), (30, "vp9"));
    let (s, _) = run(&bytes, &with(Selection::Keyframes));
    assert_eq!(s.frames, 3);
}

/// A `ReadAt` that returns at most `chunk` bytes per call.
struct Chunky {
    data: Vec<u8>,
    chunk: usize,
    calls: usize,
}

impl ReadAt for Chunky {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        let start = (offset as usize).min(self.data.len());
        let n = buf.len().min(self.chunk).min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        Ok(n)
    }
}

#[test]
fn bytes_path_and_reader_agree() {
    for path in [h264_mp4(), mjpeg_mkv(), mpeg4_avi()] {
        let bytes = read(&path);
        let options = DecodeOptions {
            selection: Selection::EveryNth(3),
            width: Some(100),
            pixel_format: PixelFormat::Rgb24,
            ..Default::default()
        };
        let (s1, from_bytes) = run(&bytes, &options);
        let mut from_path = Collect::default();
        let s2 = decode(Input::Path(&path), &options, &mut from_path).unwrap();
        let mut reader = Chunky {
            data: bytes.clone(),
            chunk: 1000,
            calls: 0,
        };
        let mut from_reader = Collect::default();
        let s3 = decode(Input::Reader(&mut reader), &options, &mut from_reader).unwrap();
        assert!(reader.calls > 1);
        assert_eq!(s1, s2);
        assert_eq!(s1, s3);
        assert_eq!(s1.frames, 10);
        assert!(
            from_bytes.frames == from_path.frames,
            "{path:?}: bytes vs path"
        );
        assert!(
            from_bytes.frames == from_reader.frames,
            "{path:?}: bytes vs reader"
        );
        // A plain slice is a ReadAt too.
        let mut slice: &[u8] = &bytes;
        let mut from_slice = Collect::default();
        decode(Input::Reader(&mut slice), &options, &mut from_slice).unwrap();
        assert!(from_bytes.frames == from_slice.frames);
    }
}

#[test]
fn probe_describes_the_stream() {
    let bytes = read(&h264_mp4());
    let info = probe(Input::Bytes(&bytes)).unwrap();
    assert_eq!(info.codec, "h264");
    assert!(info.container.contains("mp4"), "{}", info.container);
    assert_eq!((info.width, info.height), (320, 240));
    assert!((info.frame_rate - 10.0).abs() < 0.01);
    assert_eq!(info.frames, 30);
    assert!((2900..=3100).contains(&info.duration_ms));
}

#[test]
fn sink_error_stops_decoding() {
    let bytes = read(&h264_mp4());
    let mut sink = FailAt {
        fail_at: 2,
        calls: 0,
    };
    let err = decode(Input::Bytes(&bytes), &DecodeOptions::default(), &mut sink).unwrap_err();
    assert!(
        matches!(&err, citadel_media::MediaError::Sink(e) if e.0 == "ring full"),
        "{err:?}"
    );
    assert_eq!(sink.calls, 3);
    assert_eq!(err.to_string(), "sink error: ring full");
}

#[test]
fn short_sink_buffer_is_an_error() {
    struct Short;
    impl citadel_media::FrameSink for Short {
        fn frame(
            &mut self,
            info: &citadel_media::FrameInfo,
            fill: &mut dyn FnMut(&mut [u8]),
        ) -> Result<(), citadel_media::SinkError> {
            let mut buf = vec![0; info.byte_len() - 1];
            fill(&mut buf);
            Ok(())
        }
    }
    let bytes = read(&h264_mp4());
    let err = decode(Input::Bytes(&bytes), &DecodeOptions::default(), &mut Short).unwrap_err();
    assert!(matches!(err, citadel_media::MediaError::Sink(_)), "{err:?}");
}
