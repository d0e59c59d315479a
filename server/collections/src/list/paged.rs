//! Lists past their packed size (a quicklist): a root holding the first
//! and last few elements inline and pages of exactly `capacity` elements
//! between them, numbered consecutively `first..end` (new lists start at
//! [`FIRST_PAGE`], the middle of the u64 range, so both ends can grow).
//! The layout and its arithmetic are in `root.rs`.
//!
//! A push or pop rewrites the root alone but once every `capacity`
//! elements at an end (a full inline buffer spilled as a page, or an
//! empty one refilled from the end page); LINDEX/LSET touch one page or
//! the root, LRANGE the pages of its range, LTRIM the dropped pages
//! (deleted unread) and two boundary pages.
//!
//! [`ListEdit`] edits a list in either form: a packed list is an inline
//! head without a capacity; [`ListEdit::finish`] decides the stored form
//! from the result (a packed list past its limit is split into pages
//! under a fresh generation; a paged list down to its inline elements and
//! at most half the limit goes back to the packed form).

use std::ops::Range;

use crate::packed::{push_in_place, write_packed_header, Corrupt, Packed, PackedWriter};
use crate::paged::{Built, RootHeader};

mod buffer;
mod end_edit;
mod pages;
mod root;

use buffer::{
    encode, flatten_inline, pop_from, replaced, reversed, take_range, view, EMPTY, PUSH_ROOM,
};
pub use end_edit::{
    pop_front, pop_root, push_head, push_root, EditableRoot, EndEdit, Spans, Writes, ROOT_HEAD_LEN,
};
use pages::Pages;
use root::slots;
pub use root::slots::{is_editable_layout, EDIT_STATE};
pub use root::{flatten, inline, ListRoot, Place};

/// Page number of a new list's first page: the middle of the range.
pub const FIRST_PAGE: u64 = 1 << 63;
/// Bounds on elements per page when the limit is in bytes, and the most
/// bytes a page aims at. A spill or refill rewrites the root with up to
/// a page's worth inline at each end, so pages stay small (the root is
/// O(1) however many pages there are); most pushes and pops edit the
/// root in place, so a page of many short elements makes spills, the
/// costly part, rarer.
const MIN_CAPACITY: usize = 8;
const MAX_CAPACITY: usize = 256;
pub(super) const PAGE_BYTES: usize = 2048;
/// Most elements per page a positive list-max-listpack-size asks for.
const MAX_COUNT_CAPACITY: usize = 1024;
/// Most bytes a list keeps in the packed form, whatever the limit says: a
/// push or pop rewrites a packed list's item and hashes it whole (about 2
/// instructions a byte, 1.5x Redis's push at 1 KiB), where a paged list's
/// end edit costs the same at any length. Redis's quicklist edits its
/// 8 KiB node in place; the paged form is how we do the same.
pub const PACKED_MAX_BYTES: usize = 1024;

/// Redis's list-max-listpack-size: negative -1..-5 for 4..64 KiB per
/// node, positive for a count of elements per node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListLimit {
    Bytes(usize),
    Count(usize),
}

impl ListLimit {
    /// The limit list-max-listpack-size `setting` names (values below -5
    /// read as -5, 0 as 1, as Redis clamps them).
    pub fn from_setting(setting: i64) -> ListLimit {
        if setting < 0 {
            let level = setting.unsigned_abs().min(5) as u32;
            ListLimit::Bytes(4096 << (level - 1))
        } else {
            ListLimit::Count(setting.max(1) as usize)
        }
    }

    /// Whether a packed list of `count` elements in `bytes` stays packed
    /// (never past [`PACKED_MAX_BYTES`]).
    pub fn fits(&self, count: usize, bytes: usize) -> bool {
        bytes <= PACKED_MAX_BYTES
            && match *self {
                ListLimit::Bytes(max) => bytes <= max,
                ListLimit::Count(max) => count <= max,
            }
    }

