//! Keys written on this node since the last map change, for the warm
//! hand-off: a key written here (set, overwritten, deleted, expired on
//! purpose) must never be read back from its slot's previous owner, whose
//! copy is older. A fixed bitmap by key hash, shared by every thread
//! without a lock: a false positive only turns a hand-off into a miss.

use std::sync::atomic::{AtomicU64, Ordering};

/// 2^20 bits (128 KiB): with W keys written since the change, a key not
/// written looks written with a chance of about W / 2^20.
const WORDS: usize = 1 << 14;

pub struct WriteMarks {
    bits: Box<[AtomicU64]>,
}

impl std::fmt::Debug for WriteMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteMarks")
    }
}

impl Default for WriteMarks {
    fn default() -> WriteMarks {
        WriteMarks {
            bits: (0..WORDS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bit(key: &[u8]) -> (usize, u64) {
    let h = xxhash_rust::xxh3::xxh3_64(key) as usize;
    ((h >> 6) % WORDS, 1 << (h & 63))
}

impl WriteMarks {
    /// `key` was written here.
    pub fn mark(&self, key: &[u8]) {
        let (word, mask) = bit(key);
        // ORDERING: SeqCst, with the load in `marked`: a mark made (on
        // any thread) before a hand-off checks is seen by that check. (On
        // x86 the RMW is locked anyway and the load a plain move.)
        if self.bits[word].load(Ordering::SeqCst) & mask == 0 {
            self.bits[word].fetch_or(mask, Ordering::SeqCst);
        }
    }

    /// Whether `key` (or another key with its bit) was written here.
    pub fn marked(&self, key: &[u8]) -> bool {
        let (word, mask) = bit(key);
        // ORDERING: SeqCst, see `mark`.
        self.bits[word].load(Ordering::SeqCst) & mask != 0
    }
}

/// Members that answered a hand-off that they never owned the slot (a
/// cold start, where every node's first view looks like a join): not
/// asked again while this map is in force. By member index, the first 64.
#[derive(Debug, Default)]
pub struct DrySources(AtomicU64);

impl DrySources {
    pub fn mark(&self, member: usize) {
        if member < 64 {
            // ORDERING: Relaxed: only spares later misses a round trip.
            self.0.fetch_or(1 << member, Ordering::Relaxed);
        }
    }

    pub fn is_dry(&self, member: usize) -> bool {
        member < 64 && self.0.load(Ordering::Relaxed) & (1 << member) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_keys_are_remembered_and_others_mostly_not() {
        let marks = WriteMarks::default();
        for i in 0..1000 {
            marks.mark(format!("w{i}").as_bytes());
        }
        assert!((0..1000).all(|i| marks.marked(format!("w{i}").as_bytes())));
        let false_positives = (0..10_000)
            .filter(|i| marks.marked(format!("r{i}").as_bytes()))
            .count();
        assert!(false_positives < 50, "{false_positives}");
    }

    #[test]
    fn dry_sources_by_index() {
        let dry = DrySources::default();
        dry.mark(3);
        dry.mark(70);
        assert!(dry.is_dry(3) && !dry.is_dry(2) && !dry.is_dry(70));
    }
}
