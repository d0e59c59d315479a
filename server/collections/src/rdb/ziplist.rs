//! Redis's ziplist blob (the encodings before 7.0: hash, sorted set and
//! list nodes), read element by element, bounds-checked.
//!
//! ```text
//! total_bytes:u32le | tail_offset:u32le | count:u16le | entry* | 0xff
//! entry = prevlen (1 byte, or 0xfe + u32le) | encoding | data
//! ```

use super::listpack::{decimal, sign_extend};
use super::RdbError;

const HEADER: usize = 10;
const END: u8 = 0xff;
const UNKNOWN_COUNT: u16 = u16::MAX;

/// The elements of `blob` in order; integers come back as decimal text.
pub fn elements(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    let header = blob.get(..HEADER).ok_or(RdbError::BadData)?;
    let word = |i: usize| u32::from_le_bytes(header[i..i + 4].try_into().expect("4 bytes"));
    let (total, tail) = (word(0), word(4));
    let count = u16::from_le_bytes(header[8..10].try_into().expect("2 bytes"));
    if usize::try_from(total).ok() != Some(blob.len()) || tail as usize >= blob.len() {
        return Err(RdbError::BadData);
    }
    let mut out = Vec::new();
    let mut pos = HEADER;
    let mut previous = 0;
    loop {
        let rest = blob.get(pos..).ok_or(RdbError::BadData)?;
        match rest.first() {
            None => return Err(RdbError::BadData),
            Some(&END) => {
                pos += 1;
                break;
            }
            Some(_) => {}
        }
        let (element, len) = entry(rest, previous)?;
        out.push(element);
        pos += len;
        previous = len;
    }
    if pos != blob.len() || (count != UNKNOWN_COUNT && usize::from(count) != out.len()) {
        return Err(RdbError::BadData);
    }
    Ok(out)
}

/// One entry at the start of `p` (whose predecessor was `previous` bytes
/// long): its element and its whole length.
fn entry(p: &[u8], previous: usize) -> Result<(Vec<u8>, usize), RdbError> {
    let byte = |i: usize| p.get(i).copied().ok_or(RdbError::BadData);
    let (prevlen, mut pos) = match byte(0)? {
        0xfe => {
            let raw = p.get(1..5).ok_or(RdbError::BadData)?;
            (
                u32::from_le_bytes(raw.try_into().expect("4 bytes")) as usize,
                5,
            )
        }
        b => (usize::from(b), 1),
    };
    if prevlen != previous {
        return Err(RdbError::BadData);
    }
    let e = byte(pos)?;
    pos += 1;
    let string_len = match e >> 6 {
        0 => Some(usize::from(e & 0x3f)),
        1 => {
            let low = byte(pos)?;
            pos += 1;
            Some((usize::from(e & 0x3f) << 8) | usize::from(low))
        }
        2 if e == 0x80 => {
            let raw = p.get(pos..pos + 4).ok_or(RdbError::BadData)?;
            pos += 4;
            Some(u32::from_be_bytes(raw.try_into().expect("4 bytes")) as usize)
        }
        2 => return Err(RdbError::BadData),
        _ => None,
    };
    if let Some(len) = string_len {
        let end = pos.checked_add(len).ok_or(RdbError::BadData)?;
        let data = p.get(pos..end).ok_or(RdbError::BadData)?;
        return Ok((data.to_vec(), end));
    }
    let bits = match e {
        0xfe => 8,
        0xc0 => 16,
        0xf0 => 24,
        0xd0 => 32,
        0xe0 => 64,
        0xf1..=0xfd => return Ok((decimal(i64::from(e & 0x0f) - 1), pos)),
        _ => return Err(RdbError::BadData),
    };
    let n = bits as usize / 8;
    let data = p.get(pos..pos + n).ok_or(RdbError::BadData)?;
    let raw = data
        .iter()
        .rev()
        .fold(0u64, |v, &b| (v << 8) | u64::from(b));
    Ok((decimal(sign_extend(raw, bits)), pos + n))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A ziplist of `entries` (encoding+data each), prevlens added.
    pub fn ziplist(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        let mut previous = 0usize;
        let mut tail = HEADER;
        for e in entries {
            tail = HEADER + body.len();
            if previous < 254 {
                body.push(previous as u8);
            } else {
                body.push(0xfe);
                body.extend_from_slice(&(previous as u32).to_le_bytes());
            }
            body.extend_from_slice(e);
            previous = HEADER + body.len() - tail;
        }
        let total = (HEADER + body.len() + 1) as u32;
        let mut out = total.to_le_bytes().to_vec();
        out.extend_from_slice(&(tail as u32).to_le_bytes());
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(END);
        out
    }

    #[test]
    fn every_integer_and_string_encoding() {
        let long = [vec![0x41, 0x2c], vec![b'z'; 300]].concat();
        let zl = ziplist(&[
            &[0x02, b'h', b'i'],
            &[0xf1],
            &[0xfd],
            &[0xfe, 0x80],
            &[0xc0, 0x00, 0x80],
            &[0xf0, 0xff, 0xff, 0x7f],
            &[0xd0, 0xff, 0xff, 0xff, 0xff],
            &[0xe0, 1, 0, 0, 0, 0, 0, 0, 0],
            &long,
            &[0x80, 0, 0, 0, 1, b'q'],
        ]);
        let got = elements(&zl).unwrap();
        let want: Vec<Vec<u8>> = [
            &b"hi"[..],
            b"0",
            b"12",
            b"-128",
            b"-32768",
            b"8388607",
            b"-1",
            b"1",
            &[b'z'; 300],
            b"q",
        ]
        .iter()
        .map(|e| e.to_vec())
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_truncation_and_bad_prevlen_is_an_error() {
        let zl = ziplist(&[&[0x02, b'h', b'i'], &[0xf2]]);
        for cut in 0..zl.len() {
            assert_eq!(elements(&zl[..cut]), Err(RdbError::BadData), "cut {cut}");
        }
        let mut bad = zl;
        bad[14] = 9;
        assert_eq!(elements(&bad), Err(RdbError::BadData));
    }
}
