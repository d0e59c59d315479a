//! Index-slot eviction: a new key takes an empty candidate slot, else
//! evicts the least frequently used candidate the policy lets go.

use super::pages::{orphan_page, OwnerLock};
use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::index::{bucket_off, candidate_slots, Entry, KeyHash, FREQ_MAX};
use crate::layout::{slots_per_bucket, BUCKET_SLOTS, LEVELS};
use crate::policy::EvictionPolicy;
use crate::sync::{AtomicU64, Ordering};
use crate::writer::Writer;

/// Claims a slot for `entry` (a new key): an empty candidate, else the least
/// frequently used candidate whose home bucket is held by this transaction
/// (`held`) or can be try-locked. Never blocks, so it cannot deadlock.
/// The empty slot (nearly every claim) is taken inline; evicting a
/// candidate is out of line.
#[inline]
pub(crate) fn claim_slot(
    w: &mut Writer,
    cache: &Cache,
    h: KeyHash,
    entry: Entry,
    held: &[(u64, u64)],
) -> Option<usize> {
    if let Some(slot) = claim_empty(cache, h, entry) {
        return Some(slot);
    }
    claim_victim(w, cache, h, entry, held)
}

/// `claim_slot` when every candidate is taken: evicts the least frequently
/// used one it can lock among those the policy lets go. Sets
/// `w.index_full` when the policy lets none go (the write then fails
/// rather than retrying).
#[inline(never)]
fn claim_victim(
    w: &mut Writer,
    cache: &Cache,
    h: KeyHash,
    entry: Entry,
    held: &[(u64, u64)],
) -> Option<usize> {
    let geo = cache.geo();
    let policy = cache.eviction_policy();
    let mut evictable = false;
    for freq in 0..=FREQ_MAX {
        for slot in candidate_slots(geo, h) {
            // ORDERING: Acquire pairs with the Release that published the
            // victim's entry: we parse its item next (to find its home).
            let victim = Entry(cache.region.u64_at(slot).load(Ordering::Acquire));
            if victim.is_empty() || victim.freq() != freq {
                continue;
            }
            if policy.protects_some() && !may_replace(cache, policy, victim, w.now) {
                continue;
            }
            evictable = true;
            if replace_victim(w, cache, slot, victim, entry, held) {
                return Some(slot);
            }
        }
    }
    w.index_full = !evictable;
    None
}

/// Whether a policy that protects some items lets the candidate `victim`
/// leave the index: expired, or evictable and not a page (a page would
/// take its collection's root with it). Its item is immutable while the
/// entry names it, which `replace_victim` re-checks under the home lock.
#[cold]
fn may_replace(cache: &Cache, policy: EvictionPolicy, victim: Entry, now: u64) -> bool {
    cache.item_at(victim, 0).is_some_and(|item| {
        item.is_expired(now) || (!item.is_page() && policy.may_evict(item.expire_at().is_some()))
    })
}

/// Claims an empty candidate slot for `entry`, in probe order; the
/// caller holds the key's home lock. A slot of the home bucket is only
/// ever filled or emptied under that lock (every key that may live there
/// has this home; readers' frequency bumps CAS only an entry they saw, so
/// never an empty slot): one seen empty is ours, and a plain store claims
/// it (a CAS is a locked instruction, which waits for the item's stores
/// to drain). A deeper bucket's slots are shared with other homes'
/// keys: there only one seen empty is tried with a CAS, which settles
/// races (at 1M keys most home slots are taken, and a failing CAS costs
/// as much as a store). A bucket's eight words take one bounds check.
#[inline]
fn claim_empty(cache: &Cache, h: KeyHash, entry: Entry) -> Option<usize> {
    let geo = cache.geo();
    for level in 0..LEVELS {
        let base = bucket_off(geo, level, h.bucket(level, geo));
        let words = cache.region.bucket_at(base);
        // The home's word 0 is its lock, not an entry.
        let first = BUCKET_SLOTS - slots_per_bucket(level);
        for (word, i) in words[first..].iter().zip(first..) {
            // ORDERING: Relaxed: at home the lock (Acquire) ordered this
            // load after every store of the slot; deeper, only a guess
            // that the CAS decides.
            if word.load(Ordering::Relaxed) == 0 && fill_empty(word, entry, level == 0) {
                let slot = base + 8 * i;
                cache.occupancy().claimed(slot);
                return Some(slot);
            }
        }
    }
    None
}

