//! Number <-> text conversions with Redis's exact rules, allocation-free.

/// Parses like Redis's `string2ll`: optional '-', no '+', no spaces, no
/// leading zeros, at most 20 characters, must fit in an i64.
#[inline]
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &c in digits {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

/// Parses a float like Redis's `string2ld`: no leading space, no trailing
/// garbage, NaN rejected (infinities are accepted and rejected later by the
/// arithmetic that would produce them).
#[inline]
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    if s.is_empty() || s.len() >= 5 * 1024 || s[0].is_ascii_whitespace() {
        return None;
    }
    let text = std::str::from_utf8(s).ok()?;
    // Rust accepts "infinity"/"inf"/"nan" like strtold; reject only NaN.
    let v: f64 = text.parse().ok()?;
    if v.is_nan() {
        None
    } else {
        Some(v)
    }
}

/// Decimal digits of `v` at the end of `buf`; returns where they start.
/// Two at a time (`DIGIT_PAIRS`): half the divisions of one at a time.
#[inline]
fn digits_u64(buf: &mut [u8], mut n: u64) -> usize {
    let mut i = buf.len();
    while n >= 100 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[(n % 100) as usize].to_le_bytes());
        n /= 100;
    }
    if n >= 10 {
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[n as usize].to_le_bytes());
    } else {
        i -= 1;
        buf[i] = b'0' + n as u8;
    }
    i
}

/// Decimal text of `v` in `buf`; returns the used tail.
#[inline]
pub fn fmt_i64(buf: &mut [u8; 21], v: i64) -> &[u8] {
    let mut i = digits_u64(buf, v.unsigned_abs());
    if v < 0 {
        i -= 1;
        buf[i] = b'-';
    }
    &buf[i..]
}

/// Decimal text of `v` in `buf`; returns the used tail.
#[inline]
pub fn fmt_u64(buf: &mut [u8; 21], v: u64) -> &[u8] {
    let i = digits_u64(buf, v);
    &buf[i..]
}

/// The two ASCII digits of 0..100, the first in the low byte (as they lie
/// in memory, read as a little-endian `u16`): no division to write them.
pub const DIGIT_PAIRS: [u16; 100] = {
    let mut pairs = [0u16; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = (b'0' + (n / 10) as u8) as u16 | ((b'0' + (n % 10) as u8) as u16) << 8;
        n += 1;
    }
    pairs
};

/// The longest RESP header line: its tag, '-', 20 digits, CRLF.
pub const HEADER_LEN: usize = 24;

/// Writes a header line (`tag`, the decimal form of `n`, CRLF) at the start
/// of `line`; returns its length.
#[inline]
pub fn header_line(line: &mut [u8; HEADER_LEN], tag: u8, n: i64) -> usize {
    line[0] = tag;
    // Most headers (array counts, short values' lengths) are under 100:
    // their digits without a division loop.
    if (0..100).contains(&n) {
        let n = n as u8;
        let end = if n < 10 {
            line[1] = b'0' + n;
            2
        } else {
            line[1] = b'0' + n / 10;
            line[2] = b'0' + n % 10;
            3
        };
        line[end..end + 2].copy_from_slice(b"\r\n");
        return end + 2;
    }
    if let Ok(v @ 100..100_000_000) = u32::try_from(n) {
        // Lengths and counts up to eight digits (a list's length, a value
        // of 100 bytes or more): the digits built in one word from four
        // pairs, the leading zeros shifted out; no division loop.
        let digits = eight_digits(v);
        let zeros = (digits ^ ZERO_DIGITS).trailing_zeros() / 8;
        let len = 8 - zeros as usize;
        line[1..9].copy_from_slice(&(digits >> (8 * zeros)).to_le_bytes());
        line[1 + len..3 + len].copy_from_slice(b"\r\n");
        return len + 3;
    }
    let mut at = 1;
    if n < 0 {
        line[1] = b'-';
        at = 2;
    }
    let v = n.unsigned_abs();
    let end = at + decimal_width(v);
    digits_u64(&mut line[at..end], v);
    line[end..end + 2].copy_from_slice(b"\r\n");
    end + 2
}

/// Eight ASCII zeros, one a byte.
const ZERO_DIGITS: u64 = 0x3030_3030_3030_3030;

