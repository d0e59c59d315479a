//! The optimistic item lookup over a mapping: parse the item an index entry
//! points at, find a key among its slots, classify what a read finds. Used
//! by the server's `Cache` (and through it every handle) and by the
//! read-only `CacheReader` of another process, so it only ever *reads* the
//! mapping. The caller brackets it with the home bucket's seqlock
//! (`Locks::read_begin` / `read_validate`); nothing found here means anything
//! until that validation succeeds.

use crate::bucket_tags::entries_tagged;
use crate::edit::check_matches;
use crate::index::{bucket_off, probe_levels, Entry, KeyHash};
use crate::item::{parse_header, Header, ItemRef, HEAD_COPY};
use crate::layout::{Geometry, BUCKET_SLOTS, SEGMENT_SIZE};
use crate::region::Region;
use crate::segment::{Seg, FLAG_SUSPECT};
use crate::sync::Ordering;

/// A read-only view of a mapping for lookups.
#[derive(Clone, Copy)]
pub(crate) struct Items<'a> {
    pub region: &'a Region,
    pub geo: &'a Geometry,
    /// Verify the checks of items in suspect segments (segments that were
    /// live when an owner crashed). A cache that attached cleanly has none;
    /// a reader in another process cannot know, so it always looks.
    pub verify_suspect: bool,
}

/// What an optimistic lookup found (valid only once its read is validated).
pub(crate) enum Found<T> {
    /// The slot (offset, entry) pointing at the key's live item, and the
    /// item (`lookup`) or what the caller made of it (`lookup_with`).
    Hit(usize, Entry, T),
    Miss,
    /// The key's item has expired: a miss, which the server also removes.
    Expired(usize, Entry),
}

/// An item's header parsed from a stack copy of its first bytes (the
/// copy is the caller's: `Items::head` fills it in place, not moved).
struct Head {
    header: Header,
    at: usize,
    /// Where the copied bytes lie in the copy.
    range: std::ops::Range<usize>,
}

/// The stack copy of an item's first bytes.
type HeadCopy = [u8; HEAD_COPY + 8];

