//! Which of a bucket's eight entries carry a key's 16-bit tag, as a bit
//! mask (bit `i`: word `i`), in one pass over the 64-byte bucket.
//!
//! Every lookup and every pipelined prefetch asks this of a bucket. Word
//! by word (load, shift, compare, set, shift, or) it cost ~45
//! instructions a bucket under callgrind; on x86-64 four SSE2 loads,
//! two shuffles that gather the words' upper halves, two 16-bit compares
//! and two packs make it 15. The words are read inside `asm!` (outside
//! the Rust memory model, as `region/shared.rs` copies bytes): the mask
//! is a hint, as a Relaxed load would be: a caller loads a matching
//! entry again, atomically, before using it.

use crate::index::TAG_SHIFT;
use crate::layout::{slots_per_bucket, BUCKET_SLOTS};
use crate::sync::AtomicU64;
#[cfg(any(loom, not(target_arch = "x86_64")))]
use crate::sync::Ordering;

// The SSE2 pass compares the top 16 bits of each word, and fills 8 bits.
const _: () = assert!(TAG_SHIFT == 48 && BUCKET_SLOTS == 8);

/// Bit `i` set where `words[i]`, an entry of a bucket of `level`, has the
/// tag `tag` (an empty entry's tag is 0: a caller skips empties). A
/// home's word 0 is its lock, not an entry: never set.
#[inline(always)]
pub(crate) fn entries_tagged(words: &[AtomicU64; BUCKET_SLOTS], tag: u16, level: usize) -> u32 {
    tag_mask(words, tag) & (u32::MAX << (BUCKET_SLOTS - slots_per_bucket(level)))
}

/// Bit `i` set where `words[i]`'s top 16 bits are `tag`.
#[inline(always)]
fn tag_mask(words: &[AtomicU64; BUCKET_SLOTS], tag: u16) -> u32 {
    #[cfg(all(target_arch = "x86_64", not(loom)))]
    {
        let mask: u32;
        // SAFETY: `words` is a live reference to 64 bytes (eight
        // AtomicU64), which the four unaligned 16-byte loads cover exactly;
        // the asm only reads them (no store, no stack) and writes its
        // declared registers. SSE2 is part of x86-64's baseline.
        unsafe {
            std::arch::asm!(
                // The tag in all eight 16-bit lanes.
                "movd {t}, {tag:e}",
                "pshuflw {t}, {t}, 0",
                "pshufd {t}, {t}, 0",
                "movups {a}, xmmword ptr [{p}]",
                "movups {c}, xmmword ptr [{p} + 16]",
                "movups {b}, xmmword ptr [{p} + 32]",
                "movups {d}, xmmword ptr [{p} + 48]",
                // The upper 32 bits of words 0-3 into `a`, of 4-7 into `b`.
                "shufps {a}, {c}, 0xDD",
                "shufps {b}, {d}, 0xDD",
                // Each dword's upper 16 bits (the tag) all ones where equal:
                // the dword is negative exactly then ...
                "pcmpeqw {a}, {t}",
                "pcmpeqw {b}, {t}",
                // ... and signed saturation keeps that sign: eight 16-bit
                // lanes, then eight bytes, one per word in order.
                "packssdw {a}, {b}",
                "packsswb {a}, {a}",
                "pmovmskb {m:e}, {a}",
                "movzx {m:e}, {m:l}",
                p = in(reg) words.as_ptr(),
                tag = in(reg) u32::from(tag),
                m = out(reg) mask,
                t = out(xmm_reg) _,
                a = out(xmm_reg) _,
                b = out(xmm_reg) _,
                c = out(xmm_reg) _,
                d = out(xmm_reg) _,
                options(nostack, readonly, preserves_flags)
            );
        }
        mask
    }
    #[cfg(any(loom, not(target_arch = "x86_64")))]
    {
        let mut mask = 0u32;
        for (i, word) in words.iter().enumerate() {
            // ORDERING: Relaxed: a hint, see the module's comment.
            let w = word.load(Ordering::Relaxed);
            mask |= u32::from((w >> TAG_SHIFT) as u16 == tag) << i;
        }
        mask
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn scalar(words: &[u64; 8], tag: u16) -> u32 {
        let mut mask = 0;
        for (i, w) in words.iter().enumerate() {
            mask |= u32::from((w >> TAG_SHIFT) as u16 == tag) << i;
        }
        mask
    }

    #[test]
    fn the_mask_marks_exactly_the_words_with_the_tag() {
        // Tags and low bits chosen to catch a lane or sign mix-up: the low
        // halves hold the tag and all-ones patterns, tags 0, 0x7FFF, 0x8000
        // and 0xFFFF.
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let tags = [0u16, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234];
        for round in 0..2000 {
            let tag = tags[round % tags.len()];
            let mut raw = [0u64; 8];
            for w in &mut raw {
                let r = next();
                let top = match r % 4 {
                    0 => u64::from(tag),
                    1 => u64::from(tag ^ 1),
                    2 => u64::from(tag ^ 0x8000),
                    _ => r >> 48,
                };
                let low = match (r >> 8) % 3 {
                    0 => u64::from(tag) | u64::from(tag) << 16 | u64::from(tag) << 32,
                    1 => 0xFFFF_FFFF_FFFF,
                    _ => next() & 0xFFFF_FFFF_FFFF,
                };
                *w = top << TAG_SHIFT | low;
            }
            let words = raw.map(AtomicU64::new);
            assert_eq!(
                tag_mask(&words, tag),
                scalar(&raw, tag),
                "{raw:x?} tag {tag:x}"
            );
        }
    }

    #[test]
    fn an_unaligned_bucket_reads_the_same() {
        // Eight words at an 8- but not 16-byte aligned address.
        let raw: Vec<u64> = (0..9u64).map(|i| (i % 3) << TAG_SHIFT | i).collect();
        let backing: Vec<AtomicU64> = raw.iter().map(|&w| AtomicU64::new(w)).collect();
        let start = usize::from((backing.as_ptr() as usize).is_multiple_of(16));
        let words: &[AtomicU64; 8] = backing[start..start + 8].try_into().unwrap();
        let expect: [u64; 8] = raw[start..start + 8].try_into().unwrap();
        for tag in 0..3 {
            assert_eq!(tag_mask(words, tag), scalar(&expect, tag));
        }
    }
}
