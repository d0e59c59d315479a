//! `CacheHandle`: one thread's door to the cache. Reads are optimistic and
//! lock-free; writes go through `update` (update.rs), which runs the caller's
//! closure on an optimistic snapshot, writes new items into this thread's own
//! segments, then locks the keys' home buckets *at the versions it read*
//! (validating the snapshot in the same step) and publishes.
//!
//! Every key a caller passes is a key of the handle's namespace (Redis's
//! numbered databases, namespace.rs): the public methods turn it into the
//! stored key once (`with_stored`), the private `*_stored` ones work on
//! stored keys.

use std::sync::Arc;

use crate::bucket_tags::entries_tagged;
use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::edit::InPlaceEdit;
use crate::error::WriteError;
use crate::index::{bucket_off, Entry, KeyHash, Locks, FREQ_MAX};
use crate::item::ItemRef;
use crate::layout::BUCKET_SLOTS;
use crate::lookup::Found;
use crate::namespace;
use crate::segment::State;
use crate::stats::HandleCounters;
use crate::sync::Ordering;
use crate::txn::{Txn, Watch};
use crate::update::{bump_freq, Changes, Scratch};
use crate::writer::Writer;

pub struct CacheHandle {
    pub(crate) cache: Arc<Cache>,
    pub(crate) w: Writer,
    pub(crate) scratch: Scratch,
    /// The transaction in progress, if `txn.active` (txn.rs).
    pub(crate) txn: Txn,
    /// A key's hash its caller had already (`hint_key_hash`): the key's
    /// address and length, and the hash.
    key_hint: Option<(usize, usize, KeyHash)>,
    /// The physical namespace keys are in (namespace.rs); 0 by default.
    pub(crate) ns: u8,
    /// Stored keys of the command running, when not the user's own bytes.
    ns_buf: Vec<u8>,
    ns_spans: Vec<std::ops::Range<usize>>,
    /// The keys RANDOMKEY's last walk found (random_key.rs).
    pub(crate) sparse_keys: crate::sparse_keys::SparseKeys,
}

/// A multi-key update of a namespace != 0 with up to this many keys finds
/// its stored keys' slices on the stack.
const STACK_KEYS: usize = 8;

/// Outcome of an optimistic lookup.
enum Lookup<R> {
    Hit(R, usize, Entry),
    Miss,
    Expired(usize, Entry),
}

