//! Choosing the segment to evict: a sample of 32 near a moving clock hand,
//! ranked by what the eviction policy can reclaim from it.

use crate::cache::Cache;
use crate::policy::EvictionPolicy;
use crate::segment::{Seg, State};
use crate::sync::Ordering;

/// Picks a SEALED segment to evict and marks it EVICTING: a fully expired
/// or empty one if the sample has one, else the best by `rank`.
pub(crate) fn pick_victim<'c>(cache: &'c Cache, now: u64) -> Option<Seg<'c>> {
    let n = cache.geo().segments as u64;
    let policy = cache.eviction_policy();
    for _ in 0..4 {
        // ORDERING: Relaxed: a process-local clock hand; any value will do.
        let start = cache.evict_hand.fetch_add(16, Ordering::Relaxed);
        let mut best: Option<((u64, u64), Seg<'c>)> = None;
        for i in 0..n.min(32) {
            let seg = cache.seg(((start + i) % n) as u32);
            if seg.state() != Some(State::Sealed) {
                continue;
            }
            // ORDERING: Relaxed: a hint for choosing; the sweep re-reads
            // `live` with Acquire before relying on it.
            if seg.live().load(Ordering::Relaxed) == 0 || seg.is_expired(now) {
                best = Some(((0, 0), seg));
                break;
            }
            let r = rank(policy, seg);
            if best.as_ref().is_none_or(|(b, _)| r < *b) {
                best = Some((r, seg));
            }
        }
        if let Some((_, seg)) = best {
            if seg.transition(State::Sealed, State::Evicting) {
                return Some(seg);
            }
        }
    }
    (0..n)
        .map(|id| cache.seg(id as u32))
        .find(|seg| seg.transition(State::Sealed, State::Evicting))
}

/// Lower is a better victim. All keys: the oldest (FIFO). Volatile:
/// segments whose items all have a TTL (their latest expiry is finite)
/// before those holding items that must stay, then the oldest;
/// volatile-ttl: the earliest latest expiry. No eviction: the fewest live
/// items, the likeliest to hold dead bytes that compaction reclaims.
fn rank(policy: EvictionPolicy, seg: Seg<'_>) -> (u64, u64) {
    // ORDERING: Relaxed for these hints, as above.
    let created = seg.created_ms().load(Ordering::Relaxed);
    match policy {
        EvictionPolicy::AllKeys => (0, created),
        EvictionPolicy::Volatile => {
            // ORDERING: Relaxed, as above.
            let permanent = seg.max_expire().load(Ordering::Relaxed) == u64::MAX;
            (u64::from(permanent), created)
        }
        // ORDERING: Relaxed, as above.
        EvictionPolicy::VolatileTtl => (seg.max_expire().load(Ordering::Relaxed), created),
        // ORDERING: Relaxed, as above.
        EvictionPolicy::NoEviction => (u64::from(seg.live().load(Ordering::Relaxed)), created),
    }
}
