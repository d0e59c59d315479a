//! Linear hashing over pages: the paged form of hashes and sets.
//!
//! A paged hash or set is a root (`paged::RootHeader`, then this module's
//! `count:u64 | bytes:u64 | level:u8 | split:u64`, little endian) and
//! `P = 2^level + split` pages numbered `0..P`, each a packed value of
//! entries (`arity` elements each: field, value for a hash; the member for
//! a set). An entry whose key (its first element) hashes to `h`
//! ([`key_hash`]: xxh3 with a fixed seed, stable across restarts) lies on
//! page `h mod 2^level`, or `h mod 2^(level+1)` when that is below
//! `split` (those pages were split already). `bytes` is the sum of the
//! pages' element bytes (length prefixes included). An empty page is not
//! stored (a missing page reads as empty).
//!
//! Growing past [`SPLIT_ENTRIES`] entries or [`SPLIT_BYTES`] bytes per
//! page on average splits page `split` into itself and `split + 2^level`
//! (by the next hash bit); falling below [`MERGE_ENTRIES`] and
//! [`MERGE_BYTES`] undoes the last split. So a write reads and writes the
//! root, the pages of the keys it names, and a split or merge pair: the
//! pages are planned from the root alone ([`Root::pages_for`]).

use crate::packed::{Corrupt, PackedWriter};
use crate::paged::RootHeader;

mod build;
mod page;
pub mod scan;
mod table;
#[cfg(test)]
mod tests;

pub use build::{build, build_range};
pub use table::{Output, Table};

/// Split when the pages hold more than this many entries on average.
pub const SPLIT_ENTRIES: u64 = 32;
/// ... or more than this many bytes on average.
pub const SPLIT_BYTES: u64 = 1024;
/// Merge when the pages hold fewer entries than this on average ...
pub const MERGE_ENTRIES: u64 = 8;
/// ... and fewer bytes than this.
pub const MERGE_BYTES: u64 = 256;
/// At most this many splits or merges are planned for one write (a big
/// HSET catches up over its next writes).
const MAX_REBALANCE: usize = 256;

/// The fixed seed of [`key_hash`]: changing it would misplace every
/// stored entry.
const SEED: u64 = 0x6369_7461_6465_6c21;

/// The hash that places a key (a field or member) on its page.
pub fn key_hash(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(key, SEED)
}

/// Bytes the type-specific part of a root takes.
const ROOT_REST_LEN: usize = 8 + 8 + 1 + 8;

/// A parsed paged root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Root {
    pub header: RootHeader,
    /// Entries (fields or members).
    pub count: u64,
    /// Element bytes of all pages (length prefixes included).
    pub bytes: u64,
    pub level: u32,
    pub split: u64,
}

impl Root {
    /// A root with one (empty) page.
    pub fn new(generation: u64) -> Root {
        Root {
            header: RootHeader {
                generation,
                version: 0,
                pages: 0..1,
            },
            count: 0,
            bytes: 0,
            level: 0,
            split: 0,
        }
    }

    /// A root sized for `count` entries of `bytes` bytes (no split due).
    pub fn sized_for(generation: u64, count: u64, bytes: u64) -> Root {
        let pages = count
            .div_ceil(SPLIT_ENTRIES * 3 / 4)
            .max(bytes.div_ceil(SPLIT_BYTES * 3 / 4))
            .max(1);
        let level = 63 - pages.leading_zeros();
        let mut root = Root::new(generation);
        root.level = level;
        root.split = pages - (1 << level);
        root.header.pages = 0..pages;
        root.count = count;
        root.bytes = bytes;
        root
    }

    /// Parses a root; anything inconsistent is `Corrupt`.
    pub fn parse(bytes: &[u8]) -> Result<Root, Corrupt> {
        let (header, rest) = RootHeader::parse(bytes)?;
        if rest.len() != ROOT_REST_LEN {
            return Err(Corrupt);
        }
        let word = |at: usize| u64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
        let root = Root {
            header,
            count: word(0),
            bytes: word(8),
            level: u32::from(rest[16]),
            split: word(17),
        };
        if root.level > 62
            || root.split >= 1 << root.level
            || root.header.pages != (0..root.page_count())
        {
            return Err(Corrupt);
        }
        Ok(root)
    }

