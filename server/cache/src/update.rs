//! Atomic read-modify-write over one or more keys.
//!
//! 1. Note each distinct home bucket's version, look the keys up (optimistic).
//! 2. Run the closure; its puts are written into this thread's segments now
//!    (allocation and eviction happen here, with no lock held).
//! 3. Lock the home buckets of the keys written, in ascending order, with
//!    CAS(version read -> locked), then validate the versions of the homes
//!    only read: success proves nothing changed since step 1 (and a key
//!    only read is not changed, which WATCH relies on); on failure, drop
//!    the unpublished items and start again.
//! 4. Claim index slots for new keys (undoable), then apply replacements and
//!    deletions (cannot fail), unlock (version + 2), free chunk segments.
//!    A write that changes two keys or more records what it does in this
//!    writer's journal first (journal.rs), so a crash midway is finished
//!    or undone by recovery: all old or all new, across a `kill -9` too.

use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::edit::EditRefused;
use crate::edit::InPlaceEdit;
use crate::error::WriteError;
use crate::index::{Entry, KeyHash, FREQ_MAX};
use crate::item::{ItemRef, PutOptions, ValueKind};
use crate::journal::{self, Record};
use crate::namespace;
use crate::owned::{owner_generation, RootStamp, OWNER_STAMP_LEN};
use crate::region::Part;
use crate::stats::HandleCounters;
use crate::sync::Ordering;
use crate::writer::{Seen, Writer};

/// Gives up after this many conflicting attempts (only under pathological contention).
pub(crate) const MAX_ATTEMPTS: usize = 100_000;

/// Reused buffers, so a write allocates nothing in steady state.
#[derive(Default)]
pub(crate) struct Scratch {
    pub hashes: Vec<KeyHash>,
    pub canon: Vec<usize>,
    pub homes: Vec<(u64, u64)>,
    /// The homes a publication locks: those of keys it writes (the others
    /// are only validated, so a read-only key is not "changed" for WATCH).
    pub locked: Vec<(u64, u64)>,
    pub found: Vec<Option<(usize, Entry)>>,
    /// What the snapshot saw of each found item (valid once its home is
    /// locked at the version read: published items never change).
    pub seen: Vec<Seen>,
    pub expired: Vec<bool>,
    pub ops: Vec<Op>,
    pub claimed: Vec<usize>,
    /// Per key, the change tag current when its op was recorded.
    pub tags: Vec<u16>,
    pub items: Vec<Option<ItemRef<'static>>>,
    pub key: Vec<u8>,
    /// The journal records of the write being published (journal.rs).
    pub claims: Vec<Record>,
    pub applies: Vec<Record>,
    /// The homes of the keys a publication writes, sorted (`publish`).
    pub written_homes: Vec<u64>,
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
        /// A page of a big collection: not a key (owned.rs).
        page: bool,
    },
}

/// The writes an `update` closure records; applied atomically after it returns.
pub struct Changes<'h> {
    w: &'h mut Writer,
    cache: &'h Cache,
    keys: &'h [&'h [u8]],
    hashes: &'h [KeyHash],
    canon: &'h [usize],
    ops: &'h mut [Op],
    /// What the last put's value is as a big collection's root (one-key
    /// publication reads it instead of reading the new item back).
    pub(crate) put_root: PutRoot,
    /// Set by the one-key update, the only one that edits in place.
    pub(crate) edits: bool,
    /// `rewrite_unchanged` asked (one-key update only; a later put or
    /// delete clears it).
    pub(crate) unchanged: bool,
}

/// Whether a value written is a big collection's root, known from the
/// bytes given to `put` (Unknown: they start with bytes of the cache).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PutRoot {
    Unknown,
    NotRoot,
    Root { generation: u64 },
}

impl PutRoot {
    fn of<'p, P: Into<Part<'p>> + Copy>(kind: ValueKind, parts: &[P]) -> PutRoot {
        if matches!(kind, ValueKind::String | ValueKind::Page) {
            return PutRoot::NotRoot;
        }
        match parts.first().map(|&part| part.into()) {
            Some(Part::Local(head)) if head.len() >= OWNER_STAMP_LEN || parts.len() == 1 => {
                owner_generation(head)
                    .map_or(PutRoot::NotRoot, |generation| PutRoot::Root { generation })
            }
            _ => PutRoot::Unknown,
        }
    }
}