/// The eight decimal digits of `v` (under 10^8), leading zeros kept, as
/// the bytes of a little-endian word (the first digit lowest).
#[inline]
fn eight_digits(v: u32) -> u64 {
    let pairs = |x: u32| {
        u64::from(DIGIT_PAIRS[(x / 100) as usize])
            | u64::from(DIGIT_PAIRS[(x % 100) as usize]) << 16
    };
    pairs(v / 10_000) | pairs(v % 10_000) << 32
}

/// How many decimal digits `v` has.
#[inline]
fn decimal_width(v: u64) -> usize {
    v.checked_ilog10().unwrap_or(0) as usize + 1
}

/// Appends the decimal form of `v` to `out`.
#[inline]
pub fn push_i64(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 21];
    out.extend_from_slice(fmt_i64(&mut buf, v));
}

/// Human float text of a double (`Reply::double`): shortest round-trip
/// digits, never an exponent, no trailing zeros ("3" not "3.0").
/// INCRBYFLOAT's long double text is `ext_float`'s, not this.
#[inline]
pub fn fmt_f64(buf: &mut [u8; 400], v: f64) -> &[u8] {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    // Display for f64 never uses exponent notation and fits in ~330 bytes.
    let _ = write!(cursor, "{v}");
    let len = cursor.position() as usize;
    &buf[..len]
}

/// Appends `v` as C's `%.17g` prints it: what Redis 7.0 replies for a
/// double (sorted-set scores, `addReplyDouble`): 17 significant digits,
/// exponent form below 1e-4 and from 1e17, trailing zeros dropped.
pub fn push_g17(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"nan");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"inf" } else { b"-inf" });
        return;
    }
    if v == 0.0 {
        out.extend_from_slice(if v.is_sign_negative() { b"-0" } else { b"0" });
        return;
    }
    // A whole number under 1e17 has at most 17 digits, all printed and no
    // point: most scores, and an integer print is a fraction of the cost
    // of the digit generation below.
    if v.fract() == 0.0 && v.abs() < 1e17 {
        push_i64(out, v as i64);
        return;
    }
    // C's rule: the 17 digits and exponent X of the `%.16e` conversion,
    // then fixed notation (16 - X decimals: the same digits) when -4 <= X
    // < 17, else that exponent form; trailing zeros dropped either way.
    let mut sci = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut sci[..]);
    let _ = std::io::Write::write_fmt(&mut cursor, format_args!("{v:.16e}"));
    let len = cursor.position() as usize;
    let sci = &sci[..len];
    let e = sci.iter().position(|&c| c == b'e').unwrap_or(len);
    let exp = std::str::from_utf8(&sci[e + 1..])
        .ok()
        .and_then(|x| x.parse::<i32>().ok())
        .unwrap_or(0);
    let (sign, mantissa) = match sci[0] {
        b'-' => (&b"-"[..], &sci[1..e]),
        _ => (&b""[..], &sci[..e]),
    };
    let start = out.len();
    out.extend_from_slice(sign);
    if !(-4..17).contains(&exp) {
        out.extend_from_slice(mantissa);
        trim_fraction_zeros(out, start);
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        if exp.abs() < 10 {
            out.push(b'0');
        }
        push_i64(out, i64::from(exp.abs()));
        return;
    }
    // `mantissa` is "d.dddddddddddddddd": 17 digits around the point.
    let digits = mantissa.iter().filter(|c| c.is_ascii_digit());
    if exp < 0 {
        out.extend_from_slice(b"0.");
        out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
        out.extend(digits);
    } else {
        let whole = exp as usize + 1;
        out.extend(digits.clone().take(whole));
        if whole < 17 {
            out.push(b'.');
            out.extend(digits.skip(whole));
        }
    }
    trim_fraction_zeros(out, start);
}

/// Drops trailing zeros after a decimal point (and the point itself).
fn trim_fraction_zeros(out: &mut Vec<u8>, start: usize) {
    if !out[start..].contains(&b'.') {
        return;
    }
    while out.last() == Some(&b'0') {
        out.pop();
    }
    if out.last() == Some(&b'.') {
        out.pop();
    }
}

