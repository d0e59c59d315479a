//! Redis's CRC-64 (Jones polynomial, reflected, initial value 0, no final
//! xor), the checksum at the end of every DUMP payload (DUMP, RESTORE,
//! MIGRATE, cluster hand-offs).
//!
//! Eight bytes a step ("slicing-by-8", as Redis's crcspeed): table `k`
//! holds a byte's effect on the CRC after `k` more bytes, so the eight
//! lookups of a step are independent (one table lookup a byte made each
//! wait for the one before: ~5x slower).

/// 0xad93d23594c935a9 bit-reversed, for the reflected table.
const POLY_REFLECTED: u64 = 0x95ac_9329_ac4b_c9b5;

const TABLES: [[u64; 256]; 8] = tables();

const fn tables() -> [[u64; 256]; 8] {
    let mut t = [[0u64; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY_REFLECTED
            } else {
                crc >> 1
            };
            bit += 1;
        }
        t[0][i] = crc;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = t[0][(prev & 0xff) as usize] ^ (prev >> 8);
            i += 1;
        }
        k += 1;
    }
    t
}

/// One byte into `crc`.
#[inline]
fn byte(crc: u64, b: u8) -> u64 {
    TABLES[0][((crc ^ u64::from(b)) & 0xff) as usize] ^ (crc >> 8)
}

/// The checksum of `bytes`.
pub fn crc64(bytes: &[u8]) -> u64 {
    let mut chunks = bytes.chunks_exact(8);
    let mut crc = 0u64;
    for chunk in &mut chunks {
        let x = crc ^ u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let at = |k: usize, shift: u32| TABLES[k][((x >> shift) & 0xff) as usize];
        crc = at(7, 0)
            ^ at(6, 8)
            ^ at(5, 16)
            ^ at(4, 24)
            ^ at(3, 32)
            ^ at(2, 40)
            ^ at(1, 48)
            ^ at(0, 56);
    }
    chunks.remainder().iter().fold(crc, |crc, &b| byte(crc, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A byte at a time: the definition the sliced form must agree with.
    fn bytewise(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0u64, |crc, &b| byte(crc, b))
    }

    #[test]
    fn matches_redis_check_value() {
        // redis/src/crc64.c's self-test.
        assert_eq!(crc64(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn eight_bytes_a_step_agree_with_one_at_a_time() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let bytes: Vec<u8> = (0..1000)
            .map(|_| {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                rng as u8
            })
            .collect();
        // Every length (each remainder), from every alignment.
        for start in 0..8 {
            for end in start..bytes.len() {
                let part = &bytes[start..end];
                assert_eq!(crc64(part), bytewise(part), "{start}..{end}");
            }
        }
    }
}
