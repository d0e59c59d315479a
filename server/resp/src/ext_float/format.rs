//! Extended float to text as Redis's `ld2string(.., LD_STR_HUMAN)` writes
//! it: glibc's `%.17Lf` (exact binary value, rounded half to even at the
//! 17th decimal), then trailing fraction zeros and a bare '.' dropped, and
//! "-0" written as "0". The widest finite value takes 4,951 bytes before
//! trimming, inside Redis's 5 KiB buffer, so its "no room" case never
//! happens.

use num_bigint::BigUint;

use super::ExtFloat;

const FRACTION_DIGITS: usize = 17;
const FRACTION_SCALE: u128 = 10u128.pow(FRACTION_DIGITS as u32);

impl ExtFloat {
    /// Appends the human text of a finite value; `None` for an infinity or
    /// NaN (which INCRBYFLOAT refuses before storing).
    pub fn write_human(self, out: &mut Vec<u8>) -> Option<()> {
        let ExtFloat::Finite { neg, mant, exp } = self else {
            return None;
        };
        if exp >= 0 {
            // An integer (at least 2^63 unless zero): no fraction to print.
            if neg && mant != 0 {
                out.push(b'-');
            }
            if exp as u32 + 64 <= 128 {
                push_u128(out, u128::from(mant) << exp);
            } else {
                out.extend_from_slice((BigUint::from(mant) << exp as u32).to_string().as_bytes());
            }
            return Some(());
        }
        let scaled = fixed_point(mant, exp.unsigned_abs());
        let (int, frac) = (scaled / FRACTION_SCALE, scaled % FRACTION_SCALE);
        if neg && scaled != 0 {
            out.push(b'-');
        }
        push_u128(out, int);
        if frac != 0 {
            out.push(b'.');
            let mut digits = [0u8; FRACTION_DIGITS];
            let mut rest = frac;
            for d in digits.iter_mut().rev() {
                *d = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
            let used = digits.iter().rposition(|&d| d != b'0').map_or(0, |i| i + 1);
            out.extend_from_slice(&digits[..used]);
        }
        Some(())
    }
}

/// `mant * 2^-shift * 10^17` rounded to an integer, half to even: the
/// digits `%.17Lf` prints. Fits: mant * 10^17 < 2^121.
fn fixed_point(mant: u64, shift: u32) -> u128 {
    let n = u128::from(mant) * FRACTION_SCALE;
    if shift >= 128 {
        // n < 2^121 <= half of 2^shift: rounds to zero.
        return 0;
    }
    let kept = n >> shift;
    let dropped = n & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    let up = dropped > half || (dropped == half && kept & 1 == 1);
    kept + u128::from(up)
}

fn push_u128(out: &mut Vec<u8>, mut v: u128) {
    let mut buf = [0u8; 39];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