/// A C99 hex float (`[+-]0x` hex digits, an optional `.` fraction and a
/// `p` binary exponent) over the whole of `s`, correctly rounded to f64 as
/// glibc's strtod rounds it; None when `s` is not one, when it overflows,
/// or when a nonzero value rounds to zero (strtod's ERANGE).
pub fn parse_hex_f64(s: &[u8]) -> Option<f64> {
    hex_f64(s)?.ok()
}

/// A C99 hex float over the whole of `s` as strtod returns it even when
/// it sets ERANGE: an overflow is a signed infinity and a nonzero value
/// that rounds to zero a signed zero (Redis's zslParseRange reads score
/// bounds so, without checking errno); None when `s` is not one.
pub fn strtod_hex_f64(s: &[u8]) -> Option<f64> {
    let neg = s.first() == Some(&b'-');
    let sign = |v: f64| if neg { -v } else { v };
    Some(match hex_f64(s)? {
        Ok(v) => v,
        Err(OutOfRange::Overflow) => sign(f64::INFINITY),
        Err(OutOfRange::Underflow) => sign(0.0),
    })
}

/// Why a hex float has no f64 value (strtod's ERANGE cases).
enum OutOfRange {
    Overflow,
    Underflow,
}

/// The parse of a hex float: None when `s` is not one, else its value or
/// why it has none.
fn hex_f64(s: &[u8]) -> Option<Result<f64, OutOfRange>> {
    let (neg, body) = match s.first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let body = body
        .strip_prefix(b"0x")
        .or_else(|| body.strip_prefix(b"0X"))?;
    // Up to 64 significant bits, the rest kept as a sticky bit.
    let (mut mant, mut exp2, mut sticky, mut digits) = (0u64, 0i64, false, 0usize);
    let mut seen_point = false;
    let mut rest = body;
    while let Some((&c, after)) = rest.split_first() {
        if c == b'.' && !seen_point {
            seen_point = true;
        } else if let Some(d) = (c as char).to_digit(16) {
            digits += 1;
            if mant >> 60 == 0 {
                mant = (mant << 4) | u64::from(d);
                exp2 -= if seen_point { 4 } else { 0 };
            } else {
                sticky |= d != 0;
                exp2 += if seen_point { 0 } else { 4 };
            }
        } else {
            break;
        }
        rest = after;
    }
    if digits == 0 {
        return None;
    }
    if let Some(e) = rest.strip_prefix(b"p").or_else(|| rest.strip_prefix(b"P")) {
        // strtod's exponent: a sign, then at least one decimal digit
        // (clamped: far past any finite or nonzero result).
        let (sign, e) = match e.first() {
            Some(b'-') => (-1, &e[1..]),
            Some(b'+') => (1, &e[1..]),
            _ => (1, e),
        };
        if e.is_empty() || !e.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = e
            .iter()
            .fold(0i64, |v, d| (v * 10 + i64::from(d - b'0')).min(1 << 40));
        exp2 += sign * value;
    } else if !rest.is_empty() {
        return None;
    }
    let magnitude = if mant == 0 {
        Ok(0.0)
    } else {
        round_to_f64(mant, exp2, sticky)
    };
    Some(magnitude.map(|m| if neg { -m } else { m }))
}

