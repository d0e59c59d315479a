//! Lists past their packed size, as a root and a deque of pages (a
//! quicklist): pages are numbered consecutively `first..end` (new lists
//! start at [`FIRST_PAGE`], the middle of the u64 range, so both ends can
//! grow), each a packed value of up to `capacity` elements. Every page
//! but the head and tail page is full, so an element's page is found by
//! arithmetic from the root:
//!
//! ```text
//! root: RootHeader | len:u64 | capacity:u32 | head_len:u32
//! index i < head_len            -> page first, offset i
//! otherwise j = i - head_len    -> page first + 1 + j / capacity,
//!                                  offset j % capacity
//! ```
//!
//! A push touches the root and one end page (or starts a new one), a pop
//! the end pages it empties, LINDEX/LSET one page, LRANGE the pages of
//! its range, LTRIM the dropped pages (deleted) and two boundary pages.
//!
//! [`ListEdit`] edits a list in either form: a packed list is a list of
//! one page without a capacity; [`ListEdit::finish`] decides the stored
//! form from the result (a packed list past its limit is split into pages
//! under a fresh generation; a paged list down to one small page goes back
//! to the packed form).

use std::collections::VecDeque;
use std::ops::Range;

use crate::packed::{keep_in_place, push_in_place, Corrupt, Packed, PackedWriter};
use crate::paged::{Built, RootHeader};

/// Page number of a new list's first page: the middle of the range.
pub const FIRST_PAGE: u64 = 1 << 63;
/// Bytes of the list-specific part of the root.
const ROOT_REST_LEN: usize = 16;
/// Bounds on elements per page when the limit is in bytes.
/// (Small pages keep a push's page rewrite cheap; the root is O(1) however
/// many pages there are.)
const MIN_CAPACITY: usize = 8;
const MAX_CAPACITY: usize = 128;
/// Most elements per page a positive list-max-listpack-size asks for.
const MAX_COUNT_CAPACITY: usize = 1024;

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

    /// Whether a packed list of `count` elements in `bytes` stays packed.
    pub fn fits(&self, count: usize, bytes: usize) -> bool {
        match *self {
            ListLimit::Bytes(max) => bytes <= max,
            ListLimit::Count(max) => count <= max,
        }
    }

    /// Elements per page for elements of `avg_cost` bytes on average.
    pub fn capacity(&self, avg_cost: usize) -> usize {
        match *self {
            ListLimit::Bytes(max) => (max / avg_cost.max(1)).clamp(MIN_CAPACITY, MAX_CAPACITY),
            ListLimit::Count(max) => max.clamp(1, MAX_COUNT_CAPACITY),
        }
    }
}

/// A paged list's root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRoot {
    pub header: RootHeader,
    pub len: u64,
    /// Elements of every page but the head and tail page.
    pub capacity: u32,
    /// Elements of the head page (`len` when it is the only page).
    pub head_len: u32,
}

impl ListRoot {
    pub fn parse(bytes: &[u8]) -> Result<ListRoot, Corrupt> {
        let (header, rest) = RootHeader::parse(bytes)?;
        if rest.len() != ROOT_REST_LEN {
            return Err(Corrupt);
        }
        let root = ListRoot {
            header,
            len: u64::from_le_bytes(rest[..8].try_into().expect("8 bytes")),
            capacity: u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes")),
            head_len: u32::from_le_bytes(rest[12..16].try_into().expect("4 bytes")),
        };
        let pages = root.header.pages.end.checked_sub(root.header.pages.start);
        let consistent = match pages {
            Some(1) => root.len == u64::from(root.head_len),
            Some(n) if n >= 2 => {
                let inner = (n - 2).checked_mul(u64::from(root.capacity));
                let tail =
                    inner.and_then(|inner| root.len.checked_sub(inner + u64::from(root.head_len)));
                root.head_len >= 1
                    && root.head_len <= root.capacity
                    && tail.is_some_and(|t| (1..=u64::from(root.capacity)).contains(&t))
            }
            _ => false,
        };
        consistent.then_some(root).ok_or(Corrupt)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        self.header.write(out);
        out.extend_from_slice(&self.len.to_le_bytes());
        out.extend_from_slice(&self.capacity.to_le_bytes());
        out.extend_from_slice(&self.head_len.to_le_bytes());
    }

