//! Random picks of elements by index (SPOP, SRANDMEMBER; HRANDFIELD and
//! ZRANDMEMBER alike), over any source of random 64-bit words.

/// `count` distinct indices below `n` (all of them when `count >= n`), in
/// random order: a partial Fisher-Yates shuffle.
pub fn distinct(n: usize, count: usize, rng: &mut impl FnMut() -> u64) -> Vec<usize> {
    let count = count.min(n);
    let mut indices: Vec<usize> = (0..n).collect();
    for i in 0..count {
        let j = i + below(rng, n - i);
        indices.swap(i, j);
    }
    indices.truncate(count);
    indices
}

/// `count` indices below `n` (`n > 0`), repeats allowed.
pub fn with_repeats<'r>(
    n: usize,
    count: usize,
    rng: &'r mut impl FnMut() -> u64,
) -> impl Iterator<Item = usize> + 'r {
    (0..count).map(move |_| below(rng, n))
}

/// A random index below `n` (`n > 0`).
pub fn below(rng: &mut impl FnMut() -> u64, n: usize) -> usize {
    (rng() % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng() -> impl FnMut() -> u64 {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        }
    }

    #[test]
    fn distinct_picks_are_distinct_and_in_range() {
        let mut r = rng();
        for (n, count) in [(10, 3), (10, 10), (10, 50), (0, 5), (1, 1)] {
            let mut got = distinct(n, count, &mut r);
            assert_eq!(got.len(), count.min(n));
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), count.min(n));
            assert!(got.iter().all(|&i| i < n));
        }
    }

    #[test]
    fn repeats_cover_the_range() {
        let mut r = rng();
        let got: Vec<usize> = with_repeats(3, 300, &mut r).collect();
        assert_eq!(got.len(), 300);
        assert!((0..3).all(|i| got.contains(&i)));
    }
}
