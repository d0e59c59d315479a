//! The RDB primitives a DUMP payload's object is written with: lengths
//! and strings (LZF-compressed when long and that saves, as Redis does).

use super::lzf;

/// Strings longer than this are LZF-compressed when that saves, as Redis
/// writes them.
const COMPRESS_ABOVE: usize = 20;
/// The LZF string marker (`11` special encoding, ENC_LZF).
const LZF_MARKER: u8 = 0xc3;

pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() > COMPRESS_ABOVE {
        if let Some(packed) = lzf::compress(s, s.len() - 4) {
            out.push(LZF_MARKER);
            length(out, packed.len() as u64);
            length(out, s.len() as u64);
            out.extend_from_slice(&packed);
            return;
        }
    }
    length(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Redis's length encoding: 6 bits, 14 bits, or a marker byte and a 32- or
/// 64-bit big-endian number.
pub fn length(out: &mut Vec<u8>, len: u64) {
    if len < 1 << 6 {
        out.push(len as u8);
    } else if len < 1 << 14 {
        out.extend_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
    } else if let Ok(len) = u32::try_from(len) {
        out.push(0x80);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&len.to_be_bytes());
    }
}
