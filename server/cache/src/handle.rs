//! `CacheHandle`: one thread's door to the cache. Reads are optimistic and
//! lock-free; writes go through `update`, which runs the caller's closure on
//! an optimistic snapshot, writes new items into this thread's own segments,
//! then locks the keys' home buckets *at the versions it read* (validating the
//! snapshot in the same step) and publishes.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::error::WriteError;
use crate::index::{bucket_off, level_slots, overflow_of, Entry, KeyHash, FREQ_MAX};
use crate::item::{check_matches, parse_header, ItemRef, PutOptions};
use crate::layout::{slots_per_bucket, BUCKET_SLOTS};
use crate::layout::{Geometry, LEVELS};
use crate::segment::FLAG_SUSPECT;
use crate::stats::HandleCounters;
use crate::store::Cache;
use crate::writer::Writer;

pub struct CacheHandle {
    pub(crate) cache: Arc<Cache>,
    pub(crate) w: Writer,
    pub(crate) scratch: Scratch,
}

/// Reused buffers, so a write allocates nothing in steady state.
#[derive(Default)]
pub(crate) struct Scratch {
    pub hashes: Vec<KeyHash>,
    pub canon: Vec<usize>,
    pub homes: Vec<(u64, u64)>,
    pub found: Vec<Option<(usize, Entry)>>,
    pub expired: Vec<bool>,
    pub ops: Vec<Op>,
    pub claimed: Vec<usize>,
    pub items: Vec<Option<ItemRef<'static>>>,
    pub key: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Op {
    Keep,
    Delete,
    /// A written, unpublished item; `ttl` says whether it has an expiry
    /// (kept here so publishing need not parse it again).
    Put {
        seg: u32,
        off: u32,
        ttl: bool,
    },
}

/// The writes an `update` closure records; applied atomically after it returns.
pub struct Changes<'h> {
    pub(crate) w: &'h mut Writer,
    pub(crate) cache: &'h Cache,
    pub(crate) keys: &'h [&'h [u8]],
    pub(crate) hashes: &'h [KeyHash],
    pub(crate) canon: &'h [usize],
    pub(crate) ops: &'h mut [Op],
}

impl Changes<'_> {
    /// Writes key `i` with the concatenation of `parts`.
    pub fn put(
        &mut self,
        i: usize,
        parts: &[&[u8]],
        expire_at: Option<u64>,
    ) -> Result<(), WriteError> {
        let opts = PutOptions {
            expire_at,
            ..PutOptions::default()
        };
        self.put_with(i, parts, opts)
    }

    /// Writes key `i` with explicit options: a freshness deadline before the
    /// hard expiry, or a negative marker (read-through).
    pub fn put_with(
        &mut self,
        i: usize,
        parts: &[&[u8]],
        opts: PutOptions,
    ) -> Result<(), WriteError> {
        let i = self.canon[i];
        let (seg, off) =
            self.w
                .write_item(self.cache, self.keys[i], self.hashes[i], parts, opts)?;
        let ttl = opts.expire_at.is_some();
        self.replace(i, Op::Put { seg, off, ttl });
        Ok(())
    }

    /// Deletes key `i`.
    pub fn delete(&mut self, i: usize) {
        let i = self.canon[i];
        self.replace(i, Op::Delete);
    }

    fn replace(&mut self, i: usize, op: Op) {
        if let Op::Put { seg, off, .. } = std::mem::replace(&mut self.ops[i], op) {
            self.w.discard(self.cache, seg, off);
        }
    }
}

/// Outcome of an optimistic lookup.
enum Lookup<R> {
    Hit(R, usize, Entry),
    Miss,
    Expired(usize, Entry),
}