    /// The root's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(crate::paged::ROOT_HEADER_LEN + ROOT_REST_LEN);
        self.header.write(&mut out);
        out.extend_from_slice(&self.count.to_le_bytes());
        out.extend_from_slice(&self.bytes.to_le_bytes());
        out.push(self.level as u8);
        out.extend_from_slice(&self.split.to_le_bytes());
        out
    }

    /// P: pages `0..P` exist (or are empty).
    pub fn page_count(&self) -> u64 {
        (1 << self.level) + self.split
    }

    /// The page of a key hashing to `hash`.
    pub fn page_of(&self, hash: u64) -> u64 {
        let page = hash & ((1 << self.level) - 1);
        if page < self.split {
            hash & ((2 << self.level) - 1)
        } else {
            page
        }
    }

    /// The page `key` lies on.
    pub fn page_of_key(&self, key: &[u8]) -> u64 {
        self.page_of(key_hash(key))
    }

    /// How many hash bits place keys on `page`.
    pub fn page_level(&self, page: u64) -> u32 {
        if page < self.split || page >= 1 << self.level {
            self.level + 1
        } else {
            self.level
        }
    }

    fn needs_split(&self) -> bool {
        let pages = self.page_count();
        self.level < 62 && (self.count > SPLIT_ENTRIES * pages || self.bytes > SPLIT_BYTES * pages)
    }

    fn needs_merge(&self) -> bool {
        let pages = self.page_count();
        pages > 1 && self.count < MERGE_ENTRIES * pages && self.bytes < MERGE_BYTES * pages
    }

    /// The pages the next split moves entries between (from, to).
    fn split_pair(&self) -> (u64, u64) {
        (self.split, self.split + (1 << self.level))
    }

    fn advance_split(&mut self) {
        self.split += 1;
        if self.split == 1 << self.level {
            self.level += 1;
            self.split = 0;
        }
        self.header.pages = 0..self.page_count();
    }

    /// The pages the next merge moves entries between (into, from).
    fn merge_pair(&self) -> (u64, u64) {
        let mut before = self.clone();
        before.retreat_split();
        before.split_pair()
    }

    fn retreat_split(&mut self) {
        if self.split == 0 {
            self.level -= 1;
            self.split = 1 << self.level;
        }
        self.split -= 1;
        self.header.pages = 0..self.page_count();
    }

    /// The pages a write needs: those of `keys`, and those of the splits
    /// or merges it may cause when it adds up to `adds` entries of up to
    /// `added_bytes` bytes in all, or removes up to `removes` entries.
    pub fn pages_for<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        adds: u64,
        added_bytes: u64,
        removes: u64,
    ) -> Vec<u64> {
        let mut pages: Vec<u64> = keys.into_iter().map(|k| self.page_of_key(k)).collect();
        let mut grown = self.clone();
        grown.count += adds;
        grown.bytes += added_bytes;
        for _ in 0..MAX_REBALANCE {
            if !grown.needs_split() {
                break;
            }
            let (from, to) = grown.split_pair();
            pages.extend([from, to]);
            grown.advance_split();
        }
        let mut shrunk = self.clone();
        shrunk.count = shrunk.count.saturating_sub(removes);
        for _ in 0..MAX_REBALANCE {
            if !shrunk.needs_merge() {
                break;
            }
            let (into, from) = shrunk.merge_pair();
            pages.extend([into, from]);
            shrunk.retreat_split();
        }
        pages.sort_unstable();
        pages.dedup();
        pages
    }
}

/// Bytes an entry of these elements adds to its page.
pub fn entry_bytes<'e>(elements: impl IntoIterator<Item = &'e [u8]>) -> u64 {
    elements
        .into_iter()
        .map(|e| PackedWriter::element_cost(e.len()) as u64)
        .sum()
}
