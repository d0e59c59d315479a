//! Redis's listpack blob (hash, sorted set, list-node and stream-node
//! encodings of Redis 7.0), read element by element with every length
//! checked against the blob: a corrupt listpack is an error, never a
//! panic; and written ([`ListpackWriter`], for stream nodes).
//!
//! ```text
//! total_bytes:u32le | count:u16le (65535: unknown) | entry* | 0xff
//! entry = encoding+data | backlen (1-5 bytes, the entry's length)
//! ```

use super::RdbError;

const HEADER: usize = 6;
const END: u8 = 0xff;
const UNKNOWN_COUNT: u16 = u16::MAX;

/// One element as stored: an integer, or a string borrowed from the blob.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Element<'a> {
    Int(i64),
    Str(&'a [u8]),
}

impl Element<'_> {
    /// The element as text (an integer in decimal, as Redis reads it).
    pub fn to_vec(self) -> Vec<u8> {
        match self {
            Element::Int(n) => decimal(n),
            Element::Str(s) => s.to_vec(),
        }
    }
}

/// The elements of `blob` in order; integers come back as decimal text.
pub fn elements(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    Ok(stored(blob)?.into_iter().map(Element::to_vec).collect())
}

/// The elements of `blob` in order, as stored (no copy, no integer
/// turned into text: a stream node's many small integers).
pub fn stored(blob: &[u8]) -> Result<Vec<Element<'_>>, RdbError> {
    let header = blob.get(..HEADER).ok_or(RdbError::BadData)?;
    let total = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let count = u16::from_le_bytes(header[4..6].try_into().expect("2 bytes"));
    if usize::try_from(total).ok() != Some(blob.len()) {
        return Err(RdbError::BadData);
    }
    let mut out = Vec::new();
    let mut pos = HEADER;
    loop {
        let rest = blob.get(pos..).ok_or(RdbError::BadData)?;
        if rest.first() == Some(&END) {
            pos += 1;
            break;
        }
        let (element, len) = entry(rest)?;
        let back = rest
            .get(len..len + backlen_size(len))
            .ok_or(RdbError::BadData)?;
        let stored = back
            .iter()
            .fold(0usize, |v, &b| (v << 7) | usize::from(b & 0x7f));
        if stored != len {
            return Err(RdbError::BadData);
        }
        pos += len + back.len();
        out.push(element);
    }
    if pos != blob.len() || (count != UNKNOWN_COUNT && usize::from(count) != out.len()) {
        return Err(RdbError::BadData);
    }
    Ok(out)
}

/// A listpack being written, in Redis's encodings: integers (and strings
/// that are canonical integers, as `lpAppend` stores them) in the
/// smallest integer form, other strings with a 6-, 12- or 32-bit length.
pub struct ListpackWriter {
    /// The blob so far: a header to fill in, then the entries.
    blob: Vec<u8>,
    count: usize,
}

impl Default for ListpackWriter {
    fn default() -> ListpackWriter {
        ListpackWriter::with_capacity(64)
    }
}

impl ListpackWriter {
    /// A writer whose blob takes about `bytes` without growing.
    pub fn with_capacity(bytes: usize) -> ListpackWriter {
        let mut blob = Vec::with_capacity(bytes.max(HEADER + 1));
        blob.resize(HEADER, 0);
        ListpackWriter { blob, count: 0 }
    }

    /// Elements written so far.
    pub fn count(&self) -> usize {
        self.count
    }

    /// The blob's size if finished now.
    pub fn bytes(&self) -> usize {
        self.blob.len() + 1
    }

    /// The bytes [`Self::string`] adds for `s`, back-length included.
    pub fn entry_bytes(s: &[u8]) -> usize {
        let entry = match canonical_int(s) {
            Some(0..=127) => 1,
            Some(-4096..=4095) => 2,
            Some(-32768..=32767) => 3,
            Some(-8388608..=8388607) => 4,
            Some(-2147483648..=2147483647) => 5,
            Some(_) => 9,
            None if s.len() < 64 => 1 + s.len(),
            None if s.len() < 4096 => 2 + s.len(),
            None => 5 + s.len(),
        };
        entry + backlen_size(entry)
    }