    fn page_count(&self) -> u64 {
        self.header.pages.end - self.header.pages.start
    }

    /// The page and offset of element `index` (< len).
    pub fn locate(&self, index: u64) -> (u64, usize) {
        let first = self.header.pages.start;
        let head = u64::from(self.head_len);
        if index < head || self.page_count() == 1 {
            return (first, index as usize);
        }
        let j = index - head;
        let cap = u64::from(self.capacity);
        (first + 1 + j / cap, (j % cap) as usize)
    }

    /// The pages holding elements `elements` (empty for an empty range).
    pub fn pages_covering(&self, elements: Range<u64>) -> Range<u64> {
        let end = elements.end.min(self.len);
        if elements.start >= end {
            return 0..0;
        }
        self.locate(elements.start).0..self.locate(end - 1).0 + 1
    }

    /// The element indices page `page` holds.
    fn elements_of(&self, page: u64) -> Range<u64> {
        let first = self.header.pages.start;
        let head = u64::from(self.head_len);
        if page == first {
            return 0..head.min(self.len);
        }
        let start = head + (page - first - 1) * u64::from(self.capacity);
        start..(start + u64::from(self.capacity)).min(self.len)
    }

    /// The pages a push of `count` elements at `end` touches: the end
    /// page and the new ones beyond it.
    pub fn pages_for_push(&self, end: End, count: u64) -> Range<u64> {
        let pages = &self.header.pages;
        let new = count.div_ceil(u64::from(self.capacity.max(1)));
        match end {
            End::Head => pages.start.saturating_sub(new)..pages.start + 1,
            End::Tail => pages.end - 1..pages.end.saturating_add(new),
        }
    }

    /// The pages a pop of `count` at `end` touches.
    pub fn pages_for_pop(&self, end: End, count: u64) -> Range<u64> {
        let count = count.min(self.len);
        match end {
            End::Head => self.pages_covering(0..count),
            End::Tail => self.pages_covering(self.len - count..self.len),
        }
    }

    /// The pages a trim to `keep` touches: every page with an element
    /// outside it (the boundary pages are edited, the others dropped).
    pub fn pages_for_trim(&self, keep: &Range<u64>) -> [Range<u64>; 2] {
        [
            self.pages_covering(0..keep.start),
            self.pages_covering(keep.end..self.len),
        ]
    }
}

/// Which end of a list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Head,
    Tail,
}

/// How a list is to be stored after an edit.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// No change.
    Unchanged,
    /// The list emptied: the key goes.
    Empty,
    Packed(Vec<u8>),
    /// The root and the pages written (None: deleted), same generation.
    Paged {
        root: Vec<u8>,
        pages: Vec<(u64, Option<Vec<u8>>)>,
    },
    /// A new root and all its pages, under a new generation.
    Built(Built),
}

/// A list being edited: its root (a packed list reads as one page without
/// a capacity) and the pages loaded so far.
#[derive(Debug)]
pub struct ListEdit {
    root: ListRoot,
    packed: bool,
    pages: Pages,
    dirty: bool,
    /// Pages written or deleted, in the order first touched.
    touched: Vec<u64>,
}

/// The loaded pages, sorted by number (None: deleted by the edit): a
/// push or pop holds one or two, so a sorted deque beats a map (no node
/// allocation per command); LRANGE's many are found by binary search, and
/// the pages a big push opens or a big pop drops come and go at the ends
/// (a deque's O(1); deleted ones stay as None, nothing shifts).
#[derive(Debug, Default)]
struct Pages(VecDeque<(u64, Option<Vec<u8>>)>);

impl Pages {
    fn new(pages: impl IntoIterator<Item = (u64, Vec<u8>)>) -> Pages {
        let mut pages: Vec<_> = (pages.into_iter())
            .map(|(page, bytes)| (page, Some(bytes)))
            .collect();
        if !pages.windows(2).all(|w| w[0].0 < w[1].0) {
            pages.sort_unstable_by_key(|p| p.0);
            pages.dedup_by_key(|p| p.0);
        }
        Pages(pages.into())
    }

    fn find(&self, page: u64) -> Result<usize, usize> {
        self.0.binary_search_by_key(&page, |p| p.0)
    }

    fn get(&self, page: u64) -> Option<&Vec<u8>> {
        self.0[self.find(page).ok()?].1.as_ref()
    }

