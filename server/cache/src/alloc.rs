//! Segments for a writer: a free one if any, else one made free by
//! evicting (evict.rs). Allocation never holds a lock, so it may wait.

use crate::cache::Cache;
use crate::error::WriteError;
use crate::layout::SEGMENT_SIZE;
use crate::segment::{Seg, State};
use crate::writer::Writer;

impl Writer {
    /// A new active segment for `class`: a free one, else an evicted one that
    /// keeps its frequently read items at its front (see evict.rs).
    pub fn take_active<'c>(
        &mut self,
        cache: &'c Cache,
        class: usize,
    ) -> Result<Seg<'c>, WriteError> {
        let mut wait = VictimWait::default();
        let mut shrink_tries = 2;
        loop {
            if let Some(seg) = self.pop_free(cache) {
                seg.reset(State::Active, class, self.now);
                return Ok(seg);
            }
            // Over a lowered cap: free a segment for good before taking a
            // victim for ourselves, so that memory in use shrinks (a few
            // tries: a policy that protects items may free nothing).
            if shrink_tries > 0 && cache.segments_over_cap() > 0 {
                shrink_tries -= 1;
                if self.evict_one(cache) {
                    continue;
                }
            }
            let Some(victim) = crate::evict::pick_victim(cache, self.now) else {
                if !self.retire_idle(cache) && !wait.another_try() {
                    break;
                }
                continue;
            };
            if let Some(seg) = self.compact(cache, victim, class) {
                return Ok(seg);
            }
        }
        Err(WriteError::OutOfMemory {
            len: SEGMENT_SIZE as u64,
        })
    }

    /// A free segment (for chunks), evicting one if none is free. A policy
    /// that protects items may leave victims partly kept, not free: it gets
    /// fewer tries, so a write that cannot have room fails sooner.
    pub fn alloc_segment<'c>(&mut self, cache: &'c Cache) -> Result<Seg<'c>, WriteError> {
        let mut wait = VictimWait::default();
        let tries = if cache.eviction_policy().protects_some() {
            8
        } else {
            64
        };
        for _ in 0..tries {
            if let Some(seg) = self.pop_free(cache) {
                return Ok(seg);
            }
            if !self.evict_one(cache) && !self.retire_idle(cache) && !wait.another_try() {
                break;
            }
        }
        Err(WriteError::OutOfMemory {
            len: SEGMENT_SIZE as u64,
        })
    }
}

impl Writer {
    /// A free segment, unless the policy protects items and only the
    /// reserve is left: that much is kept for commands that free memory
    /// (LPOP, HDEL, EXPIRE ...: not Redis's denyoom), which may have to
    /// write a smaller value before the old one's bytes can be reclaimed.
    /// Other writes then compact victims, reclaiming only dead bytes.
    /// The room is what the free count (memory_cap.rs) leaves below the
    /// memory cap, or below the file's segments when uncapped; none is
    /// taken past the cap.
    fn pop_free<'c>(&self, cache: &'c Cache) -> Option<Seg<'c>> {
        let pool = cache.cap_segments().unwrap_or(cache.geo().segments);
        let reserve = if cache.eviction_policy().protects_some() && !self.may_use_reserve {
            (pool / 64).clamp(1, 8)
        } else {
            0
        };
        if pool.saturating_sub(cache.segments_in_use()) <= reserve {
            return None;
        }
        cache.pop_free()
    }
}

/// Bounded waiting when no segment can be evicted right now (every one is
/// active or holds chunks): other writers seal theirs as their writes
/// complete, so yield for up to 50 ms before reporting out of memory.
/// (Fuzz runs are single-threaded: nobody else can free a segment.)
#[derive(Default)]
struct VictimWait {
    since: Option<std::time::Instant>,
}

impl VictimWait {
    fn another_try(&mut self) -> bool {
        let since = *self.since.get_or_insert_with(std::time::Instant::now);
        std::thread::yield_now();
        let limit = if cfg!(fuzzing) { 0 } else { 50 };
        since.elapsed() < std::time::Duration::from_millis(limit)
    }
}