/// Stores `entry` into the empty slot `word`: a plain store in the home
/// bucket (the slot is the lock holder's), a CAS deeper (false: another
/// home's key took it first).
#[inline(always)]
fn fill_empty(word: &AtomicU64, entry: Entry, at_home: bool) -> bool {
    if at_home {
        // ORDERING: Release publishes our item's bytes to readers that
        // load the entry with Acquire (`Cache::find`), and heads the
        // release sequence that readers' frequency bumps continue.
        word.store(entry.0, Ordering::Release);
        return true;
    }
    // ORDERING: Release on success, as the store above; Relaxed on
    // failure: the slot was just taken, the caller tries the next.
    word.compare_exchange(0, entry.0, Ordering::Release, Ordering::Relaxed)
        .is_ok()
}

/// Replaces the entry at `slot` (another key) with `entry`, under the victim's home lock.
fn replace_victim(
    w: &mut Writer,
    cache: &Cache,
    slot: usize,
    victim: Entry,
    entry: Entry,
    held: &[(u64, u64)],
) -> bool {
    let home_of = |e: Entry| {
        cache
            .item_at(e, 0)
            .map(|item| KeyHash::of_shared(item.key).home(cache.geo()))
    };
    let Some(home) = home_of(victim) else {
        return false;
    };
    if held.iter().any(|&(h, _)| h == home) {
        // A bucket this transaction holds may contain its own keys, which
        // must not be evicted under it; other candidates will do.
        return false;
    }
    let locks = cache.locks();
    let Some(v) = locks.try_lock(home) else {
        return false;
    };
    // Under the victim's lock its item is stable: re-check it is still there
    // and still hashes to the bucket we locked.
    let word = cache.region.u64_at(slot);
    // ORDERING: Acquire, as above; the home lock (Acquire) already orders
    // this after the victim's last change under that lock.
    let cur = word.load(Ordering::Acquire);
    let stable = Entry(cur).location() == victim.location() && home_of(victim) == Some(home);
    let page = stable && cache.item_at(victim, 0).is_some_and(|item| item.is_page());
    // A live page goes only with its whole collection: its root first
    // (try-locks only: this transaction holds its homes).
    let owner_lock = OwnerLock::Try {
        held,
        victim: (home, v),
    };
    let orphaned = !page
        || cache
            .item_at(victim, 0)
            .is_some_and(|item| orphan_page(w, cache, item.key, owner_lock));
    // ORDERING: AcqRel: Release publishes our item (as in the first loop);
    // Acquire orders a reader's concurrent frequency bump (a Relaxed RMW in
    // the entry's release sequence) before our unlink. Relaxed on failure:
    // a reader bumped the frequency meanwhile; another candidate will do.
    let ok = stable
        && orphaned
        && word
            .compare_exchange(cur, entry.0, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok();
    let mut dropped = crate::writer::Dropped::default();
    if ok {
        if w.changes.enabled {
            if let Some(item) = cache.item_at(victim, 0) {
                // Its home is locked: the victim's bytes are stable.
                w.changes.record_shared(item.key, KeyChange::Evicted);
            }
        }
        dropped = w.dropped(cache, victim);
        if crate::index::is_overflow(cache.geo(), slot) {
            locks.adjust_overflow(home, -1, 0);
        }
    }
    locks.unlock(home, v);
    if ok {
        w.count_removed(cache, false, dropped);
    }
    ok
}