impl CacheHandle {
    pub(crate) fn new(cache: Arc<Cache>, slot: usize) -> CacheHandle {
        let seed =
            crate::clock::unix_millis() ^ (slot as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        CacheHandle {
            w: Writer::new(slot, seed),
            cache,
            scratch: Scratch::default(),
            txn: Txn::default(),
            key_hint: None,
            ns: 0,
            ns_buf: Vec::new(),
            ns_spans: Vec::new(),
            sparse_keys: Default::default(),
        }
    }

    /// Works in physical namespace `ns` from now on (the connection's
    /// database, `Cache::namespace_of`); keys handed back (SCAN,
    /// RANDOMKEY, the change feed) are this namespace's.
    #[inline]
    pub fn set_namespace(&mut self, ns: u8) {
        self.ns = ns;
    }

    pub fn namespace(&self) -> u8 {
        self.ns
    }

    /// Appends the key `key` of the handle's namespace is stored under
    /// (for a registry shared across namespaces: blocked clients).
    pub fn append_stored_key(&self, key: &[u8], out: &mut Vec<u8>) {
        if namespace::needs_prefix(self.ns, key) {
            namespace::append_stored(self.ns, key, out);
        } else {
            out.extend_from_slice(key);
        }
    }

    /// Notes that namespace `ns` may hold keys: for a write in `RAW` mode
    /// (the handle notes its own namespace's writes).
    pub fn note_namespace_written(&self, ns: u8) {
        if ns != 0 && ns != namespace::RAW {
            self.cache.note_namespace_used(ns);
        }
    }

    /// Runs `f` on the stored form of `key` (namespace.rs): `key` itself
    /// in namespace 0, one first-byte compare.
    #[inline(always)]
    fn with_stored<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Self, &[u8]) -> R) -> R {
        if !namespace::needs_prefix(self.ns, key) {
            return f(self, key);
        }
        self.with_stored_slow(key, f)
    }

    /// `with_stored` of a key stored under other bytes: kept out of line,
    /// so database 0's paths stay as small as before.
    #[cold]
    #[inline(never)]
    fn with_stored_slow<R>(&mut self, key: &[u8], f: impl FnOnce(&mut Self, &[u8]) -> R) -> R {
        let mut buf = std::mem::take(&mut self.ns_buf);
        buf.clear();
        namespace::append_stored(self.ns, key, &mut buf);
        let r = f(self, &buf);
        self.ns_buf = buf;
        r
    }

    /// `with_stored` for several keys.
    #[inline(always)]
    fn with_stored_keys<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnOnce(&mut Self, &[&[u8]]) -> R,
    ) -> R {
        let ns = self.ns;
        if !keys.iter().any(|key| namespace::needs_prefix(ns, key)) {
            return f(self, keys);
        }
        self.with_stored_keys_slow(keys, f)
    }

    #[cold]
    #[inline(never)]
    fn with_stored_keys_slow<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnOnce(&mut Self, &[&[u8]]) -> R,
    ) -> R {
        let mut buf = std::mem::take(&mut self.ns_buf);
        let mut spans = std::mem::take(&mut self.ns_spans);
        buf.clear();
        spans.clear();
        for key in keys {
            let start = buf.len();
            self.append_stored_key(key, &mut buf);
            spans.push(start..buf.len());
        }
        let r = if keys.len() <= STACK_KEYS {
            let mut stored: [&[u8]; STACK_KEYS] = [&[]; STACK_KEYS];
            for (to, span) in stored.iter_mut().zip(&spans) {
                *to = &buf[span.clone()];
            }
            f(self, &stored[..keys.len()])
        } else {
            let stored: Vec<&[u8]> = spans.iter().map(|span| &buf[span.clone()]).collect();
            f(self, &stored)
        };
        self.ns_buf = buf;
        self.ns_spans = spans;
        r
    }

    /// Before a write: DBSIZE learns that this namespace may hold keys.
    #[inline(always)]
    fn note_write(&self) {
        if self.ns != 0 {
            self.note_namespace_written(self.ns);
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
    #[inline]
    pub fn get<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        if !namespace::needs_prefix(self.ns, key) {
            return self.get_stored(key, self.hash_of(key), f);
        }
        self.with_stored_slow(key, |h, key| h.get_stored(key, KeyHash::of(key), f))
    }

    /// Notes that `key` (these very bytes: its address and length) hashes
    /// to `h` (`prefetch_key`'s), so that `get` and a one-key `update`
    /// of it do not hash it again: a server that hashed a command's key
    /// to prefetch it hints it before the handler runs, which knows only
    /// the key. The caller clears it (`clear_key_hint`) before those
    /// bytes may change.
    #[inline]
    pub fn hint_key_hash(&mut self, key: &[u8], h: KeyHash) {
        debug_assert_eq!(h, KeyHash::of(key), "the hash of another key");
        self.key_hint = Some((key.as_ptr() as usize, key.len(), h));
    }

    /// Forgets the hint `hint_key_hash` gave.
    #[inline]
    pub fn clear_key_hint(&mut self) {
        self.key_hint = None;
    }

    /// `key`'s hash: the hint's when it names these bytes.
    #[inline]
    fn hash_of(&self, key: &[u8]) -> KeyHash {
        hashed(self.key_hint, key)
    }

    /// `get` of `key` whose hash `h` the cache gave (`prefetch_key`,
    /// `key_hash`).
    #[inline]
    pub fn get_hashed<R>(
        &mut self,
        key: &[u8],
        h: KeyHash,
        f: impl FnMut(&ItemRef<'_>) -> R,
    ) -> Option<R> {
        debug_assert_eq!(h, KeyHash::of(key), "the hash of another key");
        if namespace::needs_prefix(self.ns, key) {
            // `h` is the hash of the user's key, not the stored one.
            return self.with_stored_slow(key, |h, key| h.get_stored(key, KeyHash::of(key), f));
        }
        self.get_stored(key, h, f)
    }

    #[inline]
    fn get_stored<R>(
        &mut self,
        key: &[u8],
        h: KeyHash,
        f: impl FnMut(&ItemRef<'_>) -> R,
    ) -> Option<R> {
        let r = self.read(key, h, false, f);
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
        self.prefetch_key(key).0
    }

    /// The hash the cache files `key` under, for `get_hashed` and
    /// `set_hashed` (a caller that has it from `prefetch_key` passes
    /// that): `hint_key_hash`'s when it names these bytes.
    #[inline]
    pub fn key_hash(&self, key: &[u8]) -> KeyHash {
        self.hash_of(key)
    }

    /// `prefetch_bucket`, returning the key's hash for `get_hashed` and
    /// `set_hashed` as well (`u64::from` it for `prefetch_item`).
    #[inline(always)]
    pub fn prefetch_key(&self, key: &[u8]) -> KeyHash {
        let h = KeyHash::of(key);
        let geo = &self.cache.geo;
        self.cache.region.prefetch(bucket_off(geo, 0, h.home(geo)));
        h
    }

    /// Batch hint, stage 2 (once the bucket has likely arrived): starts
    /// loading the item of the first home entry whose tag matches.
    #[inline]
    pub fn prefetch_item(&self, hash: u64) {
        let h = KeyHash(hash);
        let cache = &*self.cache;
        let words = cache
            .region
            .bucket_at(bucket_off(&cache.geo, 0, h.home(&cache.geo)));
        let mut matches = entries_tagged(words, h.tag(), 0);
        while matches != 0 {
            let i = matches.trailing_zeros() as usize;
            matches &= matches - 1;
            // ORDERING: Relaxed: only a prefetch hint; nothing is read.
            let e = Entry(words[i % BUCKET_SLOTS].load(Ordering::Relaxed));
            if !e.is_empty() {
                if e.seg() < cache.geo.segments {
                    cache
                        .region
                        .prefetch_item(cache.seg(e.seg()).data + e.off() as usize);
                }
                return;
            }
        }
    }

    /// Like `get` but counts no hit or miss (EXISTS, TYPE, TTL).
    pub fn peek<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        self.with_stored(key, |h, key| h.read(key, KeyHash::of(key), false, f))
    }

    /// Like `peek`, plus the key's access-frequency bits (0 to 7: the
    /// eviction's retention counter, OBJECT FREQ); no frequency bump.
    pub fn peek_with_freq<R>(
        &mut self,
        key: &[u8],
        mut f: impl FnMut(&ItemRef<'_>) -> R,
    ) -> Option<(R, u8)> {
        self.with_stored(key, |h, key| {
            match h.lookup(KeyHash::of(key), key, false, &mut f) {
                Lookup::Hit(r, _, e) => Some((r, e.freq())),
                Lookup::Miss | Lookup::Expired(..) => None,
            }
        })
    }

    /// When the segment holding `key`'s item was opened or last compacted
    /// (unix ms): the item was written, or kept by a compaction, no
    /// earlier. OBJECT IDLETIME's estimate (the engine keeps no access
    /// time); no frequency bump.
    pub fn peek_stored_since_ms(&mut self, key: &[u8]) -> Option<u64> {
        self.with_stored(key, |h, key| {
            match h.lookup(KeyHash::of(key), key, false, &mut |_| ()) {
                Lookup::Hit((), _, e) if e.seg() < h.cache.geo.segments => {
                    // ORDERING: Relaxed: an estimate for introspection.
                    Some(h.cache.seg(e.seg()).created_ms().load(Ordering::Relaxed))
                }
                _ => None,
            }
        })
    }

    /// Whether the writes from now on are a command's that frees memory
    /// or does not grow it (not Redis's denyoom): under a policy that
    /// protects items only those may take the last free segments.
    #[inline]
    pub fn allow_reserve(&mut self, on: bool) {
        self.w.may_use_reserve = on;
    }

    /// Stops (or resumes) counting accesses for eviction: while off, reads
    /// and updates leave every key's frequency as it is (CLIENT NO-TOUCH).
    pub fn set_no_touch(&mut self, on: bool) {
        self.w.no_touch = on;
    }

    /// Counts an access to `key` for eviction without reading it: the
    /// frequency bump a read gives (probabilistic). For keys used through
    /// `update` only, which counts nothing: a big collection's commands
    /// touch its root, whose frequency keeps its pages (owned.rs).
    pub fn touch_key(&mut self, key: &[u8]) {
        self.with_stored(key, |h, key| h.touch_stored(key));
    }

    fn touch_stored(&mut self, key: &[u8]) {
        // The bump's draw comes first: at best (frequency 0) 1 in 4 bumps,
        // so 3 touches in 4 skip the lookup, with the same odds per key.
        let draw = self.w.next_random();
        if draw & 3 != 0 || self.w.no_touch {
            return;
        }
        if let Lookup::Hit((), slot, e) = self.lookup(KeyHash::of(key), key, false, &mut |_| ()) {
            bump_freq(&self.cache, slot, e, draw);
        }
    }

    /// Like `get`, but also returns negative-cache markers (`ItemRef::is_negative`),
    /// which every other read treats as absent. For read-through loading.
    pub fn get_any<R>(&mut self, key: &[u8], f: impl FnMut(&ItemRef<'_>) -> R) -> Option<R> {
        let r = self.with_stored(key, |h, key| h.read(key, KeyHash::of(key), true, f));
        let c = self.counters();
        HandleCounters::bump(if r.is_some() { &c.hits } else { &c.misses }, 1);
        r
    }

    #[inline]
    fn read<R>(
        &mut self,
        key: &[u8],
        h: KeyHash,
        negative_too: bool,
        mut f: impl FnMut(&ItemRef<'_>) -> R,
    ) -> Option<R> {
        if self.txn.active {
            // The transaction's view (a key not declared yet joins it).
            let now = self.w.now;
            return self
                .txn
                .read(&self.cache, now, key, |item| item.map(&mut f));
        }
        match self.lookup(h, key, negative_too, &mut f) {
            Lookup::Hit(r, slot, e) => {
                self.touch(slot, e);
                Some(r)
            }
            Lookup::Miss => None,
            Lookup::Expired(..) if self.cache.expiry_held(self.w.now) => None,
            Lookup::Expired(slot, e) => {
                if self.w.remove_if_same(&self.cache, h, slot, e, true) {
                    let tag = self.w.changes.tag;
                    self.w.changes.record(key, KeyChange::Expired, tag);
                }
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
        let lock = cache.locks().word(h.home(&cache.geo));
        loop {
            let v = Locks::read_begin_on(lock);
            let found = cache
                .items()
                .lookup_with(h, key, v, self.w.now, negative_too, |item| f(&item));
            let outcome = match found {
                Found::Miss => Lookup::Miss,
                Found::Expired(slot, e) => Lookup::Expired(slot, e),
                Found::Hit(slot, e, r) => Lookup::Hit(r, slot, e),
            };
            if Locks::read_validate_on(lock, v) {
                return outcome;
            }
        }
    }

    /// Probabilistic frequency bump (1 in 2^(freq+2) reads): hot keys stop
    /// writing the index line once their counter saturates.
    #[inline]
    fn touch(&mut self, slot: usize, e: Entry) {
        let freq = e.freq();
        if freq < FREQ_MAX {
            let draw = self.w.next_random();
            // The draw's test inline: most reads stop here, without a call.
            if draw & ((4u64 << freq) - 1) == 0 && !self.w.no_touch {
                bump_freq(&self.cache, slot, e, draw);
            }
        }
    }

    /// Atomic read-modify-write over several keys (MSETNX, RENAME, INCR, APPEND ...).
    /// `f` sees the current items (None: absent or expired) and records writes in
    /// `Changes`; they are applied atomically with respect to other writers of
    /// these keys. `f` may run more than once and must not have side effects
    /// other than through `Changes` and its return value.
    #[inline(always)]
    pub fn update<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes) -> R,
    ) -> Result<R, WriteError> {
        self.note_write();
        // One key of namespace 0 outside a transaction (most writes) needs
        // none of the multi-key bookkeeping (and counts its
        // `Changes::touch` itself, at the entry it holds), and takes the
        // caller's hash hint: inlined into its caller, the rest out of line.
        match keys {
            [key] if !self.txn.active && !namespace::needs_prefix(self.ns, key) => {
                let h = hashed(self.key_hint, key);
                crate::update_one::update_one(&self.cache, &mut self.w, key, h, f)
            }
            _ => self.with_stored_keys(keys, |h, keys| h.update_stored(keys, f)),
        }
    }

    /// An edit in place of the live item at `key` (hash `h`, `key_hash`)
    /// planned by `f` from the item as stored (`InPlaceEdit`) and stored
    /// under the key's lock without setting up an update: for a caller
    /// that expects the edit to go ahead (`Changes::plan_edit` makes the
    /// same edit inside an update). None,
    /// nothing written: no live item, `f` declined, or a transaction or
    /// another namespace (their writes take the general path); the caller
    /// then runs its update.
    #[inline]
    pub fn edit_in_place<R>(
        &mut self,
        key: &[u8],
        h: KeyHash,
        f: impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    ) -> Option<R> {
        if self.txn.active || namespace::needs_prefix(self.ns, key) {
            return None;
        }
        debug_assert_eq!(h, KeyHash::of(key), "the hash of another key");
        self.note_write();
        crate::update_one::edit_one(&self.cache, &mut self.w, key, h, f)
    }

    /// `update` of keys as stored (namespace.rs): in a transaction, of
    /// several keys, or in a namespace other than 0.
    #[inline(never)]
    pub(crate) fn update_stored<R>(
        &mut self,
        keys: &[&[u8]],
        f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes) -> R,
    ) -> Result<R, WriteError> {
        let CacheHandle {
            cache,
            w,
            scratch,
            txn,
            ..
        } = self;
        let r = match keys {
            _ if txn.active => txn.update(cache, w, keys, f),
            [key] => return crate::update_one::update_one(cache, w, key, KeyHash::of(key), f),
            _ => crate::update::update(cache, w, scratch, keys, f),
        };
        self.touch_marked(keys);
        r
    }

    /// `touch_key` for each key the last update marked (`Changes::touch`).
    fn touch_marked(&mut self, keys: &[&[u8]]) {
        let touched = std::mem::take(&mut self.w.touched);
        for (i, key) in keys.iter().enumerate() {
            if touched & (1 << i.min(63)) != 0 {
                self.touch_stored(key);
            }
        }
    }

    /// Starts or stops recording the keys this handle changes (see
    /// `drain_changes`); off by default.
    pub fn record_changes(&mut self, on: bool) {
        self.w.changes.enabled = on;
    }

    /// Tags the changes recorded from now on (the server: the command).
    pub fn set_change_tag(&mut self, tag: u16) {
        self.w.changes.tag = tag;
    }

    /// The tag changes are recorded with now (`set_change_tag`).
    pub fn change_tag(&self) -> u16 {
        self.w.changes.tag
    }

    /// Hands over, in order, every key change recorded since the last call
    /// (key, how, tag) and forgets them; true when the log overflowed and
    /// some were lost (the caller must assume any key changed).
    pub fn drain_changes(&mut self, mut f: impl FnMut(&[u8], KeyChange, u16)) -> bool {
        self.drain_changes_by_namespace(|_, key, change, tag| f(key, change, tag))
    }

    /// `drain_changes`, with each key's physical namespace (the key is the
    /// user's key in it).
    pub fn drain_changes_by_namespace(
        &mut self,
        mut f: impl FnMut(u8, &[u8], KeyChange, u16),
    ) -> bool {
        self.w.changes.drain(|stored, change, tag| {
            let (ns, key) = namespace::split(stored);
            f(ns, key, change, tag)
        })
    }

    pub fn has_changes(&self) -> bool {
        !self.w.changes.is_empty()
    }

    /// Notes `key`'s home version for WATCH: a transaction that declares
    /// `key` and is given this `Watch` commits only if no key of that home
    /// bucket changed since (a write, deletion, expiry removal or eviction;
    /// keys sharing the bucket may abort it spuriously).
    pub fn watch(&mut self, key: &[u8]) -> Watch {
        self.with_stored(key, |h, key| {
            let home = KeyHash::of(key).home(&h.cache.geo);
            Watch {
                home,
                version: h.cache.locks().read_begin(home),
            }
        })
    }

    /// Begins a transaction over `keys` (see txn.rs): until `txn_commit` or
    /// `txn_abort`, reads see the transaction's own writes and
    /// `update`/`set`/`delete` are held back. A key not among `keys` joins
    /// the transaction when first touched (validated at the commit like the
    /// rest). A transaction already in progress is aborted first.
    pub fn txn_begin(&mut self, keys: &[&[u8]]) {
        self.txn_abort();
        let now = self.w.now;
        self.with_stored_keys(keys, |h, keys| h.txn.begin(&h.cache, now, keys));
    }

    pub fn in_txn(&self) -> bool {
        self.txn.active
    }

    /// Whether the watched homes (all among the declared keys' homes) had
    /// the same versions when the transaction began.
    pub fn txn_watches_hold(&self, watches: impl IntoIterator<Item = Watch>) -> bool {
        self.txn.watches_hold(watches)
    }

    /// Publishes the transaction's writes atomically. False on a conflict:
    /// a declared key's home changed since `txn_begin`; nothing was
    /// published and the caller runs the transaction again. OutOfMemory:
    /// the eviction policy protects every index slot a new key could take;
    /// nothing was published and running again would not help.
    pub fn txn_commit(&mut self) -> Result<bool, WriteError> {
        let CacheHandle { cache, w, txn, .. } = self;
        txn.commit(cache, w)
    }

    /// Drops the transaction's unpublished writes (no-op when none is open).
    pub fn txn_abort(&mut self) {
        let CacheHandle { cache, w, txn, .. } = self;
        txn.abort(cache, w);
    }

    /// Background upkeep, bounded work: reclaims up to 64 segments' worth of
    /// fully expired or fully dead segments (and this writer's active
    /// segments whose items all left the index), evicts up to 8 segments while
    /// more are in use than a lowered memory cap allows (memory_cap.rs;
    /// ~0.5 ms each for small items), then expires keys whose TTL
    /// ran out in segments still in use (expire_scan.rs: up to 2,048 item
    /// headers, and up to four times that while at least a quarter of
    /// what it reads has expired). Call every ~100 ms per thread. Returns
    /// the keys it expired.
    pub fn maintain(&mut self) -> u64 {
        let CacheHandle { cache, w, txn, .. } = self;
        let n = cache.geo().segments as u64;
        let expirations = |w: &Writer| {
            // ORDERING: Relaxed: our own statistics counter.
            w.counters(cache).expirations.load(Ordering::Relaxed)
        };
        let before = expirations(w);
        let expiry_held = cache.expiry_held(w.now);
        for _ in 0..n.min(64) {
            let seg = cache.seg((w.sweep_cursor % n) as u32);
            w.sweep_cursor = w.sweep_cursor.wrapping_add(1);
            // ORDERING: Relaxed: a hint; the sweep re-reads with Acquire.
            let reclaimable =
                (seg.is_expired(w.now) && !expiry_held) || seg.live().load(Ordering::Relaxed) == 0;
            if seg.state() == Some(State::Sealed)
                && reclaimable
                && seg.transition(State::Sealed, State::Evicting)
            {
                w.evict_segment(cache, seg);
            }
        }
        if !txn.active {
            // (A transaction's puts sit unpublished in them.)
            w.free_emptied_actives(cache);
        }
        for _ in 0..8 {
            if cache.segments_over_cap() == 0 || !w.evict_one(cache) {
                break;
            }
        }
        let scans = if expiry_held { 0 } else { 4 };
        for _ in 0..scans {
            let step = w.expire_scan(cache);
            if step.items < crate::expire_scan::ITEMS_PER_CALL
                || step.expired * 4 < step.items as u64
            {
                break;
            }
        }
        expirations(w) - before
    }

    /// Unconditional write.
    #[inline]
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), WriteError> {
        self.note_write();
        self.with_stored(key, |h, key| {
            h.set_stored(key, KeyHash::of(key), value, expire_at)
        })
    }

    /// `set` of `key` whose hash `h` the cache gave (`prefetch_key`,
    /// `key_hash`).
    #[inline]
    pub fn set_hashed(
        &mut self,
        key: &[u8],
        h: KeyHash,
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), WriteError> {
        debug_assert_eq!(h, KeyHash::of(key), "the hash of another key");
        if namespace::needs_prefix(self.ns, key) {
            // `h` is the hash of the user's key, not the stored one.
            return self.set(key, value, expire_at);
        }
        self.set_stored(key, h, value, expire_at)
    }

    #[inline]
    fn set_stored(
        &mut self,
        key: &[u8],
        h: KeyHash,
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), WriteError> {
        if self.txn.active {
            let CacheHandle { cache, w, txn, .. } = self;
            return txn.set(cache, w, key, value, expire_at);
        }
        crate::set_one::set(&self.cache, &mut self.w, (key, h), value, expire_at)
    }

    /// Queues pages `pages` of the root `owner` had with `generation` for
    /// deletion: they go a few at a time in `reclaim_step`, so dropping a
    /// big collection never stalls the caller. The engine queues the pages
    /// of every root it sees deleted, replaced by another generation,
    /// expired or evicted by itself (owned.rs); this is for anything else.
    pub fn reclaim_pages(&mut self, owner: &[u8], generation: u64, pages: std::ops::Range<u64>) {
        self.with_stored(owner, |h, owner| {
            h.w.reclaim.push(owner, generation, pages);
            h.w.publish_reclaim_pending(&h.cache);
        });
    }

    /// Whether queued pages wait for `reclaim_step`.
    pub fn reclaim_pending(&self) -> bool {
        !self.w.reclaim.is_empty()
    }

    /// Deletes up to `budget` queued pages: items that are pages and whose
    /// owner does not hold a root of their generation (a live page is
    /// never deleted). Returns how many page keys it looked at. The server
    /// calls it every loop turn while `reclaim_pending`.
    pub fn reclaim_step(&mut self, budget: usize) -> usize {
        if self.txn.active {
            return 0;
        }
        let mut queue = std::mem::take(&mut self.w.reclaim);
        let mut reclaimed = 0;
        let (done, roots) = queue.drain(budget, |key, owner, generation| {
            let deleted = self.update_stored(&[key, owner], |items, ch| {
                let page = items[0].as_ref().is_some_and(|item| item.is_page());
                let owner_live = items[1]
                    .as_ref()
                    .and_then(|root| root.root_stamp())
                    .is_some_and(|root| root.generation == generation);
                if page && !owner_live {
                    ch.delete(0);
                }
                page && !owner_live
            });
            reclaimed += u64::from(deleted == Ok(true));
        });
        // Reclaims never queue more, but keep anything queued meanwhile.
        queue.append(&mut self.w.reclaim);
        self.w.reclaim = queue;
        // Counted before the queue shows empty: whoever waits for it to
        // empty then reads the counts done.
        HandleCounters::bump(&self.counters().reclaimed_pages, reclaimed);
        HandleCounters::bump(&self.counters().lazyfreed_roots, roots);
        self.w.publish_reclaim_pending(&self.cache);
        done
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
        self.txn_abort();
        // Pages still queued become orphans: eviction finds them.
        HandleCounters::set(&self.counters().reclaim_pending, 0);
        HandleCounters::set(&self.counters().reclaim_pending_roots, 0);
        self.w.seal_pending(&self.cache);
        self.cache.release_slot(self.w.slot);
    }
}

/// `key`'s hash: `hint`'s (`CacheHandle::hint_key_hash`) when it names
/// these bytes.
#[inline(always)]
fn hashed(hint: Option<(usize, usize, KeyHash)>, key: &[u8]) -> KeyHash {
    match hint {
        Some((at, len, h)) if at == key.as_ptr() as usize && len == key.len() => h,
        _ => KeyHash::of(key),
    }
}
