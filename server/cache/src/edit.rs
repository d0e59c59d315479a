//! Items edited in place (issue 14: a list push or pop rewrites only its
//! root's end buffer and descriptor, not the whole root).
//!
//! An *editable* item (flag `F_EDIT`, `PutOptions::editable`) ends its
//! value with a trailer `start:u32 | end:u32` naming its *region*, the
//! value bytes `start..end` that may change after publication. Its check
//! covers the value minus the region, so an edit never rewrites it; what
//! the region holds is the writer's to validate when it reads it (a list
//! root parses it bounds-checked). The region is interior: at least
//! `EDIT_GUARD` value bytes before it and the trailer after it, so the
//! edge words an edit's stores merge (`Region::store_bytes`) hold only
//! this item's bytes, never another item's being appended next to it.
//!
//! An edit runs in a one-key update only (`Changes::edit`), under the
//! key's home lock taken at the version its lookup read (`update_one`):
//! readers on other cores see the version move and retry, as for any
//! write; eviction and compaction move items under that lock, so the
//! edit's location (from the entry locked at) stays valid while it
//! stores. Its writes are stored in the order given, each after a
//! Release fence: a kill -9 leaves a program-order prefix of them, so a
//! writer whose last write switches between two descriptors leaves its
//! old or its new state, provided that switch is one store: a write of
//! one byte (or of bytes inside one aligned word of the mapping) is one
//! word store; a wider write may straddle two words and be cut between
//! them. The region needs no alignment: its edge words hold only bytes
//! of this item (the guard and the trailer), which an edit stores again
//! unchanged under the lock, so compaction may move the item by any
//! number of bytes.
//!
//! The rest of the engine keeps its rule for every other item:
//! published bytes never change. `Seen` (TTL, size, page, root stamp) and
//! the index entry are untouched by an edit.

use std::ops::Range;

use crate::index::hash_pieces;
use crate::item::{value_check, ItemRef, F_EDIT, F_LARGE, SAMPLED_CHECK_MIN};
use crate::region::{Region, SharedBytes};
use crate::sync::{fence, Ordering};

/// Bytes of the trailer ending an editable value: `start:u32 | end:u32`.
pub const EDIT_TRAILER: usize = 8;
/// Fewest value bytes before an editable region.
pub const EDIT_GUARD: usize = 8;

/// The region a trailer names in a value of `len` bytes; None when it is
/// not a valid interior region (the item is then checked whole and is not
/// editable).
pub fn region_of(trailer: [u8; EDIT_TRAILER], len: usize) -> Option<Range<usize>> {
    let start = u32::from_le_bytes(trailer[..4].try_into().expect("4 bytes")) as usize;
    let end = u32::from_le_bytes(trailer[4..].try_into().expect("4 bytes")) as usize;
    let fits = EDIT_GUARD <= start && start <= end && end + EDIT_TRAILER <= len;
    (fits && len < SAMPLED_CHECK_MIN).then_some(start..end)
}

/// The editable region of a value area stored in one piece (`area`) under
/// header flags `flags` (a large item's area is its chunk table: never).
pub(crate) fn area_region(area: SharedBytes<'_>, flags: u8) -> Option<Range<usize>> {
    if flags & (F_EDIT | F_LARGE) != F_EDIT || area.len() < EDIT_TRAILER {
        return None;
    }
    // (Read as whole words: every in-place edit asks.)
    let trailer = area
        .get(area.len() - EDIT_TRAILER..area.len())?
        .head::<EDIT_TRAILER>()?;
    region_of(trailer, area.len())
}

/// The 16-bit check of a value area (`value_check`), less an editable
/// item's region.
pub(crate) fn item_check(area: SharedBytes<'_>, key_hash: u64, flags: u8) -> u16 {
    let Some(region) = area_region(area, flags) else {
        return value_check(area, key_hash);
    };
    let before = area.get(0..region.start).expect("inside the area");
    let after = area.get(region.end..area.len()).expect("inside the area");
    hash_pieces([before, after], key_hash) as u16
}

/// True when the item's stored check matches its value area (less an
/// editable item's region).
pub fn check_matches(item: &ItemRef<'_>, key_hash: u64) -> bool {
    item_check(item.area, key_hash, item.header.flags) == item.header.check
}

impl ItemRef<'_> {
    /// The value bytes an edit may change; None unless the item was
    /// written editable with a valid region.
    pub fn editable_region(&self) -> Option<Range<usize>> {
        area_region(self.contiguous()?, self.header.flags)
    }
}

/// Why `Changes::edit` refused an edit (the caller then writes a new item).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EditRefused {
    /// Not a one-key update, or the key already has a put or delete.
    NotOneKey,
    /// The item is not editable (written without `editable`, or large).
    NotEditable,
    /// A write falls outside the item's region.
    OutsideRegion,
    /// The writes do not add up to the bytes planned (`InPlaceEdit`).
    Unplanned,
}

/// The writes of an edit recorded by the closure, stored at publication.
#[derive(Default)]
pub(crate) struct PendingEdit {
    /// Offset in the mapping of the edited item's value area (None: no edit).
    area: Option<usize>,
    bytes: Vec<u8>,
    /// (offset in the value, length) of each write, in store order.
    writes: Vec<(usize, usize)>,
}

