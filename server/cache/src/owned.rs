//! Items owned by another item: the pages of a big collection.
//!
//! A collection past its compact size is stored as a *root* item under the
//! user's key plus *page* items (`ValueKind::Page`) under keys derived from
//! it. The engine does not know the collection layouts; it knows only this
//! contract, which lets it hide pages from the keyspace and tell a live page
//! from an orphan (one whose root was deleted, replaced, expired or
//! evicted):
//!
//! * a page's key is `owner key | generation:u64 | page:u64 |
//!   owner length:u32 | PAGE_KEY_MAGIC`, all little endian;
//! * a root's value starts with `OWNER_MARK`, the same generation, a
//!   version (the collection's business), then the range of page numbers
//!   its pages lie in, `first..end` (all u64 LE). Generations are random
//!   64-bit numbers drawn per root, so a root re-created under the same
//!   key never adopts an old root's pages.
//!
//! A page is live while its owner key holds a root with its generation.

use std::cell::Cell;
use std::ops::Range;

/// Ends every page key: a user key that happens to end the same way and
/// parse as a page key is astronomically unlikely (and is then only ever
/// hidden, never corrupted, by the engine).
pub const PAGE_KEY_MAGIC: [u8; 8] = *b"\xffcitPG\x00\x01";
/// First byte of a root's value (the packed encodings start with 0).
pub const OWNER_MARK: u8 = 1;
/// Bytes of a root's value the engine reads: mark, generation, version,
/// first page, end page.
pub const OWNER_STAMP_LEN: usize = 33;
const TRAILER: usize = 8 + 8 + 4 + PAGE_KEY_MAGIC.len();

/// A parsed page key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageKey<'a> {
    pub owner: &'a [u8],
    pub generation: u64,
    pub page: u64,
}

/// Writes the key of page `page` of the root at `owner` into `out`
/// (cleared first).
pub fn page_key(owner: &[u8], generation: u64, page: u64, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(owner.len() + TRAILER);
    out.extend_from_slice(owner);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&page.to_le_bytes());
    out.extend_from_slice(&(owner.len() as u32).to_le_bytes());
    out.extend_from_slice(&PAGE_KEY_MAGIC);
}

/// The owner, generation and page number a page key names; None for any
/// other key.
pub fn parse_page_key(key: &[u8]) -> Option<PageKey<'_>> {
    let owner_len = key.len().checked_sub(TRAILER)?;
    let trailer = &key[owner_len..];
    if trailer[20..] != PAGE_KEY_MAGIC {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(trailer[at..at + 8].try_into().expect("8 bytes"));
    let stated = u32::from_le_bytes(trailer[16..20].try_into().expect("4 bytes"));
    (stated as usize == owner_len).then(|| PageKey {
        owner: &key[..owner_len],
        generation: word(0),
        page: word(8),
    })
}

/// The generation a root's value carries (from its first
/// `OWNER_STAMP_LEN` bytes); None for a value that is not a root.
pub fn owner_generation(value_head: &[u8]) -> Option<u64> {
    owner_stamp(value_head).map(|(generation, _)| generation)
}

/// The generation and page range a root's value carries; None for a value
/// that is not a root.
pub fn owner_stamp(value_head: &[u8]) -> Option<(u64, Range<u64>)> {
    if value_head.len() < OWNER_STAMP_LEN || value_head[0] != OWNER_MARK {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(value_head[at..at + 8].try_into().expect("8 bytes"));
    Some((word(1), word(17)..word(25)))
}

thread_local! {
    static GENERATOR: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let local = 0u8;
    xxhash_rust::xxh3::xxh3_64_with_seed(
        &(&local as *const u8 as u64).to_le_bytes(),
        now ^ u64::from(std::process::id()),
    )
}

/// A fresh generation for a new root: random (never 0), so generations
/// never repeat across restarts, threads or processes in practice.
pub fn new_generation() -> u64 {
    GENERATOR.with(|state| {
        // splitmix64: a full-period sequence from the per-thread seed.
        let next = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)).max(1)
    })
}

/// What the engine keeps of a root's stamp (Copy, unlike a range).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RootStamp {
    pub generation: u64,
    pub first: u64,
    pub end: u64,
}

impl RootStamp {
    pub fn of(value_head: &[u8]) -> Option<RootStamp> {
        owner_stamp(value_head).map(|(generation, pages)| RootStamp {
            generation,
            first: pages.start,
            end: pages.end,
        })
    }

