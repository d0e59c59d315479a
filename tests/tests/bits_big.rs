//! BITCOUNT and BITPOS over big strings against a real redis-server: a
//! value in one piece (256 KiB) and one stored in chunks (2.5 MiB, past a
//! segment), random bytes, counted whole and over random byte and bit
//! ranges whose ends fall anywhere in a word, near the chunk seams too.

use citadel_tests::differential::{Pair, Rng};

/// Bytes with every bit pattern; runs of 0x00 and 0xff now and then, so
/// BITPOS has something to skip.
fn random_value(rng: &mut Rng, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        let run = match rng.below(40) {
            0 => vec![0u8; rng.below(5000) as usize],
            1 => vec![0xffu8; rng.below(5000) as usize],
            _ => rng.next_u64().to_le_bytes().to_vec(),
        };
        v.extend_from_slice(&run);
    }
    v.truncate(len);
    v
}

/// A position near one of `seams` (or anywhere), from the front or, as a
/// negative index, from the back.
fn position(rng: &mut Rng, total: i64, seams: &[i64]) -> i64 {
    let at = if rng.below(2) == 0 {
        let seam = seams[rng.below(seams.len() as u64) as usize];
        (seam + rng.below(40) as i64 - 20).clamp(0, total)
    } else {
        rng.below(total as u64 + 1) as i64
    };
    if rng.below(4) == 0 {
        at - total
    } else {
        at
    }
}

#[test]
fn big_values_count_and_search_as_redis_does() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x5eed_b175);
    for len in [256 << 10, (5 << 20) / 2] {
        let value = random_value(&mut rng, len);
        pair.same(&[b"SET", b"big", &value]);
        pair.same(&[b"BITCOUNT", b"big"]);
        pair.same(&[b"BITPOS", b"big", b"0"]);
        pair.same(&[b"BITPOS", b"big", b"1"]);
        // Chunk seams: multiples of 1 MiB, give or take a header.
        let seams: Vec<i64> = (0..=3)
            .map(|m| (m << 20) as i64)
            .chain([len as i64])
            .collect();
        for _ in 0..150 {
            let bit = rng.below(2) == 0;
            let total = if bit { len as i64 * 8 } else { len as i64 };
            let scaled: Vec<i64> = seams.iter().map(|s| if bit { s * 8 } else { *s }).collect();
            let start = position(&mut rng, total, &scaled).to_string();
            let end = position(&mut rng, total, &scaled).to_string();
            let unit: &[u8] = if bit { b"BIT" } else { b"BYTE" };
            pair.same(&[b"BITCOUNT", b"big", start.as_bytes(), end.as_bytes(), unit]);
            let which: &[u8] = if rng.below(2) == 0 { b"0" } else { b"1" };
            pair.same(&[
                b"BITPOS",
                b"big",
                which,
                start.as_bytes(),
                end.as_bytes(),
                unit,
            ]);
        }
    }
}
