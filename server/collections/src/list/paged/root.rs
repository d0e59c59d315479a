//! A paged list's root: the counts that locate every element by
//! arithmetic, and the head and tail elements inline.
//!
//! ```text
//! root: RootHeader | len:u64 | capacity:u32 | head_len:u32 | tail_len:u32
//!       | head_bytes:u32 | head (packed value) | tail (packed value,
//!       last element first)
//! elements: head (head_len) ++ pages first..end (capacity each)
//!           ++ tail reversed
//! ```
//!
//! That is the layout roots were written in until the in-place edit;
//! every write now stores the *editable* layout (`slots.rs`: the same
//! fixed part with `head_bytes = u32::MAX`, the counts in a descriptor
//! and the inline elements in two slots a push or pop edits in place).
//! Both read the same ([`ListRoot::parse_with_inline`]).
//!
//! A push at an end goes into that end's inline buffer and a pop comes
//! from it (either end of the list is its buffer's front, so a pop finds
//! its split without walking the buffer), so the common push or pop
//! touches the root alone; a full
//! buffer (capacity elements) is spilled as a new end page, and a pop on
//! an empty buffer refills it with the end page (moved whole). So every
//! stored page is full and element i's place is arithmetic.
//!
//! Roots of the first layout (`len | capacity | head_len` only, 16
//! bytes; the head and tail *pages* partly full) still read: their
//! partial end pages are read as the inline buffers (`legacy_pages`:
//! every command loads them) and the next write stores the root in the
//! editable layout and deletes those pages.

use std::ops::Range;

pub(super) mod slots;

use crate::packed::{Corrupt, Packed};
use crate::paged::RootHeader;
use slots::{Slots, MARKER};

/// Bytes of the earlier layout's list-specific part.
const LEGACY_REST_LEN: usize = 16;
/// Bytes of the fixed list-specific part before the inline elements.
pub(super) const FIXED_LEN: usize = 24;

/// A paged list's root (its counts; the inline elements are read with
/// [`inline`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRoot {
    /// `pages`: the stored (full) pages.
    pub header: RootHeader,
    pub len: u64,
    /// Elements of every stored page.
    pub capacity: u32,
    /// Elements inline at the head and at the tail.
    pub head_len: u32,
    pub tail_len: u32,
    /// A first-layout root: the pages holding its head and tail
    /// elements (partly full end pages).
    pub(super) legacy: [Option<u64>; 2],
    /// An editable-layout root: its slots and selected descriptor.
    pub(super) slots: Option<Slots>,
}

/// Where element i lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Head(usize),
    Page(u64, usize),
    Tail(usize),
}