    pub fn int(&mut self, n: i64) {
        let start = self.blob.len();
        let b = &mut self.blob;
        match n {
            0..=127 => b.push(n as u8),
            -4096..=4095 => {
                let raw = (n as u64 & 0x1fff) as u16;
                b.extend_from_slice(&[0xc0 | (raw >> 8) as u8, raw as u8]);
            }
            -32768..=32767 => {
                b.push(0xf1);
                b.extend_from_slice(&(n as i16).to_le_bytes());
            }
            -8388608..=8388607 => {
                b.push(0xf2);
                b.extend_from_slice(&(n as i32).to_le_bytes()[..3]);
            }
            -2147483648..=2147483647 => {
                b.push(0xf3);
                b.extend_from_slice(&(n as i32).to_le_bytes());
            }
            _ => {
                b.push(0xf4);
                b.extend_from_slice(&n.to_le_bytes());
            }
        }
        self.end_entry(start);
    }

    pub fn string(&mut self, s: &[u8]) {
        if let Some(n) = canonical_int(s) {
            return self.int(n);
        }
        self.raw_string(s);
    }

    /// `s` in a string encoding even when it spells an integer (Redis
    /// never writes that; tests forge it).
    pub fn raw_string(&mut self, s: &[u8]) {
        let start = self.blob.len();
        let b = &mut self.blob;
        let len = s.len();
        if len < 64 {
            b.push(0x80 | len as u8);
        } else if len < 4096 {
            b.extend_from_slice(&[0xe0 | (len >> 8) as u8, len as u8]);
        } else {
            b.push(0xf0);
            b.extend_from_slice(&(len as u32).to_le_bytes());
        }
        b.extend_from_slice(s);
        self.end_entry(start);
    }

    /// Appends the back-length of the entry written from `start`: its
    /// length, 7 bits a byte, most significant first, high bit set on all
    /// but the first.
    fn end_entry(&mut self, start: usize) {
        let len = self.blob.len() - start;
        let size = backlen_size(len);
        for i in (0..size).rev() {
            let bits = ((len >> (7 * i)) & 0x7f) as u8;
            self.blob
                .push(if i + 1 == size { bits } else { bits | 0x80 });
        }
        self.count += 1;
    }

    /// The listpack blob.
    pub fn finish(self) -> Vec<u8> {
        let mut blob = self.blob;
        blob.push(END);
        let total = blob.len() as u32;
        blob[..4].copy_from_slice(&total.to_le_bytes());
        let count = u16::try_from(self.count).unwrap_or(UNKNOWN_COUNT);
        blob[4..HEADER].copy_from_slice(&count.to_le_bytes());
        blob
    }
}

/// `s` as an integer when it is one's canonical decimal text (no sign
/// but a leading `-`, no leading zeros, not `-0`), without allocating:
/// called for every field and value a stream node holds.
pub(super) fn canonical_int(s: &[u8]) -> Option<i64> {
    let (negative, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    match digits {
        [b'0'] if !negative => return Some(0),
        [] | [b'0', ..] => return None,
        _ if digits.len() > 19 => return None,
        _ => {}
    }
    // (19 digits stay under 2^64: no overflow before the range check.)
    let mut magnitude: u64 = 0;
    for &c in digits {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        magnitude = magnitude * 10 + u64::from(digit);
    }
    if negative {
        // -2^63 included.
        (magnitude <= 1 << 63).then(|| 0i64.wrapping_sub_unsigned(magnitude))
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// Bytes the back-length of an entry of `len` bytes takes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16382 => 2,
        16383..=2097150 => 3,
        2097151..=268435454 => 4,
        _ => 5,
    }
}

/// One entry at the start of `p`: its element and its length (encoding
/// and data, without the back-length).
fn entry(p: &[u8]) -> Result<(Element<'_>, usize), RdbError> {
    let b = *p.first().ok_or(RdbError::BadData)?;
    let byte = |i: usize| p.get(i).copied().map(usize::from).ok_or(RdbError::BadData);
    let int = |header: usize, bits: u32| -> Result<(Element<'_>, usize), RdbError> {
        let n = (bits / 8) as usize;
        let data = p.get(header..header + n).ok_or(RdbError::BadData)?;
        let raw = data
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b));
        Ok((Element::Int(sign_extend(raw, bits)), header + n))
    };
    let string = |header: usize, len: usize| -> Result<(Element<'_>, usize), RdbError> {
        let end = header.checked_add(len).ok_or(RdbError::BadData)?;
        let data = p.get(header..end).ok_or(RdbError::BadData)?;
        Ok((Element::Str(data), end))
    };
    match b {
        0x00..=0x7f => Ok((Element::Int(i64::from(b)), 1)),
        0x80..=0xbf => string(1, usize::from(b & 0x3f)),
        0xc0..=0xdf => {
            let raw = (u64::from(b & 0x1f) << 8) | byte(1)? as u64;
            Ok((Element::Int(sign_extend(raw, 13)), 2))
        }
        0xe0..=0xef => string(2, (usize::from(b & 0x0f) << 8) | byte(1)?),
        0xf0 => {
            let len = p.get(1..5).ok_or(RdbError::BadData)?;
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes"));
            string(5, usize::try_from(len).map_err(|_| RdbError::BadData)?)
        }
        0xf1 => int(1, 16),
        0xf2 => int(1, 24),
        0xf3 => int(1, 32),
        0xf4 => int(1, 64),
        _ => Err(RdbError::BadData),
    }
}

