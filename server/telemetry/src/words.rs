//! Word-level helpers over the mapped region: bytes packed into words,
//! names, and the seqlock that guards the tables one publisher rewrites
//! while readers in other processes copy them.

use std::sync::atomic::{fence, AtomicU64, Ordering};

use memmap2::{Mmap, MmapMut};

/// The mapping as words.
pub fn as_words(map: &Mmap) -> &[AtomicU64] {
    // SAFETY: the mapping is page-aligned (so 8-aligned) and its length is
    // rounded down to whole words; AtomicU64 has u64's layout, and every
    // access (here only loads) goes through atomics, as other processes'
    // writes to the shared file may race them.
    unsafe { std::slice::from_raw_parts(map.as_ptr().cast::<AtomicU64>(), map.len() / 8) }
}

/// The writable mapping as words.
pub fn as_words_mut(map: &MmapMut) -> &[AtomicU64] {
    // SAFETY: as `as_words`; writes go through the atomics too, so a
    // shared reference suffices (the memory is shared with other processes).
    unsafe { std::slice::from_raw_parts(map.as_ptr().cast::<AtomicU64>(), map.len() / 8) }
}

/// The writer's mapping, shared by the region and its recording handles.
pub struct Mapping(MmapMut);

impl Mapping {
    pub fn new(map: MmapMut) -> Mapping {
        Mapping(map)
    }

    pub fn words(&self) -> &[AtomicU64] {
        as_words_mut(&self.0)
    }
}

/// Stores `bytes` into `words` (little-endian, zero-padded to the end).
pub fn put_bytes(words: &[AtomicU64], bytes: &[u8]) {
    let mut chunks = bytes.chunks(8);
    for w in words {
        let mut b = [0u8; 8];
        if let Some(c) = chunks.next() {
            b[..c.len()].copy_from_slice(c);
        }
        w.store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
}

/// The first `len` bytes stored in `words`.
pub fn get_bytes(words: &[AtomicU64], len: usize) -> Vec<u8> {
    let mut out: Vec<u8> = words
        .iter()
        .flat_map(|w| w.load(Ordering::Relaxed).to_le_bytes())
        .collect();
    out.truncate(len);
    out
}

/// A zero-padded name (empty when never written).
pub fn get_name(words: &[AtomicU64]) -> String {
    let mut bytes = get_bytes(words, words.len() * 8);
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    bytes.truncate(end);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `name` cut to fit `words` words with one zero left, at a character
/// boundary: what `put_name` stores.
pub fn fit_name(name: &str, words: usize) -> &str {
    let mut end = name.len().min(words * 8 - 1);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// Stores `name`, cut to fit (see `fit_name`).
pub fn put_name(words: &[AtomicU64], name: &str) {
    put_bytes(words, fit_name(name, words.len()).as_bytes());
}

/// Writer side: makes `seq` odd, runs `write`, makes it even again. One
/// writer at a time (the caller's publisher).
pub fn seq_write(seq: &AtomicU64, write: impl FnOnce()) {
    let s = seq.load(Ordering::Relaxed);
    seq.store(s | 1, Ordering::Relaxed);
    fence(Ordering::Release);
    write();
    seq.store((s | 1) + 1, Ordering::Release);
}

/// Reader side: `read` until it saw no write in between; `None` when a
/// write was in progress every time (e.g. a writer died halfway).
pub fn seq_read<T>(seq: &AtomicU64, mut read: impl FnMut() -> T) -> Option<T> {
    for _ in 0..100 {
        let before = seq.load(Ordering::Acquire);
        if before & 1 == 1 {
            std::thread::yield_now();
            continue;
        }
        let value = read();
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) == before {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(u64::MAX)).collect()
    }

    #[test]
    fn bytes_round_trip_and_pad() {
        let w = words(3);
        put_bytes(&w, b"hello, world");
        assert_eq!(get_bytes(&w, 12), b"hello, world");
        assert_eq!(w[2].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn names_are_cut_at_a_character_boundary() {
        let w = words(1);
        put_name(&w, "ééééé");
        assert_eq!(get_name(&w), "ééé");
        put_name(&w, "get");
        assert_eq!(get_name(&w), "get");
    }

    #[test]
    fn a_reader_gives_up_on_a_write_left_halfway() {
        let seq = AtomicU64::new(3);
        assert_eq!(seq_read(&seq, || 1), None);
        seq_write(&seq, || {});
        assert_eq!(seq.load(Ordering::Relaxed), 4);
        assert_eq!(seq_read(&seq, || 1), Some(1));
    }
}
