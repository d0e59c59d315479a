//! The editable root layout: a paged list's root whose counts and inline
//! elements change in place (a push or pop inside its end's buffer,
//! `end_edit.rs`) instead of by a new root item.
//!
//! ```text
//! root:   RootHeader | 0:u64 | capacity:u32 | head_slot:u32 | tail_slot:u32
//!         | u32::MAX | region | region start:u32 | region end:u32
//! region: selector:u8 | descriptor x 2 | head slot | tail slot
//! descriptor: version:u64 | len:u64 | head_len:u32 | tail_len:u32
//!         | head_front:u32 | tail_front:u32
//! ```
//!
//! The region is the item's editable region (the engine's `F_EDIT` items:
//! the trailer names it, the item's check leaves it out). The selector (0
//! or 1) names the descriptor in force: the list's length, its version
//! (moved by every write, an edit or a new root: the header's version is
//! a new root's only), each end's count and front. Each slot holds its
//! end's elements, length-prefixed without a packed header, from its
//! front to the slot's end, the list's end element first (the head
//! slot's first is the list's first, the tail slot's first its last). A
//! push writes its elements below the front (bytes the descriptor in
//! force does not name), a pop only moves the front up; then the unused
//! descriptor is written and, last, the selector byte. A kill -9 leaves
//! a prefix of those stores (the engine stores them in order): before the
//! selector's store the old list, every byte its descriptor names
//! untouched; after it the new one. A push that does not fit below its
//! front, a spill and a refill write a new root, which recentres the
//! slots with room for a page's worth at each end ([`rooms`]).

use super::{half, word, Inline, ListRoot, FIXED_LEN};
use crate::packed::{Corrupt, Packed};
use crate::paged::{RootHeader, ROOT_HEADER_LEN};

/// `head_bytes` of the fixed part that marks this layout.
pub(in crate::list::paged) const MARKER: u32 = u32::MAX;
/// Offset in the root of the editable region, which starts with the
/// selector.
pub(in crate::list::paged) const SELECTOR_AT: usize = ROOT_HEADER_LEN + FIXED_LEN;
pub(in crate::list::paged) const DESCRIPTOR_LEN: usize = 32;
const DESCRIPTORS_AT: usize = SELECTOR_AT + 1;
pub(in crate::list::paged) const SLOTS_AT: usize = DESCRIPTORS_AT + 2 * DESCRIPTOR_LEN;
/// Bytes of the trailer naming the region (the engine's `EDIT_TRAILER`).
const TRAILER_LEN: usize = 8;
/// Most free bytes a new root leaves below a slot's front (a root is
/// copied and hashed whole when it is rewritten): a page's worth, so an
/// end pushed onto is rewritten once per page, at its spill.
const MAX_ROOM: usize = super::super::PAGE_BYTES;
/// A new root's room at each end is at most this share of the list's
/// bytes, and at least [`MIN_ROOM`].
const ROOM_SHARE: usize = 4;
const MIN_ROOM: usize = 64;
/// Bytes per element a slot's room assumes when the list holds no
/// inline elements to measure.
const DEFAULT_COST: usize = 16;

/// What `matches_plan` compares along with the root's stamp, since an
/// edit changes it and not the stamp: the selector, descriptor 0 and the
/// low 7 bytes of descriptor 1's version (every write moves the version
/// of the descriptor it selects), 40 bytes: one read of whole words.
pub const EDIT_STATE: std::ops::Range<usize> = SELECTOR_AT..SELECTOR_AT + 40;

/// Whether `root` (a paged root's bytes) is in this layout.
pub fn is_editable_layout(root: &[u8]) -> bool {
    root.len() >= SLOTS_AT && half(root, ROOT_HEADER_LEN + 20) == MARKER
}

/// The counts of one state of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::list::paged) struct Descriptor {
    pub len: u64,
    pub version: u64,
    /// Elements inline at the head and at the tail.
    pub held: [u32; 2],
    /// Where each end's elements start in its slot.
    pub fronts: [u32; 2],
}

impl Descriptor {
    fn read(bytes: &[u8], at: usize) -> Descriptor {
        Descriptor {
            version: word(bytes, at),
            len: word(bytes, at + 8),
            held: [half(bytes, at + 16), half(bytes, at + 20)],
            fronts: [half(bytes, at + 24), half(bytes, at + 28)],
        }
    }