impl Cache {
    /// Parses the item an entry points at; None when the bytes are not a
    /// well-formed item (possible under a racing reuse; validation catches it).
    #[inline]
    pub(crate) fn item_at(&self, e: Entry, version: u64) -> Option<ItemRef<'_>> {
        if e.seg() >= self.geo.segments {
            return None;
        }
        let bytes = self.seg(e.seg()).bytes_from(e.off() as usize);
        let header = parse_header(bytes)?;
        let key_end = header.key_off() + header.klen as usize;
        let key = &bytes[header.key_off()..key_end];
        let area = &bytes[key_end..key_end + header.area_len()];
        Some(ItemRef {
            region: &self.region,
            geo: &self.geo,
            key,
            area,
            header,
            version,
        })
    }

    /// Finds `key` among its candidate slots: (slot offset, entry, item).
    /// `version` is the home lock word read for this lookup: when it counts no
    /// keys outside the home bucket, deeper levels are not probed.
    #[inline]
    pub(crate) fn find(
        &self,
        h: KeyHash,
        key: &[u8],
        version: u64,
    ) -> Option<(usize, Entry, ItemRef<'_>)> {
        let tag = h.tag();
        let levels = if overflow_of(version) == 0 { 1 } else { LEVELS };
        for level in 0..levels {
            let base = bucket_off(&self.geo, level, h.bucket(level, &self.geo));
            let words = self.region.bucket_at(base);
            let first = BUCKET_SLOTS - slots_per_bucket(level);
            for (i, word) in words.iter().enumerate().skip(first) {
                let e = Entry(word.load(Ordering::Acquire));
                if e.is_empty() || e.tag() != tag {
                    continue;
                }
                let Some(item) = self.item_at(e, version) else {
                    continue;
                };
                if !same_key(item.key, key) || !self.trusted(e, &item, h) {
                    continue;
                }
                return Some((base + 8 * i, e, item));
            }
        }
        None
    }

    /// Items in segments that were live during a crash are served only if
    /// their check matches (a torn item is never returned).
    #[inline]
    fn trusted(&self, e: Entry, item: &ItemRef<'_>, h: KeyHash) -> bool {
        if !self.recovered {
            return true;
        }
        let suspect = self.seg(e.seg()).flags().load(Ordering::Relaxed) & FLAG_SUSPECT != 0;
        !suspect || check_matches(item, h.0)
    }

    pub(crate) fn geo(&self) -> &Geometry {
        &self.geo
    }
}

impl CacheHandle {
    pub(crate) fn new(cache: Arc<Cache>, slot: usize) -> CacheHandle {
        let seed =
            crate::clock::unix_millis() ^ (slot as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        CacheHandle {
            w: Writer::new(slot, seed),
            cache,
            scratch: Scratch::default(),
        }
    }

    /// Sets the handle's notion of "now" (Unix ms); the server calls this once per loop turn.
    pub fn set_clock(&mut self, now_ms: u64) {
        self.w.now = now_ms;
    }

    pub fn now_ms(&self) -> u64 {
        self.w.now
    }

    pub fn cache(&self) -> &Arc<Cache> {
        &self.cache
    }

    fn counters(&self) -> &HandleCounters {
        &self.cache.counters.per_handle[self.w.slot]
    }

    /// Looks `key` up and calls `f` on it. `f` may run more than once (an
    /// optimistic read that raced a writer is retried); only the result of the
    /// validated call is returned. Expired keys are misses. Counts a hit or a miss.
    pub fn get<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        let r = self.peek(key, f);
        let c = self.counters();
        HandleCounters::bump(if r.is_some() { &c.hits } else { &c.misses }, 1);
        r
    }

    /// Batch hint, stage 1: starts loading `key`'s home bucket and returns
    /// its hash for [`CacheHandle::prefetch_item`]. A server that sees many
    /// commands at once (a pipeline) calls stage 1 for all their keys, then
    /// stage 2, so the index and item misses of the batch overlap instead of
    /// being paid one after another.
    #[inline]
    pub fn prefetch_bucket(&self, key: &[u8]) -> u64 {
        let h = KeyHash::of(key);
        let geo = &self.cache.geo;
        self.cache.region.prefetch(bucket_off(geo, 0, h.home(geo)));
        h.0
    }

