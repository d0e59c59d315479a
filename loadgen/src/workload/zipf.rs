//! Zipf-distributed ranks by rejection-inversion (Hörmann & Derflinger, "Rejection-inversion
//! to generate variates from monotone discrete distributions", 1996): O(1) per sample, no
//! tables, any exponent `s > 0` (including 1) and any key count. Rank 0 is the hottest.

use rand::Rng;

/// Samples ranks in `0..n` with P(rank = k) proportional to `1 / (k + 1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    n: f64,
    s: f64,
    h_integral_x1: f64,
    h_integral_n: f64,
    threshold: f64,
}

impl Zipf {
    /// `n` ranks (at least 1) with exponent `s` (> 0).
    pub fn new(n: u64, s: f64) -> Zipf {
        assert!(n >= 1, "zipf needs at least one key");
        assert!(s > 0.0 && s.is_finite(), "zipf exponent must be > 0");
        let n = n as f64;
        let h_integral_x1 = h_integral(1.5, s) - 1.0;
        let h_integral_n = h_integral(n + 0.5, s);
        let threshold = 2.0 - h_integral_inverse(h_integral(2.5, s) - h(2.0, s), s);
        Zipf {
            n,
            s,
            h_integral_x1,
            h_integral_n,
            threshold,
        }
    }

    /// One rank in `0..n`.
    #[inline]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        loop {
            let u = self.h_integral_n + rng.gen::<f64>() * (self.h_integral_x1 - self.h_integral_n);
            let x = h_integral_inverse(u, self.s);
            let k = (x + 0.5).floor().clamp(1.0, self.n);
            if k - x <= self.threshold || u >= h_integral(k + 0.5, self.s) - h(k, self.s) {
                return k as u64 - 1;
            }
        }
    }

    /// Exact probability of `rank` (for tests and reports).
    pub fn pmf(&self, rank: u64) -> f64 {
        let norm: f64 = (1..=self.n as u64).map(|k| (k as f64).powf(-self.s)).sum();
        ((rank + 1) as f64).powf(-self.s) / norm
    }
}

fn h(x: f64, s: f64) -> f64 {
    (-s * x.ln()).exp()
}

fn h_integral(x: f64, s: f64) -> f64 {
    let log_x = x.ln();
    helper2((1.0 - s) * log_x) * log_x
}

fn h_integral_inverse(x: f64, s: f64) -> f64 {
    let t = (x * (1.0 - s)).max(-1.0);
    (helper1(t) * x).exp()
}

/// ln(1 + x) / x, accurate near 0.
fn helper1(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.ln_1p() / x
    } else {
        1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x))
    }
}

/// (e^x - 1) / x, accurate near 0.
fn helper2(x: f64) -> f64 {
    if x.abs() > 1e-8 {
        x.exp_m1() / x
    } else {
        1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x))
    }
}
