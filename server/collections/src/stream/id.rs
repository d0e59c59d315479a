//! Stream entry IDs: `ms-seq`, two unsigned 64-bit numbers, ordered by
//! milliseconds then sequence.

/// A stream entry ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    pub const fn new(ms: u64, seq: u64) -> StreamId {
        StreamId { ms, seq }
    }

    /// The next ID (Redis's `streamIncrID`); None past the greatest.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId::new(self.ms, self.seq + 1))
        } else if self.ms < u64::MAX {
            Some(StreamId::new(self.ms + 1, 0))
        } else {
            None
        }
    }

    /// The previous ID (`streamDecrID`); None before 0-0.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId::new(self.ms, self.seq - 1))
        } else if self.ms > 0 {
            Some(StreamId::new(self.ms - 1, u64::MAX))
        } else {
            None
        }
    }

    /// Appends `ms-seq` in decimal.
    pub fn write(self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.ms.to_string().as_bytes());
        out.push(b'-');
        out.extend_from_slice(self.seq.to_string().as_bytes());
    }

    /// `ms-seq` as text.
    pub fn text(self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        self.write(&mut out);
        out
    }

    /// The 16 stored bytes.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_le_bytes());
        b[8..].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// Reads 16 stored bytes.
    pub fn from_bytes(b: &[u8; 16]) -> StreamId {
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        StreamId::new(word(0), word(8))
    }
}

/// The parts of an ID argument: `ms`, then the sequence: given, missing
/// (`ms` alone) or `*` (`ms-*`, only where `allow_star_seq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seq {
    Given(u64),
    Missing,
    Star,
}

/// Parses an ID argument as Redis's `streamGenericParseIDOrReply` does
/// (without the `-` and `+` shortcuts, which callers handle): the text up
/// to its first NUL, at most 127 bytes, `ms` or `ms-seq`, each part as
/// `string2ull` reads it (C's `strtoull`: leading spaces and a sign
/// allowed, no overflow). None: invalid.
pub fn parse_id(arg: &[u8], allow_star_seq: bool) -> Option<(u64, Seq)> {
    if arg.len() > 127 {
        return None;
    }
    let text = arg.split(|&b| b == 0).next().unwrap_or(&[]);
    let (ms, seq) = match text.iter().position(|&b| b == b'-') {
        Some(dash) => (&text[..dash], Some(&text[dash + 1..])),
        None => (text, None),
    };
    let ms = string2ull(ms)?;
    let seq = match seq {
        None => Seq::Missing,
        Some(b"*") if allow_star_seq => Seq::Star,
        Some(seq) => Seq::Given(string2ull(seq)?),
    };
    Some((ms, seq))
}

/// Redis's `string2ull`: a strict decimal integer that is not negative,
/// else C's `strtoull` over the whole text (leading C spaces, an optional
/// sign, a minus negating modulo 2^64, no overflow).
fn string2ull(text: &[u8]) -> Option<u64> {
    if let Some(v) = strict_i64(text) {
        return u64::try_from(v).ok();
    }
    let mut rest = text;
    while let [b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r', tail @ ..] = rest {
        rest = tail;
    }
    let negative = match rest.first() {
        Some(b'-') => {
            rest = &rest[1..];
            true
        }
        Some(b'+') => {
            rest = &rest[1..];
            false
        }
        _ => false,
    };
    if rest.is_empty() || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: u64 = 0;
    for &d in rest {
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if negative {
        value.wrapping_neg()
    } else {
        value
    })
}

/// Redis's `string2ll`: optional `-`, no leading zeros (but "0"), digits
/// only, within i64.
fn strict_i64(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    match digits {
        [] => return None,
        [b'0'] if !negative => return Some(0),
        [b'1'..=b'9', ..] => {}
        _ => return None,
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        let d = i64::from(d - b'0');
        value = value.checked_mul(10)?;
        value = if negative {
            value.checked_sub(d)?
        } else {
            value.checked_add(d)?
        };
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_as_redis_reads_them() {
        assert_eq!(parse_id(b"5", false), Some((5, Seq::Missing)));
        assert_eq!(parse_id(b"5-3", false), Some((5, Seq::Given(3))));
        assert_eq!(parse_id(b"5-*", true), Some((5, Seq::Star)));
        assert_eq!(parse_id(b"5-*", false), None);
        assert_eq!(parse_id(b" 7", false), Some((7, Seq::Missing)));
        assert_eq!(parse_id(b"+7-01", false), Some((7, Seq::Given(1))));
        assert_eq!(parse_id(b"-5", false), None);
        assert_eq!(parse_id(b"", false), None);
        assert_eq!(parse_id(b"1-2-3", false), None);
        assert_eq!(
            parse_id(b"18446744073709551615-18446744073709551615", false),
            Some((u64::MAX, Seq::Given(u64::MAX)))
        );
        assert_eq!(parse_id(b"18446744073709551616", false), None);
        assert_eq!(parse_id(b"3\0junk", false), Some((3, Seq::Missing)));
        // The first dash splits: " " is no number.
        assert_eq!(parse_id(b" -1", false), None);
    }

    #[test]
    fn next_and_prev_carry_and_stop_at_the_ends() {
        assert_eq!(StreamId::new(1, u64::MAX).next(), Some(StreamId::new(2, 0)));
        assert_eq!(StreamId::MAX.next(), None);
        assert_eq!(StreamId::new(2, 0).prev(), Some(StreamId::new(1, u64::MAX)));
        assert_eq!(StreamId::MIN.prev(), None);
        assert_eq!(StreamId::new(12, 3).text(), b"12-3");
        let id = StreamId::new(9, 10);
        assert_eq!(StreamId::from_bytes(&id.to_bytes()), id);
    }
}
