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

use super::root::slots::{self, Descriptor, Slots, DESCRIPTOR_LEN, SELECTOR_AT, SLOTS_AT};
use super::root::{half, ListRoot, FIXED_LEN};
use super::{End, ListLimit};
use crate::packed::{packed_header_len, Corrupt, Packed, PackedWriter};
use crate::paged::RootHeader;

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

/// An edit's writes as `(offset in the root, length)`, in store order
/// ([`EndEdit::spans`]).
pub struct Spans {
    spans: [(usize, usize); MOST_WRITES],
    /// The first write (1 for a pop: no elements written).
    from: usize,
}

impl Deref for Spans {
    type Target = [(usize, usize)];

    fn deref(&self) -> &Self::Target {
        &self.spans[self.from..]
    }
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

    /// The writes as `(offset in the root, length)`, in store order, for
    /// an engine that stores them from the buffer the edit was planned
    /// into: once [`EndEdit::append_selector`] has put the selector after
    /// the descriptor there, the writes' bytes are that buffer's, one
    /// after the other, with nothing copied.
    pub fn spans(&self) -> Spans {
        let pushed = self.pushed as usize;
        Spans {
            spans: [
                (self.pushed_at as usize, pushed),
                (self.descriptor_at as usize, DESCRIPTOR_LEN),
                (SELECTOR_AT, 1),
            ],
            from: usize::from(pushed == 0),
        }
    }

    /// Appends the selector's new value to `out`, the buffer the edit was
    /// planned into (see [`EndEdit::spans`]).
    pub fn append_selector(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.selector);
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

impl EndEdit {
    /// [`EndEdit::popped`] of an edit planned from the root's head
    /// ([`pop_front`]): read from `front`, the bytes it was planned from.
    pub fn popped_front<'r>(
        &self,
        front: &'r [u8],
    ) -> impl Iterator<Item = Result<&'r [u8], Corrupt>> + 'r {
        let (_, len, count) = self.popped;
        Packed::from_body(
            front.get(..len as usize).unwrap_or_default(),
            count as usize,
        )
        .iter()
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

/// Bytes of a list root's head: what [`EditableRoot::from_head`] reads.
pub const ROOT_HEAD_LEN: usize = SLOTS_AT;

impl EditableRoot {
    /// An editable-layout root read from its first [`ROOT_HEAD_LEN`] bytes
    /// (`head`) and its value's length `len`: every check a whole parse
    /// makes but of the inline elements' bytes (a push writes below its
    /// front without reading them; a pop reads what it takes,
    /// [`pop_front`]). None: a root of an earlier layout.
    pub fn from_head(head: &[u8], len: usize) -> Result<Option<EditableRoot>, Corrupt> {
        let (header, rest) = RootHeader::parse(head)?;
        if rest.len() < FIXED_LEN || half(rest, 20) != slots::MARKER {
            return Ok(None);
        }
        let (root, _) = slots::parse_head(header, head, len)?;
        Ok(root.editable())
    }

    /// Where `end`'s inline elements lie in the root (its front to its
    /// slot's end).
    pub fn front(&self, end: End) -> Range<usize> {
        let s = side(end);
        let at = self.slots.slot_start(s) + self.slots.descriptor.fronts[s] as usize;
        at..at + self.slots.body_lens()[s]
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
        len > 0 && !(self.page_count == 0 && limit.fits(len * 2, inline_bytes * 2))
    }
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

impl EditableRoot {
    /// `stored` parsed (by the caller, or here); None: a root of an
    /// earlier layout.
    fn of(stored: &[u8], parsed: Option<EditableRoot>) -> Result<Option<EditableRoot>, Corrupt> {
        match parsed {
            Some(root) => Ok(Some(root)),
            None => Ok(ListRoot::parse(stored)?.editable()),
        }
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
            descriptor_at: self.slots.unused_at() as u32,
            // The last store, one byte (one word store wherever it lies: a
            // kill -9 leaves the old selector or the new one).
            selector: [1 - self.slots.selector],
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
    let Some(root) = EditableRoot::of(stored, parsed)? else {
        return Ok(None);
    };
    // (The whole parse checked the inline elements' bytes too.)
    Ok(push_head(&root, end, elements, limit, out))
}

/// [`push_root`] planned from the root's head alone
/// ([`EditableRoot::from_head`]): a push reads none of the inline
/// elements, it writes below its end's front.
pub fn push_head(
    root: &EditableRoot,
    end: End,
    elements: &[&[u8]],
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Option<EndEdit> {
    let s = side(end);
    let mut d = root.slots.descriptor;
    let room = root.capacity - d.held[s];
    if elements.is_empty() || elements.len() > room as usize {
        return None;
    }
    let added: usize = elements
        .iter()
        .map(|e| PackedWriter::element_cost(e.len()))
        .sum();
    let front = d.fronts[s] as usize;
    if added > front {
        return None;
    }
    d.held[s] += elements.len() as u32;
    d.len += elements.len() as u64;
    d.fronts[s] = (front - added) as u32;
    d.version = d.version.wrapping_add(1);
    let mut bodies = root.slots.body_lens();
    bodies[s] += added;
    if !root.stays_paged(&d, bodies, limit) {
        return None;
    }
    out.clear();
    // Pushed one by one: the last one is the new front.
    for element in elements.iter().rev() {
        PackedWriter::put_element(out, element);
    }
    let at = root.slots.slot_start(s) + front - added;
    Some(root.edit(d, (at, added), (0..0, 0), out))
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
    let Some(root) = EditableRoot::of(stored, parsed)? else {
        return Ok(None);
    };
    let at = root.front(end);
    let front = stored.get(at.clone()).ok_or(Corrupt)?;
    let edit = pop_front(&root, end, count, front, limit, out)?;
    // The popped elements' offsets in the root, not in `front`.
    Ok(edit.map(|edit| EndEdit {
        popped: (
            at.start as u32 + edit.popped.0,
            edit.popped.1,
            edit.popped.2,
        ),
        ..edit
    }))
}

/// [`pop_root`] planned from the root's head ([`EditableRoot::from_head`])
/// and `front`: the bytes of `end`'s inline elements from its front on
/// ([`EditableRoot::front`]), at least the popped ones (cut shorter, the
/// pop is `Corrupt`). The popped elements are read from `front`
/// ([`EndEdit::popped_front`]).
pub fn pop_front(
    root: &EditableRoot,
    end: End,
    count: u64,
    front: &[u8],
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Result<Option<EndEdit>, Corrupt> {
    let s = side(end);
    let mut d = root.slots.descriptor;
    if count == 0 || count > u64::from(d.held[s]) {
        return Ok(None);
    }
    let cut = Packed::from_body(front, d.held[s] as usize).offset_of(count as usize)?;
    let at = d.fronts[s] as usize;
    let mut bodies = root.slots.body_lens();
    bodies[s] = bodies[s].checked_sub(cut).ok_or(Corrupt)?;
    d.held[s] -= count as u32;
    d.len -= count;
    d.fronts[s] = (at + cut) as u32;
    d.version = d.version.wrapping_add(1);
    if !root.stays_paged(&d, bodies, limit) {
        return Ok(None);
    }
    out.clear();
    Ok(Some(root.edit(d, (0, 0), (0..cut, count as usize), out)))
}
