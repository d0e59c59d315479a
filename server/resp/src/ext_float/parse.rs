//! Text to extended float with the rules of Redis's `string2ld`: glibc's
//! `strtold` (decimal, hex floats, `inf`/`infinity`, correctly rounded)
//! over the whole string, refusing an empty or 5 KiB string, a leading
//! space, trailing bytes, NaN, and a nonzero value that overflows to
//! infinity or underflows to zero (strtold's ERANGE).

use num_bigint::BigUint;

use super::{round, ExtFloat};

/// Redis's `MAX_LONG_DOUBLE_CHARS`: longer texts are not numbers.
pub const MAX_CHARS: usize = 5 * 1024;

/// Exponents are clamped here: far beyond any finite or nonzero result,
/// far from overflowing an i64 when digit counts are added.
const EXP_CLAMP: i64 = 1 << 40;

impl ExtFloat {
    /// Parses `s` as Redis's `string2ld` does; `None` for "not a valid float".
    pub fn parse(s: &[u8]) -> Option<ExtFloat> {
        if s.is_empty() || s.len() >= MAX_CHARS || is_c_space(s[0]) {
            return None;
        }
        let (neg, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            return Some(ExtFloat::Infinite { neg });
        }
        let (value, nonzero) = match body {
            [b'0', b'x' | b'X', hex @ ..] => parse_hex(neg, hex)?,
            _ => parse_decimal(neg, body)?,
        };
        match value {
            // strtold's ERANGE: overflow, or a nonzero text that rounds to 0.
            ExtFloat::Infinite { .. } => None,
            ExtFloat::Finite { mant: 0, .. } if nonzero => None,
            _ => Some(value),
        }
    }
}

/// C's `isspace` in the C locale.
fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// A mantissa's digits: `int.frac`, at least one digit in all.
fn split_mantissa(body: &[u8], is_digit: fn(u8) -> bool) -> Option<(&[u8], &[u8], &[u8])> {
    let int_len = body.iter().take_while(|&&c| is_digit(c)).count();
    let (int, rest) = body.split_at(int_len);
    let (frac, rest) = match rest.split_first() {
        Some((b'.', after)) => {
            let n = after.iter().take_while(|&&c| is_digit(c)).count();
            after.split_at(n)
        }
        _ => (&rest[..0], rest),
    };
    (!int.is_empty() || !frac.is_empty()).then_some((int, frac, rest))
}