impl<'h> Changes<'h> {
    pub(crate) fn new(
        w: &'h mut Writer,
        cache: &'h Cache,
        keys: &'h [&'h [u8]],
        hashes: &'h [KeyHash],
        canon: &'h [usize],
        ops: &'h mut [Op],
    ) -> Changes<'h> {
        w.touched = 0;
        // (No edit is pending here: `update_one` stores or drops each one
        // before its attempt ends, and no other update records one.)
        Changes {
            w,
            cache,
            keys,
            hashes,
            canon,
            ops,
            put_root: PutRoot::Unknown,
            edits: false,
            unchanged: false,
        }
    }

    /// Edits key `i`'s item `item` (the closure's, as looked up) in place
    /// instead of writing a new one: `writes` (offset in the value, bytes)
    /// are stored in order under the key's home lock when the update
    /// publishes, each after the ones before it (`edit.rs`: a kill -9
    /// leaves a prefix of them; make the last, the one that switches to
    /// the new state, a single byte). Every write must lie in the item's
    /// editable region. Refused (nothing recorded; write a new item
    /// instead) in an update of several keys or a transaction, when key
    /// `i` already has a put or delete, for an item written without
    /// `editable`, or for a write outside the region. A later put or
    /// delete of the key drops the edit.
    pub fn edit(
        &mut self,
        i: usize,
        item: &ItemRef<'_>,
        writes: &[(usize, &[u8])],
    ) -> Result<(), EditRefused> {
        if !self.edits || self.canon[i] != 0 || self.ops[0] != Op::Keep {
            return Err(EditRefused::NotOneKey);
        }
        let (Some(area), Some(region)) = (item.contiguous(), item.editable_region()) else {
            return Err(EditRefused::NotEditable);
        };
        self.w.edit.record(area, &region, writes)
    }

    /// Offers key `i`'s live item `item` to `plan`, an in-place planner
    /// (`InPlaceEdit`, as `CacheHandle::edit_in_place` takes): the edit
    /// it records is stored as `edit` stores its writes, with no copy of
    /// its bytes. None, nothing recorded: `plan` declined (None, or no
    /// edit recorded), or the update cannot edit in place (as `edit`
    /// refuses: not one key, or the key already has a put or delete).
    pub fn plan_edit<R>(
        &mut self,
        i: usize,
        item: &ItemRef<'_>,
        plan: impl FnOnce(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    ) -> Option<R> {
        if !self.edits || self.canon[i] != 0 || self.ops[0] != Op::Keep {
            return None;
        }
        self.w.edit.plan(item, plan)
    }

    /// Counts key `i` as written though its value stays as stored (a
    /// write whose new bytes equal the old: HSET of a field to the value
    /// it holds): no new item is written; the update locks the key's home
    /// (its version moves, so WATCH sees the write), logs the change
    /// (keyspace events, tracking) and counts the access. False, nothing
    /// recorded, in an update of several keys or a transaction, or when
    /// key `i` already has a put or delete: the caller writes the value.
    /// The key must have been live when the closure looked (a missing or
    /// expired key is left to the normal path). A later put or delete of
    /// the key supersedes it.
    pub fn rewrite_unchanged(&mut self, i: usize) -> bool {
        if !self.edits || self.canon[i] != 0 || self.ops[0] != Op::Keep {
            return false;
        }
        self.unchanged = true;
        true
    }

    /// Writes key `i` with the concatenation of `parts`: byte slices, or
    /// `Part`s mixing them with bytes of the cache (an item's value).
    pub fn put<'p, P: Into<Part<'p>> + Copy>(
        &mut self,
        i: usize,
        parts: &[P],
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
    pub fn put_with<'p, P: Into<Part<'p>> + Copy>(
        &mut self,
        i: usize,
        parts: &[P],
        opts: PutOptions,
    ) -> Result<(), WriteError> {
        let i = self.canon[i];
        let (seg, off) =
            self.w
                .write_item(self.cache, self.keys[i], self.hashes[i], parts, opts)?;
        let ttl = opts.expire_at.is_some();
        let page = opts.kind == ValueKind::Page;
        self.put_root = PutRoot::of(opts.kind, parts);
        self.replace(
            i,
            Op::Put {
                seg,
                off,
                ttl,
                page,
            },
        );
        Ok(())
    }

    /// Counts an access to key `i` for eviction when the update ends, as
    /// `CacheHandle::touch_key` does (an update counts none by itself):
    /// the one-key update bumps the entry it already holds instead of
    /// looking the key up again.
    pub fn touch(&mut self, i: usize) {
        self.w.touched |= 1 << i.min(63);
    }

    /// Deletes key `i`.
    pub fn delete(&mut self, i: usize) {
        let i = self.canon[i];
        self.replace(i, Op::Delete);
    }

    fn replace(&mut self, i: usize, op: Op) {
        self.w.edit.clear();
        self.unchanged = false;
        if let Op::Put { seg, off, .. } = std::mem::replace(&mut self.ops[i], op) {
            self.w.discard(self.cache, seg, off);
        }
    }
}

/// The transaction behind `CacheHandle::update` of two keys or more (one
/// key: `update_one.rs`; see there and the module comment).
pub(crate) fn update<R>(
    cache: &Cache,
    w: &mut Writer,
    scratch: &mut Scratch,
    keys: &[&[u8]],
    mut f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes) -> R,
) -> Result<R, WriteError> {
    prepare(cache, keys, scratch);
    // Reuse the allocation of the items vector across calls (in-place collect).
    let mut items: Vec<Option<ItemRef<'_>>> = std::mem::take(&mut scratch.items)
        .into_iter()
        .map(|_| None)
        .collect();
    let mut result = Err(WriteError::OutOfMemory { len: 0 });
    for _ in 0..MAX_ATTEMPTS {
        snapshot(cache, w.now, keys, scratch, &mut items);
        scratch.ops.clear();
        scratch.ops.resize(keys.len(), Op::Keep);
        scratch.tags.clear();
        scratch.tags.resize(keys.len(), w.changes.tag);
        let mut changes = Changes::new(
            &mut *w,
            cache,
            keys,
            &scratch.hashes,
            &scratch.canon,
            &mut scratch.ops,
        );
        let r = f(&items, &mut changes);
        if publish(cache, w, scratch, |i| keys[i], None) {
            result = Ok(r);
            break;
        }
        if w.take_index_full() {
            break; // a new key's candidates are all protected: no room
        }
    }
    items.clear();
    scratch.items = items.into_iter().map(|_| None).collect();
    result
}

