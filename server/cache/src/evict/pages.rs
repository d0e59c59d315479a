//! Eviction meets a big collection's page (owned.rs): it finds out
//! whether the page's root is live and how used, and evicts the root
//! before any of its live pages, so no root outlives one of its pages.

use crate::cache::Cache;
use crate::changes::KeyChange;
use crate::index::KeyHash;
use crate::owned::parse_page_key;
use crate::region::SharedBytes;
use crate::sync::Ordering;
use crate::writer::Writer;

/// How eviction may take a page owner's home lock.
#[derive(Clone, Copy)]
pub(super) enum OwnerLock<'a> {
    /// Wait for it (the caller holds no lock).
    Wait,
    /// Only try it: the caller holds the `held` homes of its transaction
    /// (never touched) and the victim page's home (used as it is).
    Try {
        held: &'a [(u64, u64)],
        victim: (u64, u64),
    },
}

/// Makes the page with key `page_key` (stable bytes: its home is locked
/// or its segment is being evicted by us) an orphan, so it may be dropped
/// without tearing its collection: true when its owner key holds no
/// unexpired root of its generation, or after evicting that root; false
/// only when `lock` could not take the owner's home. The evicted root is
/// logged as `Evicted` and its pages are queued for reclaim.
pub(super) fn orphan_page(
    w: &mut Writer,
    cache: &Cache,
    page_key: SharedBytes<'_>,
    lock: OwnerLock<'_>,
) -> bool {
    w.page_key.clear();
    page_key.append_to(&mut w.page_key);
    let key = std::mem::take(&mut w.page_key);
    let orphaned = match parse_page_key(&key) {
        // A page whose key names no owner belongs to nobody.
        None => true,
        Some(p) => evict_owner(w, cache, p.owner, p.generation, lock),
    };
    w.page_key = key;
    orphaned
}

/// Evicts the root of `generation` under `owner`, if it is there and
/// unexpired; false only when `lock` could not take the owner's home.
fn evict_owner(
    w: &mut Writer,
    cache: &Cache,
    owner: &[u8],
    generation: u64,
    lock: OwnerLock<'_>,
) -> bool {
    let h = KeyHash::of(owner);
    let home = h.home(cache.geo());
    let locks = cache.locks();
    let (v, ours) = match lock {
        OwnerLock::Wait => (locks.lock(home), true),
        OwnerLock::Try { victim, .. } if victim.0 == home => (victim.1, false),
        OwnerLock::Try { held, .. } if held.iter().any(|&(h, _)| h == home) => return false,
        OwnerLock::Try { .. } => match locks.try_lock(home) {
            Some(v) => (v, true),
            None => return false,
        },
    };
    let root = cache.find(h, owner, v).filter(|(_, _, item)| {
        !item.is_expired(w.now) && item.root_stamp().map(|s| s.generation) == Some(generation)
    });
    let mut dropped = None;
    if let Some((slot, e, item)) = root {
        // ORDERING: Release, as every entry store (readers load with Acquire).
        cache.region.u64_at(slot).store(0, Ordering::Release);
        cache.occupancy().cleared(slot);
        cache.count_overflow(h, slot, -1);
        w.changes.record_shared(item.key, KeyChange::Evicted);
        dropped = Some(w.dropped(cache, e));
    }
    if ours {
        locks.unlock(home, v);
    }
    if let Some(dropped) = dropped {
        w.count_removed(cache, false, dropped);
    }
    true
}

/// How a page's live root is used: what eviction decides a page by.
#[derive(Clone, Copy)]
pub(super) struct OwnerUse {
    /// The root's frequency bits.
    pub freq: u8,
    /// Whether the root has an expiry (a volatile policy may evict it).
    pub has_ttl: bool,
}

/// How the live root owning the page with key `page_key` is used, or None
/// for an orphan (optimistic: the caller holds no lock).
fn owner_use(cache: &Cache, now: u64, page_key: &[u8]) -> Option<OwnerUse> {
    let p = parse_page_key(page_key)?;
    let h = KeyHash::of(p.owner);
    let (locks, home) = (cache.locks(), h.home(cache.geo()));
    loop {
        let v = locks.read_begin(home);
        let owner = match cache.find(h, p.owner, v) {
            Some((_, e, item))
                if !item.is_expired(now)
                    && item.root_stamp().map(|s| s.generation) == Some(p.generation) =>
            {
                Some(OwnerUse {
                    freq: e.freq(),
                    has_ttl: item.expire_at().is_some(),
                })
            }
            _ => None,
        };
        if locks.read_validate(home, v) {
            return owner;
        }
    }
}

impl Writer {
    /// `owner_use` of a page key in the mapping (an EVICTING segment's:
    /// stable), copied out first.
    pub(super) fn page_owner_use(
        &mut self,
        cache: &Cache,
        key: SharedBytes<'_>,
    ) -> Option<OwnerUse> {
        self.page_key.clear();
        key.append_to(&mut self.page_key);
        owner_use(cache, self.now, &self.page_key)
    }
}
