//! Score arguments (ZADD, ZINCRBY, weights, GEO coordinates).

use citadel_resp::num;

/// A score argument, as Redis's string2d (strtod over the whole text): no
/// leading space, nothing after the number, no NaN, no overflow to
/// infinity or underflow to zero (an infinity must be spelled out); hex
/// floats (`0x1.8p3`) as strtod reads them.
pub(super) fn parse_score(arg: &[u8]) -> Option<f64> {
    if let Some(v) = small_integer_score(arg) {
        return Some(v);
    }
    if let Some(v) = num::parse_hex_f64(arg) {
        return Some(v);
    }
    let v = num::parse_f64(arg)?;
    let mantissa = arg.split(|c| matches!(c, b'e' | b'E')).next()?;
    let spelled_inf = arg.iter().any(|c| c.eq_ignore_ascii_case(&b'i'));
    let overflow = v.is_infinite() && !spelled_inf;
    let underflow = v == 0.0 && mantissa.iter().any(|c| (b'1'..=b'9').contains(c));
    (!overflow && !underflow).then_some(v)
}

/// Most scores: `-?[0-9]{1,15}`, which an f64 holds exactly (a general
/// float parse costs ~250 instructions a ZADD). `-0` is -0.0, as strtod
/// reads it. None for anything else.
fn small_integer_score(arg: &[u8]) -> Option<f64> {
    let (negative, digits) = match arg {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, arg),
    };
    if digits.is_empty() || digits.len() > 15 {
        return None;
    }
    let mut n = 0u64;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    // (Exact: below 10^15 < 2^53.)
    let v = n as f64;
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The general parse, for what the integer shortcut answers.
    fn general(arg: &[u8]) -> Option<f64> {
        num::parse_f64(arg)
    }

    #[test]
    fn small_integers_parse_as_the_general_path_does() {
        for arg in [
            &b"0"[..],
            b"-0",
            b"7",
            b"-12",
            b"007",
            b"999999999999999",
            b"-999999999999999",
        ] {
            let short = small_integer_score(arg).expect("a small integer");
            let full = general(arg).expect("a float");
            assert_eq!(short.to_bits(), full.to_bits(), "{arg:?}");
            assert_eq!(parse_score(arg).map(f64::to_bits), Some(full.to_bits()));
        }
    }

    #[test]
    fn anything_else_takes_the_general_path() {
        for arg in [
            &b""[..],
            b"-",
            b"+5",
            b"1.5",
            b"1e3",
            b" 1",
            b"1 ",
            b"1000000000000000",
            b"0x10",
            b"inf",
        ] {
            assert_eq!(small_integer_score(arg), None, "{arg:?}");
        }
        assert_eq!(parse_score(b"+5"), Some(5.0));
        assert_eq!(parse_score(b"1000000000000000"), Some(1e15));
        assert_eq!(parse_score(b"1 "), None);
        assert_eq!(parse_score(b"1e-400"), None);
    }
}
