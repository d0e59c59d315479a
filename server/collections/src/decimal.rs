//! Integers as decimal text without the formatting machinery: stream
//! entries restored from a payload and listpack integers turn millions of
//! them into text, where `write!("{n}")` cost a tenth of the time.

/// `n` in decimal, at the end of `buf`.
pub fn i64_text(n: i64, buf: &mut [u8; 20]) -> &[u8] {
    let mut magnitude = n.unsigned_abs();
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        if magnitude == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_width_and_both_ends() {
        for n in [0, 7, -7, 10, -10, 1234567890, i64::MAX, i64::MIN, -1] {
            assert_eq!(i64_text(n, &mut [0; 20]), n.to_string().as_bytes());
        }
    }
}