    /// Elements per page for elements of `avg_cost` bytes on average.
    pub fn capacity(&self, avg_cost: usize) -> usize {
        match *self {
            ListLimit::Bytes(max) => {
                (max.min(PAGE_BYTES) / avg_cost.max(1)).clamp(MIN_CAPACITY, MAX_CAPACITY)
            }
            ListLimit::Count(max) => max.clamp(1, MAX_COUNT_CAPACITY),
        }
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

impl End {
    fn opposite(self) -> End {
        match self {
            End::Head => End::Tail,
            End::Tail => End::Head,
        }
    }
}

/// How a list is to be stored after an edit.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// No change.
    Unchanged,
    /// The list emptied: the key goes.
    Empty,
    Packed(Vec<u8>),
    /// The root and the pages written (None: deleted), same generation;
    /// `spare`: the edit's inline buffers, for the caller's next edit.
    Paged {
        root: Vec<u8>,
        pages: Vec<(u64, Option<Vec<u8>>)>,
        spare: [Vec<u8>; 2],
    },
    /// A new root and all its pages, under a new generation.
    Built(Built),
}

/// A list being edited: its root counts, its inline head and tail
/// (packed values; empty bytes: no elements; the tail last element
/// first, so both ends of the list are their buffer's front) and the
/// pages loaded.
#[derive(Debug)]
pub struct ListEdit {
    root: ListRoot,
    /// A packed list: every element in `head`, no capacity.
    packed: bool,
    head: Vec<u8>,
    tail: Vec<u8>,
    pages: Pages,
    dirty: bool,
    /// Pages written or deleted, in the order first touched.
    touched: Vec<u64>,
    /// The ends this edit pushed onto (head, tail): a new root leaves a
    /// page's worth of room there, and less at an end left alone
    /// (`slots::rooms`).
    pushed: [bool; 2],
}

impl ListEdit {
    /// A packed list (`packed` the stored value; empty for a new list).
    pub fn packed(packed: &[u8]) -> Result<ListEdit, Corrupt> {
        ListEdit::packed_owned(packed.to_vec())
    }

    /// [`ListEdit::packed`] of a copy the caller made (edited in place).
    pub fn packed_owned(packed: Vec<u8>) -> Result<ListEdit, Corrupt> {
        let count = view(&packed)?.len() as u64;
        let header = RootHeader {
            generation: 0,
            version: 0,
            pages: FIRST_PAGE..FIRST_PAGE,
        };
        Ok(ListEdit {
            root: ListRoot::new(header, count, u32::MAX, count as u32),
            packed: true,
            head: packed,
            tail: Vec::new(),
            pages: Pages::default(),
            dirty: false,
            touched: Vec::new(),
            pushed: [false; 2],
        })
    }

    /// A paged list from its stored root and some of its pages (those an
    /// edit will touch, and an earlier-layout root's `legacy_pages`);
    /// `head` and `tail` are spare buffers for the inline elements.
    pub fn paged(
        root_bytes: &[u8],
        pages: impl IntoIterator<Item = (u64, Vec<u8>)>,
        mut head: Vec<u8>,
        mut tail: Vec<u8>,
    ) -> Result<ListEdit, Corrupt> {
        let (root, inline) = ListRoot::parse_with_inline(root_bytes)?;
        let mut pages = Pages::new(pages);
        let mut touched = Vec::new();
        head.clear();
        tail.clear();
        match inline {
            Some(inline) => {
                // Copied as packed values (even when empty), with room for
                // a short push. (The counts were checked by the parse.)
                for (buf, part) in [&mut head, &mut tail].into_iter().zip(inline) {
                    buf.reserve(part.body_len() + PUSH_ROOM + 11);
                    write_packed_header(buf, part.len() as u64);
                    buf.extend_from_slice(part.body());
                }
            }
            None => {
                // The partial end pages move inline (deleted by the next
                // write).
                let [h, t] = root.legacy_pages();
                if let Some(page) = h {
                    head = pages.remove(page).ok_or(Corrupt)?;
                    touched.push(page);
                }
                if let Some(page) = t {
                    tail = reversed(&pages.remove(page).ok_or(Corrupt)?)?;
                    touched.push(page);
                }
                if view(&head)?.len() != root.head_len as usize
                    || view(&tail)?.len() != root.tail_len as usize
                {
                    return Err(Corrupt);
                }
            }
        }
        Ok(ListEdit {
            root,
            packed: false,
            head,
            tail,
            pages,
            dirty: false,
            touched,
            pushed: [false; 2],
        })
    }

