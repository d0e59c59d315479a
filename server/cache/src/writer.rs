//! One thread's allocation state: its active segment per TTL class, where new
//! items are appended without any shared lock, and the bookkeeping of items
//! leaving the index. Taking new segments (which may evict) is in alloc.rs.

use crate::cache::Cache;
use crate::index::{Entry, KeyHash};
use crate::layout::{SEGMENT_SIZE, W_ACTIVE, W_EXPIRES, W_KEYS, W_NS_EXPIRES, W_NS_KEYS};
use crate::namespace;
use crate::owned::{ReclaimQueue, RootStamp};
use crate::segment::{Seg, State, TTL_CLASSES};
use crate::stats::HandleCounters;
use crate::sync::Ordering;

// The active segments' words end before the namespaces' counters.
const _: () = assert!(W_ACTIVE + 4 * TTL_CLASSES <= W_NS_KEYS);

pub(crate) struct Writer {
    pub slot: usize,
    pub now: u64,
    rng: u64,
    /// Active segment id + 1 per TTL class (0: none yet).
    pub active: [u32; TTL_CLASSES],
    /// Full segments that may still hold unpublished items: sealed (made
    /// evictable) only after the write in progress is published.
    pub to_seal: Vec<u32>,
    /// TTL classes whose active segment got an item in the write in progress.
    pub dirty: u32,
    /// Chunk segments of removed items, freed once no lock is held.
    pub free_later: Vec<u32>,
    pub sweep_cursor: u64,
    /// Where the active expiry scan stands (expire_scan.rs).
    pub expire: crate::expire_cursor::ExpireCursor,
    /// Keys changed, when someone listens (changes.rs).
    pub changes: crate::changes::ChangeLog,
    /// Pages of dropped collection roots still to delete (owned.rs).
    pub reclaim: ReclaimQueue,
    /// A page key copied out of the mapping (eviction looks its owner up).
    pub page_key: Vec<u8>,
    /// Keys the update in progress counts an access to (`Changes::touch`):
    /// bit i for key i, bit 63 for keys 63 and up.
    pub touched: u64,
    /// The last index-slot claim failed because the policy protects every
    /// candidate (not a race): the write fails with OutOfMemory.
    pub index_full: bool,
    /// The command writing frees memory or does not grow it (not Redis's
    /// denyoom): under a policy that protects items it may take the free
    /// segments kept in reserve (alloc.rs).
    pub may_use_reserve: bool,
    /// The commands running count no accesses (CLIENT NO-TOUCH): reads
    /// and `Changes::touch` leave the frequency bits as they are.
    pub no_touch: bool,
    /// An in-place edit the update in progress recorded (`Changes::edit`).
    pub edit: crate::edit::PendingEdit,
}

impl Writer {
    pub fn new(slot: usize, seed: u64) -> Writer {
        Writer {
            slot,
            now: crate::clock::unix_millis(),
            rng: seed | 1,
            active: [0; TTL_CLASSES],
            to_seal: Vec::new(),
            dirty: 0,
            free_later: Vec::new(),
            sweep_cursor: seed,
            expire: crate::expire_cursor::ExpireCursor::new(seed),
            changes: Default::default(),
            reclaim: ReclaimQueue::default(),
            page_key: Vec::new(),
            touched: 0,
            index_full: false,
            may_use_reserve: false,
            no_touch: false,
            edit: Default::default(),
        }
    }

    pub fn next_random(&mut self) -> u64 {
        // xorshift64*: cheap, and good enough for sampling decisions.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn counters<'c>(&self, cache: &'c Cache) -> &'c HandleCounters {
        &cache.counters.per_handle[self.slot]
    }

    /// `delta` keys of namespace `ns` came (or went).
    #[inline]
    pub fn add_keys(&self, cache: &Cache, ns: u8, delta: i64) {
        self.add_to(cache, W_KEYS, delta);
        self.add_to_namespace(cache, W_NS_KEYS, ns, delta);
    }