    pub fn pages(self) -> Range<u64> {
        self.first..self.end
    }
}

/// Pages of a dropped root waiting to be deleted, a few per maintenance
/// turn, so dropping a big collection never stalls a core.
#[derive(Default)]
pub(crate) struct ReclaimQueue {
    pending: std::collections::VecDeque<(Vec<u8>, u64, Range<u64>)>,
    /// Pages still to hand out, over all entries.
    pages: u64,
    key: Vec<u8>,
}

impl ReclaimQueue {
    pub fn push(&mut self, owner: &[u8], generation: u64, pages: Range<u64>) {
        if !pages.is_empty() {
            self.pages += pages.end - pages.start;
            self.pending.push_back((owner.to_vec(), generation, pages));
        }
    }

    /// Moves every entry of `other` to the back of this queue.
    pub fn append(&mut self, other: &mut ReclaimQueue) {
        self.pages += std::mem::take(&mut other.pages);
        self.pending.append(&mut other.pending);
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Pages queued and not handed out yet.
    pub fn pending_pages(&self) -> u64 {
        self.pages
    }

    /// Dropped roots with pages not handed out yet.
    pub fn pending_roots(&self) -> u64 {
        self.pending.len() as u64
    }

    /// Hands the next page keys to `delete` (page key, owner key,
    /// generation), at most `budget` of them; returns how many were handed
    /// and how many dropped roots had every page handed out (INFO's
    /// `lazyfreed_objects`).
    pub fn drain(
        &mut self,
        budget: usize,
        mut delete: impl FnMut(&[u8], &[u8], u64),
    ) -> (usize, u64) {
        let (mut done, mut roots) = (0, 0);
        // A root's last page counts it, so an entry emptied by the last
        // call of a budget is not left behind for the next one.
        while done < budget {
            let Some((owner, generation, pages)) = self.pending.front_mut() else {
                break;
            };
            match pages.next() {
                Some(page) => {
                    page_key(owner, *generation, page, &mut self.key);
                    delete(&self.key, owner, *generation);
                    self.pages -= 1;
                    done += 1;
                    if pages.is_empty() {
                        self.pending.pop_front();
                        roots += 1;
                    }
                }
                None => {
                    self.pending.pop_front();
                }
            }
        }
        (done, roots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_keys_round_trip_and_other_keys_do_not_parse() {
        let mut key = Vec::new();
        page_key(b"user:1", 42, 7, &mut key);
        let parsed = parse_page_key(&key).expect("a page key");
        assert_eq!(parsed.owner, b"user:1");
        assert_eq!((parsed.generation, parsed.page), (42, 7));
        assert_eq!(parse_page_key(b"user:1"), None);
        let mut wrong_len = key.clone();
        wrong_len.insert(0, b'x');
        assert_eq!(parse_page_key(&wrong_len), None);
        page_key(b"", 1, 0, &mut key);
        assert_eq!(parse_page_key(&key).map(|p| p.owner), Some(&b""[..]));
    }

    #[test]
    fn generations_are_distinct_and_roots_carry_them() {
        let a = new_generation();
        let b = new_generation();
        assert_ne!(a, b);
        let mut root = vec![OWNER_MARK];
        for word in [a, 5, 2, 9] {
            root.extend_from_slice(&word.to_le_bytes());
        }
        assert_eq!(owner_generation(&root), Some(a));
        assert_eq!(owner_stamp(&root), Some((a, 2..9)));
        assert_eq!(owner_generation(&[0, 1, 2]), None);
        assert_eq!(owner_generation(&[OWNER_MARK, 1]), None);
    }

    #[test]
    fn reclaim_hands_out_every_page_within_budgets() {
        let mut queue = ReclaimQueue::default();
        queue.push(b"k", 9, 0..5);
        queue.push(b"j", 3, 2..4);
        assert_eq!(queue.pending_pages(), 7);
        let mut seen = Vec::new();
        let mut calls = Vec::new();
        while !queue.is_empty() {
            calls.push(queue.drain(3, |key, _, _| {
                seen.push(parse_page_key(key).map(|p| p.page))
            }));
        }
        assert_eq!(seen.len(), 7);
        assert_eq!(queue.pending_pages(), 0);
        assert_eq!(seen[5], Some(2));
        // (pages handed, roots finished): a root counts with its last page.
        assert_eq!(calls, [(3, 0), (3, 1), (1, 1)]);
    }
}