/// Publishes what `s.ops` records against the snapshot in `s`: validates a
/// read-only snapshot, else locks the homes at the versions read, claims
/// slots for new keys and applies. False on a conflict (everything written
/// is discarded; the caller runs its closure again on a new snapshot).
pub(crate) fn publish<'k>(
    cache: &Cache,
    w: &mut Writer,
    s: &mut Scratch,
    key_of: impl Fn(usize) -> &'k [u8],
    events: Option<&[(usize, KeyChange, u16)]>,
) -> bool {
    if cache.expiry_held(w.now) {
        // An expired key only read stays (it read as absent all the same).
        for i in 0..s.ops.len() {
            s.expired[i] &= s.ops[i] != Op::Keep;
        }
    }
    if s.ops.iter().all(|op| *op == Op::Keep) && !s.expired.contains(&true) {
        // Nothing to write: validating the snapshot is enough.
        let locks = cache.locks();
        return s
            .homes
            .iter()
            .all(|&(home, v)| locks.read_validate(home, v));
    }
    // Sorted homes of the written keys, then the homes (sorted too) that
    // hold one: O(n log n), for a transaction of many thousand keys too.
    s.written_homes.clear();
    for i in 0..s.ops.len() {
        if s.ops[i] != Op::Keep || s.expired[i] {
            s.written_homes.push(s.hashes[i].home(cache.geo()));
        }
    }
    s.written_homes.sort_unstable();
    s.written_homes.dedup();
    s.locked.clear();
    for &(home, v) in &s.homes {
        if s.written_homes.binary_search(&home).is_ok() {
            s.locked.push((home, v));
        }
    }
    if !lock_homes(cache, &s.locked) {
        discard_all(w, cache, &s.ops);
        return false;
    }
    // The keys only read must be unchanged while the written ones are locked.
    let locks = cache.locks();
    let reads_hold = s
        .homes
        .iter()
        .filter(|&&(home, _)| s.locked.binary_search_by_key(&home, |&(h, _)| h).is_err())
        .all(|&(home, v)| locks.read_validate(home, v));
    if !reads_hold {
        return give_up(w, cache, s);
    }
    // Single-key writes skip the journal: one entry store is atomic.
    let journal = plan_journal(cache, w, s).then(|| cache.journal(w.slot));
    if let Some(journal) = &journal {
        if !s.claims.is_empty() {
            journal.begin_claims(&s.claims);
        }
    }
    if !claim_slots(w, cache, s) {
        if let Some(journal) = &journal {
            journal.finish();
        }
        return give_up(w, cache, s);
    }
    if let Some(journal) = &journal {
        if !s.applies.is_empty() {
            journal.begin_apply(s.claims.len(), &s.applies);
        }
    }
    if w.changes.enabled {
        record_changes(w, s, &key_of, events);
    }
    queue_dropped_roots(w, cache, s, &key_of);
    apply(w, cache, s, &key_of);
    // IDLE before the unlock: once another writer may change these keys,
    // recovery must not replay this write over its change.
    if let Some(journal) = &journal {
        journal.finish();
    }
    unlock_homes(cache, &s.locked);
    w.free_collected(cache);
    w.seal_pending(cache);
    true
}

