//! The RDB primitives of a DUMP payload's object: lengths, strings (plain,
//! integer-encoded or LZF-compressed) and doubles, each bounds-checked.

use std::borrow::Cow;

use super::{lzf, RdbError};

/// Special string encodings (the low bits of a `11xxxxxx` length byte).
const ENC_INT8: u8 = 0;
const ENC_INT16: u8 = 1;
const ENC_INT32: u8 = 2;
const ENC_LZF: u8 = 3;

/// A cursor over the object bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

/// A length, or the encoding of a special string.
enum Length {
    Plain(u64),
    Encoded(u8),
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, pos: 0 }
    }

    /// Whether every byte was read.
    pub fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn u8(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8], RdbError> {
        let end = self.pos.checked_add(n).ok_or(RdbError::BadData)?;
        let bytes = self.bytes.get(self.pos..end).ok_or(RdbError::BadData)?;
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RdbError> {
        Ok(self.take(N)?.try_into().expect("take returns N bytes"))
    }

    fn length_or_encoding(&mut self) -> Result<Length, RdbError> {
        let first = self.u8()?;
        let low = u64::from(first & 0x3f);
        Ok(match first >> 6 {
            0 => Length::Plain(low),
            1 => Length::Plain((low << 8) | u64::from(self.u8()?)),
            2 => match first {
                0x80 => Length::Plain(u64::from(u32::from_be_bytes(self.array()?))),
                0x81 => Length::Plain(u64::from_be_bytes(self.array()?)),
                _ => return Err(RdbError::BadData),
            },
            _ => Length::Encoded(first & 0x3f),
        })
    }

    /// A plain length (an encoded string marker is an error here).
    pub fn length(&mut self) -> Result<u64, RdbError> {
        match self.length_or_encoding()? {
            Length::Plain(len) => Ok(len),
            Length::Encoded(_) => Err(RdbError::BadData),
        }
    }

    /// A count of things that take at least `min_bytes` each: bounded by
    /// the bytes left, so a forged count cannot ask for a huge allocation.
    pub fn count(&mut self, min_bytes: usize) -> Result<usize, RdbError> {
        let count = usize::try_from(self.length()?).map_err(|_| RdbError::BadData)?;
        if count.saturating_mul(min_bytes) > self.remaining() {
            return Err(RdbError::BadData);
        }
        Ok(count)
    }

    /// A string in any of its encodings (integers come back as decimal
    /// text, as Redis reads them).
    pub fn string(&mut self) -> Result<Cow<'a, [u8]>, RdbError> {
        match self.length_or_encoding()? {
            Length::Plain(len) => {
                let len = usize::try_from(len).map_err(|_| RdbError::BadData)?;
                Ok(Cow::Borrowed(self.take(len)?))
            }
            Length::Encoded(ENC_INT8) => Ok(decimal(i64::from(self.u8()? as i8))),
            Length::Encoded(ENC_INT16) => Ok(decimal(i64::from(i16::from_le_bytes(self.array()?)))),
            Length::Encoded(ENC_INT32) => Ok(decimal(i64::from(i32::from_le_bytes(self.array()?)))),
            Length::Encoded(ENC_LZF) => {
                let compressed = usize::try_from(self.length()?).map_err(|_| RdbError::BadData)?;
                let len = usize::try_from(self.length()?).map_err(|_| RdbError::BadData)?;
                let input = self.take(compressed)?;
                lzf::decompress(input, len)
                    .map(Cow::Owned)
                    .ok_or(RdbError::BadData)
            }
            Length::Encoded(_) => Err(RdbError::BadData),
        }
    }

    /// A double as 8 little-endian bytes (RDB_TYPE_ZSET_2); NaN is an error.
    pub fn binary_double(&mut self) -> Result<f64, RdbError> {
        not_nan(f64::from_le_bytes(self.array()?))
    }

    /// A double as text with a one-byte length (the old RDB_TYPE_ZSET):
    /// 253 NaN (an error), 254 +inf, 255 -inf.
    pub fn text_double(&mut self) -> Result<f64, RdbError> {
        match self.u8()? {
            253 => Err(RdbError::BadData),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            len => parse_double(self.take(usize::from(len))?),
        }
    }
}

/// `n` as decimal text.
pub fn decimal(n: i64) -> Cow<'static, [u8]> {
    Cow::Owned(super::listpack::decimal(n))
}

fn not_nan(d: f64) -> Result<f64, RdbError> {
    if d.is_nan() {
        Err(RdbError::BadData)
    } else {
        Ok(d)
    }
}

/// A score written as text ("1.5", "inf", "-inf"); NaN is an error.
pub fn parse_double(text: &[u8]) -> Result<f64, RdbError> {
    let text = std::str::from_utf8(text).map_err(|_| RdbError::BadData)?;
    not_nan(text.parse::<f64>().map_err(|_| RdbError::BadData)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_every_width() {
        let bytes = [
            0x05, 0x41, 0x02, 0x80, 0, 1, 0, 0, 0x81, 0, 0, 0, 1, 0, 0, 0, 0,
        ];
        let mut r = Reader::new(&bytes);
        assert_eq!(r.length().unwrap(), 5);
        assert_eq!(r.length().unwrap(), 0x102);
        assert_eq!(r.length().unwrap(), 0x10000);
        assert_eq!(r.length().unwrap(), 1 << 32);
        assert!(r.at_end());
        assert_eq!(Reader::new(&[0x82]).length(), Err(RdbError::BadData));
        assert_eq!(Reader::new(&[0x80, 0]).length(), Err(RdbError::BadData));
    }

    #[test]
    fn integer_strings_and_text_doubles() {
        let mut r = Reader::new(&[0xc0, 0xf6, 0xc1, 0x2e, 0xfb, 0xc2, 0x15, 0xcd, 0x5b, 0x07]);
        assert_eq!(&*r.string().unwrap(), b"-10");
        assert_eq!(&*r.string().unwrap(), b"-1234");
        assert_eq!(&*r.string().unwrap(), b"123456789");
        let mut r = Reader::new(&[3, b'1', b'.', b'5', 254, 255, 253]);
        assert_eq!(r.text_double().unwrap(), 1.5);
        assert_eq!(r.text_double().unwrap(), f64::INFINITY);
        assert_eq!(r.text_double().unwrap(), f64::NEG_INFINITY);
        assert_eq!(r.text_double(), Err(RdbError::BadData));
        assert_eq!(Reader::new(&[0xc4]).string(), Err(RdbError::BadData));
    }
}
