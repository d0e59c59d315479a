//! Invalidations on their way to the server: keys are batched into
//! `Invalidation` records (one per wake-up, bounded in size) and spread over
//! the ring pairs round robin (the cache is shared: one pair suffices).

use crate::wire::Answer;

use super::pair::Pair;

/// Most keys in one record.
const MAX_KEYS: usize = 256;
/// Most key bytes in one record.
const MAX_BYTES: usize = 32 << 10;

#[derive(Debug, Default)]
pub struct Notices {
    keys: Vec<Vec<u8>>,
    bytes: usize,
    sealed: Vec<Answer>,
    next_pair: usize,
}

impl Notices {
    /// `key` changed; an empty key means anything may have changed.
    pub fn key(&mut self, key: Vec<u8>) {
        if key.is_empty() {
            return self.resync();
        }
        self.bytes += key.len();
        self.keys.push(key);
        if self.keys.len() >= MAX_KEYS || self.bytes >= MAX_BYTES {
            self.seal();
        }
    }

    /// Changes may have been missed.
    pub fn resync(&mut self) {
        self.seal();
        self.sealed.push(Answer::invalidation(&[], true));
    }

    /// Queues every record on the pairs.
    pub fn send(&mut self, pairs: &mut [Pair]) {
        self.seal();
        for record in self.sealed.drain(..) {
            pairs[self.next_pair % pairs.len()].push_unsolicited(record);
            self.next_pair = self.next_pair.wrapping_add(1);
        }
    }

    fn seal(&mut self) {
        if !self.keys.is_empty() {
            self.sealed.push(Answer::invalidation(&self.keys, false));
            self.keys.clear();
            self.bytes = 0;
        }
    }
}
