//! Writing an [`RdbValue`] as a DUMP payload's object, in the simplest
//! forms Redis 7.0 loads: strings (LZF-compressed when long and that
//! saves, as Redis does), RDB_TYPE_LIST / SET / HASH and ZSET_2 (binary
//! doubles). Redis re-encodes small ones (listpack, intset) as it loads
//! them.

use super::{lzf, types, RdbValue};

/// The type byte and the object of `value`, appended to `out`.
pub fn object(value: &RdbValue, out: &mut Vec<u8>) {
    match value {
        RdbValue::String(s) => {
            out.push(types::STRING);
            string(out, s);
        }
        RdbValue::List(elements) => {
            out.push(types::LIST);
            strings(out, elements);
        }
        RdbValue::Set(members) => {
            out.push(types::SET);
            strings(out, members);
        }
        RdbValue::ZSet(pairs) => {
            out.push(types::ZSET_2);
            length(out, pairs.len() as u64);
            for (member, score) in pairs {
                string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        RdbValue::Hash(pairs) => {
            out.push(types::HASH);
            length(out, pairs.len() as u64);
            for (field, value) in pairs {
                string(out, field);
                string(out, value);
            }
        }
    }
}

fn strings(out: &mut Vec<u8>, elements: &[Vec<u8>]) {
    length(out, elements.len() as u64);
    for e in elements {
        string(out, e);
    }
}

/// Strings longer than this are LZF-compressed when that saves, as Redis
/// writes them.
const COMPRESS_ABOVE: usize = 20;
/// The LZF string marker (`11` special encoding, ENC_LZF).
const LZF_MARKER: u8 = 0xc3;

fn string(out: &mut Vec<u8>, s: &[u8]) {
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