    /// `delta` keys with a TTL of namespace `ns` came (or went).
    #[inline]
    pub fn add_expires(&self, cache: &Cache, ns: u8, delta: i64) {
        self.add_to(cache, W_EXPIRES, delta);
        self.add_to_namespace(cache, W_NS_EXPIRES, ns, delta);
    }

    /// Namespace 0 has no counter of its own (the total less the others):
    /// a server that never SELECTs pays one compare.
    #[inline]
    fn add_to_namespace(&self, cache: &Cache, field: usize, ns: u8, delta: i64) {
        if let Some(lane) = namespace::counter_lane(ns).filter(|_| delta != 0) {
            let word = cache.writer_u32(self.slot, field + 4 * lane);
            // ORDERING: Relaxed load and store, as in `add_to`; wrapping:
            // this slot's share of a namespace may be negative.
            word.store(
                word.load(Ordering::Relaxed).wrapping_add(delta as u32),
                Ordering::Relaxed,
            );
        }
    }

    /// Single-writer update of one of this writer slot's persistent counters.
    #[inline]
    pub fn add_to(&self, cache: &Cache, field: usize, delta: i64) {
        if delta != 0 {
            let word = cache.writer_word(self.slot, field);
            // ORDERING: Relaxed load and store: this writer slot's counters
            // have one writer (us); readers sum them as statistics.
            word.store(
                word.load(Ordering::Relaxed).wrapping_add(delta as u64),
                Ordering::Relaxed,
            );
        }
    }