/// The `bits`-bit two's complement value in the low bits of `raw`.
pub fn sign_extend(raw: u64, bits: u32) -> i64 {
    let shift = 64 - bits;
    ((raw << shift) as i64) >> shift
}

pub fn decimal(n: i64) -> Vec<u8> {
    crate::decimal::i64_text(n, &mut [0; 20]).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listpack of `entries` (encoding+data each), back-lengths added.
    fn listpack(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            assert!(e.len() < 128);
            body.push(e.len() as u8);
        }
        let total = (HEADER + body.len() + 1) as u32;
        let mut out = total.to_le_bytes().to_vec();
        out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
        out.extend_from_slice(&body);
        out.push(END);
        out
    }

    #[test]
    fn every_integer_and_string_encoding() {
        let lp = listpack(&[
            &[0x05],
            &[0x82, b'h', b'i'],
            &[0xdf, 0xff],
            &[0xc0, 0x64],
            &[0xe0, 0x01, b'x'],
            &[0xf1, 0x00, 0x80],
            &[0xf2, 0xff, 0xff, 0x7f],
            &[0xf3, 0xff, 0xff, 0xff, 0xff],
            &[0xf4, 0, 0, 0, 0, 0, 0, 0, 0x80],
            &[0xf0, 1, 0, 0, 0, b'y'],
        ]);
        let got = elements(&lp).unwrap();
        let want: [&[u8]; 10] = [
            b"5",
            b"hi",
            b"-1",
            b"100",
            b"x",
            b"-32768",
            b"8388607",
            b"-1",
            b"-9223372036854775808",
            b"y",
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn written_listpacks_read_back_in_every_width() {
        let mut w = ListpackWriter::default();
        let ints = [
            0,
            127,
            128,
            -1,
            -4096,
            4095,
            4096,
            -32768,
            32767,
            -8388608,
            8388607,
            1 << 31,
            i64::MIN,
            i64::MAX,
        ];
        for n in ints {
            w.int(n);
        }
        let long = vec![b'x'; 5000];
        let strings: [&[u8]; 7] = [b"", b"abc", &[b'y'; 63], &[b'z'; 64], &long, b"007", b"-0"];
        for s in strings {
            w.string(s);
        }
        w.string(b"-12");
        let blob = w.finish();
        let got = elements(&blob).unwrap();
        let mut want: Vec<Vec<u8>> = ints.iter().map(|&n| decimal(n)).collect();
        want.extend(strings.iter().map(|s| s.to_vec()));
        want.push(b"-12".to_vec());
        assert_eq!(got, want);
        for (text, int) in [
            (&b"-9223372036854775808"[..], Some(i64::MIN)),
            (b"9223372036854775807", Some(i64::MAX)),
            (b"9223372036854775808", None),
            (b"0", Some(0)),
            (b"", None),
            (b"-", None),
            (b"+1", None),
            (b"1x", None),
            (b"00", None),
        ] {
            assert_eq!(canonical_int(text), int, "{text:?}");
        }
        // "-12" is stored as an integer (2 bytes and its back-length).
        assert_eq!(&blob[blob.len() - 4..], &[0xdf, 0xf4, 2, END]);
    }

    #[test]
    fn every_truncation_and_bad_backlen_is_an_error() {
        let lp = listpack(&[&[0x82, b'h', b'i'], &[0x05]]);
        for cut in 0..lp.len() {
            assert_eq!(elements(&lp[..cut]), Err(RdbError::BadData), "cut {cut}");
        }
        let mut bad = lp.clone();
        bad[9] = 2;
        assert_eq!(elements(&bad), Err(RdbError::BadData));
        // A header alone, its total agreeing: no end byte (found by fuzzing).
        assert_eq!(elements(&[6, 0, 0, 0, 0, 0]), Err(RdbError::BadData));
        let mut wrong_count = lp;
        wrong_count[4] = 3;
        assert_eq!(elements(&wrong_count), Err(RdbError::BadData));
    }
}