    fn get_mut(&mut self, page: u64) -> Option<&mut Vec<u8>> {
        let at = self.find(page).ok()?;
        self.0[at].1.as_mut()
    }

    fn insert(&mut self, page: u64, bytes: Vec<u8>) {
        match self.find(page) {
            Ok(at) => self.0[at].1 = Some(bytes),
            Err(at) => self.0.insert(at, (page, Some(bytes))),
        }
    }

    fn remove(&mut self, page: u64) -> Option<Vec<u8>> {
        let at = self.find(page).ok()?;
        self.0[at].1.take()
    }
}

impl ListEdit {
    /// A packed list (`packed` the stored value; empty for a new list).
    pub fn packed(packed: &[u8]) -> Result<ListEdit, Corrupt> {
        ListEdit::packed_owned(packed.to_vec())
    }

    /// [`ListEdit::packed`] of a copy the caller made (edited in place).
    pub fn packed_owned(packed: Vec<u8>) -> Result<ListEdit, Corrupt> {
        let (count, bytes) = if packed.is_empty() {
            (0, PackedWriter::default().finish())
        } else {
            (Packed::parse(&packed)?.len(), packed)
        };
        Ok(ListEdit {
            root: ListRoot {
                header: RootHeader {
                    generation: 0,
                    version: 0,
                    pages: FIRST_PAGE..FIRST_PAGE + 1,
                },
                len: count as u64,
                capacity: u32::MAX,
                head_len: count as u32,
            },
            packed: true,
            pages: Pages::new([(FIRST_PAGE, bytes)]),
            dirty: false,
            touched: Vec::new(),
        })
    }

    /// A paged list and some of its pages (those an edit will touch).
    pub fn paged(root: ListRoot, pages: impl IntoIterator<Item = (u64, Vec<u8>)>) -> ListEdit {
        ListEdit {
            root,
            packed: false,
            pages: Pages::new(pages),
            dirty: false,
            touched: Vec::new(),
        }
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
        let (page, offset) = self.root.locate(i as u64);
        self.page(page)?.iter().nth(offset).transpose()
    }

    /// Elements `range` (clamped to the list), head first.
    pub fn range(&self, range: Range<u64>) -> Result<Vec<&[u8]>, Corrupt> {
        let range = range.start..range.end.min(self.len());
        let mut out = Vec::with_capacity((range.end.saturating_sub(range.start)) as usize);
        for page in self.root.pages_covering(range.clone()) {
            let held = self.root.elements_of(page);
            let skip = range.start.saturating_sub(held.start) as usize;
            let take = (range.end.min(held.end) - held.start.max(range.start)) as usize;
            for element in self.page(page)?.iter().skip(skip).take(take) {
                out.push(element?);
            }
        }
        Ok(out)
    }

    /// Every element (a packed list, or one whose pages are all loaded).
    pub fn elements(&self) -> Result<Vec<&[u8]>, Corrupt> {
        self.range(0..self.len())
    }

    fn write_page(&mut self, page: u64, bytes: Option<Vec<u8>>) {
        match bytes {
            Some(bytes) => self.pages.insert(page, bytes),
            None => drop(self.pages.remove(page)),
        };
        self.touch(page);
    }

    fn touch(&mut self, page: u64) {
        // A run of pushes or pops at one end touches one page again and
        // again: noted once.
        if self.touched.last() != Some(&page) {
            self.touched.push(page);
        }
        self.dirty = true;
    }

    fn capacity(&self) -> u64 {
        u64::from(self.root.capacity)
    }

    /// Pushes `elements` one by one at `end` (LPUSH a b c leaves c first).
    pub fn push(&mut self, end: End, elements: &[&[u8]]) -> Result<(), Corrupt> {
        let mut left = elements;
        while !left.is_empty() {
            let pages = self.root.header.pages.clone();
            let page = match end {
                End::Head => pages.start,
                End::Tail => pages.end - 1,
            };
            let held = self.root.elements_of(page);
            let room = self.capacity() - (held.end - held.start);
            if room == 0 {
                self.open_page(end);
                continue;
            }
            let n = (room.min(left.len() as u64)) as usize;
            let (now, rest) = left.split_at(n);
            // The old elements are moved in the page's own buffer, never
            // decoded.
            let bytes = self.pages.get_mut(page).ok_or(Corrupt)?;
            match end {
                End::Head => push_in_place(bytes, true, now.iter().rev().copied())?,
                End::Tail => push_in_place(bytes, false, now.iter().copied())?,
            }
            self.touch(page);
            self.root.len += n as u64;
            if page == self.root.header.pages.start {
                self.root.head_len += n as u32;
            }
            left = rest;
        }
        Ok(())
    }