    pub fn len(&self) -> u64 {
        self.root.len
    }

    pub fn is_empty(&self) -> bool {
        self.root.len == 0
    }

    fn page(&self, page: u64) -> Result<Packed<'_>, Corrupt> {
        Packed::parse(self.pages.get(page).ok_or(Corrupt)?)
    }

    /// Element `index` (negative from the tail); None outside the list.
    pub fn get(&self, index: i64) -> Result<Option<&[u8]>, Corrupt> {
        let Some(i) = super::resolve_index(self.len() as usize, index) else {
            return Ok(None);
        };
        let (part, offset) = match self.root.locate(i as u64) {
            Place::Head(offset) => (view(&self.head)?, offset),
            Place::Page(page, offset) => (self.page(page)?, offset),
            Place::Tail(offset) => {
                let held = self.root.tail_len as usize;
                (
                    view(&self.tail)?,
                    held.checked_sub(offset + 1).ok_or(Corrupt)?,
                )
            }
        };
        part.iter().nth(offset).transpose()
    }

    /// Elements `range` (clamped to the list), head first.
    pub fn range(&self, range: Range<u64>) -> Result<Vec<&[u8]>, Corrupt> {
        let range = range.start..range.end.min(self.len());
        let mut out = Vec::with_capacity((range.end.saturating_sub(range.start)) as usize);
        let head = u64::from(self.root.head_len);
        take_range(&mut out, view(&self.head)?, 0..head, &range)?;
        for page in self.root.pages_covering(range.clone()) {
            take_range(
                &mut out,
                self.page(page)?,
                self.root.elements_of(page),
                &range,
            )?;
        }
        let tail = self.len() - u64::from(self.root.tail_len);
        if range.end > tail && range.start < range.end {
            let mut reversed = view(&self.tail)?.to_vec()?;
            reversed.reverse();
            let start = range.start.max(tail) - tail;
            out.extend_from_slice(&reversed[start as usize..(range.end - tail) as usize]);
        }
        Ok(out)
    }

    /// Every element (a packed list, or one whose pages are all loaded).
    pub fn elements(&self) -> Result<Vec<&[u8]>, Corrupt> {
        self.range(0..self.len())
    }

    fn touch(&mut self, page: u64) {
        // A run of pushes or pops at one end touches one page again and
        // again: noted once.
        if self.touched.last() != Some(&page) {
            self.touched.push(page);
        }
        self.dirty = true;
    }

    /// The inline buffer and its count at `end` (a packed list's one).
    fn inline_mut(&mut self, end: End) -> (&mut Vec<u8>, &mut u32) {
        match (end, self.packed) {
            (End::Head, _) | (End::Tail, true) => (&mut self.head, &mut self.root.head_len),
            (End::Tail, false) => (&mut self.tail, &mut self.root.tail_len),
        }
    }

    /// Pushes `elements` one by one at `end` (LPUSH a b c leaves c first).
    pub fn push(&mut self, end: End, elements: &[&[u8]]) -> Result<(), Corrupt> {
        let mut left = elements;
        let (capacity, packed) = (self.root.capacity, self.packed);
        self.pushed[end as usize] = true;
        while !left.is_empty() {
            let (buf, count) = self.inline_mut(end);
            let room = capacity - *count;
            if room == 0 {
                self.spill(end)?;
                continue;
            }
            let n = (room as usize).min(left.len());
            let (now, rest) = left.split_at(n);
            if buf.is_empty() {
                buf.extend_from_slice(&EMPTY);
            }
            // The old elements are moved in the buffer, never decoded;
            // either end of the list is its buffer's front (a packed
            // list's tail its back).
            match (end, packed) {
                (End::Tail, true) => push_in_place(buf, false, now.iter().copied())?,
                _ => push_in_place(buf, true, now.iter().rev().copied())?,
            }
            *count += n as u32;
            self.root.len += n as u64;
            self.dirty = true;
            left = rest;
        }
        Ok(())
    }

