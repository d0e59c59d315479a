//! LZF decompression (liblzf's format, as Redis writes compressed strings),
//! bounds-checked: a corrupt stream is an error, never a read or write
//! outside the buffers.

/// The most one input byte can expand to: a 3-byte back reference copies
/// at most 7 + 255 + 2 = 264 bytes.
const MAX_RATIO: usize = 88;

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
            // Byte by byte: the source may overlap what is being written.
            let start = out.len() - distance;
            for i in 0..run {
                let b = out[start + i];
                out.push(b);
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_overlapping_back_references() {
        // "abc" as a literal, then a back reference of 6 at distance 3.
        let stream = [2, b'a', b'b', b'c', (4 << 5), 2];
        assert_eq!(decompress(&stream, 9).unwrap(), b"abcabcabc");
        assert_eq!(decompress(&stream, 8), None);
        assert_eq!(decompress(&stream, 10), None);
    }

    #[test]
    fn corrupt_streams_are_rejected() {
        assert_eq!(decompress(&[5, b'a'], 6), None, "short literal");
        assert_eq!(decompress(&[0, b'a', 0x20, 5], 4), None, "distance too far");
        assert_eq!(decompress(&[0, b'a', 0xe0], 20), None, "cut reference");
        assert_eq!(decompress(&[0, b'a'], usize::MAX), None, "absurd length");
    }
}