/// An exponent suffix (`e12`, `p-3`): the whole rest must be one, or be
/// empty. Clamped to ±EXP_CLAMP.
fn parse_exponent(rest: &[u8], marker: u8) -> Option<i64> {
    let Some((&m, rest)) = rest.split_first() else {
        return Some(0);
    };
    if m.to_ascii_lowercase() != marker {
        return None;
    }
    let (neg, digits) = match rest {
        [b'-', d @ ..] => (true, d),
        [b'+', d @ ..] => (false, d),
        d => (false, d),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let magnitude = digits.iter().fold(0i64, |acc, &d| {
        (acc * 10 + i64::from(d - b'0')).min(EXP_CLAMP)
    });
    Some(if neg { -magnitude } else { magnitude })
}

/// A hex float after `0x`; returns the rounded value and whether the text
/// was nonzero.
fn parse_hex(neg: bool, body: &[u8]) -> Option<(ExtFloat, bool)> {
    let (int, frac, rest) = split_mantissa(body, |c| c.is_ascii_hexdigit())?;
    let mut exp = parse_exponent(rest, b'p')?;
    // Up to 31 significant digits (124 bits) exactly; past that a digit
    // only scales (integer part) or marks a nonzero remainder.
    let (mut mag, mut sig_digits, mut sticky) = (0u128, 0, false);
    for (i, &c) in int.iter().chain(frac).enumerate() {
        let digit = (c as char).to_digit(16).unwrap_or(0);
        let in_fraction = i >= int.len();
        if sig_digits < 31 {
            mag = mag << 4 | u128::from(digit);
            sig_digits += usize::from(mag != 0);
            exp -= 4 * i64::from(in_fraction);
        } else {
            sticky |= digit != 0;
            exp += 4 * i64::from(!in_fraction);
        }
    }
    Some((round(neg, mag, exp, sticky), mag != 0))
}

/// A decimal float; returns the rounded value and whether it was nonzero.
fn parse_decimal(neg: bool, body: &[u8]) -> Option<(ExtFloat, bool)> {
    let (int, frac, rest) = split_mantissa(body, |c| c.is_ascii_digit())?;
    let exp10 = parse_exponent(rest, b'e')? - frac.len() as i64;
    // The significant digits D with value = D * 10^exp10.
    let all: Vec<u8> = int.iter().chain(frac).copied().collect();
    let start = all.iter().position(|&c| c != b'0').unwrap_or(all.len());
    let end = all
        .iter()
        .rposition(|&c| c != b'0')
        .map_or(start, |i| i + 1);
    let digits = &all[start..end];
    if digits.is_empty() {
        return Some((round(neg, 0, 0, false), false));
    }
    let exp10 = exp10 + (all.len() - end) as i64;
    Some((decimal_to_ext(neg, digits, exp10), true))
}

/// `digits * 10^exp10` (digits nonzero, no leading or trailing zeros),
/// correctly rounded.
pub(crate) fn decimal_to_ext(neg: bool, digits: &[u8], exp10: i64) -> ExtFloat {
    let n = digits.len() as i64;
    // The largest finite value is about 1.19e4932; the smallest subnormal
    // 3.6e-4951, half of which rounds to zero.
    if n - 1 + exp10 >= 4933 {
        return ExtFloat::Infinite { neg };
    }
    if n + exp10 <= -4952 {
        return round(neg, 0, 0, false);
    }
    if let Some(v) = small_decimal(neg, digits, exp10) {
        return v;
    }
    big_decimal(neg, digits, exp10)
}

/// The common case in u128 arithmetic: up to 19 digits times 10^0..10^38
/// (exact), or divided by up to 10^17 (a quotient of at least 69 bits).
pub(crate) fn small_decimal(neg: bool, digits: &[u8], exp10: i64) -> Option<ExtFloat> {
    if digits.len() > 19 || !(-17..=38).contains(&exp10) {
        return None;
    }
    let d = digits
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    if exp10 >= 0 {
        let exact = u128::from(d).checked_mul(10u128.pow(exp10 as u32))?;
        return Some(round(neg, exact, 0, false));
    }
    let scale = 127 - (64 - d.leading_zeros());
    let numerator = u128::from(d) << scale;
    let divisor = 10u128.pow((-exp10) as u32);
    let (q, r) = (numerator / divisor, numerator % divisor);
    Some(round(neg, q, -i64::from(scale), r != 0))
}

/// Any size, exactly in big integers.
pub(crate) fn big_decimal(neg: bool, digits: &[u8], exp10: i64) -> ExtFloat {
    let d = BigUint::parse_bytes(digits, 10).unwrap_or_default();
    if exp10 >= 0 {
        return round_big(neg, d * BigUint::from(10u8).pow(exp10 as u32), 0, false);
    }
    let divisor = BigUint::from(10u8).pow((-exp10) as u32);
    // Enough quotient bits (66+) for the rounding, the rest as a remainder.
    let scale = (divisor.bits() + 66).saturating_sub(d.bits());
    let numerator = d << scale;
    let (q, r) = (&numerator / &divisor, &numerator % &divisor);
    round_big(neg, q, -(scale as i64), r.bits() != 0)
}

/// Rounds `(-1)^neg * (n + sticky fraction) * 2^exp`.
fn round_big(neg: bool, n: BigUint, exp: i64, sticky: bool) -> ExtFloat {
    let extra = n.bits().saturating_sub(128);
    let sticky = sticky || n.trailing_zeros().is_some_and(|z| z < extra);
    let top = n >> extra;
    let mag = top
        .iter_u64_digits()
        .rev()
        .fold(0u128, |acc, limb| acc << 64 | u128::from(limb));
    round(neg, mag, exp + extra as i64, sticky)
}
