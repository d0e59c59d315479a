//! A push or pop that stays inside its end's slot of an editable root
//! (`slots.rs`; the common one: no page spilled or refilled, the list
//! stays paged, a push fits the free bytes below its front) is an edit of
//! the stored root in place: [`EndEdit`] lists its writes (the pushed
//! elements below the front, the unused descriptor, the selector byte),
//! which the caller stores through the engine's in-place edit and applies
//! to its copy of the root. Any other push or pop (a spill, a refill, a
//! root of an earlier layout, a list going back to the packed form or
//! emptied) answers None and takes the general edit
//! ([`ListEdit`](super::ListEdit)), which writes a new root.

use std::ops::{Deref, Range};

use super::root::slots::{Descriptor, Slots, DESCRIPTOR_LEN, SELECTOR_AT};
use super::root::ListRoot;
use super::{End, ListLimit};
use crate::packed::{packed_header_len, Corrupt, Packed, PackedWriter};

/// Writes of an edit, in store order.
const MOST_WRITES: usize = 3;

/// The writes of an in-place push or pop of an editable root: the
/// pushed elements below the front (a push), the unused descriptor, the
/// selector byte. The bytes of the first two are in the buffer the edit
/// was planned into, in that order (`pushed` bytes, then the descriptor).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndEdit {
    /// The list's length after the edit.
    pub len: u64,
    /// Offset in the root of the pushed elements, and their bytes (0: a pop).
    pushed_at: u32,
    pushed: u32,
    /// Offset in the root of the descriptor written.
    descriptor_at: u32,
    /// The selector's new value (the last write).
    selector: [u8; 1],
    /// A pop's elements: their bytes in the stored root, and how many.
    popped: (u32, u32, u32),
}