/// A conflict after locking: unlock, drop the unpublished items.
fn give_up(w: &mut Writer, cache: &Cache, s: &Scratch) -> bool {
    unlock_homes(cache, &s.locked);
    discard_all(w, cache, &s.ops);
    std::hint::spin_loop();
    false
}

/// The index entry of a new item of key `h`.
pub(crate) fn new_entry(h: KeyHash, seg: u32, off: u32) -> Entry {
    Entry::new(h.tag(), seg, off, 0)
}

/// Fills `s.claims` and `s.applies` with the journal records of what
/// publishing `s.ops` will change: a claim per new key, a store per
/// replaced key, a clear per removed key (deleted or expired). False when
/// the journal is not used: one change or none, or more than a journal
/// holds (such a write is still atomic to readers, not across a crash;
/// counted in `CacheStats::journal_overflows`).
fn plan_journal(cache: &Cache, w: &Writer, s: &mut Scratch) -> bool {
    s.claims.clear();
    s.applies.clear();
    if s.ops.len() < 2 {
        return false;
    }
    for i in (0..s.ops.len()).filter(|&i| s.canon[i] == i) {
        let h = s.hashes[i];
        match (s.ops[i], s.found[i]) {
            (Op::Put { seg, off, .. }, None) => {
                s.claims.push(journal::claim(h, new_entry(h, seg, off)))
            }
            (Op::Put { seg, off, .. }, Some((slot, _))) => {
                s.applies.push(journal::store(slot, new_entry(h, seg, off)))
            }
            (Op::Delete, Some((slot, old))) => s.applies.push(journal::clear_if(slot, old)),
            (Op::Keep, Some((slot, old))) if s.expired[i] => {
                s.applies.push(journal::clear_if(slot, old))
            }
            _ => {}
        }
    }
    let changes = s.claims.len() + s.applies.len();
    if changes > journal::RECORDS {
        HandleCounters::bump(&w.counters(cache).journal_overflows, 1);
        return false;
    }
    changes >= 2
}

/// Logs what `apply` is about to do to each key (the homes are locked and
/// the slots claimed: it will happen): expirations, then `events` (a
/// transaction's writes in the order they were made) if given, else each
/// key's final op.
fn record_changes<'k>(
    w: &mut Writer,
    s: &Scratch,
    key_of: impl Fn(usize) -> &'k [u8],
    events: Option<&[(usize, KeyChange, u16)]>,
) {
    if let Some(events) = events {
        for i in 0..s.ops.len() {
            let existed = matches!(s.found[i], Some((_, e)) if !e.is_empty());
            if s.canon[i] == i && existed && s.expired[i] {
                w.changes.record(key_of(i), KeyChange::Expired, s.tags[i]);
            }
        }
        for &(i, change, tag) in events {
            w.changes.record(key_of(i), change, tag);
        }
        return;
    }
    for i in 0..s.ops.len() {
        if s.canon[i] != i {
            continue;
        }
        let existed = matches!(s.found[i], Some((_, e)) if !e.is_empty());
        let before = (existed, s.expired[i], s.seen[i].negative);
        record_key(w, key_of(i), before, s.ops[i], s.tags[i]);
    }
}

