//! A transaction over a declared set of keys (MULTI/EXEC, scripts): many
//! reads and read-modify-writes that publish together or not at all.
//!
//! It is one `update` (update.rs) stretched over many calls: `begin` notes
//! each declared key's home version and looks the keys up; every read and
//! `update` inside sees the transaction's own writes first (an overlay of
//! per-key ops over that snapshot), and puts are written into this thread's
//! segments at once, unpublished; `commit` locks the homes at the versions
//! read (proving nothing changed meanwhile), claims slots and applies, as a
//! single `update` does. A conflict discards everything and the caller runs
//! the whole transaction again. No lock is held while commands run, so a
//! transaction can allocate and evict freely and cannot deadlock; other
//! readers see all of it or none of it (the homes are locked only while
//! the ops are applied). A long transaction keeps the segments its
//! pending writes are in from filling the cache (held.rs).

use std::collections::HashMap;

use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::error::WriteError;
use crate::index::{Entry, KeyHash};
use crate::item::{ItemRef, PutOptions};
use crate::update::{self, Changes, Op, Scratch};
use crate::writer::Writer;

mod held;

/// A key's home bucket and its version when it was watched (WATCH).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub(crate) home: u64,
    pub(crate) version: u64,
}

/// State of the transaction in progress (kept in the handle between
/// transactions so its buffers are reused).
#[derive(Default)]
pub(crate) struct Txn {
    pub active: bool,
    /// The snapshot and the per-declared-key ops (`update::Scratch`).
    s: Scratch,
    /// The declared keys, owned: `key_buf[spans[i]]`.
    key_buf: Vec<u8>,
    spans: Vec<(usize, usize)>,
    /// The declared key after the one a command last used: the one tried
    /// first (`index_or_declare`).
    next: usize,
    /// An item of the snapshot no longer parses as its key (its segment was
    /// reused meanwhile): the commit will fail; reads see it as absent.
    doomed: bool,
    // Reused per nested call: the declared index of each key of the call,
    // the call's own hashes, canonical indices and ops.
    sub_map: Vec<usize>,
    sub_hashes: Vec<KeyHash>,
    sub_canon: Vec<usize>,
    sub_ops: Vec<Op>,
    sub_items: Vec<Option<ItemRef<'static>>>,
    /// Each write as it was made (declared index, change, tag), for the
    /// change log: a key written twice reports both, as Redis's commands do.
    events: Vec<(usize, KeyChange, u16)>,
    /// Homes first seen after `begin` (a key declared midway), with the
    /// version read then: merged into `s.homes`, kept sorted for the
    /// commit's locking order, at the commit (an insertion into the
    /// sorted list per key made a script naming 100k keys quadratic).
    late_homes: HashMap<u64, u64>,
    /// Declared indices by key hash once `INDEXED_FROM` keys are declared
    /// (a script naming thousands of keys): one index per hash, and
    /// `same_hash[i]` the next index with key `i`'s hash (`NONE`: none).
    by_hash: HashMap<u64, usize>,
    same_hash: Vec<usize>,
    /// How many of the declared keys `by_hash` covers.
    indexed: usize,
    /// How many of the writer's retired segments the last
    /// `seal_unreferenced` kept for pending writes: looked at again only
    /// once another segment is retired (once per segment of writes, not
    /// per write). See held.rs.
    held_segments: usize,
    /// The pending writes per held segment (held.rs), reused.
    pending: held::PendingBySegment,
}

/// Below this many declared keys a linear search by hash is cheaper than
/// keeping the hash index.
const INDEXED_FROM: usize = 32;
const NONE: usize = usize::MAX;

impl Txn {
    fn key(&self, i: usize) -> &[u8] {
        let (a, b) = self.spans[i];
        &self.key_buf[a..b]
    }

    /// Begins over `keys` (duplicates allowed).
    pub fn begin(&mut self, cache: &Cache, now: u64, keys: &[&[u8]]) {
        self.active = true;
        self.doomed = false;
        self.next = 0;
        self.late_homes.clear();
        self.by_hash.clear();
        self.same_hash.clear();
        self.indexed = 0;
        self.key_buf.clear();
        self.spans.clear();
        for key in keys {
            let start = self.key_buf.len();
            self.key_buf.extend_from_slice(key);
            self.spans.push((start, self.key_buf.len()));
        }
        update::prepare(cache, keys, &mut self.s);
        // The snapshot as `update::snapshot` takes it, less the items it
        // returns (a transaction reads its keys later, through `item`).
        let locks = cache.locks();
        for (home, v) in self.s.homes.iter_mut() {
            *v = locks.read_begin(*home);
        }
        self.s.found.clear();
        self.s.seen.clear();
        self.s.expired.clear();
        for (i, key) in keys.iter().enumerate() {
            let h = self.s.hashes[i];
            let version = self.home_version(h.home(cache.geo())).unwrap_or(0);
            update::look_up(cache, now, h, key, version, &mut self.s);
        }
        self.s.ops.clear();
        self.s.ops.resize(keys.len(), Op::Keep);
        self.s.tags.clear();
        self.s.tags.resize(keys.len(), 0);
        self.events.clear();
        self.held_segments = 0;
    }