impl PendingEdit {
    /// Records `writes` to the value area `area` (region `region`).
    pub fn record(
        &mut self,
        area: SharedBytes<'_>,
        region: &Range<usize>,
        writes: &[(usize, &[u8])],
    ) -> Result<(), EditRefused> {
        let mut total = 0;
        for &(off, bytes) in writes {
            if off < region.start || off.saturating_add(bytes.len()) > region.end {
                return Err(EditRefused::OutsideRegion);
            }
            total += bytes.len();
        }
        // (Reserved once: the loop below then only copies.)
        self.bytes.clear();
        self.bytes.reserve(total);
        self.writes.clear();
        self.writes.reserve(writes.len());
        self.area = Some(area.offset());
        for &(off, bytes) in writes {
            self.bytes.extend_from_slice(bytes);
            self.writes.push((off, bytes.len()));
        }
        Ok(())
    }

    /// Runs `plan` on `item` with the buffer emptied (`InPlaceEdit`): its
    /// answer once it recorded an edit; None, nothing recorded, when it
    /// declined (None, or no edit recorded).
    pub fn plan<R>(
        &mut self,
        item: &ItemRef<'_>,
        plan: impl FnOnce(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    ) -> Option<R> {
        self.area = None;
        self.bytes.clear();
        let planned = plan(item, &mut InPlaceEdit { edit: self });
        let planned = planned.filter(|_| self.area.is_some());
        if planned.is_none() {
            self.clear();
        }
        planned
    }

    /// Records `writes` (offset in the value, length), whose bytes the
    /// planner wrote into the buffer one after the other in store order,
    /// to the value area `area` (region `region`).
    fn record_planned(
        &mut self,
        area: SharedBytes<'_>,
        region: &Range<usize>,
        writes: &[(usize, usize)],
    ) -> Result<(), EditRefused> {
        let mut total = 0;
        for &(off, len) in writes {
            if off < region.start || off.saturating_add(len) > region.end {
                return Err(EditRefused::OutsideRegion);
            }
            total += len;
        }
        if total != self.bytes.len() {
            return Err(EditRefused::Unplanned);
        }
        self.writes.clear();
        self.writes.extend_from_slice(writes);
        self.area = Some(area.offset());
        Ok(())
    }

    /// The value area's offset of the edit recorded, if any.
    pub fn area(&self) -> Option<usize> {
        self.area
    }

    /// Forgets the edit (its buffers are cleared by the next `record`).
    pub fn clear(&mut self) {
        self.area = None;
    }

    /// Stores the recorded writes in order and forgets them. The caller
    /// holds the home lock of the item's key, at the version the edit was
    /// recorded under, so no one else writes these bytes.
    pub fn store(&mut self, region: &Region) {
        let Some(area) = self.area else {
            return;
        };
        let mut from = 0;
        for (n, &(off, len)) in self.writes.iter().enumerate() {
            if n > 0 {
                // ORDERING: Release keeps every earlier write's stores before
                // this one's (the compiler may not sink them past it): a kill
                // -9 leaves a program-order prefix, so a last write that
                // switches descriptors publishes only complete bytes. Readers
                // are ordered by the home lock's seqlock, not by this.
                fence(Ordering::Release);
            }
            region.store_bytes(area + off, &self.bytes[from..from + len]);
            from += len;
        }
        self.clear();
    }
}

/// An edit in place of one key's live item planned from its bytes as
/// stored (`CacheHandle::edit_in_place`, `Changes::plan_edit`): the
/// planner writes the edit's bytes straight into the writer's pending
/// edit and names where they go.
pub struct InPlaceEdit<'w> {
    edit: &'w mut PendingEdit,
}

impl InPlaceEdit<'_> {
    /// The buffer to plan the writes' bytes into (empty when the closure
    /// starts): each write's bytes after the previous one's, in store
    /// order.
    pub fn buffer(&mut self) -> &mut Vec<u8> {
        &mut self.edit.bytes
    }

    /// Records the writes (offset in `item`'s value, length) whose bytes
    /// `buffer` holds, in store order, as `Changes::edit` does its
    /// writes: refused (nothing recorded) when `item` is not editable or
    /// a write leaves its region.
    pub fn record(
        &mut self,
        item: &ItemRef<'_>,
        writes: &[(usize, usize)],
    ) -> Result<(), EditRefused> {
        let (Some(area), Some(region)) = (item.contiguous(), item.editable_region()) else {
            return Err(EditRefused::NotEditable);
        };
        self.edit.record_planned(area, &region, writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trailer(start: u32, end: u32) -> [u8; EDIT_TRAILER] {
        let mut t = [0u8; EDIT_TRAILER];
        t[..4].copy_from_slice(&start.to_le_bytes());
        t[4..].copy_from_slice(&end.to_le_bytes());
        t
    }

    #[test]
    fn a_region_is_interior_or_none() {
        assert_eq!(region_of(trailer(8, 40), 48), Some(8..40));
        assert_eq!(region_of(trailer(8, 8), 16), Some(8..8));
        // Into the trailer, before the guard, reversed, past the end.
        assert_eq!(region_of(trailer(8, 41), 48), None);
        assert_eq!(region_of(trailer(7, 40), 48), None);
        assert_eq!(region_of(trailer(20, 10), 48), None);
        assert_eq!(region_of(trailer(u32::MAX, u32::MAX), 48), None);
        // A sampled-check size is never editable.
        let big = SAMPLED_CHECK_MIN;
        assert_eq!(region_of(trailer(8, 16), big), None);
    }
}