    /// Stores the full inline buffer at `end` as a new end page.
    fn spill(&mut self, end: End) -> Result<(), Corrupt> {
        let pages = &mut self.root.header.pages;
        let page = match end {
            End::Head => {
                pages.start = pages.start.checked_sub(1).ok_or(Corrupt)?;
                pages.start
            }
            End::Tail => {
                pages.end = pages.end.checked_add(1).ok_or(Corrupt)?;
                pages.end - 1
            }
        };
        let (buf, count) = self.inline_mut(end);
        let bytes = match end {
            End::Head => std::mem::take(buf),
            End::Tail => {
                let page = reversed(buf)?;
                buf.clear();
                page
            }
        };
        *count = 0;
        self.pages.insert(page, bytes);
        self.touch(page);
        Ok(())
    }

    /// Takes the page at `end` out of the root's page range (the caller
    /// moves or drops its elements); returns its number.
    fn detach_end_page(&mut self, end: End) -> u64 {
        let pages = &mut self.root.header.pages;
        match end {
            End::Head => {
                pages.start += 1;
                pages.start - 1
            }
            End::Tail => {
                pages.end -= 1;
                pages.end
            }
        }
    }

    /// Moves the end page at `end` inline (its buffer is empty).
    fn refill(&mut self, end: End) -> Result<(), Corrupt> {
        let page = self.detach_end_page(end);
        let bytes = self.pages.remove(page).ok_or(Corrupt)?;
        let held = Packed::parse(&bytes)?.len();
        if held != self.root.capacity as usize {
            return Err(Corrupt);
        }
        self.touch(page);
        let (buf, count) = self.inline_mut(end);
        *buf = match end {
            End::Head => bytes,
            End::Tail => reversed(&bytes)?,
        };
        *count = held as u32;
        Ok(())
    }

    /// Takes up to `count` elements off `end`, in pop order.
    pub fn pop(&mut self, end: End, count: u64) -> Result<Vec<Vec<u8>>, Corrupt> {
        let mut popped = Vec::with_capacity(count.min(self.len()) as usize);
        self.pop_with(end, count, |e| popped.push(e.to_vec()))?;
        Ok(popped)
    }

    /// Takes up to `count` elements off `end`, handing each to `f` in pop
    /// order; returns how many.
    pub fn pop_with(
        &mut self,
        end: End,
        count: u64,
        mut f: impl FnMut(&[u8]),
    ) -> Result<u64, Corrupt> {
        let count = count.min(self.len());
        let mut done = 0;
        while done < count {
            let near = match end {
                End::Head => self.root.head_len,
                End::Tail if self.packed => self.root.head_len,
                End::Tail => self.root.tail_len,
            };
            // The inline buffer at `end`, refilled from the end page when
            // empty; with no pages left, the far buffer's end.
            let from = if near > 0 {
                end
            } else if self.root.page_count() > 0 {
                self.refill(end)?;
                end
            } else {
                end.opposite()
            };
            // The list's end is its own buffer's front, the far buffer's
            // back (a packed list's tail: its one buffer's back).
            let side = match (from == end, self.packed) {
                (_, true) => end,
                (true, false) => End::Head,
                (false, false) => End::Tail,
            };
            let (buf, held) = self.inline_mut(from);
            let n = (count - done).min(u64::from(*held)) as u32;
            pop_from(buf, side, n as usize, &mut f)?;
            *held -= n;
            self.root.len -= u64::from(n);
            self.dirty = true;
            done += u64::from(n);
        }
        Ok(count)
    }

    /// Empties the list (the key goes; its pages with it).
    pub fn clear(&mut self) {
        self.root.len = 0;
        self.dirty = true;
    }

    /// The list of `elements` replacing a whole list (the O(N) edits:
    /// LINSERT, LREM): stored packed, or paged anew when past the limit.
    pub fn rewritten(elements: &[&[u8]]) -> ListEdit {
        let bytes = encode(elements.iter().copied());
        let mut edit = ListEdit::packed_owned(bytes).expect("a packed value just encoded");
        edit.dirty = true;
        edit
    }