/// Logs what publishing `op` does to `key`, under change tag `tag`.
/// `before`: whether an item was found at the key, whether it had
/// expired, whether it was a negative marker (neither is a live key: a
/// put there creates the key).
pub(crate) fn record_key(
    w: &mut Writer,
    key: &[u8],
    (existed, expired, negative): (bool, bool, bool),
    op: Op,
    tag: u16,
) {
    if existed && expired {
        w.changes.record(key, KeyChange::Expired, tag);
    }
    match op {
        Op::Put { ttl, .. } => {
            let created = !existed || expired || negative;
            w.changes
                .record(key, KeyChange::Written { ttl, created }, tag);
        }
        Op::Delete if existed && !expired => w.changes.record(key, KeyChange::Deleted, tag),
        _ => {}
    }
}

/// Hashes, canonical indices (duplicate keys share one), sorted distinct homes.
pub(crate) fn prepare(cache: &Cache, keys: &[&[u8]], s: &mut Scratch) {
    s.hashes.clear();
    s.canon.clear();
    s.homes.clear();
    for (i, key) in keys.iter().enumerate() {
        let h = KeyHash::of(key);
        let first = (0..i)
            .find(|&j| s.hashes[j].0 == h.0 && keys[j] == *key)
            .unwrap_or(i);
        s.hashes.push(h);
        s.canon.push(first);
        s.homes.push((h.home(cache.geo()), 0));
    }
    s.homes.sort_unstable();
    s.homes.dedup_by_key(|(home, _)| *home);
}

/// Looks one key up under its home's `version` and notes what the snapshot
/// saw of it in `s` (found, seen, expired); returns the item the closure
/// sees: expired items and negative markers are absent to it (a put still
/// replaces the marker in its slot).
pub(crate) fn look_up<'c>(
    cache: &'c Cache,
    now: u64,
    h: KeyHash,
    key: &[u8],
    version: u64,
    s: &mut Scratch,
) -> Option<ItemRef<'c>> {
    let found = cache.find(h, key, version);
    let expired = matches!(&found, Some((_, _, item)) if item.is_expired(now));
    s.found.push(found.as_ref().map(|(slot, e, _)| (*slot, *e)));
    s.seen.push(
        found
            .as_ref()
            .map_or(Seen::default(), |(_, _, item)| Seen::of(item)),
    );
    s.expired.push(expired);
    found
        .filter(|(_, _, item)| !expired && !item.is_negative())
        .map(|(_, _, item)| item)
}

/// Records each home's version, then looks every key up.
pub(crate) fn snapshot<'c>(
    cache: &'c Cache,
    now: u64,
    keys: &[&[u8]],
    s: &mut Scratch,
    items: &mut Vec<Option<ItemRef<'c>>>,
) {
    let locks = cache.locks();
    for (home, v) in s.homes.iter_mut() {
        *v = locks.read_begin(*home);
    }
    items.clear();
    s.found.clear();
    s.seen.clear();
    s.expired.clear();
    for (i, key) in keys.iter().enumerate() {
        let home = s.hashes[i].home(cache.geo());
        let version = s
            .homes
            .iter()
            .find(|(h, _)| *h == home)
            .map_or(0, |(_, v)| *v);
        items.push(look_up(cache, now, s.hashes[i], key, version, s));
    }
    // Every item carries its home bucket's version for the caller's CAS needs.
    for (i, item) in items.iter_mut().enumerate() {
        if let Some(item) = item {
            let home = s.hashes[i].home(cache.geo());
            item.version = s
                .homes
                .iter()
                .find(|(h, _)| *h == home)
                .map(|(_, v)| *v)
                .unwrap_or(0);
        }
    }
}

pub(crate) fn lock_homes(cache: &Cache, homes: &[(u64, u64)]) -> bool {
    let locks = cache.locks();
    for (n, &(home, v)) in homes.iter().enumerate() {
        if !locks.lock_at(home, v) {
            for &(home, v) in &homes[..n] {
                locks.unlock(home, v);
            }
            return false;
        }
    }
    true
}

pub(crate) fn unlock_homes(cache: &Cache, homes: &[(u64, u64)]) {
    let locks = cache.locks();
    for &(home, v) in homes {
        locks.unlock(home, v);
    }
}

pub(crate) fn discard_all(w: &mut Writer, cache: &Cache, ops: &[Op]) {
    for op in ops {
        if let Op::Put { seg, off, .. } = *op {
            w.discard(cache, seg, off);
        }
    }
}