/// `mant * 2^exp2` (plus a nonzero tail below `mant` when `sticky`),
/// rounded half to even; out of range on overflow or a nonzero value that
/// rounds to zero.
fn round_to_f64(mant: u64, exp2: i64, sticky: bool) -> Result<f64, OutOfRange> {
    let bits = 64 - i64::from(mant.leading_zeros());
    // The value's binary exponent: 2^top <= value < 2^(top + 1).
    let top = exp2 + bits - 1;
    if top > 1023 {
        return Err(OutOfRange::Overflow);
    }
    // Bits kept: 53 for a normal result, fewer below 2^-1022.
    let keep = if top >= -1022 { 53 } else { 53 - (-1022 - top) };
    let shift = bits - keep;
    let (q, lsb_exp) = if shift <= 0 {
        (u128::from(mant) << -shift, exp2 + shift)
    } else if shift >= 128 {
        (0, exp2 + shift)
    } else {
        let wide = u128::from(mant);
        let q = if shift > 64 { 0 } else { wide >> shift };
        let rem = if shift > 64 {
            wide
        } else {
            wide & ((1u128 << shift) - 1)
        };
        let half = if shift > 65 {
            None
        } else {
            Some(1u128 << (shift - 1))
        };
        let up = match half {
            None => false,
            Some(half) => rem > half || (rem == half && (sticky || q & 1 == 1)),
        };
        (q + u128::from(up), exp2 + shift)
    };
    if q == 0 {
        return Err(OutOfRange::Underflow);
    }
    // q <= 2^53 and its unit is 2^lsb_exp, lsb_exp >= -1074 by `keep`.
    let unit = if lsb_exp >= -1022 {
        f64::from_bits(((lsb_exp + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (lsb_exp + 1074))
    };
    let value = q as f64 * unit;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(OutOfRange::Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_floats_round_like_strtod() {
        let hex = |s: &str| parse_hex_f64(s.as_bytes());
        assert_eq!(hex("0x10"), Some(16.0));
        assert_eq!(hex("-0x1.8p1"), Some(-3.0));
        assert_eq!(hex("0X.8"), Some(0.5));
        assert_eq!(hex("0x1p-1074"), Some(f64::from_bits(1)));
        assert_eq!(
            hex("0x1p-1075"),
            None,
            "half the smallest subnormal, to even: 0"
        );
        assert_eq!(hex("0x1.8p-1075"), Some(f64::from_bits(1)));
        assert_eq!(hex("0x1p1024"), None, "overflow");
        assert_eq!(
            hex("0x1.fffffffffffff8p1023"),
            None,
            "rounds up past the largest"
        );
        assert_eq!(hex("0x1.fffffffffffffp1023"), Some(f64::MAX));
        // 2^53 + 1 is a tie: to even; any bit after it rounds up.
        assert_eq!(hex("0x20000000000001"), Some(9007199254740992.0));
        assert_eq!(
            hex("0x200000000000010000000000000001"),
            Some(hex("0x20000000000002p64").unwrap())
        );
        assert_eq!(hex("0x0p99999999999999999999"), Some(0.0));
        for bad in [
            "0x", "0xg", "0x1p", "0x1p+", "0x1.2.3", " 0x1", "0x1 ", "1.5",
        ] {
            assert_eq!(hex(bad), None, "{bad}");
        }
    }

    #[test]
    fn strtod_hex_saturates_out_of_range() {
        let hex = |s: &str| strtod_hex_f64(s.as_bytes());
        assert_eq!(hex("0x1p1024"), Some(f64::INFINITY));
        assert_eq!(hex("-0x1p5000"), Some(f64::NEG_INFINITY));
        assert_eq!(hex("0x1p-1075"), Some(0.0));
        assert!(hex("-0x1p-5000").is_some_and(|v| v == 0.0 && v.is_sign_negative()));
        assert_eq!(hex("0x1.8p1"), Some(3.0));
        assert_eq!(hex("0x1p"), None);
        assert_eq!(hex("12"), None);
    }

    #[test]
    fn strict_integers() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-1"), Some(-1));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        for bad in [
            &b""[..],
            b"-",
            b"+1",
            b" 1",
            b"1 ",
            b"01",
            b"-0",
            b"1a",
            b"9223372036854775808",
            b"-9223372036854775809",
            b"99999999999999999999",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn formats_integers() {
        let mut b = [0u8; 21];
        for v in [0, 7, -7, 1234567890, i64::MAX, i64::MIN] {
            assert_eq!(fmt_i64(&mut b, v), v.to_string().as_bytes());
        }
        assert_eq!(fmt_u64(&mut b, u64::MAX), u64::MAX.to_string().as_bytes());
    }

    #[test]
    fn header_lines() {
        for v in [0, 9, 10, 32, 99, 100, -1, -10, 99999, i64::MAX, i64::MIN] {
            let mut line = [0u8; HEADER_LEN];
            let len = header_line(&mut line, b'$', v);
            assert_eq!(&line[..len], format!("${v}\r\n").as_bytes());
        }
        // Every value of the eight-digit path up to 10^6, then samples.
        for v in (0..1_000_000).chain((0..100_000_000).step_by(9_973)) {
            let mut line = [0u8; HEADER_LEN];
            let len = header_line(&mut line, b'*', v);
            assert_eq!(&line[..len], format!("*{v}\r\n").as_bytes());
        }
        // Every width, at its edges, both signs: the digit pairs and the
        // odd digit left over.
        for k in 1..19 {
            let p = 10i64.pow(k);
            for v in [p - 1, p, p + 1, p + 10, -p + 1, -p, -p - 1] {
                let mut line = [0u8; HEADER_LEN];
                let len = header_line(&mut line, b':', v);
                assert_eq!(&line[..len], format!(":{v}\r\n").as_bytes());
            }
        }
    }

    #[test]
    fn floats() {
        assert_eq!(parse_f64(b"10.50"), Some(10.5));
        assert_eq!(parse_f64(b"5.0e3"), Some(5000.0));
        assert_eq!(parse_f64(b"inf"), Some(f64::INFINITY));
        assert_eq!(parse_f64(b"nan"), None);
        assert_eq!(parse_f64(b" 1"), None);
        assert_eq!(parse_f64(b"1x"), None);
        let mut b = [0u8; 400];
        assert_eq!(fmt_f64(&mut b, 10.5 + 0.1), b"10.6");
        assert_eq!(fmt_f64(&mut b, 5200.0), b"5200");
        assert_eq!(fmt_f64(&mut b, -0.25), b"-0.25");
        assert!(!fmt_f64(&mut b, 1e300).contains(&b'e'));
    }

    /// `%.17g` by two conversions (the digits and exponent, then the
    /// fixed form formatted afresh): the model `push_g17` is checked
    /// against.
    fn g17_model(v: f64) -> String {
        if !v.is_finite() || v == 0.0 {
            let mut out = Vec::new();
            push_g17(&mut out, v);
            return String::from_utf8(out).unwrap();
        }
        let sci = format!("{v:.16e}");
        let (mantissa, exp) = sci.split_once('e').unwrap();
        let exp: i32 = exp.parse().unwrap();
        let trim = |s: String| match s.contains('.') {
            true => s.trim_end_matches('0').trim_end_matches('.').to_string(),
            false => s,
        };
        if !(-4..17).contains(&exp) {
            let sign = if exp < 0 { '-' } else { '+' };
            format!("{}e{sign}{:02}", trim(mantissa.to_string()), exp.abs())
        } else {
            trim(format!("{:.*}", (16 - exp) as usize, v))
        }
    }

    proptest::proptest! {
        #[test]
        fn g17_matches_the_two_conversion_model(bits in proptest::num::u64::ANY, int in -(1i64 << 60)..(1i64 << 60)) {
            for v in [f64::from_bits(bits), int as f64, int as f64 / 1024.0, int as f64 * 1e-9] {
                let mut out = Vec::new();
                push_g17(&mut out, v);
                proptest::prop_assert_eq!(String::from_utf8(out).unwrap(), g17_model(v), "{:e}", v);
            }
        }
    }

    #[test]
    fn g17_as_c_prints_it() {
        let g = |v: f64| {
            let mut out = Vec::new();
            push_g17(&mut out, v);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(g(0.1), "0.10000000000000001");
        assert_eq!(g(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(g(1.5e-7), "1.4999999999999999e-07");
        assert_eq!(g(123456789012345678.0), "1.2345678901234568e+17");
        assert_eq!(g(1e20), "1e+20");
        assert_eq!(g(3.0), "3");
        assert_eq!(g(-2.5), "-2.5");
        assert_eq!(g(0.0001), "0.0001");
        assert_eq!(g(1e16), "10000000000000000");
        assert_eq!(g(-0.0), "-0");
        assert_eq!(g(f64::NEG_INFINITY), "-inf");
        assert_eq!(g(1e-300), "1e-300");
        assert_eq!(g(9.999999999999999e16), "99999999999999984");
        assert_eq!(g(0.00009999999999999999), "9.9999999999999991e-05");
        assert_eq!(g(f64::MAX), "1.7976931348623157e+308");
        assert_eq!(g(-12345.0), "-12345");
        assert_eq!(g(99999999999999984.0), "99999999999999984");
        assert_eq!(g(-1.5e-5), "-1.5e-05");
        assert_eq!(g(-9.5e-5), "-9.5000000000000005e-05");
        assert_eq!(g(-0.000123456789), "-0.000123456789");
        assert_eq!(g(12345678.9), "12345678.9");
        assert_eq!(g(-0.5), "-0.5");
        assert_eq!(g(2f64.powi(60)), "1.152921504606847e+18");
    }
}
