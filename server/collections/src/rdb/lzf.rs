//! LZF (liblzf's format, as Redis writes compressed strings): a simple
//! compressor for DUMP, and a bounds-checked decompressor for RESTORE (a
//! corrupt stream is an error, never a read or write outside the buffers).

/// The most one input byte can expand to: a 3-byte back reference copies
/// at most 7 + 255 + 2 = 264 bytes.
const MAX_RATIO: usize = 88;

/// Longest back reference: 7 + 255 + 2 bytes.
const MAX_MATCH: usize = 264;
/// Farthest back reference: 13 bits of distance - 1.
const MAX_DISTANCE: usize = 1 << 13;
/// Longest literal run: 5 bits of length - 1.
const MAX_LITERALS: usize = 32;
/// The hash table of 3-byte sequences: about one slot per input byte, so
/// the many short strings of a big collection stay cheap.
const MAX_HASH_BITS: u32 = 14;
const MIN_HASH_BITS: u32 = 6;

thread_local! {
    /// The hash table of the last compression on this thread, reused: a
    /// big collection's DUMP compresses a string per element or node, and
    /// allocating and zeroing a table for each cost more than compressing.
    static TABLE: std::cell::RefCell<Vec<u32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Appends `input` compressed to `out` and returns true when that is
/// smaller than `limit` bytes (Redis keeps a string plain unless
/// compression saves); else leaves `out` as it was. The output is
/// the same for the same input whatever ran before (the table is cleared
/// first).
pub fn compress_into(input: &[u8], limit: usize, out: &mut Vec<u8>) -> bool {
    // (Positions fit u32: a string is at most 512 MB.)
    if u32::try_from(input.len()).is_err() {
        return false;
    }
    let bits = input
        .len()
        .next_power_of_two()
        .trailing_zeros()
        .clamp(MIN_HASH_BITS, MAX_HASH_BITS);
    TABLE.with(|table| {
        let mut table = table.borrow_mut();
        table.clear();
        table.resize(1 << bits, 0);
        let start = out.len();
        out.reserve(limit);
        let fits = compress_with(input, limit, &mut table, bits, out, start);
        if !fits {
            out.truncate(start);
        }
        fits
    })
}

/// The compressor proper: `table` holds, per hash of a 3-byte sequence,
/// the position + 1 of its last occurrence (0: none); what it writes
/// goes after `start` in `out`.
fn compress_with(
    input: &[u8],
    limit: usize,
    table: &mut [u32],
    bits: u32,
    out: &mut Vec<u8>,
    start: usize,
) -> bool {
    let mut literals = 0;
    let mut ip = 0;
    while ip + 2 < input.len() {
        let seq = &input[ip..ip + 3];
        let hash = (u32::from_le_bytes([seq[0], seq[1], seq[2], 0]).wrapping_mul(0x9e37_79b1)
            >> (32 - bits)) as usize;
        let candidate = std::mem::replace(&mut table[hash], ip as u32 + 1) as usize;
        let found = candidate
            .checked_sub(1)
            .filter(|&r| ip - r <= MAX_DISTANCE && input[r..r + 3] == *seq);
        let Some(reference) = found else {
            literals += 1;
            ip += 1;
            if literals == MAX_LITERALS {
                flush_literals(out, &input[ip - literals..ip]);
                literals = 0;
            }
            continue;
        };
        flush_literals(out, &input[ip - literals..ip]);
        literals = 0;
        let longest = MAX_MATCH.min(input.len() - ip);
        let len = (3..longest)
            .find(|&n| input[reference + n] != input[ip + n])
            .unwrap_or(longest);
        let distance = ip - reference - 1;
        let run = len - 2;
        let high = (distance >> 8) as u8;
        if run < 7 {
            out.push(high | (run as u8) << 5);
        } else {
            out.extend_from_slice(&[high | 7 << 5, (run - 7) as u8]);
        }
        out.push(distance as u8);
        ip += len;
        if out.len() - start >= limit {
            return false;
        }
    }
    literals += input.len() - ip;
    let mut tail = &input[input.len() - literals..];
    while !tail.is_empty() {
        let (run, rest) = tail.split_at(tail.len().min(MAX_LITERALS));
        flush_literals(out, run);
        tail = rest;
    }
    out.len() - start < limit
}

/// A literal run: its length - 1, then the bytes (none: nothing).
fn flush_literals(out: &mut Vec<u8>, run: &[u8]) {
    if !run.is_empty() {
        out.push((run.len() - 1) as u8);
        out.extend_from_slice(run);
    }
}

/// Decompresses `input` into exactly `len` bytes; None if the stream is
/// corrupt or does not produce exactly `len` bytes.
pub fn decompress(input: &[u8], len: usize) -> Option<Vec<u8>> {
    if len > input.len().saturating_mul(MAX_RATIO) {
        return None;
    }
    let mut out = Vec::with_capacity(len);
    let mut ip = 0;
    while ip < input.len() {
        let ctrl = usize::from(input[ip]);
        ip += 1;
        if ctrl < 32 {
            // A literal run of ctrl + 1 bytes.
            let run = input.get(ip..ip + ctrl + 1)?;
            if out.len() + run.len() > len {
                return None;
            }
            out.extend_from_slice(run);
            ip += run.len();
        } else {
            // A back reference: length in the top 3 bits (7: one more
            // byte), distance in the low 5 bits and the next byte.
            let mut run = ctrl >> 5;
            if run == 7 {
                run += usize::from(*input.get(ip)?);
                ip += 1;
            }
            run += 2;
            let distance = ((ctrl & 0x1f) << 8) + usize::from(*input.get(ip)?) + 1;
            ip += 1;
            if distance > out.len() || out.len() + run > len {
                return None;
            }
            let start = out.len() - distance;
            if distance >= run {
                out.extend_from_within(start..start + run);
            } else {
                // Byte by byte: the source overlaps what is being written.
                for i in 0..run {
                    let b = out[start + i];
                    out.push(b);
                }
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `input` compressed, None unless that is under `limit` bytes.
    fn compress(input: &[u8], limit: usize) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        compress_into(input, limit, &mut out).then_some(out)
    }

    #[test]
    fn literals_and_overlapping_back_references() {
        // "abc" as a literal, then a back reference of 6 at distance 3.
        let stream = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&stream, 9).unwrap(), b"abcabcabc");
        assert_eq!(decompress(&stream, 8), None);
        assert_eq!(decompress(&stream, 10), None);
    }

    #[test]
    fn compressed_streams_decompress_to_the_input() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let mut random = |modulo: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % modulo) as u8
        };
        let few_symbols: Vec<u8> = (0..5000).map(|_| random(4)).collect();
        let noise: Vec<u8> = (0..300).map(|_| random(256)).collect();
        let inputs = [
            b"abc".repeat(2000),
            vec![7; 100_000],
            (0..20_000u32).map(|i| (i % 251) as u8).collect(),
            b"hello hello hello hello".to_vec(),
            few_symbols,
        ];
        for input in inputs {
            let packed = compress(&input, input.len()).expect("compressible");
            assert!(packed.len() < input.len());
            assert_eq!(decompress(&packed, input.len()).unwrap(), input);
        }
        assert_eq!(compress(&noise, noise.len() - 4), None);
    }

    #[test]
    fn the_output_does_not_depend_on_what_was_compressed_before() {
        let input = b"abcdefgh-abcdefgh-abcdefgh-0123".repeat(3);
        let first = compress(&input, input.len()).unwrap();
        let other: Vec<u8> = (0..4000u32).map(|i| (i * 7 % 13) as u8).collect();
        compress(&other, other.len()).unwrap();
        assert_eq!(compress(&input, input.len()).unwrap(), first);
        let mut out = b"kept".to_vec();
        assert!(!compress_into(
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
            5,
            &mut out
        ));
        assert_eq!(out, b"kept", "a failed compression leaves the output");
    }

    #[test]
    fn corrupt_streams_are_rejected() {
        assert_eq!(decompress(&[5, b'a'], 6), None, "short literal");
        assert_eq!(decompress(&[0, b'a', 0x20, 5], 4), None, "distance too far");
        assert_eq!(decompress(&[0, b'a', 0xe0], 20), None, "cut reference");
        assert_eq!(decompress(&[0, b'a'], usize::MAX), None, "absurd length");
    }
}