/// Gives every new key a slot; on failure releases the slots claimed so far.
pub(crate) fn claim_slots(w: &mut Writer, cache: &Cache, s: &mut Scratch) -> bool {
    w.index_full = false;
    s.claimed.clear();
    for i in 0..s.ops.len() {
        let Op::Put { seg, off, .. } = s.ops[i] else {
            continue;
        };
        if s.found[i].is_some() {
            continue;
        }
        let entry = new_entry(s.hashes[i], seg, off);
        match crate::evict::claim_slot(w, cache, s.hashes[i], entry, &s.locked) {
            Some(slot) => {
                s.found[i] = Some((slot, Entry::EMPTY));
                s.claimed.push(i);
                cache.count_overflow(s.hashes[i], slot, 1);
            }
            None => {
                for &j in &s.claimed {
                    let (slot, _) = s.found[j].take().expect("claimed");
                    // ORDERING: Release, as every entry store (readers
                    // load entries with Acquire); the slot held our own
                    // unpublished entry, and its home is locked by us.
                    cache.region.u64_at(slot).store(0, Ordering::Release);
                    cache.occupancy().cleared(slot);
                    cache.count_overflow(s.hashes[j], slot, -1);
                }
                return false;
            }
        }
    }
    true
}

/// When `apply` stores a key's entry: pages written first, then the keys
/// (a big collection's root), then pages deleted. A write too big for the
/// journal is then still whole after a crash when it writes its pages
/// under a fresh generation (its root, published after them, is the
/// switch); at worst a crash leaves pages the root no longer uses.
fn apply_phase(s: &Scratch, i: usize) -> u8 {
    match s.ops[s.canon[i]] {
        Op::Put { page: true, .. } => 0,
        Op::Delete if s.seen[s.canon[i]].page => 2,
        _ => 1,
    }
}

/// Publishes puts and deletions; the homes are locked and the slots claimed.
pub(crate) fn apply<'k>(
    w: &mut Writer,
    cache: &Cache,
    s: &mut Scratch,
    key_of: &impl Fn(usize) -> &'k [u8],
) {
    let mut expirations = 0u64;
    // Duplicate key indices come only from a command naming a key twice.
    let duplicates = s.canon.iter().enumerate().any(|(i, &c)| c != i);
    let phased = (0..3u8).flat_map(|phase| (0..s.ops.len()).map(move |i| (phase, i)));
    for (phase, i) in phased {
        if apply_phase(s, i) != phase {
            continue;
        }
        let Some((slot, old)) = s.found[i] else {
            continue;
        };
        let ns = namespace::split(key_of(i)).0;
        let (keys, expired) = apply_key(
            w,
            cache,
            (s.hashes[i], ns),
            (slot, old),
            s.ops[i],
            s.seen[i],
            s.expired[i],
        );
        w.add_keys(cache, ns, keys);
        expirations += u64::from(expired);
        // A duplicate key index shares the canonical one's slot: apply once.
        s.found[i] = None;
        if duplicates {
            for j in i + 1..s.ops.len() {
                if s.canon[j] == i {
                    s.found[j] = None;
                }
            }
        }
    }
    if expirations > 0 {
        HandleCounters::bump(&w.counters(cache).expirations, expirations);
    }
}

/// Publishes `op` on the key of hash `h` in namespace `ns` at `slot`,
/// whose entry was `old` (empty: a slot claimed for a new key), seen as
/// `seen` and maybe `expired` (home locked). Returns the change in the key
/// count and whether an expired item went.
pub(crate) fn apply_key(
    w: &mut Writer,
    cache: &Cache,
    (h, ns): (KeyHash, u8),
    (slot, old): (usize, Entry),
    op: Op,
    seen: Seen,
    expired: bool,
) -> (i64, bool) {
    match op {
        Op::Put {
            seg,
            off,
            ttl,
            page,
        } => {
            let new = new_entry(h, seg, off);
            let delta = put_entry(w, cache, (slot, ns), old, new, seen, ttl, page);
            (delta, !old.is_empty() && expired)
        }
        Op::Delete | Op::Keep if !old.is_empty() && (op == Op::Delete || expired) => {
            // ORDERING: Release, as every entry store (readers load
            // entries with Acquire).
            cache.region.u64_at(slot).store(0, Ordering::Release);
            cache.occupancy().cleared(slot);
            cache.count_overflow(h, slot, -1);
            w.unlinked_seen(cache, old, seen, ns);
            (-i64::from(!seen.page), expired)
        }
        _ => (0, false),
    }
}