    /// Replaces element `index` (< len).
    pub fn set(&mut self, index: u64, element: &[u8]) -> Result<(), Corrupt> {
        match self.root.locate(index) {
            Place::Head(at) => self.head = replaced(&self.head, at, element)?,
            Place::Tail(at) => {
                let held = self.root.tail_len as usize;
                let at = held.checked_sub(at + 1).ok_or(Corrupt)?;
                self.tail = replaced(&self.tail, at, element)?;
            }
            Place::Page(page, at) => {
                let bytes = replaced(self.pages.get(page).ok_or(Corrupt)?, at, element)?;
                self.pages.insert(page, bytes);
                self.touch(page);
            }
        }
        self.dirty = true;
        Ok(())
    }

    /// Keeps elements `keep` only (a non-empty range inside the list):
    /// whole pages outside it go unread, the boundary pages are cut.
    pub fn trim(&mut self, keep: Range<u64>) -> Result<(), Corrupt> {
        let tail = self.len() - keep.end.min(self.len());
        self.drop_elements(End::Tail, tail)?;
        self.drop_elements(End::Head, keep.start)
    }

    /// Drops `count` elements off `end`: the inline ones, whole pages
    /// without reading them (LTRIM's cost is the pages it drops), then
    /// part of one.
    fn drop_elements(&mut self, end: End, mut count: u64) -> Result<(), Corrupt> {
        let capacity = u64::from(self.root.capacity);
        while count > 0 {
            let near = u64::from(*self.inline_mut(end).1);
            if near == 0 && self.root.page_count() > 0 && count >= capacity {
                let page = self.detach_end_page(end);
                self.pages.remove(page);
                self.touch(page);
                self.root.len -= capacity;
                count -= capacity;
                continue;
            }
            let n = if near > 0 { count.min(near) } else { count };
            self.pop_with(end, n, |_| {})?;
            count -= n;
        }
        Ok(())
    }

    /// How the list is stored now, under `limit`: a packed list past it
    /// is split into pages under `generation` (see [`ListEdit::build_pages`]).
    pub fn finish(self, limit: ListLimit, generation: u64) -> Stored {
        self.finish_in(limit, generation, Vec::new())
    }

    /// Whether the list is in the packed form (one value, no root).
    pub fn is_packed(&self) -> bool {
        self.packed
    }

    /// [`ListEdit::finish`] writing a paged list's root into `root`'s
    /// buffer (a spare one: no allocation per push or pop).
    pub fn finish_in(self, limit: ListLimit, generation: u64, mut root: Vec<u8>) -> Stored {
        if !self.dirty {
            return Stored::Unchanged;
        }
        if self.is_empty() {
            return Stored::Empty;
        }
        let len = self.len() as usize;
        if self.packed {
            if !limit.fits(len, self.head.len()) {
                let elements = Packed::parse(&self.head).and_then(|p| p.to_vec());
                return match elements {
                    // The elements short of a full page go inline at the
                    // end being pushed, where they fill to the first spill
                    // (at the far end they would sit in every root).
                    Ok(elements) => {
                        let rest = match self.pushed {
                            [true, false] => End::Head,
                            _ => End::Tail,
                        };
                        Stored::Built(build_at(&elements, limit, generation, rest))
                    }
                    Err(_) => Stored::Packed(self.head),
                };
            }
            return Stored::Packed(self.head);
        }
        let inline_bytes = self.head.len() + self.tail.len();
        if self.root.page_count() == 0 && limit.fits(len * 2, inline_bytes * 2) {
            return match (self.tail.is_empty(), flatten_inline(&self.head, &self.tail)) {
                (true, _) => Stored::Packed(self.head),
                (false, Ok(value)) => Stored::Packed(value),
                (false, Err(_)) => Stored::Packed(self.tail),
            };
        }
        let mut written = self.root.clone();
        written.header = written.header.next();
        // (A buffer that does not parse is written with no elements: the
        // root's counts then disagree and it reads as corrupt.)
        let inline = [&self.head, &self.tail].map(|b| view(b).unwrap_or(Packed::empty()));
        slots::write(&written, &inline, self.pushed, &mut root);
        let mut touched = self.touched;
        if touched.is_empty() {
            // The common push or pop: the root alone (pages loaded and
            // untouched are dropped).
            return Stored::Paged {
                root,
                pages: Vec::new(),
                spare: [self.head, self.tail],
            };
        }
        if !touched.windows(2).all(|w| w[0] < w[1]) {
            touched.sort_unstable();
            touched.dedup();
        }
        // The written and deleted pages move out (the edit is done with
        // them) in the loaded pages' own vector (a deque becomes a Vec and
        // the collect filters it, neither allocating); then the deleted
        // pages that were never loaded (LTRIM drops them unread).
        let loaded = self.pages;
        let unloaded: Vec<u64> = (touched.iter().copied())
            .filter(|&page| loaded.find(page).is_err())
            .collect();
        let mut pages: Vec<(u64, Option<Vec<u8>>)> = (Vec::from(loaded.0).into_iter())
            .filter(|(page, _)| touched.binary_search(page).is_ok())
            .collect();
        pages.extend(unloaded.into_iter().map(|page| (page, None)));
        Stored::Paged {
            root,
            pages,
            spare: [self.head, self.tail],
        }
    }