impl<'a> Items<'a> {
    /// Looks `key` up under the home version `version` at time `now_ms`:
    /// expired items are `Expired`, negative-cache markers are misses
    /// unless `negative_too`.
    #[inline(always)]
    pub fn lookup(
        &self,
        h: KeyHash,
        key: &[u8],
        version: u64,
        now_ms: u64,
        negative_too: bool,
    ) -> Found<ItemRef<'a>> {
        self.lookup_with(h, key, version, now_ms, negative_too, |item| item)
    }

    /// `lookup` that hands a hit's item to `on_hit` where it was parsed:
    /// the item never travels in the result (a handle's GET closure).
    #[inline(always)]
    pub fn lookup_with<T>(
        &self,
        h: KeyHash,
        key: &[u8],
        version: u64,
        now_ms: u64,
        negative_too: bool,
        on_hit: impl FnOnce(ItemRef<'a>) -> T,
    ) -> Found<T> {
        match self.find(h, key, version) {
            None => Found::Miss,
            Some((slot, e, item)) if item.is_expired(now_ms) => Found::Expired(slot, e),
            Some((_, _, item)) if item.is_negative() && !negative_too => Found::Miss,
            Some((slot, e, item)) => Found::Hit(slot, e, on_hit(item)),
        }
    }

    fn seg(&self, id: u32) -> Seg<'a> {
        Seg::new(self.region, self.geo, id)
    }

    /// Copies (into `copy`) and parses the header of the item an entry
    /// points at.
    #[inline(always)]
    fn head(&self, e: Entry, copy: &mut HeadCopy) -> Option<Head> {
        if e.seg() >= self.geo.segments {
            return None;
        }
        let off = e.off() as usize;
        let room = SEGMENT_SIZE.checked_sub(off)?;
        let at = self.seg(e.seg()).data + off;
        let range = self
            .region
            .shared(at, room.min(HEAD_COPY))?
            .copy_covering(copy);
        let header = parse_header(&copy[range.clone()], room)?;
        Some(Head { header, at, range })
    }

    #[inline(always)]
    fn item_from(&self, head: &Head, version: u64) -> Option<ItemRef<'a>> {
        let h = &head.header;
        let key_at = head.at + h.key_off();
        Some(ItemRef {
            geo: self.geo,
            key: self.region.shared(key_at, h.klen as usize)?,
            area: self.region.shared(key_at + h.klen as usize, h.area_len())?,
            header: *h,
            version,
        })
    }

    /// Parses the item an entry points at; None when the bytes are not a
    /// well-formed item (possible under a racing reuse; validation catches it).
    #[inline]
    pub fn item_at(&self, e: Entry, version: u64) -> Option<ItemRef<'a>> {
        self.item_from(&self.head(e, &mut [0; HEAD_COPY + 8])?, version)
    }

    /// Length of the item at `off` of a segment being evicted (its bytes
    /// are stable), if one can be parsed there.
    pub fn item_len_at(&self, seg: Seg<'_>, off: usize) -> Option<usize> {
        Some(
            self.head(
                Entry::new(0, seg.id, off as u32, 0),
                &mut [0; HEAD_COPY + 8],
            )?
            .header
            .total_len(),
        )
    }

    /// Finds `key` among its candidate slots: (slot offset, entry, item).
    /// `version` is the home lock word read for this lookup: it says how
    /// deep the home's keys reach (`probe_levels`).
    #[inline(always)]
    pub fn find(
        &self,
        h: KeyHash,
        key: &[u8],
        version: u64,
    ) -> Option<(usize, Entry, ItemRef<'a>)> {
        let tag = h.tag();
        let mut copy: HeadCopy = [0; HEAD_COPY + 8];
        for level in 0..probe_levels(version) {
            let base = bucket_off(self.geo, level, h.bucket(level, self.geo));
            let words = self.region.bucket_at(base);
            let mut matches = entries_tagged(words, tag, level);
            while matches != 0 {
                let i = matches.trailing_zeros() as usize;
                matches &= matches - 1;
                // Loaded again rather than kept from the tag match (eight
                // stores a hit does not need): a change in between is a
                // race the key compare or the validation catches.
                // ORDERING: Acquire pairs with the Release stores and CASes
                // that publish entries (update.rs, evict.rs): the item's
                // bytes, written before, are visible.
                let e = Entry(words[i % BUCKET_SLOTS].load(Ordering::Acquire));
                if e.is_empty() {
                    continue;
                }
                let Some(head) = self.head(e, &mut copy) else {
                    continue;
                };
                if !self.key_matches(&head, &copy, key) {
                    continue;
                }
                let Some(item) = self.item_from(&head, version) else {
                    continue;
                };
                if self.verify_suspect && !self.trusted(e, item, h) {
                    continue;
                }
                return Some((base + 8 * i, e, item));
            }
        }
        None
    }

    /// Compares the item's key with `key`: from the header copy when the
    /// key is in it (short keys), else from the mapping.
    #[inline(always)]
    fn key_matches(&self, head: &Head, copy: &HeadCopy, key: &[u8]) -> bool {
        let h = &head.header;
        if h.klen as usize != key.len() {
            return false;
        }
        let start = head.range.start + h.key_off();
        match copy[..head.range.end].get(start..start + key.len()) {
            Some(copied) => same_key(copied, key),
            None => self
                .region
                .shared(head.at + h.key_off(), key.len())
                .is_some_and(|k| k == key),
        }
    }

    /// Items in segments that were live during a crash are served only if
    /// their check matches (a torn item is never returned). Asked only when
    /// `verify_suspect`; out of line (and the item passed by value), so a
    /// lookup of a cleanly attached cache does not store the item for it.
    #[cold]
    #[inline(never)]
    fn trusted(&self, e: Entry, item: ItemRef<'_>, h: KeyHash) -> bool {
        // ORDERING: Relaxed: the flag is set by recovery before the cache
        // is shared (for a reader in another process: before recovery's
        // final version bump, Release, which its validation observes), and
        // cleared only by a new owner that reset the segment.
        let suspect = self.seg(e.seg()).flags().load(Ordering::Relaxed) & FLAG_SUSPECT != 0;
        !suspect || check_matches(&item, h.0)
    }
}

/// Key equality with a fast path for keys of 8 to 16 bytes (most keys):
/// two overlapping word compares instead of a memcmp call.
#[inline]
fn same_key(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let n = a.len();
    if (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a == b
}
