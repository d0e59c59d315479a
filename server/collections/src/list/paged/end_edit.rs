//! A push or pop that stays inside the inline buffer at its end (the
//! common one: no page spilled or refilled, the list stays paged) writes
//! the new root in one pass from the stored one: the fixed part with the
//! new counts, the edited buffer (its new header, the pushed elements,
//! the kept elements moved encoded) and the other buffer as stored.
//! [`ListEdit`](super::ListEdit) would copy both buffers out, move the
//! edited one in its copy, then copy both again into the root. The root
//! written is byte for byte the one `ListEdit::finish_in` writes (the
//! property test in `tests.rs` checks it); any other edit (a spill, a
//! refill, an earlier-layout root, a list going back to the packed form
//! or emptied) answers None and takes the general edit.

use super::root::{ListRoot, FIXED_LEN};
use super::{End, ListLimit};
use crate::packed::{packed_header_len, write_packed_header, Corrupt, Packed, PackedWriter};
use crate::paged::ROOT_HEADER_LEN;

/// A stored root's counts and its two inline buffers (head, tail: either
/// end of the list is its buffer's front).
struct Parts<'a> {
    root: ListRoot,
    buffers: [Packed<'a>; 2],
    /// The buffers' stored bytes (a packed value each).
    stored: [&'a [u8]; 2],
}

fn side(end: End) -> usize {
    match end {
        End::Head => 0,
        End::Tail => 1,
    }
}

impl<'a> Parts<'a> {
    /// None: an earlier-layout root (its end elements live in pages).
    fn parse(stored: &'a [u8]) -> Result<Option<Parts<'a>>, Corrupt> {
        let (root, Some((head, tail))) = ListRoot::parse_with_inline(stored)? else {
            return Ok(None);
        };
        let buffers = [Packed::parse(head)?, Packed::parse(tail)?];
        if buffers[0].len() != root.head_len as usize || buffers[1].len() != root.tail_len as usize
        {
            return Err(Corrupt);
        }
        Ok(Some(Parts {
            root,
            buffers,
            stored: [head, tail],
        }))
    }

    fn held_mut(&mut self, end: End) -> &mut u32 {
        match end {
            End::Head => &mut self.root.head_len,
            End::Tail => &mut self.root.tail_len,
        }
    }

    /// The count now at `end` (the root's, updated by the edit).
    fn held(&self, end: End) -> u32 {
        match end {
            End::Head => self.root.head_len,
            End::Tail => self.root.tail_len,
        }
    }

    /// Whether the edited list (counts updated; the buffer at `end` now
    /// `edited_len` bytes) is stored as a root again, as `finish_in`
    /// decides: a list emptied, or without pages and small enough to go
    /// back to the packed form, is not.
    fn stays_paged(&self, end: End, edited_len: usize, limit: ListLimit) -> bool {
        let inline_bytes = edited_len + self.stored[1 - side(end)].len();
        let len = self.root.len as usize;
        len > 0 && !(self.root.page_count() == 0 && limit.fits(len * 2, inline_bytes * 2))
    }

    /// Writes the root with the buffer at `end` replaced by its new
    /// count's header, `new` (pushed one by one: encoded last first), then
    /// the old body's `kept` bytes (`edited_len` in all).
    fn write(&self, end: End, new: &[&[u8]], kept: &[u8], edited_len: usize, out: &mut Vec<u8>) {
        let other = self.stored[1 - side(end)];
        let head_bytes = match end {
            End::Head => edited_len,
            End::Tail => other.len(),
        };
        let mut written = self.root.clone();
        written.header = written.header.next();
        out.clear();
        out.reserve(ROOT_HEADER_LEN + FIXED_LEN + edited_len + other.len());
        written.write_fixed(out, head_bytes);
        if end == End::Tail {
            out.extend_from_slice(other);
        }
        write_packed_header(out, u64::from(self.held(end)));
        for element in new.iter().rev() {
            PackedWriter::put_element(out, element);
        }
        out.extend_from_slice(kept);
        if end == End::Head {
            out.extend_from_slice(other);
        }
    }
}

/// Pushes `elements` one by one at `end` of the paged list whose root is
/// `stored`, writing its new root into `out`; returns the new length.
/// None (`out` unspecified): the push spills a page, or the root is of
/// the earlier layout, or `elements` is empty: use `ListEdit`.
pub fn push_root(
    stored: &[u8],
    end: End,
    elements: &[&[u8]],
    limit: ListLimit,
    out: &mut Vec<u8>,
) -> Result<Option<u64>, Corrupt> {
    let Some(mut parts) = Parts::parse(stored)? else {
        return Ok(None);
    };
    let capacity = parts.root.capacity;
    let held = parts.held_mut(end);
    let room = capacity - *held;
    if elements.is_empty() || elements.len() > room as usize {
        return Ok(None);
    }
    *held += elements.len() as u32;
    parts.root.len += elements.len() as u64;
    let kept = parts.buffers[side(end)].body();
    let added: usize = elements
        .iter()
        .map(|e| PackedWriter::element_cost(e.len()))
        .sum();
    let edited_len = packed_header_len(u64::from(parts.held(end))) + added + kept.len();
    if !parts.stays_paged(end, edited_len, limit) {
        return Ok(None);
    }
    parts.write(end, elements, kept, edited_len, out);
    Ok(Some(parts.root.len))
}

/// Takes `count` elements off `end` of the paged list whose root is
/// `stored`, handing each to `f` in pop order, writing its new root into
/// `out`; returns whether it did. False (nothing handed to `f`, `out`
/// unspecified): the pop needs more than the buffer at `end` holds (a
/// refill), or empties the list or sends it back to the packed form, or
/// the root is of the earlier layout, or `count` is 0: use `ListEdit`.
pub fn pop_root(
    stored: &[u8],
    end: End,
    count: u64,
    limit: ListLimit,
    out: &mut Vec<u8>,
    mut f: impl FnMut(&[u8]),
) -> Result<bool, Corrupt> {
    let Some(mut parts) = Parts::parse(stored)? else {
        return Ok(false);
    };
    let held = parts.held_mut(end);
    if count == 0 || count > u64::from(*held) {
        return Ok(false);
    }
    *held -= count as u32;
    parts.root.len -= count;
    let old = parts.buffers[side(end)];
    let cut = old.offset_of(count as usize)?;
    let (taken, kept) = old.body().split_at(cut);
    let edited_len = packed_header_len(u64::from(parts.held(end))) + kept.len();
    if !parts.stays_paged(end, edited_len, limit) {
        return Ok(false);
    }
    for element in Packed::from_body(taken, count as usize).iter() {
        f(element?);
    }
    parts.write(end, &[], kept, edited_len, out);
    Ok(true)
}
