//! Weighted rendezvous hashing (highest random weight): each slot goes to
//! the member with the highest score `-weight / ln(u)`, `u` in (0, 1) a
//! hash of (slot, member id). A member's chance to win a slot is exactly
//! its share of the total weight (the scores are an exponential race), a
//! new member takes only the slots it now wins (≈ weight / total of
//! them) and a leaving member's slots are the only ones that move.
//!
//! Every node must compute bit-identical scores from the same view, on any
//! machine: the hash is fixed (xxh3 and a 64-bit finalizer) and the
//! logarithm is computed here from IEEE basic operations only (which are
//! correctly rounded everywhere), not by the platform's libm, whose last
//! bit may differ between versions.

/// A member's hash seed: every slot's `u` derives from it.
pub fn member_seed(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// The score of the member with `seed` and `weight` for `slot`.
pub fn score(seed: u64, weight: u32, slot: u16) -> f64 {
    -f64::from(weight) / ln(unit(mix(seed ^ u64::from(slot).wrapping_mul(GOLDEN))))
}

const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// The 64-bit finalizer of MurmurHash3 (every input bit flips about half
/// the output bits).
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// The top 52 bits of `h` as a float strictly inside (0, 1) (k + ½ for
/// k < 2^52 fits a double's 53 bits exactly, so it never rounds to 1).
fn unit(h: u64) -> f64 {
    ((h >> 12) as f64 + 0.5) * (1.0 / (1u64 << 52) as f64)
}

/// ln(x) for a positive normal `x`, from +, -, *, / only: x = m·2^e with
/// m in [√½, √2), ln m = 2·atanh(s), s = (m-1)/(m+1), |s| ≤ 0.172, by its
/// series (14 terms: the next is below 2^-60 of the sum).
fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut exp = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        exp += 1;
    }
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    for k in 0..14 {
        sum += term / f64::from(2 * k + 1);
        term *= s2;
    }
    exp as f64 * std::f64::consts::LN_2 + 2.0 * sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_agrees_with_libm_to_a_few_ulps() {
        let mut x = 1e-16;
        while x < 1.0 {
            let (ours, libm) = (ln(x), x.ln());
            assert!(
                (ours - libm).abs() <= 4.0 * f64::EPSILON * libm.abs(),
                "ln({x})"
            );
            x *= 1.37;
        }
        assert!(ln(unit(u64::MAX)) < 0.0);
        assert!(ln(unit(0)) < 0.0);
    }

    #[test]
    fn scores_are_positive_and_grow_with_weight() {
        let seed = member_seed("a");
        for slot in 0..1000 {
            let (one, two) = (score(seed, 1, slot), score(seed, 2, slot));
            assert!(one > 0.0 && two == 2.0 * one);
        }
    }
}
