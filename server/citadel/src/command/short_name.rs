//! Command names of up to 8 bytes as one case-folded `u64`, so the command
//! table finds GET or SET with one multiply and one compare instead of a
//! byte-by-byte hash and a case-insensitive string comparison.

const ONES: u64 = 0x0101_0101_0101_0101;

/// Longest name that packs into one word.
pub const MAX: usize = 8;

/// `name` (at most `MAX` bytes) little-endian in a zero-padded word, ASCII
/// letters lowercased (other bytes, non-ASCII included, as they are: the same
/// folding as `eq_ignore_ascii_case`). Names of different lengths can pack
/// alike (`get` and `get\0`): compare the length too.
#[inline]
pub fn pack(name: &[u8]) -> u64 {
    debug_assert!(name.len() <= MAX);
    let mut v = 0u64;
    for (i, &c) in name.iter().enumerate() {
        v |= u64::from(c) << (8 * i);
    }
    lowercase(v)
}

/// Adds 0x20 to every byte in `A..=Z`, all eight bytes at once. Each byte's
/// low 7 bits plus a constant stays below 0x100, so no carry crosses bytes;
/// bit 7 of the sums says "above Z" and "at least A".
#[inline]
fn lowercase(v: u64) -> u64 {
    let low7 = v & (0x7f * ONES);
    let above_z = low7 + (0x7f - u64::from(b'Z')) * ONES;
    let from_a = low7 + (0x80 - u64::from(b'A')) * ONES;
    let upper = from_a & !above_z & !v & (0x80 * ONES);
    v | (upper >> 2)
}

/// Slot of a packed name in a table of `slots` (a power of two) entries.
#[inline]
pub fn slot(packed: u64, len: usize, slots: usize) -> usize {
    let mixed = (packed ^ len as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (mixed >> 32) as usize & (slots - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_like_eq_ignore_ascii_case() {
        let names: [&[u8]; 8] = [
            b"get",
            b"GET",
            b"GeT",
            b"@[`{",
            b"a-Z_09",
            b"\xc3\x89t\xc3\xa9",
            b"",
            b"HGETALL!",
        ];
        for a in names {
            for b in names {
                let same = a.len() == b.len() && pack(a) == pack(b);
                assert_eq!(same, a.eq_ignore_ascii_case(b), "{a:?} {b:?}");
            }
        }
        for c in 0..=255u8 {
            assert_eq!(pack(&[c]), u64::from(c.to_ascii_lowercase()), "{c}");
        }
    }
}
