//! The key of a thread's compiled scripts: a script's SHA1 as 40
//! lowercase hex digits, hashed by folding its own digits (they are
//! uniformly distributed already). The default SipHash of the text was
//! ~250 instructions of every EVALSHA.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A SHA1 as 40 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ShaKey([u8; 40]);

impl ShaKey {
    /// `sha` as a key; None unless it is 40 bytes long.
    pub fn new(sha: &str) -> Option<ShaKey> {
        sha.as_bytes().try_into().ok().map(ShaKey)
    }
}

impl Hash for ShaKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let word = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&self.0[i..i + 8]);
            u64::from_le_bytes(w)
        };
        // 32 hex digits, 4 bits of the SHA each: mixed so that both the
        // low bits (the bucket) and the high bits (hashbrown's tag) vary.
        let x =
            word(0) ^ word(8).rotate_left(17) ^ word(16).rotate_left(34) ^ word(24).rotate_left(51);
        state.write_u64(x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 29));
    }
}

/// Passes `ShaKey`'s folded word through.
#[derive(Default)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached by `ShaKey` (it writes one u64); folded anyway.
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A map keyed by SHA1.
pub type ShaMap<V> = HashMap<ShaKey, V, BuildHasherDefault<FoldHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_find_their_scripts() {
        let mut map = ShaMap::default();
        let shas: Vec<String> = (0..500)
            .map(|i| crate::script::sha1_hex(format!("return {i}").as_bytes()))
            .collect();
        for (i, sha) in shas.iter().enumerate() {
            map.insert(ShaKey::new(sha).unwrap(), i);
        }
        for (i, sha) in shas.iter().enumerate() {
            assert_eq!(map.get(&ShaKey::new(sha).unwrap()), Some(&i));
        }
        assert!(ShaKey::new("abc").is_none());
        let other = crate::script::sha1_hex(b"return 'x'");
        assert_eq!(map.get(&ShaKey::new(&other).unwrap()), None);
    }
}