    /// Reserves `len` bytes in the current active segment of `class`, if it has room.
    #[inline]
    pub fn try_append<'c>(
        &self,
        cache: &'c Cache,
        class: usize,
        len: usize,
    ) -> Option<(Seg<'c>, u32)> {
        let id = self.active[class].checked_sub(1)?;
        let seg = cache.seg(id);
        // ORDERING: Relaxed: only we write our active segment's offset.
        let off = seg.write_off().load(Ordering::Relaxed);
        (off as usize + len <= SEGMENT_SIZE).then_some((seg, off))
    }

    /// Marks `len` bytes at `off` as complete (Release: the bytes come first).
    #[inline]
    pub fn commit(&self, seg: Seg<'_>, off: u32, len: usize, expire_at: Option<u64>) {
        // ORDERING: Release pairs with the Acquire load of `write_off` in
        // an evictor's sweep (and recovery): the item bytes come first.
        seg.write_off().store(off + len as u32, Ordering::Release);
        // Only this writer writes its active segment's expiry bounds (the
        // expiry scan raises `min_expire` of sealed segments only).
        let at = expire_at.unwrap_or(u64::MAX);
        // ORDERING: Relaxed load and store: one writer (us); evictors read
        // it after the Sealed -> Evicting transition acquired our seal.
        if seg.max_expire().load(Ordering::Relaxed) < at {
            // ORDERING: Relaxed, as above.
            seg.max_expire().store(at, Ordering::Relaxed);
        }
        // ORDERING: Relaxed load and store: a hint for the expiry scan,
        // which reads the items themselves after `write_off` (Acquire).
        if seg.min_expire().load(Ordering::Relaxed) > at {
            // ORDERING: Relaxed, as above.
            seg.min_expire().store(at, Ordering::Relaxed);
        }
    }

    pub fn set_active(&mut self, cache: &Cache, class: usize, id_plus_one: u32) {
        self.active[class] = id_plus_one;
        // ORDERING: Release pairs with the AcqRel swap in
        // `Cache::release_actives`, which seals what this slot recorded
        // (normally this thread, when the handle is dropped).
        cache
            .active_word(self.slot, class)
            .store(id_plus_one, Ordering::Release);
    }

    /// An unpublished item is dropped: only its chunk segments need freeing.
    pub fn discard(&mut self, cache: &Cache, seg: u32, off: u32) {
        if let Some(item) = cache.item_at(Entry::new(0, seg, off, 0), 0) {
            if item.header.is_large() {
                let ids: Vec<u32> = item.chunk_ids().collect();
                for id in ids {
                    cache.push_free(cache.seg(id));
                }
            }
        }
    }

    /// Accounts for an item that just left the index (caller holds its home
    /// lock, so its bytes are stable): segment liveness, TTL count,
    /// chunks. Returns its key's namespace (0 if the item cannot be read).
    pub fn unlinked(&mut self, cache: &Cache, e: Entry) -> u8 {
        if e.seg() < cache.geo.segments {
            cache.seg(e.seg()).unlink_one();
        }
        let Some(item) = cache.item_at(e, 0) else {
            return 0;
        };
        let ns = namespace::split_shared(item.key).0;
        self.free_later.extend(item.chunk_ids());
        if item.expire_at().is_some() {
            self.add_expires(cache, ns, -1);
        }
        ns
    }

    /// Like `unlinked`, for an item whose TTL flag and size the caller read
    /// in a snapshot its home lock has since validated: the item's header
    /// is read again only for a large item's chunk ids.
    /// `ns`: the key's namespace.
    #[inline]
    pub fn unlinked_seen(&mut self, cache: &Cache, e: Entry, seen: Seen, ns: u8) {
        if seen.large {
            self.unlinked(cache, e);
            return;
        }
        if e.seg() < cache.geo.segments {
            cache.seg(e.seg()).unlink_one();
        }
        if seen.ttl {
            self.add_expires(cache, ns, -1);
        }
    }

    /// Queues the pages of the root `owner` had (`stamp`) for deletion:
    /// the root was deleted, replaced by another generation, expired or
    /// evicted.
    pub fn queue_reclaim(&mut self, cache: &Cache, owner: &[u8], stamp: RootStamp) {
        self.reclaim.push(owner, stamp.generation, stamp.pages());
        self.publish_reclaim_pending(cache);
    }

    /// Shows the reclaim queue's length in this writer's statistics.
    pub fn publish_reclaim_pending(&self, cache: &Cache) {
        let c = self.counters(cache);
        HandleCounters::set(&c.reclaim_pending, self.reclaim.pending_pages());
        HandleCounters::set(&c.reclaim_pending_roots, self.reclaim.pending_roots());
    }

    /// `unlinked` for an item leaving for good by expiry or eviction (home
    /// locked): a root's pages are queued for reclaim.
    pub fn dropped(&mut self, cache: &Cache, e: Entry) -> Dropped {
        let item = cache.item_at(e, 0);
        let page = item.as_ref().is_some_and(|item| item.is_page());
        if let Some((item, stamp)) = item.and_then(|item| Some((item, item.root_stamp()?))) {
            self.queue_reclaim(cache, &item.key.to_vec(), stamp);
        }
        let ns = self.unlinked(cache, e);
        Dropped { page, ns }
    }

    /// Counts an item that left the index by expiry or eviction: a key,
    /// or a page (not a key: counted as reclaimed).
    pub fn count_removed(&self, cache: &Cache, expired: bool, dropped: Dropped) {
        if dropped.page {
            return HandleCounters::bump(&self.counters(cache).reclaimed_pages, 1);
        }
        self.add_keys(cache, dropped.ns, -1);
        let c = self.counters(cache);
        HandleCounters::bump(
            if expired {
                &c.expirations
            } else {
                &c.evictions
            },
            1,
        );
    }

    /// Frees chunk segments collected while locks were held.
    #[inline]
    pub fn free_collected(&mut self, cache: &Cache) {
        if !self.free_later.is_empty() {
            self.free_collected_now(cache); // rare: most writes free nothing
        }
    }

    #[inline(never)]
    fn free_collected_now(&mut self, cache: &Cache) {
        for id in self.free_later.drain(..) {
            if id < cache.geo.segments && cache.seg(id).state() == Some(State::Chunk) {
                cache.push_free(cache.seg(id));
            }
        }
    }

    /// Removes the entry at `slot` if it still points at the item of `e`.
    pub fn remove_if_same(
        &mut self,
        cache: &Cache,
        h: KeyHash,
        slot: usize,
        e: Entry,
        expired: bool,
    ) -> bool {
        let locks = cache.locks();
        let home = h.home(&cache.geo);
        let v = locks.lock(home);
        let word = cache.region.u64_at(slot);
        // ORDERING: Relaxed: the home lock (Acquire) orders this load after
        // every store of the entry by a previous holder.
        let cur = Entry(word.load(Ordering::Relaxed));
        let removed = cur.location() == e.location();
        let mut dropped = None;
        if removed {
            // ORDERING: Release pairs with the Acquire entry loads of
            // readers (`Cache::find`), as every entry store does.
            word.store(0, Ordering::Release);
            cache.occupancy().cleared(slot);
            cache.count_overflow(h, slot, -1);
            dropped = Some(self.dropped(cache, cur));
        }
        locks.unlock(home, v);
        if let Some(dropped) = dropped {
            self.count_removed(cache, expired, dropped);
        }
        self.free_collected(cache);
        removed
    }

    /// Seals full segments once nothing unpublished can be in them.
    #[inline]
    pub fn seal_pending(&mut self, cache: &Cache) {
        self.dirty = 0;
        if !self.to_seal.is_empty() {
            self.seal_now(cache); // rare: most writes filled no segment
        }
    }

    #[inline(never)]
    fn seal_now(&mut self, cache: &Cache) {
        for id in self.to_seal.drain(..) {
            cache.seg(id).transition(State::Active, State::Sealed);
        }
    }

    /// Retires the full active segment of `class`: sealed now when the
    /// write in progress put nothing in it (so a compaction that kept a
    /// whole segment of protected items hands it straight back, even when
    /// the write then fails), else once the write is published.
    pub fn retire_full(&mut self, cache: &Cache, class: usize) {
        let id = self.active[class] - 1;
        if self.dirty & (1 << class) == 0 {
            cache.seg(id).transition(State::Active, State::Sealed);
        } else {
            self.to_seal.push(id);
        }
        self.set_active(cache, class, 0);
    }

    /// Whether the index-slot claim that just failed was refused by the
    /// policy (and not lost to a race), clearing the flag. Cold and out
    /// of line: the claim loops of SET and the one-key update keep their
    /// registers for the usual path.
    #[cold]
    #[inline(never)]
    pub fn take_index_full(&mut self) -> bool {
        std::mem::take(&mut self.index_full)
    }

    /// Seals this writer's active segments that hold nothing unpublished, so
    /// they can be evicted when nothing else can (a tiny cache full of large
    /// values). True if one was sealed.
    pub fn retire_idle(&mut self, cache: &Cache) -> bool {
        let mut sealed = false;
        for class in 0..TTL_CLASSES {
            if self.active[class] != 0 && self.dirty & (1 << class) == 0 {
                cache
                    .seg(self.active[class] - 1)
                    .transition(State::Active, State::Sealed);
                self.set_active(cache, class, 0);
                sealed = true;
            }
        }
        sealed
    }
}

/// What unlinking an item must undo, as a validated snapshot saw it.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Seen {
    pub ttl: bool,
    pub large: bool,
    /// A page of a big collection (not counted as a key).
    pub page: bool,
    /// A big collection's root: its pages go when it does (owned.rs).
    pub root: Option<RootStamp>,
    /// A read-through negative marker: no key to clients.
    pub negative: bool,
}

impl Seen {
    pub fn of(item: &crate::item::ItemRef<'_>) -> Seen {
        Seen {
            ttl: item.expire_at().is_some(),
            large: item.header.is_large(),
            page: item.is_page(),
            root: item.root_stamp(),
            negative: item.is_negative(),
        }
    }
}

/// What `Writer::dropped` learned of an item leaving by expiry or eviction.
#[derive(Clone, Copy, Debug, Default)]
pub struct Dropped {
    /// A page of a big collection (not a key).
    pub page: bool,
    /// Its key's namespace.
    pub ns: u8,
}
