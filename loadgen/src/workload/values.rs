//! Pre-generated value bytes: every SET value is a slice of one buffer, so no request
//! allocates or fills memory for its value.

use rand::Rng;

use crate::cli::ValueSize;

/// Extra bytes beyond the largest value, so values start at varied offsets.
const SPREAD: usize = 4096;

#[derive(Debug)]
pub struct ValuePool {
    bytes: Vec<u8>,
    size: ValueSize,
}

impl ValuePool {
    pub fn new<R: Rng + ?Sized>(size: ValueSize, rng: &mut R) -> ValuePool {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
        let bytes = (0..size.max + SPREAD)
            .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())])
            .collect();
        ValuePool { bytes, size }
    }

    /// A value of a size drawn uniformly from the configured range.
    #[inline]
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> &[u8] {
        let len = if self.size.min == self.size.max {
            self.size.min
        } else {
            rng.gen_range(self.size.min..=self.size.max)
        };
        let start = rng.gen_range(0..SPREAD);
        &self.bytes[start..start + len]
    }
}
