//! The RDB primitives a DUMP payload's object is written with: lengths
//! and strings (LZF-compressed when long and that saves, as Redis does).

use super::lzf;

/// Strings longer than this are LZF-compressed when that saves, as Redis
/// writes them.
const COMPRESS_ABOVE: usize = 20;
/// The LZF string marker (`11` special encoding, ENC_LZF).
const LZF_MARKER: u8 = 0xc3;

pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    if s.len() > COMPRESS_ABOVE && compressed(out, s) {
        return;
    }
    length(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// Appends `s` LZF-compressed (marker, compressed length, length, data)
/// when that saves at least 4 bytes; else leaves `out` as it was. The data
/// is compressed in place after room for the longest header, which is
/// then written in front (moving the data back only when the compressed
/// length takes fewer bytes than `s`'s).
fn compressed(out: &mut Vec<u8>, s: &[u8]) -> bool {
    let mark = out.len();
    let (len, len_bytes) = length_bytes(s.len() as u64);
    // (The compressed length is smaller: it takes at most as many bytes.)
    let room = 1 + 2 * len_bytes;
    out.resize(mark + room, 0);
    if !lzf::compress_into(s, s.len() - 4, out) {
        out.truncate(mark);
        return false;
    }
    let data = out.len() - mark - room;
    let (packed, packed_bytes) = length_bytes(data as u64);
    let header = 1 + packed_bytes + len_bytes;
    if header < room {
        out.copy_within(mark + room.., mark + header);
        out.truncate(mark + header + data);
    }
    out[mark] = LZF_MARKER;
    out[mark + 1..mark + 1 + packed_bytes].copy_from_slice(&packed[..packed_bytes]);
    out[mark + 1 + packed_bytes..mark + header].copy_from_slice(&len[..len_bytes]);
    true
}

/// Redis's length encoding: 6 bits, 14 bits, or a marker byte and a 32- or
/// 64-bit big-endian number.
pub fn length(out: &mut Vec<u8>, len: u64) {
    let (bytes, n) = length_bytes(len);
    out.extend_from_slice(&bytes[..n]);
}

/// `len` in Redis's length encoding: the bytes and how many are used.
fn length_bytes(len: u64) -> ([u8; 9], usize) {
    let mut bytes = [0u8; 9];
    let n = if len < 1 << 6 {
        bytes[0] = len as u8;
        1
    } else if len < 1 << 14 {
        bytes[..2].copy_from_slice(&[0x40 | (len >> 8) as u8, len as u8]);
        2
    } else if let Ok(len) = u32::try_from(len) {
        bytes[0] = 0x80;
        bytes[1..5].copy_from_slice(&len.to_be_bytes());
        5
    } else {
        bytes[0] = 0x81;
        bytes[1..9].copy_from_slice(&len.to_be_bytes());
        9
    };
    (bytes, n)
}