    /// Starts an empty page at `end` (the old end page is full).
    fn open_page(&mut self, end: End) {
        let pages = &mut self.root.header.pages;
        let page = match end {
            End::Head => {
                pages.start -= 1;
                self.root.head_len = 0;
                pages.start
            }
            End::Tail => {
                pages.end += 1;
                pages.end - 1
            }
        };
        self.write_page(page, Some(PackedWriter::default().finish()));
    }

    /// Takes up to `count` elements off `end`, in pop order.
    pub fn pop(&mut self, end: End, count: u64) -> Result<Vec<Vec<u8>>, Corrupt> {
        let count = count.min(self.len());
        let mut popped = Vec::with_capacity(count as usize);
        while (popped.len() as u64) < count {
            let want = count - popped.len() as u64;
            let pages = self.root.header.pages.clone();
            let page = match end {
                End::Head => pages.start,
                End::Tail => pages.end - 1,
            };
            let old = self.page(page)?;
            let n = (want as usize).min(old.len());
            // Only the popped elements are decoded: the split is found
            // from the length prefixes, the kept ones are moved encoded in
            // the page's own buffer.
            let split = match end {
                End::Head => n,
                End::Tail => old.len() - n,
            };
            let cut = old.offset_of(split)?;
            let taken_body = match end {
                End::Head => &old.body()[..cut],
                End::Tail => &old.body()[cut..],
            };
            let start = popped.len();
            let mut taken = Packed::from_body(taken_body, n).iter();
            taken.try_for_each(|e| e.map(|e| popped.push(e.to_vec())))?;
            if end == End::Tail {
                popped[start..].reverse();
            }
            let (held, body_len) = (old.len(), old.body_len());
            let keep = match end {
                End::Head => cut..body_len,
                End::Tail => 0..cut,
            };
            self.root.len -= n as u64;
            if page == pages.start {
                self.root.head_len -= n as u32;
            }
            if n == 0 {
                return Err(Corrupt);
            }
            if n < held {
                let bytes = self.pages.get_mut(page).ok_or(Corrupt)?;
                keep_in_place(bytes, keep, (held - n) as u64)?;
                self.touch(page);
            } else {
                self.replace_end_page(end, page, None);
            }
        }
        Ok(popped)
    }

    /// Writes end page `page`, dropping it when emptied (the root keeps
    /// at least one page; an emptied list is dropped whole).
    fn replace_end_page(&mut self, end: End, page: u64, bytes: Option<Vec<u8>>) {
        let single = self.root.page_count() == 1;
        match bytes {
            None if !single => {
                self.write_page(page, None);
                let pages = &mut self.root.header.pages;
                match end {
                    End::Head => pages.start += 1,
                    End::Tail => pages.end -= 1,
                }
                self.root.head_len = if self.root.page_count() == 1 {
                    self.root.len as u32
                } else if end == End::Head {
                    self.root.capacity
                } else {
                    self.root.head_len
                };
            }
            bytes => {
                let bytes = bytes.unwrap_or_else(|| PackedWriter::default().finish());
                self.write_page(page, Some(bytes));
            }
        }
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
        let mut edit = ListEdit::packed(&bytes).expect("a packed value just encoded");
        edit.dirty = true;
        edit
    }

    /// Replaces element `index` (< len).
    pub fn set(&mut self, index: u64, element: &[u8]) -> Result<(), Corrupt> {
        let (page, offset) = self.root.locate(index);
        let old = self.page(page)?.to_vec()?;
        if offset >= old.len() {
            return Err(Corrupt);
        }
        let bytes = encode(
            old.iter()
                .enumerate()
                .map(|(i, e)| if i == offset { element } else { *e }),
        );
        self.write_page(page, Some(bytes));
        Ok(())
    }

    /// Keeps elements `keep` only (a non-empty range inside the list):
    /// whole pages outside it go unread, the boundary pages are cut.
    pub fn trim(&mut self, keep: Range<u64>) -> Result<(), Corrupt> {
        let tail = self.len() - keep.end.min(self.len());
        self.drop_elements(End::Tail, tail)?;
        self.drop_elements(End::Head, keep.start)
    }

