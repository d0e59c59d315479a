//! The zipf generator's key frequencies match the distribution.

use citadel_loadgen::workload::zipf::Zipf;
use rand::{rngs::SmallRng, SeedableRng};

/// Chi-square statistic of `samples` draws over `n` ranks against the exact pmf.
fn chi_square(n: u64, s: f64, samples: u64, seed: u64) -> (f64, Vec<u64>, Zipf) {
    let z = Zipf::new(n, s);
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut counts = vec![0u64; n as usize];
    for _ in 0..samples {
        let k = z.sample(&mut rng);
        assert!(k < n, "rank {k} out of range");
        counts[k as usize] += 1;
    }
    let norm: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
    let chi = counts
        .iter()
        .enumerate()
        .map(|(k, &c)| {
            let expected = samples as f64 * ((k + 1) as f64).powf(-s) / norm;
            (c as f64 - expected).powi(2) / expected
        })
        .sum();
    (chi, counts, z)
}

#[test]
fn frequencies_pass_chi_square() {
    for s in [0.5, 0.99, 1.0, 1.3] {
        let n = 1000u64;
        let (chi, counts, z) = chi_square(n, s, 2_000_000, 7);
        // 999 degrees of freedom: mean 999, sd ~44.7; 1250 is beyond 5.5 sd.
        assert!(chi < 1250.0, "s={s}: chi-square {chi:.1} too large");
        // The hottest ranks match theory within 2% (relative).
        for (k, &c) in counts.iter().take(5).enumerate() {
            let freq = c as f64 / 2_000_000.0;
            let want = z.pmf(k as u64);
            assert!(
                (freq / want - 1.0).abs() < 0.02,
                "s={s} rank {k}: {freq:.5} vs {want:.5}"
            );
        }
    }
}

#[test]
fn single_key_and_large_key_spaces() {
    let mut rng = SmallRng::seed_from_u64(1);
    let one = Zipf::new(1, 0.99);
    assert!((0..1000).all(|_| one.sample(&mut rng) == 0));
    let big = Zipf::new(100_000_000, 0.99);
    let mut top = 0;
    for _ in 0..200_000 {
        let k = big.sample(&mut rng);
        assert!(k < 100_000_000);
        top += u64::from(k == 0);
    }
    // P(rank 0) = 1 / H(1e8, 0.99) ≈ 0.0506.
    let freq = top as f64 / 200_000.0;
    assert!((freq - 0.0506).abs() < 0.003, "rank-0 frequency {freq}");
}
