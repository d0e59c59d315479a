//! The segments a transaction holds: until its commit, a segment with one
//! of its pending (unpublished) writes stays unsealed, out of eviction's
//! reach. A transaction that rewrites the same keys over and over (a
//! script looping over a big collection's pages) drops each key's earlier
//! pending item as it writes the next, so most of what it writes is dead
//! at once; but if the latest write of some key lands in nearly every
//! segment, nearly every segment stays held, the cache fills with the dead
//! items around them, and eviction must take what other keys (and the
//! transaction's own reads) need. Evicting or moving an item the
//! transaction read changes its home's version: the commit then fails,
//! the script runs again, and fills the cache again (a livelock).
//!
//! So each time the writer retires a segment, the transaction
//! 1. releases the retired segments none of its pending writes is in any
//!    more: freed at once when nothing in them is in the index, else
//!    sealed (`Writer::seal_or_free`);
//! 2. when it holds more than `HELD_FREE` segments, moves the pending
//!    items out of the oldest held segments that are at most half pending
//!    (`Writer::relocate_unpublished`, the bytes as stored), up to a
//!    segment's worth per retired segment, and releases those too.
//!
//! The held segments then stay within about twice the bytes of the
//! pending writes (plus `HELD_FREE`), and the dead items go back to the
//! free list without evicting anything.

use std::collections::HashMap;

use super::Txn;
use crate::cache::Cache;
use crate::index::Entry;
use crate::layout::SEGMENT_SIZE;
use crate::update::Op;
use crate::writer::Writer;

/// Up to this many held segments nothing is moved.
const HELD_FREE: usize = 8;
/// A held segment whose pending items take at most this many bytes is
/// emptied by moving them (copying at most half a segment frees one).
const MOVE_AT_MOST: usize = SEGMENT_SIZE / 2;
/// Bytes moved per retired segment at most: relocation at most doubles
/// what the transaction writes.
const MOVE_BUDGET: usize = SEGMENT_SIZE;

/// The pending writes in one held segment.
#[derive(Clone, Copy, Default)]
pub(super) struct Pending {
    items: u32,
    bytes: usize,
    /// Chosen to be emptied by moving its items.
    moving: bool,
}

impl Txn {
    /// Releases the segments this writer retired during the transaction
    /// that hold none of its pending writes, and makes more of them so
    /// when it holds many (see the module comment). Looked at once per
    /// retired segment, not per write.
    pub(super) fn seal_unreferenced(&mut self, cache: &Cache, w: &mut Writer) {
        if w.to_seal.len() <= self.held_segments {
            return;
        }
        self.count_pending(cache, &w.to_seal, false);
        self.release_unheld(cache, w);
        if w.to_seal.len() > HELD_FREE {
            self.count_pending(cache, &w.to_seal, true);
            if self.choose_moves(&w.to_seal) {
                self.move_chosen(cache, w);
                self.count_pending(cache, &w.to_seal, false);
                self.release_unheld(cache, w);
            }
        }
        self.held_segments = w.to_seal.len();
    }

    /// Counts the pending writes in each of `segments` (`self.pending`),
    /// with their bytes when `bytes`.
    fn count_pending(&mut self, cache: &Cache, segments: &[u32], bytes: bool) {
        self.pending.clear();
        for &id in segments {
            self.pending.insert(id, Pending::default());
        }
        for op in &self.s.ops {
            let Op::Put { seg, off, .. } = *op else {
                continue;
            };
            if let Some(p) = self.pending.get_mut(&seg) {
                p.items += 1;
                if bytes {
                    p.bytes += cache
                        .item_at(Entry::new(0, seg, off, 0), 0)
                        .map_or(0, |item| item.header.total_len());
                }
            }
        }
    }

    /// Releases the retired segments with no pending write.
    fn release_unheld(&mut self, cache: &Cache, w: &mut Writer) {
        let mut retired = std::mem::take(&mut w.to_seal);
        retired.retain(|id| {
            let held = self.pending.get(id).is_some_and(|p| p.items > 0);
            if !held {
                w.seal_or_free(cache, cache.seg(*id));
            }
            held
        });
        w.to_seal = retired;
    }

    /// Marks the oldest held segments worth emptying, within the budget
    /// (the newest `HELD_FREE` are left: their items are likely to be
    /// written again soon). False when none is.
    fn choose_moves(&mut self, held: &[u32]) -> bool {
        let mut budget = MOVE_BUDGET;
        let mut any = false;
        for id in &held[..held.len().saturating_sub(HELD_FREE)] {
            let Some(p) = self.pending.get_mut(id) else {
                continue;
            };
            if p.bytes <= MOVE_AT_MOST && p.bytes <= budget {
                budget -= p.bytes;
                p.moving = true;
                any = true;
            }
        }
        any
    }

    /// Moves the pending items out of the segments chosen. A failure to
    /// find room stops the moves; the items not moved stay where they are.
    fn move_chosen(&mut self, cache: &Cache, w: &mut Writer) {
        for d in 0..self.s.ops.len() {
            let Op::Put {
                seg,
                off,
                ttl,
                page,
            } = self.s.ops[d]
            else {
                continue;
            };
            if !self.pending.get(&seg).is_some_and(|p| p.moving) {
                continue;
            }
            match w.relocate_unpublished(cache, seg, off) {
                Ok(Some((seg, off))) => {
                    self.s.ops[d] = Op::Put {
                        seg,
                        off,
                        ttl,
                        page,
                    }
                }
                Ok(None) => {}
                Err(_) => return,
            }
        }
    }
}

/// The per-segment counts, kept between transactions for their buffers.
pub(super) type PendingBySegment = HashMap<u32, Pending>;