/// An edit's writes as `(offset in the root, bytes)`, in store order.
pub struct Writes<'b> {
    writes: [(usize, &'b [u8]); MOST_WRITES],
    /// The first write (1 for a pop: no elements written).
    from: usize,
}

impl<'b> Deref for Writes<'b> {
    type Target = [(usize, &'b [u8])];

    fn deref(&self) -> &Self::Target {
        &self.writes[self.from..]
    }
}

impl EndEdit {
    /// The writes, with `bytes` the buffer the edit was planned into
    /// (out of range, they are empty: the engine and `apply_to` then
    /// write nothing wrong, and the planner never hands such a buffer).
    pub fn writes<'b>(&'b self, bytes: &'b [u8]) -> Writes<'b> {
        let pushed = self.pushed as usize;
        let descriptor = pushed..pushed + DESCRIPTOR_LEN;
        Writes {
            writes: [
                (
                    self.pushed_at as usize,
                    bytes.get(..pushed).unwrap_or_default(),
                ),
                (
                    self.descriptor_at as usize,
                    bytes.get(descriptor).unwrap_or_default(),
                ),
                (SELECTOR_AT, &self.selector),
            ],
            from: usize::from(pushed == 0),
        }
    }

    /// Applies the writes to `root`, a copy of the stored root (`bytes`:
    /// the buffer the edit was planned into).
    pub fn apply_to(&self, root: &mut [u8], bytes: &[u8]) -> Result<(), Corrupt> {
        let pushed = self.pushed as usize;
        let descriptor = bytes.get(pushed..pushed + DESCRIPTOR_LEN).ok_or(Corrupt)?;
        let mut put = |at: u32, written: &[u8]| {
            let at = at as usize;
            let to = root.get_mut(at..at + written.len()).ok_or(Corrupt)?;
            to.copy_from_slice(written);
            Ok(())
        };
        put(self.pushed_at, &bytes[..pushed])?;
        put(self.descriptor_at, descriptor)?;
        root.get_mut(SELECTOR_AT)
            .map(|s| *s = self.selector[0])
            .ok_or(Corrupt)
    }

    /// A pop's elements in pop order, read from the stored root (none for
    /// a push).
    pub fn popped<'r>(
        &self,
        stored: &'r [u8],
    ) -> impl Iterator<Item = Result<&'r [u8], Corrupt>> + 'r {
        let (start, len, count) = self.popped;
        let range = start as usize..start as usize + len as usize;
        // (Out of range, the empty body reads as corrupt.)
        Packed::from_body(stored.get(range).unwrap_or_default(), count as usize).iter()
    }
}

fn side(end: End) -> usize {
    match end {
        End::Head => 0,
        End::Tail => 1,
    }
}

/// What an edit in the root reads of an editable-layout root's parse
/// ([`ListRoot::editable`]): a command keeps it from its plan's parse
/// (small and `Copy`: cheaper to keep than the whole [`ListRoot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditableRoot {
    capacity: u32,
    page_count: u64,
    slots: Slots,
}

impl ListRoot {
    /// What an edit in the root needs of this root; None for a root of
    /// an earlier layout.
    pub fn editable(&self) -> Option<EditableRoot> {
        Some(EditableRoot {
            capacity: self.capacity,
            page_count: self.page_count(),
            slots: self.slots?,
        })
    }
}

/// An editable root's counts, slots and inline elements (head, tail:
/// either end of the list is its slot's front).
struct Parts<'a> {
    root: EditableRoot,
    inline: [Packed<'a>; 2],
}

impl<'a> Parts<'a> {
    /// `root` parsed from `stored` (by the caller, or here); None: a root
    /// of an earlier layout.
    fn of(stored: &'a [u8], root: Option<EditableRoot>) -> Result<Option<Parts<'a>>, Corrupt> {
        let root = match root {
            Some(root) => root,
            None => match ListRoot::parse(stored)?.editable() {
                Some(root) => root,
                None => return Ok(None),
            },
        };
        let inline = root.slots.inline(stored)?;
        Ok(Some(Parts { root, inline }))
    }

    /// Whether the list with counts `d` and inline bodies of `bodies`
    /// bytes is stored as a root again, as `ListEdit::finish_in` decides:
    /// a list emptied, or without pages and small enough to go back to
    /// the packed form, is not.
    fn stays_paged(&self, d: &Descriptor, bodies: [usize; 2], limit: ListLimit) -> bool {
        let inline_bytes: usize = (0..2)
            .map(|s| packed_header_len(u64::from(d.held[s])) + bodies[s])
            .sum();
        let len = d.len as usize;
        len > 0 && !(self.root.page_count == 0 && limit.fits(len * 2, inline_bytes * 2))
    }

    /// The edit to state `d`: `pushed` (offset in the root, length) the
    /// bytes already in `out`, then the descriptor, then the selector.
    fn edit(
        &self,
        d: Descriptor,
        (pushed_at, pushed): (usize, usize),
        popped: (Range<usize>, usize),
        out: &mut Vec<u8>,
    ) -> EndEdit {
        debug_assert_eq!(out.len(), pushed);
        out.extend_from_slice(&d.encode());
        // (A root is under 4 GiB: its length is a u32 in its fixed part.)
        EndEdit {
            len: d.len,
            pushed_at: pushed_at as u32,
            pushed: pushed as u32,
            descriptor_at: self.root.slots.unused_at() as u32,
            // The last store, one byte (one word store wherever it lies: a
            // kill -9 leaves the old selector or the new one).
            selector: [1 - self.root.slots.selector],
            popped: (
                popped.0.start as u32,
                popped.0.len() as u32,
                popped.1 as u32,
            ),
        }
    }
}

/// Pushes `elements` one by one at `end` of the paged list whose root is
/// `stored`, as an in-place edit planned into `out`. None (`out`
/// unspecified): the push spills a page or does not fit below its
/// slot's front, or the root is of an earlier layout, or `elements` is
/// empty: use `ListEdit`. `parsed`: `stored` parsed already (the
/// command's plan parsed it: [`ListRoot::editable`]), or None.
pub fn push_root(
    stored: &[u8],
    parsed: Option<EditableRoot>,
    end: End,
    elements: &[&[u8]],
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Result<Option<EndEdit>, Corrupt> {
    let Some(parts) = Parts::of(stored, parsed)? else {
        return Ok(None);
    };
    let s = side(end);
    let mut d = parts.root.slots.descriptor;
    let room = parts.root.capacity - d.held[s];
    if elements.is_empty() || elements.len() > room as usize {
        return Ok(None);
    }
    let added: usize = elements
        .iter()
        .map(|e| PackedWriter::element_cost(e.len()))
        .sum();
    let front = d.fronts[s] as usize;
    if added > front {
        return Ok(None);
    }
    d.held[s] += elements.len() as u32;
    d.len += elements.len() as u64;
    d.fronts[s] = (front - added) as u32;
    d.version = d.version.wrapping_add(1);
    let mut bodies = parts.inline.map(|p| p.body_len());
    bodies[s] += added;
    if !parts.stays_paged(&d, bodies, limit) {
        return Ok(None);
    }
    out.clear();
    // Pushed one by one: the last one is the new front.
    for element in elements.iter().rev() {
        PackedWriter::put_element(out, element);
    }
    let at = parts.root.slots.slot_start(s) + front - added;
    Ok(Some(parts.edit(d, (at, added), (0..0, 0), out)))
}

/// Takes `count` elements off `end` of the paged list whose root is
/// `stored`, as an in-place edit planned into `out` (the elements, in pop
/// order: [`EndEdit::popped`]). None (`out` unspecified): the pop needs
/// more than the slot at `end` holds (a refill), or empties the list or
/// sends it back to the packed form, or the root is of an earlier
/// layout, or `count` is 0: use `ListEdit`. `parsed` as for
/// [`push_root`].
pub fn pop_root(
    stored: &[u8],
    parsed: Option<EditableRoot>,
    end: End,
    count: u64,
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Result<Option<EndEdit>, Corrupt> {
    let Some(parts) = Parts::of(stored, parsed)? else {
        return Ok(None);
    };
    let s = side(end);
    let mut d = parts.root.slots.descriptor;
    if count == 0 || count > u64::from(d.held[s]) {
        return Ok(None);
    }
    let cut = parts.inline[s].offset_of(count as usize)?;
    let front = d.fronts[s] as usize;
    d.held[s] -= count as u32;
    d.len -= count;
    d.fronts[s] = (front + cut) as u32;
    d.version = d.version.wrapping_add(1);
    let mut bodies = parts.inline.map(|p| p.body_len());
    bodies[s] -= cut;
    if !parts.stays_paged(&d, bodies, limit) {
        return Ok(None);
    }
    out.clear();
    let start = parts.root.slots.slot_start(s) + front;
    Ok(Some(parts.edit(
        d,
        (0, 0),
        (start..start + cut, count as usize),
        out,
    )))
}
