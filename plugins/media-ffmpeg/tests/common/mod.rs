//! Test helpers: videos made with the `ffmpeg` CLI at test time, and collecting sinks.
#![allow(dead_code)]

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use citadel_media::{FrameInfo, FrameSink, SinkError};

/// Runs `ffmpeg <args> <out>` once (cached under the target's tmp dir by a hash of the
/// arguments) and returns the file. Fails clearly when the CLI is missing or fails.
pub fn video(name: &str, args: &[&str]) -> PathBuf {
    let mut h = DefaultHasher::new();
    (name, args).hash(&mut h);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("citadel-media-fixtures");
    std::fs::create_dir_all(&dir).expect("create the fixture dir");
    let out = dir.join(format!("{:016x}-{name}", h.finish()));
    if out.exists() {
        return out;
    }
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("tmp-{}-{seq}-{name}", std::process::id()));
    let result = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&tmp)
        .output()
        .unwrap_or_else(|e| {
            panic!("these tests make their videos with the `ffmpeg` CLI, which could not be run ({e}); install ffmpeg (apt-get install -y ffmpeg)")
        });
    assert!(
        result.status.success(),
        "ffmpeg {args:?} {name} failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::rename(&tmp, &out).expect("rename the fixture");
    out
}

/// 320x240, 10 fps, 3 s (30 frames) test pattern in `name`'s container with `codec` args.
pub fn testsrc(name: &str, codec: &[&str]) -> PathBuf {
    let mut args = vec![
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=10",
        "-t",
        "3",
    ];
    args.extend_from_slice(codec);
    video(name, &args)
}

/// H.264 in mp4, keyframe every 10 frames.
pub fn h264_mp4() -> PathBuf {
    testsrc(
        "h264.mp4",
        &[
            "-c:v",
            "libx264",
            "-g",
            "10",
            "-sc_threshold",
            "0",
            "-pix_fmt",
            "yuv420p",
        ],
    )
}

pub fn mjpeg_mkv() -> PathBuf {
    testsrc("mjpeg.mkv", &["-c:v", "mjpeg"])
}

pub fn mpeg4_avi() -> PathBuf {
    testsrc("mpeg4.avi", &["-c:v", "mpeg4", "-g", "10"])
}

pub fn read(p: &PathBuf) -> Vec<u8> {
    std::fs::read(p).expect("read fixture")
}

pub fn has_encoder(name: &str) -> bool {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
        .expect("run `ffmpeg -encoders` (is the ffmpeg CLI installed?)");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .any(|w| w == name)
}

const GUARD: usize = 64;

/// Keeps every frame; each buffer has guard bytes after it that must stay untouched.
#[derive(Default)]
pub struct Collect {
    pub frames: Vec<(FrameInfo, Vec<u8>)>,
}

impl FrameSink for Collect {
    fn frame(
        &mut self,
        info: &FrameInfo,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SinkError> {
        let len = info.byte_len();
        let mut buf = vec![0xA5u8; len + GUARD];
        fill(&mut buf[..len]);
        assert!(
            buf[len..].iter().all(|&b| b == 0xA5),
            "the decoder wrote past the frame ({info:?})"
        );
        buf.truncate(len);
        self.frames.push((*info, buf));
        Ok(())
    }
}

/// Fails on frame `fail_at` (0-based); counts calls.
pub struct FailAt {
    pub fail_at: u32,
    pub calls: u32,
}

impl FrameSink for FailAt {
    fn frame(
        &mut self,
        info: &FrameInfo,
        fill: &mut dyn FnMut(&mut [u8]),
    ) -> Result<(), SinkError> {
        self.calls += 1;
        if info.index == self.fail_at {
            return Err(SinkError::new("ring full"));
        }
        let mut buf = vec![0; info.byte_len()];
        fill(&mut buf);
        Ok(())
    }
}