    /// Batch hint, stage 2 (once the bucket has likely arrived): starts
    /// loading the item of the first home entry whose tag matches.
    #[inline]
    pub fn prefetch_item(&self, hash: u64) {
        let h = KeyHash(hash);
        let cache = &*self.cache;
        for slot in level_slots(&cache.geo, 0, h) {
            let e = Entry(cache.region.u64_at(slot).load(Ordering::Relaxed));
            if !e.is_empty() && e.tag() == h.tag() {
                if e.seg() < cache.geo.segments {
                    cache
                        .region
                        .prefetch(cache.seg(e.seg()).data + e.off() as usize);
                }
                return;
            }
        }
    }

    /// Like `get` but counts no hit or miss (EXISTS, TYPE, TTL).
    pub fn peek<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        self.read(key, false, f)
    }

    /// Like `get`, but also returns negative-cache markers (`ItemRef::is_negative`),
    /// which every other read treats as absent. For read-through loading.
    pub fn get_any<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        let r = self.read(key, true, f);
        let c = self.counters();
        HandleCounters::bump(if r.is_some() { &c.hits } else { &c.misses }, 1);
        r
    }

    fn read<R>(
        &mut self,
        key: &[u8],
        negative_too: bool,
        mut f: impl FnMut(&ItemRef<'_>) -> R,
    ) -> Option<R> {
        let h = KeyHash::of(key);
        match self.lookup(h, key, negative_too, &mut f) {
            Lookup::Hit(r, slot, e) => {
                self.touch(slot, e);
                Some(r)
            }
            Lookup::Miss => None,
            Lookup::Expired(slot, e) => {
                self.w.remove_if_same(&self.cache, h, slot, e, true);
                None
            }
        }
    }

    #[inline]
    fn lookup<R>(
        &self,
        h: KeyHash,
        key: &[u8],
        negative_too: bool,
        f: &mut impl FnMut(&ItemRef<'_>) -> R,
    ) -> Lookup<R> {
        let cache = &*self.cache;
        let locks = cache.locks();
        let home = h.home(&cache.geo);
        loop {
            let v = locks.read_begin(home);
            let outcome = match cache.find(h, key, v) {
                None => Lookup::Miss,
                Some((slot, e, item)) if item.is_expired(self.w.now) => Lookup::Expired(slot, e),
                Some((_, _, item)) if item.is_negative() && !negative_too => Lookup::Miss,
                Some((slot, e, item)) => Lookup::Hit(f(&item), slot, e),
            };
            if locks.read_validate(home, v) {
                return outcome;
            }
        }
    }

    /// Probabilistic frequency bump (1 in 2^(freq+2) reads): hot keys stop
    /// writing the index line once their counter saturates.
    #[inline]
    fn touch(&mut self, slot: usize, e: Entry) {
        let freq = e.freq();
        // 1 in 2^(freq+2): a key must be read about 4 times to earn its first
        // bit; sampling keeps index-line writes rare on the read path.
        if freq >= FREQ_MAX || self.w.next_random() & ((4u64 << freq) - 1) != 0 {
            return;
        }
        let word = self.cache.region.u64_at(slot);
        // A failed CAS means a writer or another reader got there first: fine.
        let _ = word.compare_exchange(
            e.0,
            e.with_freq(freq + 1).0,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// Unconditional write.
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), WriteError> {
        self.update(&[key], |_, ch| ch.put(0, &[value], expire_at))?
    }

    /// Returns true when the key existed (and was not expired).
    pub fn delete(&mut self, key: &[u8]) -> bool {
        self.update(&[key], |items, ch| {
            let existed = items[0].is_some();
            if existed {
                ch.delete(0);
            }
            existed
        })
        .unwrap_or(false)
    }
}

impl Drop for CacheHandle {
    fn drop(&mut self) {
        self.w.seal_pending(&self.cache);
        self.cache.release_slot(self.w.slot);
    }
}

/// Key equality with a fast path for keys of up to 16 bytes (most keys):
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