/// Publishes the new item `new` at `slot` (home locked): over `old`, the
/// key's entry the snapshot saw (`seen`), or into a slot claimed for it
/// (`old` empty); `ns`: the key's namespace. Returns the change in the key
/// count.
#[allow(clippy::too_many_arguments)] // one entry's publication, as apply has it
#[inline]
pub(crate) fn put_entry(
    w: &mut Writer,
    cache: &Cache,
    (slot, ns): (usize, u8),
    old: Entry,
    new: Entry,
    seen: Seen,
    ttl: bool,
    page: bool,
) -> i64 {
    let word = cache.region.u64_at(slot);
    // Pages are not keys: only keys are counted.
    let mut delta = i64::from(!page);
    if old.is_empty() {
        // ORDERING: Release publishes the item's bytes to readers that
        // load the entry with Acquire.
        word.store(new.0, Ordering::Release);
    } else {
        delta -= i64::from(!seen.page);
        // Readers may bump the frequency bits meanwhile; keep them.
        // ORDERING: Relaxed: a guess for the CAS below.
        let mut cur = word.load(Ordering::Relaxed);
        // ORDERING: Release publishes the item's bytes, as above; Relaxed
        // on failure: retry with the value seen.
        while let Err(now) = word.compare_exchange_weak(
            cur,
            new.with_freq(Entry(cur).freq()).0,
            Ordering::Release,
            Ordering::Relaxed,
        ) {
            cur = now;
        }
        w.unlinked_seen(cache, old, seen, ns);
    }
    // ORDERING: Relaxed: counting an item in its segment needs no ordering
    // (nothing is freed on an increment); being a read-modify-write, it
    // keeps the release sequence of `Seg::unlink_one` intact.
    cache.seg(new.seg()).live().fetch_add(1, Ordering::Relaxed);
    if ttl {
        w.add_expires(cache, ns, 1);
    }
    delta
}

/// Queues the pages of every big collection root the publication drops
/// (deleted, expired, or replaced by anything but a root of the same
/// generation: a write of a paged collection keeps its generation and its
/// pages). Homes locked, slots claimed: it will happen.
fn queue_dropped_roots<'k>(
    w: &mut Writer,
    cache: &Cache,
    s: &Scratch,
    key_of: &impl Fn(usize) -> &'k [u8],
) {
    for i in 0..s.ops.len() {
        let Some(old) = s.seen[i].root else {
            continue;
        };
        let existed = matches!(s.found[i], Some((_, e)) if !e.is_empty());
        if s.canon[i] != i || !existed {
            continue;
        }
        if !root_kept(cache, s.ops[i], s.expired[i], old, PutRoot::Unknown) {
            w.queue_reclaim(cache, key_of(i), old);
        }
    }
}

/// Whether publishing `op` over a big collection's root `old` (maybe
/// `expired`) keeps its pages: a root of the same generation replaces it
/// (`put`: what the put's value is, if known).
pub(crate) fn root_kept(
    cache: &Cache,
    op: Op,
    expired: bool,
    old: RootStamp,
    put: PutRoot,
) -> bool {
    match (op, put) {
        (Op::Keep, _) => !expired,
        (Op::Delete, _) => false,
        (Op::Put { .. }, PutRoot::Root { generation }) => generation == old.generation,
        (Op::Put { .. }, PutRoot::NotRoot) => false,
        (Op::Put { seg, off, .. }, PutRoot::Unknown) => cache
            .item_at(Entry::new(0, seg, off, 0), 0)
            .and_then(|new| new.root_stamp())
            .is_some_and(|new| new.generation == old.generation),
    }
}

/// Probabilistic frequency bump of the entry `e` at `slot` with the
/// random `draw` (1 in 2^(freq+2)): hot keys stop writing the index line
/// once their counter saturates.
pub(crate) fn bump_freq(cache: &Cache, slot: usize, e: Entry, draw: u64) {
    let freq = e.freq();
    // 1 in 2^(freq+2): a key must be read about 4 times to earn its first
    // bit; sampling keeps index-line writes rare on the read path.
    if freq >= FREQ_MAX || draw & ((4u64 << freq) - 1) != 0 {
        return;
    }
    let word = cache.region.u64_at(slot);
    // A failed CAS means a writer or another reader got there first: fine.
    // ORDERING: Relaxed: only the frequency bits change, and a read-
    // modify-write continues the release sequence of the store that
    // published the entry, so readers that load our value with Acquire
    // still see the item's bytes.
    let _ = word.compare_exchange(
        e.0,
        e.with_freq(freq + 1).0,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
}
