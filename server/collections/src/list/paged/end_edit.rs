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

use super::root::slots::{Descriptor, Slots, SELECTOR_AT};
use super::root::ListRoot;
use super::{End, ListLimit};
use crate::packed::{packed_header_len, Corrupt, Packed, PackedWriter};

/// Writes of an edit, in store order.
const MOST_WRITES: usize = 3;

/// The writes of an in-place push or pop of an editable root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndEdit {
    /// The list's length after the edit.
    pub len: u64,
    /// (offset in the root, range of the edit's bytes), in store order.
    writes: [(usize, Range<usize>); MOST_WRITES],
    count: usize,
    /// A pop's elements: their bytes in the stored root, and how many.
    popped: (Range<usize>, usize),
}

/// An edit's writes as `(offset in the root, bytes)`, in store order.
pub struct Writes<'b> {
    writes: [(usize, &'b [u8]); MOST_WRITES],
    count: usize,
}

impl<'b> Deref for Writes<'b> {
    type Target = [(usize, &'b [u8])];

    fn deref(&self) -> &Self::Target {
        &self.writes[..self.count]
    }
}

impl EndEdit {
    /// The writes, with `bytes` the buffer the edit was planned into.
    pub fn writes<'b>(&self, bytes: &'b [u8]) -> Writes<'b> {
        let mut writes = [(0, &bytes[..0]); MOST_WRITES];
        for (to, (at, range)) in writes.iter_mut().zip(&self.writes[..self.count]) {
            *to = (*at, &bytes[range.clone()]);
        }
        Writes {
            writes,
            count: self.count,
        }
    }

    /// Applies the writes to `root`, a copy of the stored root (`bytes`:
    /// the buffer the edit was planned into).
    pub fn apply_to(&self, root: &mut [u8], bytes: &[u8]) -> Result<(), Corrupt> {
        for (at, range) in &self.writes[..self.count] {
            let written = bytes.get(range.clone()).ok_or(Corrupt)?;
            let to = root.get_mut(*at..*at + written.len()).ok_or(Corrupt)?;
            to.copy_from_slice(written);
        }
        Ok(())
    }

    /// A pop's elements in pop order, read from the stored root (none for
    /// a push).
    pub fn popped<'r>(
        &self,
        stored: &'r [u8],
    ) -> impl Iterator<Item = Result<&'r [u8], Corrupt>> + 'r {
        let (range, count) = self.popped.clone();
        // (Out of range, the empty body reads as corrupt.)
        Packed::from_body(stored.get(range).unwrap_or_default(), count).iter()
    }
}

fn side(end: End) -> usize {
    match end {
        End::Head => 0,
        End::Tail => 1,
    }
}

/// An editable root's counts, slots and inline elements (head, tail:
/// either end of the list is its slot's front).
struct Parts<'a> {
    root: ListRoot,
    slots: Slots,
    inline: [Packed<'a>; 2],
}

impl<'a> Parts<'a> {
    /// None: a root of an earlier layout.
    fn parse(stored: &'a [u8]) -> Result<Option<Parts<'a>>, Corrupt> {
        let (root, Some(inline)) = ListRoot::parse_with_inline(stored)? else {
            return Ok(None);
        };
        Ok(root.slots.map(|slots| Parts {
            root,
            slots,
            inline,
        }))
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
        len > 0 && !(self.root.page_count() == 0 && limit.fits(len * 2, inline_bytes * 2))
    }

    /// The edit to state `d`: `pushed` (offset in the root, length) the
    /// bytes already in `out`, then the descriptor and the selector.
    fn edit(
        &self,
        d: Descriptor,
        pushed: Option<(usize, usize)>,
        popped: (Range<usize>, usize),
        out: &mut Vec<u8>,
    ) -> EndEdit {
        let mut writes: [(usize, Range<usize>); MOST_WRITES] = Default::default();
        let mut count = 0;
        if let Some((at, len)) = pushed {
            writes[0] = (at, 0..len);
            count = 1;
        }
        let from = out.len();
        out.extend_from_slice(&d.encode());
        writes[count] = (self.slots.unused_at(), from..out.len());
        // The last store, one byte (one word store wherever it lies: a
        // kill -9 leaves the old selector or the new one).
        out.push(1 - self.slots.selector);
        writes[count + 1] = (SELECTOR_AT, out.len() - 1..out.len());
        EndEdit {
            len: d.len,
            writes,
            count: count + 2,
            popped,
        }
    }
}

/// Pushes `elements` one by one at `end` of the paged list whose root is
/// `stored`, as an in-place edit planned into `out`. None (`out`
/// unspecified): the push spills a page or does not fit below its
/// slot's front, or the root is of an earlier layout, or `elements` is
/// empty: use `ListEdit`.
pub fn push_root(
    stored: &[u8],
    end: End,
    elements: &[&[u8]],
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Result<Option<EndEdit>, Corrupt> {
    let Some(parts) = Parts::parse(stored)? else {
        return Ok(None);
    };
    let s = side(end);
    let mut d = parts.slots.descriptor;
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
    let at = parts.slots.slot_start(s) + front - added;
    Ok(Some(parts.edit(d, Some((at, added)), (0..0, 0), out)))
}

/// Takes `count` elements off `end` of the paged list whose root is
/// `stored`, as an in-place edit planned into `out` (the elements, in pop
/// order: [`EndEdit::popped`]). None (`out` unspecified): the pop needs
/// more than the slot at `end` holds (a refill), or empties the list or
/// sends it back to the packed form, or the root is of an earlier
/// layout, or `count` is 0: use `ListEdit`.
pub fn pop_root(
    stored: &[u8],
    end: End,
    count: u64,
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Result<Option<EndEdit>, Corrupt> {
    let Some(parts) = Parts::parse(stored)? else {
        return Ok(None);
    };
    let s = side(end);
    let mut d = parts.slots.descriptor;
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
    let start = parts.slots.slot_start(s) + front;
    Ok(Some(parts.edit(
        d,
        None,
        (start..start + cut, count as usize),
        out,
    )))
}