    pub fn encode(&self) -> [u8; DESCRIPTOR_LEN] {
        let mut d = [0u8; DESCRIPTOR_LEN];
        d[..8].copy_from_slice(&self.version.to_le_bytes());
        d[8..16].copy_from_slice(&self.len.to_le_bytes());
        for side in 0..2 {
            let (held, front) = (16 + 4 * side, 24 + 4 * side);
            d[held..held + 4].copy_from_slice(&self.held[side].to_le_bytes());
            d[front..front + 4].copy_from_slice(&self.fronts[side].to_le_bytes());
        }
        d
    }
}

/// An editable root's slots and the descriptor in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    pub(in crate::list::paged) selector: u8,
    pub(in crate::list::paged) descriptor: Descriptor,
    slot_lens: [u32; 2],
}

impl Slots {
    /// Offset in the root of slot `side` (0 head, 1 tail).
    pub(in crate::list::paged) fn slot_start(&self, side: usize) -> usize {
        SLOTS_AT
            + if side == 0 {
                0
            } else {
                self.slot_lens[0] as usize
            }
    }

    /// The inline elements (head, tail) these slots hold in `bytes`, the
    /// root they were parsed from (bounds-checked: another root's bytes
    /// read as corrupt or as other elements, never out of bounds).
    pub(in crate::list::paged) fn inline<'a>(
        &self,
        bytes: &'a [u8],
    ) -> Result<Inline<'a>, Corrupt> {
        let d = &self.descriptor;
        let view = |side: usize| {
            let (front, held) = (d.fronts[side] as usize, d.held[side] as usize);
            let start = self.slot_start(side);
            bytes
                .get(start + front..start + self.slot_lens[side] as usize)
                .filter(|body| held <= body.len())
                .map(|body| Packed::from_body(body, held))
                .ok_or(Corrupt)
        };
        Ok([view(0)?, view(1)?])
    }

    /// Bytes of each end's elements (head, tail): from its front to its
    /// slot's end.
    pub(in crate::list::paged) fn body_lens(&self) -> [usize; 2] {
        let d = &self.descriptor;
        [0, 1].map(|side| self.slot_lens[side].saturating_sub(d.fronts[side]) as usize)
    }

    /// Offset in the root of the descriptor not in force.
    pub(in crate::list::paged) fn unused_at(&self) -> usize {
        DESCRIPTORS_AT + usize::from(1 - self.selector) * DESCRIPTOR_LEN
    }
}

/// Parses a root in this layout (`bytes`, whose fixed part carries the
/// marker): its counts from the descriptor in force (the header's version
/// replaced by the descriptor's) and its inline elements.
pub(in crate::list::paged) fn parse(
    header: RootHeader,
    bytes: &[u8],
) -> Result<(ListRoot, Inline<'_>), Corrupt> {
    let (root, slots) = parse_head(header, bytes, bytes.len())?;
    let inline = slots.inline(bytes)?;
    Ok((root, inline))
}

/// [`parse`] from the root's first [`SLOTS_AT`] bytes (`head`; more are
/// ignored) and its value's length `len`, without its inline elements:
/// every check `parse` makes of the counts and slots (each end's front and
/// count inside its slot), none of the elements' bytes (an end edit reads
/// those it pops).
pub(in crate::list::paged) fn parse_head(
    mut header: RootHeader,
    head: &[u8],
    len: usize,
) -> Result<(ListRoot, Slots), Corrupt> {
    if head.len() < SLOTS_AT {
        return Err(Corrupt);
    }
    let rest = &head[ROOT_HEADER_LEN..];
    let slot_lens = [half(rest, 12), half(rest, 16)];
    let region_end = SLOTS_AT + slot_lens[0] as usize + slot_lens[1] as usize;
    let selector = head[SELECTOR_AT];
    if len != region_end + TRAILER_LEN || selector > 1 {
        return Err(Corrupt);
    }
    let descriptor = Descriptor::read(
        head,
        DESCRIPTORS_AT + usize::from(selector) * DESCRIPTOR_LEN,
    );
    let d = &descriptor;
    // (What `Slots::inline` finds in the bytes: each front inside its
    // slot, no more elements than bytes after it.)
    let fits = |side: usize| {
        slot_lens[side]
            .checked_sub(d.fronts[side])
            .is_some_and(|body| d.held[side] <= body)
    };
    if !(fits(0) && fits(1)) {
        return Err(Corrupt);
    }
    let slots = Slots {
        selector,
        descriptor,
        slot_lens,
    };
    header.version = descriptor.version;
    let root = ListRoot {
        header,
        len: descriptor.len,
        capacity: half(rest, 8),
        head_len: descriptor.held[0],
        tail_len: descriptor.held[1],
        legacy: [None, None],
        slots: Some(slots),
    };
    root.check_counts()?;
    Ok((root, slots))
}

