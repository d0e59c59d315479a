//! Values that carry a checksum of their key, for crash and stress tooling
//! (`citadel-cache-torture`, the crash and stress tests): any torn, stale
//! half-written or misplaced value is detectable after the fact.

/// `len` bytes (at least 16): checksum of `key` xor `round`, then `round`,
/// then a stream seeded by the checksum.
pub fn make(key: &[u8], round: u64, len: usize) -> Vec<u8> {
    let sum = fnv1a(key) ^ round;
    let mut v = Vec::with_capacity(len.max(16));
    v.extend_from_slice(&sum.to_le_bytes());
    v.extend_from_slice(&round.to_le_bytes());
    let mut x = sum | 1;
    while v.len() < len.max(16) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}

/// True when `value` is exactly `make(key, round, value.len())` for its round.
pub fn matches(key: &[u8], value: &[u8]) -> bool {
    if value.len() < 16 {
        return false;
    }
    let round = u64::from_le_bytes(value[8..16].try_into().expect("8 bytes"));
    value == make(key, round, value.len()).as_slice()
}

/// FNV-1a: independent of the cache's own hash.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x100_0000_01b3)
    })
}
