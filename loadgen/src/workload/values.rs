//! Pre-generated value bytes: every SET value is a slice of one buffer, so no request
//! allocates or fills memory for its value.

use rand::Rng;

use crate::cli::ValueSize;

/// Extra bytes beyond the largest value, so values start at varied offsets.
const SPREAD: usize = 4096;

/// A value: a range of the pool (values are at most 64 MiB).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ValueRef {
    start: u32,
    len: u32,
}

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

    /// A value of a size drawn uniformly from the configured range, as a
    /// place in the pool ([`ValuePool::get`] gives its bytes; a request
    /// resent after a cluster redirect sends the same value again).
    #[inline]
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> ValueRef {
        let len = if self.size.min == self.size.max {
            self.size.min
        } else {
            rng.gen_range(self.size.min..=self.size.max)
        };
        let start = rng.gen_range(0..SPREAD);
        ValueRef {
            start: start as u32,
            len: len as u32,
        }
    }

    #[inline]
    pub fn get(&self, v: ValueRef) -> &[u8] {
        &self.bytes[v.start as usize..(v.start + v.len) as usize]
    }
}