pub(super) fn word(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

pub(super) fn half(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

impl ListRoot {
    /// A root in memory (for an edit of a packed list or a new build).
    pub(super) fn new(header: RootHeader, len: u64, capacity: u32, head_len: u32) -> ListRoot {
        let stored = header.pages.end - header.pages.start;
        ListRoot {
            header,
            len,
            capacity,
            head_len,
            tail_len: (len - u64::from(head_len) - stored * u64::from(capacity)) as u32,
            legacy: [None, None],
            slots: None,
        }
    }

    pub fn parse(bytes: &[u8]) -> Result<ListRoot, Corrupt> {
        // (Its own copy of the parse: the views it drops are never built
        // or moved; every command's plan parses its root.)
        Self::parse_parts(bytes).map(|(root, _)| root)
    }

    /// [`ListRoot::parse`] and [`inline`] in one pass over the header
    /// (an edit needs both).
    pub fn parse_with_inline(bytes: &[u8]) -> Result<(ListRoot, Option<Inline<'_>>), Corrupt> {
        Self::parse_parts(bytes)
    }

    #[inline(always)]
    fn parse_parts(bytes: &[u8]) -> Result<(ListRoot, Option<Inline<'_>>), Corrupt> {
        let (header, rest) = RootHeader::parse(bytes)?;
        if rest.len() == LEGACY_REST_LEN {
            return Ok((Self::parse_legacy(header, rest)?, None));
        }
        if rest.len() < FIXED_LEN {
            return Err(Corrupt);
        }
        let head_bytes = half(rest, 20);
        if head_bytes == MARKER {
            let (root, inline) = slots::parse(header, bytes)?;
            return Ok((root, Some(inline)));
        }
        let root = ListRoot {
            header,
            len: word(rest, 0),
            capacity: half(rest, 8),
            head_len: half(rest, 12),
            tail_len: half(rest, 16),
            legacy: [None, None],
            slots: None,
        };
        let body = &rest[FIXED_LEN..];
        if head_bytes as usize > body.len() {
            return Err(Corrupt);
        }
        let (head, tail) = body.split_at(head_bytes as usize);
        let inline = [Packed::parse(head)?, Packed::parse(tail)?];
        root.check(&inline)?;
        Ok((root, Some(inline)))
    }

    /// Checks the counts: the pages' and inline elements add up to the
    /// length, no buffer holds more than a page, `inline` (head, tail)
    /// hold the counts given.
    pub(super) fn check(&self, inline: &Inline<'_>) -> Result<(), Corrupt> {
        self.check_counts()?;
        let held =
            inline[0].len() == self.head_len as usize && inline[1].len() == self.tail_len as usize;
        held.then_some(()).ok_or(Corrupt)
    }

    /// [`ListRoot::check`] of the counts alone (an editable root's inline
    /// counts are its descriptor's).
    pub(super) fn check_counts(&self) -> Result<(), Corrupt> {
        let stored = self.header.pages.end.checked_sub(self.header.pages.start);
        let paged = stored.and_then(|n| n.checked_mul(u64::from(self.capacity)));
        let total =
            paged.and_then(|p| p.checked_add(u64::from(self.head_len) + u64::from(self.tail_len)));
        let consistent = total == Some(self.len)
            && self.capacity >= 1
            && self.head_len <= self.capacity
            && self.tail_len <= self.capacity;
        consistent.then_some(()).ok_or(Corrupt)
    }

    /// An earlier-layout root (`len | capacity | head_len`: head page
    /// `head_len` elements, middle pages full, tail page 1..=capacity),
    /// read as this layout with its partly full end pages inline.
    fn parse_legacy(header: RootHeader, rest: &[u8]) -> Result<ListRoot, Corrupt> {
        let (len, capacity, head_page) = (word(rest, 0), half(rest, 8), half(rest, 12));
        let pages = header.pages.clone();
        let count = pages.end.checked_sub(pages.start).ok_or(Corrupt)?;
        let cap = u64::from(capacity);
        let (head, tail) = match count {
            1 if len == u64::from(head_page) && len <= cap => (len, 0),
            n if n >= 2 => {
                let inner = (n - 2).checked_mul(cap).ok_or(Corrupt)?;
                let tail = len
                    .checked_sub(inner + u64::from(head_page))
                    .ok_or(Corrupt)?;
                if !(1..=cap).contains(&u64::from(head_page)) || !(1..=cap).contains(&tail) {
                    return Err(Corrupt);
                }
                (u64::from(head_page), tail)
            }
            _ => return Err(Corrupt),
        };
        // A full end page stays a stored page; a partial one goes inline.
        let head_inline = head < cap;
        let tail_inline = tail < cap && tail > 0;
        let start = pages.start + u64::from(head_inline);
        let end = (pages.end - u64::from(tail_inline)).max(start);
        Ok(ListRoot {
            header: RootHeader {
                pages: start..end,
                ..header
            },
            len,
            capacity,
            head_len: if head_inline { head as u32 } else { 0 },
            tail_len: if tail_inline { tail as u32 } else { 0 },
            legacy: [
                head_inline.then_some(pages.start),
                tail_inline.then_some(pages.end - 1),
            ],
            slots: None,
        })
    }

    /// The pages an earlier-layout root keeps its head and tail elements
    /// in (head, tail): every command on it must load them.
    pub fn legacy_pages(&self) -> [Option<u64>; 2] {
        self.legacy
    }

    pub(super) fn page_count(&self) -> u64 {
        self.header.pages.end - self.header.pages.start
    }

    /// Elements in stored pages.
    fn paged_len(&self) -> u64 {
        self.page_count() * u64::from(self.capacity)
    }

    /// Where element `index` (< len) lies.
    pub fn locate(&self, index: u64) -> Place {
        let head = u64::from(self.head_len);
        if index < head {
            return Place::Head(index as usize);
        }
        let j = index - head;
        if j >= self.paged_len() {
            return Place::Tail((j - self.paged_len()) as usize);
        }
        let cap = u64::from(self.capacity);
        Place::Page(self.header.pages.start + j / cap, (j % cap) as usize)
    }

    /// The stored pages holding elements `elements` (maybe none).
    pub fn pages_covering(&self, elements: Range<u64>) -> Range<u64> {
        let head = u64::from(self.head_len);
        let start = elements.start.max(head);
        let end = elements.end.min(head + self.paged_len());
        if start >= end {
            return 0..0;
        }
        let (first, cap) = (self.header.pages.start, u64::from(self.capacity));
        first + (start - head) / cap..first + (end - 1 - head) / cap + 1
    }

    /// The element indices stored page `page` holds.
    pub(super) fn elements_of(&self, page: u64) -> Range<u64> {
        let cap = u64::from(self.capacity);
        let start = u64::from(self.head_len) + (page - self.header.pages.start) * cap;
        start..start + cap
    }

    /// The pages a push of `count` elements at `end` writes: one per
    /// inline buffer it fills and spills.
    pub fn pages_for_push(&self, end: super::End, count: u64) -> Range<u64> {
        let (inline, pages) = match end {
            super::End::Head => (self.head_len, &self.header.pages),
            super::End::Tail => (self.tail_len, &self.header.pages),
        };
        let spills = (u64::from(inline) + count).saturating_sub(1) / u64::from(self.capacity);
        match end {
            super::End::Head => pages.start.saturating_sub(spills)..pages.start,
            super::End::Tail => pages.end..pages.end.saturating_add(spills),
        }
    }

    /// The pages a pop of `count` at `end` refills from.
    pub fn pages_for_pop(&self, end: super::End, count: u64) -> Range<u64> {
        let count = count.min(self.len);
        match end {
            super::End::Head => self.pages_covering(0..count),
            super::End::Tail => self.pages_covering(self.len - count..self.len),
        }
    }

    /// The pages a trim to `keep` touches: every page with an element
    /// outside it (the boundary pages are read, the others dropped).
    pub fn pages_for_trim(&self, keep: &Range<u64>) -> [Range<u64>; 2] {
        [
            self.pages_covering(0..keep.start),
            self.pages_covering(keep.end..self.len),
        ]
    }
}

/// A root's inline head and tail elements (the tail last first).
pub type Inline<'a> = [Packed<'a>; 2];

/// The inline head and tail of a root (None: a first-layout root, whose
/// end pages hold them).
pub fn inline(bytes: &[u8]) -> Result<Option<Inline<'_>>, Corrupt> {
    ListRoot::parse_with_inline(bytes).map(|(_, inline)| inline)
}

/// The packed value holding every element of a paged list: `root` and
/// its stored pages in order (all of `RootHeader::pages`).
pub fn flatten<'a>(
    root: &'a [u8],
    pages: impl IntoIterator<Item = Packed<'a>>,
) -> Result<Vec<u8>, Corrupt> {
    let Some([head, tail]) = inline(root)? else {
        return crate::paged::flatten(pages);
    };
    let mut writer = crate::PackedWriter::default();
    for part in std::iter::once(head).chain(pages) {
        writer.push_encoded(part.body(), part.len() as u64);
    }
    let mut tail = tail.to_vec()?;
    tail.reverse();
    tail.iter().for_each(|e| writer.push(e));
    Ok(writer.finish())
}
