//! One page of a paged hash or set as an edit sees it: the stored entries,
//! decoded only when an edit needs them all.

use std::borrow::Cow;
use std::cell::{Cell, OnceCell};
use std::ops::Range;

use super::entry_bytes;
use crate::packed::{Corrupt, Packed, PackedWriter};

/// One entry's elements (`arity` of them; the first is the key).
pub type Entry<'a> = Vec<Cow<'a, [u8]>>;

/// A page's elements, entry after entry (`arity` each): one allocation
/// per page, not one per entry, as every write of a paged value loads one.
/// Decoded when first needed: a page only searched (a lookup), only
/// added to (an insert: the entries go to `appended`, and the stored
/// body is copied as it is when the page is written), edited at one
/// stored entry (a replace or a removal: `splice`), or not touched at all
/// (a split's partner that does not split), is never decoded.
#[derive(Default)]
pub(super) struct Page<'a> {
    pub(super) stored: Option<Packed<'a>>,
    /// Every element (the stored ones with `splice` made, then
    /// `appended`), once decoded; `appended` and `splice` are then left
    /// behind (cleared at the next edit).
    elements: OnceCell<Vec<Cow<'a, [u8]>>>,
    /// Entries added to a page not decoded.
    appended: Vec<Cow<'a, [u8]>>,
    /// The one stored entry replaced or removed on a page not decoded.
    splice: Option<Splice<'a>>,
    /// The entry a search of the stored page last found: (index in
    /// entries, byte offset in the body).
    last_found: Cell<Option<(usize, usize)>>,
    pub(super) dirty: bool,
}

/// A stored entry replaced (`new`) or removed (None) without decoding its
/// page: the page is written as the body's bytes before and after it,
/// copied whole, with the new entry between.
struct Splice<'a> {
    /// The entry's elements (indices in the stored elements).
    elements: Range<usize>,
    /// Its bytes in the stored body.
    span: Range<usize>,
    new: Option<Entry<'a>>,
}

/// Where [`Page::find`] found an entry.
pub(super) struct Found<'a> {
    /// The entry's index (in entries).
    pub(super) at: usize,
    /// The entry, when the page is not decoded (read it from the elements
    /// otherwise).
    pub(super) entry: Option<Entry<'a>>,
}