    /// Pages a packed list splits into when it outgrows `limit` (None: it
    /// stays packed): what a caller must declare before the update that
    /// stores it.
    pub fn build_pages(&self, limit: ListLimit) -> Option<Range<u64>> {
        let len = self.len() as usize;
        if !self.packed || !self.dirty || len == 0 || limit.fits(len, self.head.len()) {
            return None;
        }
        let body = Packed::parse(&self.head).ok()?.body_len();
        Some(build_range(len, body, limit))
    }
}

/// The page numbers a list of `len` elements of `bytes` in all (each
/// with its length prefix) stores in pages (the rest of a page's worth
/// is inline in the root).
pub fn build_range(len: usize, bytes: usize, limit: ListLimit) -> Range<u64> {
    let capacity = limit.capacity(bytes / len.max(1));
    FIRST_PAGE..FIRST_PAGE + (len / capacity) as u64
}

/// A paged list of `elements` under `generation`: full pages from the
/// head, the rest inline at the tail.
pub fn build(elements: &[&[u8]], limit: ListLimit, generation: u64) -> Built {
    build_at(elements, limit, generation, End::Tail)
}

/// [`build`] with the elements short of a full page inline at `rest`
/// (at the head: full pages from the tail). The page numbers are the
/// same either way ([`build_range`]).
fn build_at(elements: &[&[u8]], limit: ListLimit, generation: u64, rest: End) -> Built {
    let bytes: usize = elements
        .iter()
        .map(|e| PackedWriter::element_cost(e.len()))
        .sum();
    let pages = build_range(elements.len(), bytes, limit);
    let capacity = limit.capacity(bytes / elements.len().max(1));
    let header = RootHeader {
        generation,
        version: 0,
        pages: pages.clone(),
    };
    let in_pages = pages.clone().count() * capacity;
    let (head, paged, tail) = match rest {
        End::Tail => (&[][..], &elements[..in_pages], &elements[in_pages..]),
        End::Head => {
            let (head, paged) = elements.split_at(elements.len() - in_pages);
            (head, paged, &[][..])
        }
    };
    let root = ListRoot::new(
        header,
        elements.len() as u64,
        capacity as u32,
        head.len() as u32,
    );
    let mut out = Built::default();
    let (head, tail) = (
        encode(head.iter().copied()),
        encode(tail.iter().rev().copied()),
    );
    let inline = [&head, &tail].map(|b| Packed::parse(b).unwrap_or(Packed::empty()));
    slots::write(&root, &inline, [true; 2], &mut out.root);
    for (page, chunk) in pages.zip(paged.chunks(capacity)) {
        out.pages.push((page, encode(chunk.iter().copied())));
    }
    out
}

#[cfg(test)]
mod tests;