    /// Drops `count` elements off `end`: whole pages without reading
    /// them (LTRIM's cost is the pages it drops), then part of one.
    fn drop_elements(&mut self, end: End, mut count: u64) -> Result<(), Corrupt> {
        while count > 0 {
            let pages = self.root.header.pages.clone();
            let page = match end {
                End::Head => pages.start,
                End::Tail => pages.end - 1,
            };
            let held = self.root.elements_of(page);
            let n = held.end - held.start;
            if count >= n && self.root.page_count() > 1 {
                self.root.len -= n;
                if page == pages.start {
                    self.root.head_len = 0;
                }
                self.replace_end_page(end, page, None);
                count -= n;
            } else {
                self.pop(end, count)?;
                count = 0;
            }
        }
        Ok(())
    }

    /// How the list is stored now, under `limit`: a packed list past it
    /// is split into pages under `generation` (see [`ListEdit::build_pages`]).
    pub fn finish(self, limit: ListLimit, generation: u64) -> Stored {
        if !self.dirty {
            return Stored::Unchanged;
        }
        if self.is_empty() {
            return Stored::Empty;
        }
        let single = self.root.page_count() == 1;
        // (A paged list's last page may be unloaded: it then stays paged.)
        let only_page = self.pages.get(self.root.header.pages.start);
        if let Some(page) = only_page.filter(|_| single) {
            let len = self.len() as usize;
            let shrunk = !self.packed && limit.fits(len * 2, page.len() * 2);
            if self.packed && !limit.fits(len, page.len()) {
                let elements = Packed::parse(page).and_then(|p| p.to_vec());
                return match elements {
                    Ok(elements) => Stored::Built(build(&elements, limit, generation)),
                    Err(_) => Stored::Packed(page.clone()),
                };
            }
            if self.packed || shrunk {
                return Stored::Packed(page.clone());
            }
        }
        let mut root = Vec::with_capacity(crate::paged::ROOT_HEADER_LEN + ROOT_REST_LEN);
        let mut written = self.root.clone();
        written.header = written.header.next();
        written.write(&mut root);
        let mut touched = self.touched;
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
        Stored::Paged { root, pages }
    }

    /// Pages a packed list of `len` elements in `bytes` splits into when
    /// it outgrows `limit` (None: it stays packed): what a caller must
    /// declare before the update that stores it.
    pub fn build_pages(&self, limit: ListLimit) -> Option<Range<u64>> {
        let page = self.pages.get(self.root.header.pages.start)?;
        let len = self.len() as usize;
        if !self.packed || !self.dirty || limit.fits(len, page.len()) || len == 0 {
            return None;
        }
        let body = Packed::parse(page).ok()?.body_len();
        Some(build_range(len, body, limit))
    }
}

fn encode<'e>(elements: impl IntoIterator<Item = &'e [u8]>) -> Vec<u8> {
    super::encode(elements).value
}

/// The page numbers a list of `len` elements of `bytes` in all (each
/// with its length prefix) takes.
pub fn build_range(len: usize, bytes: usize, limit: ListLimit) -> Range<u64> {
    let capacity = limit.capacity(bytes / len.max(1));
    FIRST_PAGE..FIRST_PAGE + len.div_ceil(capacity).max(1) as u64
}

/// A paged list of `elements` under `generation`, pages full from the
/// head (the tail page may be short).
pub fn build(elements: &[&[u8]], limit: ListLimit, generation: u64) -> Built {
    let bytes: usize = elements
        .iter()
        .map(|e| PackedWriter::element_cost(e.len()))
        .sum();
    let pages = build_range(elements.len(), bytes, limit);
    let capacity = limit.capacity(bytes / elements.len().max(1));
    let root = ListRoot {
        header: RootHeader {
            generation,
            version: 0,
            pages: pages.clone(),
        },
        len: elements.len() as u64,
        capacity: capacity as u32,
        head_len: elements.len().min(capacity) as u32,
    };
    let mut out = Built::default();
    root.write(&mut out.root);
    for (page, chunk) in pages.zip(elements.chunks(capacity.max(1))) {
        out.pages.push((page, encode(chunk.iter().copied())));
    }
    out
}

#[cfg(test)]
mod tests;
