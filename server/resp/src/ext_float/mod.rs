//! A software x87 80-bit extended float, the C `long double` of x86-64
//! Linux that Redis uses for INCRBYFLOAT and HINCRBYFLOAT: a 64-bit
//! significand with an explicit leading bit, 15-bit exponent, subnormals,
//! round-to-nearest-even. Only what those commands need: a correctly
//! rounded parse (`string2ld`, i.e. glibc's `strtold`), correctly rounded
//! addition, and glibc's exact `%.17Lf` (`ld2string(.., LD_STR_HUMAN)`).
//! f64 arithmetic cannot stand in: 0.1 + 0.2 prints 0.30000000000000004
//! there and 0.3 in Redis.

mod format;
mod parse;

pub use parse::MAX_CHARS;
#[cfg(test)]
mod tests;

/// The exponent of the lowest significand bit of subnormals (and of the
/// smallest normals): 2^(1 - 16383 - 63).
const EXP_MIN: i64 = -16445;
/// The exponent of the lowest significand bit of the largest finite values.
const EXP_MAX: i64 = 16383 - 63;

/// An 80-bit extended value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtFloat {
    /// `(-1)^neg * mant * 2^exp`; normal values have the top bit of `mant`
    /// set, subnormals (and zero) have `exp == EXP_MIN`.
    Finite {
        neg: bool,
        mant: u64,
        exp: i32,
    },
    Infinite {
        neg: bool,
    },
    Nan,
}

impl ExtFloat {
    pub const ZERO: ExtFloat = ExtFloat::Finite {
        neg: false,
        mant: 0,
        exp: EXP_MIN as i32,
    };

    pub fn is_finite(self) -> bool {
        matches!(self, ExtFloat::Finite { .. })
    }
}

impl std::ops::Add for ExtFloat {
    type Output = ExtFloat;

    /// `self + other`, correctly rounded (nearest, ties to even) as the
    /// x87 unit adds in extended precision.
    fn add(self, other: ExtFloat) -> ExtFloat {
        use ExtFloat::{Finite, Infinite, Nan};
        match (self, other) {
            (Nan, _) | (_, Nan) => Nan,
            (Infinite { neg: a }, Infinite { neg: b }) if a != b => Nan,
            (Infinite { .. }, _) => self,
            (_, Infinite { .. }) => other,
            (
                Finite {
                    neg: an,
                    mant: am,
                    exp: ae,
                },
                Finite {
                    neg: bn,
                    mant: bm,
                    exp: be,
                },
            ) => add_finite((an, am, ae), (bn, bm, be)),
        }
    }
}

/// The text INCRBYFLOAT and HINCRBYFLOAT store and reply for
/// `current + delta`; `None` when the sum is NaN or infinite ("increment
/// would produce NaN or Infinity").
pub fn human_sum(current: ExtFloat, delta: ExtFloat) -> Option<Vec<u8>> {
    let mut text = Vec::with_capacity(32);
    (current + delta).write_human(&mut text)?;
    Some(text)
}

/// Adds two finite values given as (negative, significand, exponent).
fn add_finite(a: (bool, u64, i32), b: (bool, u64, i32)) -> ExtFloat {
    if a.1 == 0 && b.1 == 0 {
        // IEEE: -0 + -0 is -0, any other sum of zeros is +0.
        return ExtFloat::Finite {
            neg: a.0 && b.0,
            mant: 0,
            exp: EXP_MIN as i32,
        };
    }
    let (big, small) = if a.2 >= b.2 { (a, b) } else { (b, a) };
    // Both significands on a common scale with 63 guard bits below `big`'s
    // lowest bit: exact unless `small` lies entirely below them, in which
    // case it only matters as a nonzero remainder (`sticky`).
    let gap = (i64::from(big.2) - i64::from(small.2)) as u32;
    let big_mag = u128::from(big.1) << 63;
    let (small_mag, sticky) = if gap <= 63 {
        (u128::from(small.1) << (63 - gap), false)
    } else if gap - 63 >= 64 {
        (0, small.1 != 0)
    } else {
        let s = gap - 63;
        (u128::from(small.1 >> s), small.1 & ((1u64 << s) - 1) != 0)
    };
    let exp = i64::from(big.2) - 63;
    if big.0 == small.0 {
        return round(big.0, big_mag + small_mag, exp, sticky);
    }
    // Opposite signs: the larger magnitude decides the sign. A sticky
    // remainder only exists when `big` is far larger (gap > 63, so `big` is
    // normal and the difference keeps over 120 bits).
    match big_mag.cmp(&small_mag) {
        std::cmp::Ordering::Equal if !sticky => ExtFloat::ZERO,
        std::cmp::Ordering::Less => round(small.0, small_mag - big_mag, exp, false),
        _ => round(big.0, big_mag - small_mag - u128::from(sticky), exp, sticky),
    }
}

/// Rounds `(-1)^neg * (mag + f) * 2^exp` to the nearest extended value,
/// ties to even, where `f` is a fraction in (0, 1) when `sticky` and 0
/// otherwise. With `sticky`, `mag` must hold at least 66 bits (or be far
/// below the subnormal range) so the fraction only breaks ties.
pub(crate) fn round(neg: bool, mag: u128, exp: i64, sticky: bool) -> ExtFloat {
    if mag == 0 {
        return ExtFloat::Finite {
            neg,
            mant: 0,
            exp: EXP_MIN as i32,
        };
    }
    let bits = i64::from(128 - mag.leading_zeros());
    let mut target = (exp + bits - 64).max(EXP_MIN);
    if target > EXP_MAX {
        return ExtFloat::Infinite { neg };
    }
    let shift = target - exp;
    let mut mant = if shift <= 0 {
        debug_assert!(!sticky, "a sticky remainder needs guard bits");
        mag << (-shift)
    } else {
        let (kept, rest) = split(mag, shift);
        let half_up = match rest {
            Rest::Below => false,
            Rest::Half => sticky || kept & 1 == 1,
            Rest::Above => true,
        };
        kept + u128::from(half_up)
    };
    if mant >> 64 != 0 {
        mant >>= 1;
        target += 1;
        if target > EXP_MAX {
            return ExtFloat::Infinite { neg };
        }
    }
    ExtFloat::Finite {
        neg,
        mant: mant as u64,
        exp: target as i32,
    }
}

/// How the bits shifted out compare with half of the kept lowest bit.
enum Rest {
    Below,
    Half,
    Above,
}

/// `mag >> shift` (shift >= 1) and how the dropped bits compare with half.
fn split(mag: u128, shift: i64) -> (u128, Rest) {
    let rest = |dropped: u128, half: u128| match dropped.cmp(&half) {
        std::cmp::Ordering::Less => Rest::Below,
        std::cmp::Ordering::Equal => Rest::Half,
        std::cmp::Ordering::Greater => Rest::Above,
    };
    match shift {
        129.. => (0, Rest::Below),
        128 => (0, rest(mag, 1 << 127)),
        _ => {
            let dropped = mag & ((1u128 << shift) - 1);
            (mag >> shift, rest(dropped, 1 << (shift - 1)))
        }
    }
}
