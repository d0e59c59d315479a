//! `update` over one key (most writes: a list push or pop, HSET, SADD,
//! ZADD on one collection, INCR ...): the same protocol and the same
//! publication steps (`update::apply_key`, `record_key`, `root_kept`),
//! without the multi-key bookkeeping: no hashes, homes, canonical indices
//! or per-key vectors to fill, sort and scan, no journal to plan (one
//! entry store is atomic), one home to lock. Look the key up under its
//! home's version, run the closure, lock the home at that version (a
//! conflict runs the closure again on a new lookup), claim a slot if the
//! key is new, publish, unlock.

use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::edit::InPlaceEdit;
use crate::error::WriteError;
use crate::index::{Entry, KeyHash};
use crate::item::ItemRef;
use crate::stats::HandleCounters;
use crate::sync::Ordering;
use crate::update::{
    apply_key, bump_freq, new_entry, record_key, root_kept, Changes, Op, PutRoot, MAX_ATTEMPTS,
};
use crate::writer::{Seen, Writer};

/// What the lookup found at the key (valid once its home is locked at
/// the version read: published items never change).
struct Old<'c> {
    slot: usize,
    entry: Entry,
    item: ItemRef<'c>,
    expired: bool,
}

/// `update::update` of the one key `key`, whose hash is `h`.
pub(crate) fn update_one<R>(
    cache: &Cache,
    w: &mut Writer,
    key: &[u8],
    h: KeyHash,
    mut f: impl FnMut(&[Option<ItemRef<'_>>], &mut Changes) -> R,
) -> Result<R, WriteError> {
    let home = h.home(cache.geo());
    let locks = cache.locks();
    let (keys, hashes, canon) = ([key], [h], [0]);
    for _ in 0..MAX_ATTEMPTS {
        let v = locks.read_begin(home);
        // What unlinking the old item must undo (`Seen`) is read only
        // when something is published: a closure that only reads (SADD of
        // a member already there) needs none of it.
        let old = cache.find(h, key, v).map(|(slot, entry, item)| Old {
            slot,
            entry,
            item,
            expired: item.is_expired(w.now),
        });
        let expired = old.as_ref().is_some_and(|old| old.expired);
        // Expired items and negative markers are absent to the closure (a
        // put still replaces the marker in its slot).
        let item = old
            .as_ref()
            .map(|old| old.item)
            .filter(|item| !expired && !item.is_negative())
            .map(|mut item| {
                item.version = v;
                item
            });
        let items = [item];
        let tag = w.changes.tag;
        let mut ops = [Op::Keep];
        let mut changes = Changes::new(w, cache, &keys, &hashes, &canon, &mut ops);
        changes.edits = true;
        let r = f(&items, &mut changes);
        let put_root = changes.put_root;
        let unchanged = changes.unchanged;
        let op = ops[0];
        let touched = std::mem::take(&mut w.touched) != 0 && !w.no_touch;
        let edit = w.edit.area().is_some();
        // An expired item only read stays while expiry is held.
        let removes_expired = expired && !cache.expiry_held(w.now);
        if op == Op::Keep && !removes_expired && !edit && !unchanged {
            // Nothing to write: validating the lookup is enough.
            if locks.read_validate(home, v) {
                if let Some(old) = old.as_ref().filter(|_| touched) {
                    bump_freq(cache, old.slot, old.entry, w.next_random());
                }
                return Ok(r);
            }
            continue;
        }
        if !locks.lock_at(home, v) {
            discard(w, cache, op);
            w.edit.clear();
            continue;
        }
        if edit {
            // Op::Keep (a put or delete drops the edit).
            store_edit(cache, w, key, old.as_ref(), touched, tag);
            locks.unlock(home, v);
            return Ok(r);
        }
        if unchanged && !expired {
            // Op::Keep: nothing to store; the unlock moves the version.
            // (Logged only for the live key the closure saw.)
            if let (Some(old), Some(_)) = (old.as_ref(), &items[0]) {
                log_unchanged(cache, w, key, old, tag);
            }
            locks.unlock(home, v);
            return Ok(r);
        }
        let at = match (&old, op) {
            (Some(old), _) => Some((old.slot, old.entry)),
            (None, Op::Put { seg, off, .. }) => {
                let entry = new_entry(h, seg, off);
                match crate::evict::claim_slot(w, cache, h, entry, &[(home, v)]) {
                    Some(slot) => {
                        cache.count_overflow(h, slot, 1);
                        Some((slot, Entry::EMPTY))
                    }
                    None => {
                        locks.unlock(home, v);
                        discard(w, cache, op);
                        if w.take_index_full() {
                            break; // every candidate is protected: no room
                        }
                        std::hint::spin_loop();
                        continue;
                    }
                }
            }
            // A delete of a missing key: nothing to publish.
            (None, _) => None,
        };
        publish(cache, w, key, h, at, old.as_ref(), (op, put_root), tag);
        if let (Some((slot, _)), Op::Put { .. }, true) = (at, op, touched) {
            // The entry just stored (home locked), frequency bits kept.
            // ORDERING: Relaxed: under the home lock only readers' frequency
            // bumps change it, which the CAS in `bump_freq` handles.
            let e = Entry(cache.region.u64_at(slot).load(Ordering::Relaxed));
            bump_freq(cache, slot, e, w.next_random());
        }
        locks.unlock(home, v);
        w.free_collected(cache);
        w.seal_pending(cache);
        return Ok(r);
    }
    Err(WriteError::OutOfMemory { len: 0 })
}

/// An edit in place of the live item at `key` (hash `h`) alone, without
/// an update (`CacheHandle::edit_in_place`): the lookup, then `edit`
/// plans the edit from the item as read (`InPlaceEdit`), then the home is
/// locked at the version read and the edit stored, logged and counted as
/// `update_one` stores one (`store_edit`). `edit` reads unlocked bytes
/// another core may be editing: what it plans from a torn read is never
/// stored (the lock at the version read fails, and it plans again from a
/// new lookup). None, nothing written: no live item at the key, or
/// `edit` declined (None, or no edit recorded).
pub(crate) fn edit_one<R>(
    cache: &Cache,
    w: &mut Writer,
    key: &[u8],
    h: KeyHash,
    mut edit: impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
) -> Option<R> {
    let home = h.home(cache.geo());
    let locks = cache.locks();
    for _ in 0..MAX_ATTEMPTS {
        let v = locks.read_begin(home);
        let (slot, entry, mut item) = cache.find(h, key, v)?;
        if item.is_negative() || item.is_expired(w.now) {
            return None;
        }
        item.version = v;
        let r = w.edit.plan(&item, &mut edit)?;
        if !locks.lock_at(home, v) {
            w.edit.clear();
            continue;
        }
        let old = Old {
            slot,
            entry,
            item,
            expired: false,
        };
        let tag = w.changes.tag;
        store_edit(cache, w, key, Some(&old), !w.no_touch, tag);
        locks.unlock(home, v);
        return Some(r);
    }
    None
}

/// Home locked at the lookup's version: stores the in-place edit the
/// closure recorded (`edit.rs`) into the item it looked up, logs it as a
/// write and counts the access. An edit of anything but that live item
/// (the closure handed `Changes::edit` another `ItemRef`) is dropped.
/// Out of line: every other update's code stays as small as it was.
#[inline(never)]
fn store_edit(
    cache: &Cache,
    w: &mut Writer,
    key: &[u8],
    old: Option<&Old<'_>>,
    touched: bool,
    tag: u16,
) {
    let live = old.filter(|old| !old.expired);
    let Some(old) = live.filter(|old| Some(old.item.area.offset()) == w.edit.area()) else {
        debug_assert!(false, "an edit of an item the lookup did not find");
        w.edit.clear();
        return;
    };
    w.edit.store(&cache.region);
    log_write_of_live(w, key, old, tag);
    if touched {
        bump_freq(cache, old.slot, old.entry, w.next_random());
    }
}

/// Home locked at the lookup's version: a write that left the live item
/// `old` as it was (`Changes::rewrite_unchanged`) is logged as a write
/// and counts as an access (a new item would have been young). Out of
/// line, as `store_edit`.
#[inline(never)]
fn log_unchanged(cache: &Cache, w: &mut Writer, key: &[u8], old: &Old<'_>, tag: u16) {
    log_write_of_live(w, key, old, tag);
    if !w.no_touch {
        bump_freq(cache, old.slot, old.entry, w.next_random());
    }
}

/// Logs a write of the live item `old` at `key` (an edit in place or an
/// unchanged rewrite: the key was there).
fn log_write_of_live(w: &mut Writer, key: &[u8], old: &Old<'_>, tag: u16) {
    if w.changes.enabled {
        let ttl = old.item.expire_at().is_some();
        let change = KeyChange::Written {
            ttl,
            created: false,
        };
        w.changes.record(key, change, tag);
    }
}

/// Drops the unpublished item `op` wrote, if any.
fn discard(w: &mut Writer, cache: &Cache, op: Op) {
    if let Op::Put { seg, off, .. } = op {
        w.discard(cache, seg, off);
    }
}

/// Home locked, slot found or claimed (`at`; None: nothing there to
/// change): logs the change, queues a big collection's pages when its root
/// goes, stores the entry.
#[allow(clippy::too_many_arguments)] // one key's publication, as apply has it
fn publish(
    cache: &Cache,
    w: &mut Writer,
    key: &[u8],
    h: KeyHash,
    at: Option<(usize, Entry)>,
    old: Option<&Old<'_>>,
    (op, put_root): (Op, PutRoot),
    tag: u16,
) {
    let (existed, expired, seen) = match old {
        Some(old) => (true, old.expired, Seen::of(&old.item)),
        None => (false, false, Seen::default()),
    };
    if w.changes.enabled {
        record_key(w, key, (existed, expired, seen.negative), op, tag);
    }
    if let Some(root) = seen
        .root
        .filter(|&root| !root_kept(cache, op, expired, root, put_root))
    {
        w.queue_reclaim(cache, key, root);
    }
    let Some(at) = at else {
        return;
    };
    let ns = crate::namespace::split(key).0;
    let (delta, expired_gone) = apply_key(w, cache, (h, ns), at, op, seen, expired);
    w.add_keys(cache, ns, delta);
    if expired_gone {
        HandleCounters::bump(&w.counters(cache).expirations, 1);
    }
}