impl<'a> Page<'a> {
    pub(super) fn elements(&self) -> Result<&Vec<Cow<'a, [u8]>>, Corrupt> {
        if let Some(elements) = self.elements.get() {
            return Ok(elements);
        }
        let mut elements = Vec::new();
        elements.reserve_exact(self.stored_len() + self.appended.len());
        if let Some(stored) = self.stored {
            for element in stored.iter() {
                elements.push(Cow::Borrowed(element?));
            }
        }
        if let Some(Splice {
            elements: at, new, ..
        }) = &self.splice
        {
            elements.splice(at.clone(), new.iter().flatten().cloned());
        }
        elements.extend(self.appended.iter().cloned());
        Ok(self.elements.get_or_init(|| elements))
    }

    pub(super) fn elements_mut(&mut self) -> Result<&mut Vec<Cow<'a, [u8]>>, Corrupt> {
        self.elements()?;
        self.appended.clear();
        self.splice = None;
        Ok(self.elements.get_mut().expect("just decoded"))
    }

    /// Elements stored (not counting `appended` or a splice).
    fn stored_len(&self) -> usize {
        self.stored.map_or(0, |s| s.len())
    }

    /// The entry of `key`: searched as stored, then the appended entries,
    /// when the page is not decoded (a page with a splice is decoded
    /// first: the stored bytes no longer say what it holds).
    pub(super) fn find(&self, arity: usize, key: &[u8]) -> Result<Option<Found<'a>>, Corrupt> {
        if self.splice.is_some() {
            self.elements()?;
        }
        if let Some(elements) = self.elements.get() {
            let at = elements.chunks_exact(arity).position(|e| *e[0] == *key);
            return Ok(at.map(|at| Found { at, entry: None }));
        }
        let borrowed = |e: Vec<&'a [u8]>| Some(e.into_iter().map(Cow::Borrowed).collect());
        if let (Some(stored), Some((at, offset))) = (self.stored, self.last_found.get()) {
            // The entry the last search found (a read, then its write).
            let entry = stored.entry_at(offset, arity)?;
            if entry.first() == Some(&key) {
                let entry = borrowed(entry);
                return Ok(Some(Found { at, entry }));
            }
        }
        let stored = self.stored.map(|s| s.find_entry(arity, key)).transpose()?;
        if let Some(found) = stored.flatten() {
            self.last_found.set(Some((found.index, found.offset)));
            let entry = borrowed(found.elements);
            return Ok(Some(Found {
                at: found.index,
                entry,
            }));
        }
        let appended = self
            .appended
            .chunks_exact(arity)
            .position(|e| *e[0] == *key);
        Ok(appended.map(|at| Found {
            at: self.stored_len() / arity + at,
            entry: Some(self.appended[at * arity..(at + 1) * arity].to_vec()),
        }))
    }

    /// Adds an entry known not to be on the page.
    pub(super) fn append(&mut self, entry: impl Iterator<Item = Cow<'a, [u8]>>) {
        match self.elements.get_mut() {
            Some(elements) => elements.extend(entry),
            None => self.appended.extend(entry),
        }
    }

    /// Replaces the entry `found` (from [`Page::find`]) with `new`;
    /// returns the replaced entry's bytes.
    pub(super) fn replace(
        &mut self,
        arity: usize,
        found: Found<'a>,
        new: Entry<'a>,
    ) -> Result<u64, Corrupt> {
        let Found { at, entry } = found;
        if let Some(old) = entry {
            if let Some(splice) = self.stored_splice(arity, at)? {
                self.splice = Some(Splice {
                    new: Some(new),
                    ..splice
                });
                return Ok(entry_bytes(old.iter().map(|e| &e[..])));
            }
        }
        let old = &mut self.elements_mut()?[at * arity..(at + 1) * arity];
        let removed = entry_bytes(old.iter().map(|e| &e[..]));
        old.iter_mut().zip(new).for_each(|(old, new)| *old = new);
        Ok(removed)
    }

    /// Removes the entry `found` (from [`Page::find`]); returns it.
    pub(super) fn remove(&mut self, arity: usize, found: Found<'a>) -> Result<Entry<'a>, Corrupt> {
        let Found { at, entry } = found;
        if let Some(old) = entry {
            if let Some(splice) = self.stored_splice(arity, at)? {
                self.splice = Some(splice);
                return Ok(old);
            }
        }
        let removed = self.elements_mut()?.drain(at * arity..(at + 1) * arity);
        Ok(removed.collect())
    }

    /// The removal of entry `at` as a splice, when it is the stored one
    /// the last search found and the page has no edit but appended entries
    /// (None: decode the page and edit its elements).
    fn stored_splice(&self, arity: usize, at: usize) -> Result<Option<Splice<'a>>, Corrupt> {
        let (Some(stored), Some((found, offset))) = (self.stored, self.last_found.get()) else {
            return Ok(None);
        };
        if found != at || self.splice.is_some() || self.elements.get().is_some() {
            return Ok(None);
        }
        Ok(Some(Splice {
            elements: at * arity..(at + 1) * arity,
            span: offset..stored.entry_end(offset, arity)?,
            new: None,
        }))
    }

    /// The page's stored form (None: empty, not stored).
    pub(super) fn encode(self) -> Option<Vec<u8>> {
        let cost = |e: &Cow<'_, [u8]>| PackedWriter::element_cost(e.len());
        if let Some(elements) = self.elements.into_inner() {
            let mut out = PackedWriter::with_capacity(elements.iter().map(cost).sum());
            elements.iter().for_each(|e| out.push(e));
            return (!elements.is_empty()).then(|| out.finish());
        }
        // Not decoded: the stored body as it is (around a spliced entry),
        // then the new entries.
        let stored = self.stored.unwrap_or(Packed::empty());
        let body = stored.body();
        let (cut, span, new) = match &self.splice {
            Some(s) => (s.elements.clone(), s.span.clone(), s.new.as_deref()),
            None => (stored.len()..stored.len(), body.len()..body.len(), None),
        };
        let new = new.unwrap_or_default();
        let count = stored.len() - cut.len() + new.len() + self.appended.len();
        if count == 0 {
            return None;
        }
        let new_bytes: usize = new.iter().chain(&self.appended).map(cost).sum();
        let mut out = PackedWriter::with_capacity(body.len() - span.len() + new_bytes);
        out.push_encoded(&body[..span.start], cut.start as u64);
        new.iter().for_each(|e| out.push(e));
        out.push_encoded(&body[span.end..], (stored.len() - cut.end) as u64);
        self.appended.iter().for_each(|e| out.push(e));
        Some(out.finish())
    }
}