/// Free bytes a new root leaves below each slot's front: room for the
/// rest of a page's worth of elements of the inline elements' average
/// size, at most [`MAX_ROOM`] and at most a [`ROOM_SHARE`]th of the
/// list's bytes (estimated from its length), so a short paged list
/// keeps little unused: its room grows with it, each new root's by a
/// share of the length (amortised O(1) root writes a push). That at an
/// end the edit did not push onto (`pushed`) when the old root had room
/// there: at most half what was left unused if the edit pushed at the
/// other end, else (a pop's refill, LSET, LTRIM) at most what was left
/// unused ([`MIN_ROOM`] at least either way), so the far end of a list
/// pushed at one end only (a queue, a log) stops costing a page's worth
/// of bytes in every root written, copied and hashed, while a queue's
/// refills at its popping end leave its pushing end's room alone; a
/// push at an end later rewrites the root with its full room.
fn rooms(
    capacity: u32,
    len: u64,
    inline: &Inline<'_>,
    pushed: [bool; 2],
    unused: Option<[usize; 2]>,
) -> [usize; 2] {
    let count = inline[0].len() + inline[1].len();
    let bytes = inline[0].body_len() + inline[1].body_len();
    let per_element = match count {
        0 => DEFAULT_COST,
        n => bytes.div_ceil(n),
    };
    let list_bytes = usize::try_from(len)
        .unwrap_or(usize::MAX)
        .saturating_mul(per_element);
    let most = (list_bytes / ROOM_SHARE).clamp(MIN_ROOM, MAX_ROOM);
    let room = |side: usize| {
        let full = (capacity as usize)
            .saturating_sub(inline[side].len())
            .saturating_mul(per_element)
            .min(most);
        match unused {
            Some(unused) if !pushed[side] && pushed[1 - side] => {
                full.min((unused[side] / 2).max(MIN_ROOM))
            }
            Some(unused) if !pushed[side] => full.min(unused[side].max(MIN_ROOM)),
            _ => full,
        }
    };
    [room(0), room(1)]
}

/// Writes `root` (its header, length and capacity; version: the header's)
/// with `inline` (head, tail) in this layout into `out` (cleared): the
/// counts in descriptor 0, each slot with room below its front.
pub(in crate::list::paged) fn write(
    root: &ListRoot,
    inline: &Inline<'_>,
    pushed: [bool; 2],
    out: &mut Vec<u8>,
) {
    // The old root's room left at each end: the bytes below its fronts.
    let unused = (root.slots.as_ref()).map(|s| s.descriptor.fronts.map(|f| f as usize));
    let rooms = rooms(root.capacity, root.len, inline, pushed, unused);
    let bodies = [inline[0].body(), inline[1].body()];
    let slot_lens = [rooms[0] + bodies[0].len(), rooms[1] + bodies[1].len()];
    let region_end = SLOTS_AT + slot_lens[0] + slot_lens[1];
    out.clear();
    out.reserve(region_end + TRAILER_LEN);
    let mut fixed = [0u8; SLOTS_AT];
    root.header.write_to(&mut fixed);
    let rest = &mut fixed[ROOT_HEADER_LEN..];
    rest[8..12].copy_from_slice(&root.capacity.to_le_bytes());
    rest[12..16].copy_from_slice(&(slot_lens[0] as u32).to_le_bytes());
    rest[16..20].copy_from_slice(&(slot_lens[1] as u32).to_le_bytes());
    rest[20..24].copy_from_slice(&MARKER.to_le_bytes());
    let descriptor = Descriptor {
        len: root.len,
        version: root.header.version,
        held: [inline[0].len() as u32, inline[1].len() as u32],
        fronts: [rooms[0] as u32, rooms[1] as u32],
    };
    fixed[DESCRIPTORS_AT..DESCRIPTORS_AT + DESCRIPTOR_LEN].copy_from_slice(&descriptor.encode());
    out.extend_from_slice(&fixed);
    for (room, body) in rooms.into_iter().zip(bodies) {
        out.resize(out.len() + room, 0);
        out.extend_from_slice(body);
    }
    out.extend_from_slice(&(SELECTOR_AT as u32).to_le_bytes());
    out.extend_from_slice(&(region_end as u32).to_le_bytes());
}
