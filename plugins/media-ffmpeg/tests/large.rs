//! A 200 MB input is read in place: only the bytes FFmpeg needs are touched.

mod common;

use std::io;

use citadel_media::{decode, DecodeOptions, Input, ReadAt};
use common::*;

const LEN: usize = 200 << 20;

/// The test mp4 followed by one 200 MB `free` box (skipped by the demuxer with a seek).
/// `vec![0; n]` leaves untouched pages unmapped, so resident memory shows what was read.
fn padded_mp4() -> Vec<u8> {
    let mp4 = read(&h264_mp4());
    let mut big = vec![0u8; LEN];
    big[..mp4.len()].copy_from_slice(&mp4);
    let free = (LEN - mp4.len()) as u32;
    big[mp4.len()..mp4.len() + 4].copy_from_slice(&free.to_be_bytes());
    big[mp4.len() + 4..mp4.len() + 8].copy_from_slice(b"free");
    big
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

struct Counting<'a> {
    data: &'a [u8],
    read: u64,
}

impl ReadAt for Counting<'_> {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = (offset as usize).min(self.data.len());
        let n = buf.len().min(self.data.len() - start);
        buf[..n].copy_from_slice(&self.data[start..start + n]);
        self.read += n as u64;
        Ok(n)
    }
}

#[test]
fn two_hundred_megabytes_in_place() {
    let big = padded_mp4();
    let before = peak_rss_kib();
    let mut sink = Collect::default();
    let s = decode(Input::Bytes(&big), &DecodeOptions::default(), &mut sink).unwrap();
    assert_eq!(s.frames, 30);
    let grown_mib = (peak_rss_kib() - before) / 1024;
    assert!(
        grown_mib < 64,
        "peak RSS grew by {grown_mib} MiB for a 200 MiB input"
    );

    let mut reader = Counting {
        data: &big,
        read: 0,
    };
    let s = decode(
        Input::Reader(&mut reader),
        &DecodeOptions::default(),
        &mut sink,
    )
    .unwrap();
    assert_eq!(s.frames, 30);
    assert!(reader.read < 4 << 20, "read {} bytes of {LEN}", reader.read);
}