    /// The version the transaction read `home` at.
    fn home_version(&self, home: u64) -> Option<u64> {
        match self.s.homes.binary_search_by_key(&home, |&(h, _)| h) {
            Ok(at) => Some(self.s.homes[at].1),
            Err(_) => self.late_homes.get(&home).copied(),
        }
    }

    /// Whether every watched home still has the version it had when watched
    /// (as of `begin`; `commit` then proves it unchanged until publication).
    pub fn watches_hold(&self, watches: impl IntoIterator<Item = Watch>) -> bool {
        watches
            .into_iter()
            .all(|w| self.home_version(w.home) == Some(w.version))
    }

    /// What the transaction sees for declared key `d` now: its own write,
    /// its own deletion, or the snapshot's live item.
    fn item<'c>(&mut self, cache: &'c Cache, d: usize) -> Option<ItemRef<'c>> {
        let h = self.s.hashes[d];
        let version = self.home_version(h.home(cache.geo())).unwrap_or(0);
        let item = match self.s.ops[d] {
            Op::Delete => return None,
            Op::Put { seg, off, .. } => cache.item_at(Entry::new(h.tag(), seg, off, 0), version),
            Op::Keep => {
                if self.s.expired[d] {
                    return None;
                }
                let (_, e) = self.s.found[d]?;
                cache.item_at(e, version)
            }
        };
        match item {
            Some(item) if item.key == *self.key(d) => (!item.is_negative()).then_some(item),
            _ => {
                self.doomed = true;
                None
            }
        }
    }

    /// Adds `key` to the transaction as it is now: its home's version (the
    /// one noted at `begin` if another key shares the home) and its item.
    /// The commit validates it like every other key, so a key first
    /// touched midway (a script naming a key it did not declare) is as
    /// isolated as the rest.
    fn declare(&mut self, cache: &Cache, now: u64, h: KeyHash, key: &[u8]) -> usize {
        let i = self.spans.len();
        let start = self.key_buf.len();
        self.key_buf.extend_from_slice(key);
        self.spans.push((start, self.key_buf.len()));
        self.s.hashes.push(h);
        self.s.canon.push(i);
        let home = h.home(cache.geo());
        let version = match self.home_version(home) {
            Some(v) => v,
            None => {
                let v = cache.locks().read_begin(home);
                self.late_homes.insert(home, v);
                v
            }
        };
        update::look_up(cache, now, h, key, version, &mut self.s);
        self.s.ops.push(Op::Keep);
        self.s.tags.push(0);
        i
    }

    /// The declared index (canonical) of `key` and its hash, declaring it
    /// now if needed. Commands mostly use the declared keys in the order
    /// declared (EXEC's queue, a script's KEYS), so the key after the last
    /// one found is tried first, by its bytes: then the hash `begin` made
    /// is reused and the key is not hashed again.
    #[inline]
    fn index_or_declare(&mut self, cache: &Cache, now: u64, key: &[u8]) -> (usize, KeyHash) {
        let next = self.next;
        if next < self.spans.len() && self.key(next) == key {
            self.next = next + 1;
            return (self.s.canon[next], self.s.hashes[next]);
        }
        self.find_or_declare(cache, now, key)
    }

    /// `index_or_declare` off its fast path: by hash among the declared
    /// keys, else declared now.
    fn find_or_declare(&mut self, cache: &Cache, now: u64, key: &[u8]) -> (usize, KeyHash) {
        let h = KeyHash::of(key);
        let found = if self.spans.len() < INDEXED_FROM {
            (0..self.spans.len()).find(|&i| self.s.hashes[i].0 == h.0 && self.key(i) == key)
        } else {
            self.find_indexed(h, key)
        };
        match found {
            Some(i) => {
                self.next = i + 1;
                (self.s.canon[i], self.s.hashes[i])
            }
            None => (self.declare(cache, now, h, key), h),
        }
    }

    /// A declared index of `key` (hash `h`) through the hash index,
    /// brought up to date with the keys declared since it was last used.
    fn find_indexed(&mut self, h: KeyHash, key: &[u8]) -> Option<usize> {
        for i in self.indexed..self.spans.len() {
            let first = self.by_hash.insert(self.s.hashes[i].0, i);
            self.same_hash.push(first.unwrap_or(NONE));
        }
        self.indexed = self.spans.len();
        let mut i = self.by_hash.get(&h.0).copied().unwrap_or(NONE);
        while i != NONE {
            if self.key(i) == key {
                return Some(i);
            }
            i = self.same_hash[i];
        }
        None
    }

    /// Reads `key` inside the transaction.
    pub fn read<R>(
        &mut self,
        cache: &Cache,
        now: u64,
        key: &[u8],
        f: impl FnOnce(Option<&ItemRef<'_>>) -> R,
    ) -> R {
        let (d, _) = self.index_or_declare(cache, now, key);
        let item = self.item(cache, d);
        f(item.as_ref())
    }

    /// A read-modify-write of some declared keys inside the transaction.
    pub fn update<R>(
        &mut self,
        cache: &Cache,
        w: &mut Writer,
        keys: &[&[u8]],
        f: impl FnOnce(&[Option<ItemRef<'_>>], &mut Changes) -> R,
    ) -> Result<R, WriteError> {
        self.sub_map.clear();
        self.sub_hashes.clear();
        self.sub_canon.clear();
        for (i, key) in keys.iter().enumerate() {
            let (d, h) = self.index_or_declare(cache, w.now, key);
            let first = (0..i).find(|&j| self.sub_map[j] == d).unwrap_or(i);
            self.sub_map.push(d);
            self.sub_hashes.push(h);
            self.sub_canon.push(first);
        }
        // Reuse the items vector's allocation (in-place collect, as `update`).
        let mut items: Vec<Option<ItemRef<'_>>> = std::mem::take(&mut self.sub_items)
            .into_iter()
            .map(|_| None)
            .collect();
        items.clear();
        for i in 0..keys.len() {
            let item = self.item(cache, self.sub_map[i]);
            items.push(item);
        }
        self.sub_ops.clear();
        self.sub_ops.resize(keys.len(), Op::Keep);
        let r = {
            let mut changes = Changes::new(
                w,
                cache,
                keys,
                &self.sub_hashes,
                &self.sub_canon,
                &mut self.sub_ops,
            );
            f(&items, &mut changes)
        };
        items.clear();
        self.sub_items = items.into_iter().map(|_| None).collect();
        for i in 0..keys.len() {
            let op = self.sub_ops[i];
            if op != Op::Keep {
                self.record(cache, w, self.sub_map[i], op);
            }
        }
        self.seal_unreferenced(cache, w);
        Ok(r)
    }

    /// An unconditional write of `key` inside the transaction (SET): the
    /// new item does not depend on the old one, so it is written without
    /// reading the key (half the instructions of `update` for it).
    pub fn set(
        &mut self,
        cache: &Cache,
        w: &mut Writer,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), WriteError> {
        let (d, h) = self.index_or_declare(cache, w.now, key);
        let opts = PutOptions {
            expire_at,
            ..PutOptions::default()
        };
        let (seg, off) = w.write_item(cache, key, h, &[value], opts)?;
        let ttl = expire_at.is_some();
        let op = Op::Put {
            seg,
            off,
            ttl,
            page: false,
        };
        self.record(cache, w, d, op);
        self.seal_unreferenced(cache, w);
        Ok(())
    }

    /// Makes `op` declared key `d`'s pending change (an earlier unpublished
    /// item of it is dropped) and notes it for the change log.
    fn record(&mut self, cache: &Cache, w: &mut Writer, d: usize, op: Op) {
        self.s.tags[d] = w.changes.tag;
        if w.changes.enabled {
            let change = match op {
                Op::Put { ttl, .. } => KeyChange::Written {
                    ttl,
                    // As the transaction saw the key before this write.
                    created: self.item(cache, d).is_none(),
                },
                _ => KeyChange::Deleted,
            };
            self.events.push((d, change, w.changes.tag));
        }
        if let Op::Put { seg, off, .. } = std::mem::replace(&mut self.s.ops[d], op) {
            w.discard(cache, seg, off);
        }
    }

    /// Publishes every write at once; false on a conflict (all discarded),
    /// OutOfMemory when a new key's index candidates are all protected by
    /// the eviction policy (all discarded: running again would not help).
    pub fn commit(&mut self, cache: &Cache, w: &mut Writer) -> Result<bool, WriteError> {
        self.active = false;
        if self.doomed {
            update::discard_all(w, cache, &self.s.ops);
            return Ok(false);
        }
        if !self.late_homes.is_empty() {
            self.s.homes.extend(self.late_homes.drain());
            // Commits lock homes in this order.
            self.s.homes.sort_unstable_by_key(|&(h, _)| h);
        }
        let (key_buf, spans) = (&self.key_buf, &self.spans);
        let key_of = |i: usize| {
            let (a, b) = spans[i];
            &key_buf[a..b]
        };
        if update::publish(cache, w, &mut self.s, key_of, Some(&self.events)) {
            return Ok(true);
        }
        if w.take_index_full() {
            return Err(WriteError::OutOfMemory { len: 0 });
        }
        Ok(false)
    }

    /// Drops the transaction's unpublished writes.
    pub fn abort(&mut self, cache: &Cache, w: &mut Writer) {
        if self.active {
            self.active = false;
            update::discard_all(w, cache, &self.s.ops);
        }
    }
}
