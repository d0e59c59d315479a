//! A paged hash or set being read or edited: the root and the pages a
//! command planned (`Root::pages_for`), entries borrowed from the stored
//! pages until changed. `finish` gives what to store.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::{entry_bytes, key_hash, Root};
use crate::packed::{Corrupt, Packed, PackedWriter};

/// One entry's elements (`arity` of them; the first is the key).
pub type Entry<'a> = Vec<Cow<'a, [u8]>>;

#[derive(Default)]
struct Page<'a> {
    entries: Vec<Entry<'a>>,
    dirty: bool,
}

/// The root and the loaded pages of one paged collection.
pub struct Table<'a> {
    root: Root,
    arity: usize,
    pages: BTreeMap<u64, Page<'a>>,
    root_dirty: bool,
}

/// What a finished edit stores.
#[derive(Debug, Default)]
pub struct Output {
    /// Whether anything is to be stored (false: a read, or a no-op write).
    pub changed: bool,
    /// When changed, the new root; None: the collection is empty (delete
    /// the key).
    pub root: Option<Vec<u8>>,
    /// Pages to write (Some) or delete (None).
    pub pages: Vec<(u64, Option<Vec<u8>>)>,
}

impl<'a> Table<'a> {
    /// The table of `root` with `pages` loaded: (page number, stored page;
    /// None when missing, an empty page).
    pub fn load(
        root: &[u8],
        arity: usize,
        pages: impl IntoIterator<Item = (u64, Option<&'a [u8]>)>,
    ) -> Result<Table<'a>, Corrupt> {
        Table::from_root(Root::parse(root)?, arity, pages)
    }

    pub fn from_root(
        root: Root,
        arity: usize,
        pages: impl IntoIterator<Item = (u64, Option<&'a [u8]>)>,
    ) -> Result<Table<'a>, Corrupt> {
        let mut loaded = BTreeMap::new();
        for (number, bytes) in pages {
            let mut page = Page::default();
            if let Some(bytes) = bytes {
                let elements = Packed::parse(bytes)?.to_vec()?;
                if elements.len() % arity != 0 {
                    return Err(Corrupt);
                }
                page.entries = elements
                    .chunks(arity)
                    .map(|c| c.iter().map(|e| Cow::Borrowed(*e)).collect())
                    .collect();
            }
            loaded.insert(number, page);
        }
        Ok(Table {
            root,
            arity,
            pages: loaded,
            root_dirty: false,
        })
    }

    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Entries in the collection.
    pub fn len(&self) -> u64 {
        self.root.count
    }

    pub fn is_empty(&self) -> bool {
        self.root.count == 0
    }

    /// The loaded page `key` lies on (Corrupt when it was not planned).
    fn page_for(&self, key: &[u8]) -> Result<(u64, &Page<'a>), Corrupt> {
        let number = self.root.page_of_key(key);
        self.pages.get(&number).map(|p| (number, p)).ok_or(Corrupt)
    }

    /// The entry of `key`, if present.
    pub fn get(&self, key: &[u8]) -> Result<Option<&[Cow<'a, [u8]>]>, Corrupt> {
        let (_, page) = self.page_for(key)?;
        Ok(page
            .entries
            .iter()
            .find(|e| *e[0] == *key)
            .map(Vec::as_slice))
    }

    /// Inserts or replaces the entry of `entry[0]` (the elements are
    /// copied); true when it was new. With `only_new`, an existing entry
    /// is left as it is.
    pub fn put(&mut self, entry: &[&[u8]], only_new: bool) -> Result<bool, Corrupt> {
        debug_assert_eq!(entry.len(), self.arity);
        let (number, _) = self.page_for(entry[0])?;
        let page = self.pages.get_mut(&number).expect("just found");
        let added = entry_bytes(entry.iter().copied());
        let owned = || entry.iter().map(|e| Cow::Owned(e.to_vec())).collect();
        let new = match page.entries.iter_mut().find(|e| *e[0] == *entry[0]) {
            Some(_) if only_new => return Ok(false),
            Some(old) => {
                let removed = entry_bytes(old.iter().map(|e| &e[..]));
                *old = owned();
                self.root.bytes = self.root.bytes + added - removed;
                false
            }
            None => {
                page.entries.push(owned());
                self.root.bytes += added;
                self.root.count += 1;
                true
            }
        };
        page.dirty = true;
        self.root_dirty = true;
        Ok(new)
    }

    /// Removes the entry of `key`; returns it when it was present.
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Entry<'a>>, Corrupt> {
        let (number, _) = self.page_for(key)?;
        let page = self.pages.get_mut(&number).expect("just found");
        let Some(at) = page.entries.iter().position(|e| *e[0] == *key) else {
            return Ok(None);
        };
        let entry = page.entries.remove(at);
        page.dirty = true;
        self.root.count -= 1;
        self.root.bytes -= entry_bytes(entry.iter().map(|e| &e[..]));
        self.root_dirty = true;
        Ok(Some(entry))
    }

    /// The loaded pages and their entries, in page order.
    pub fn pages(&self) -> impl Iterator<Item = (u64, &[Entry<'a>])> + '_ {
        self.pages.iter().map(|(n, p)| (*n, p.entries.as_slice()))
    }

    /// Splits or merges while the load asks for it and the pages involved
    /// were planned (a write that could not catch up leaves it to the next).
    pub fn rebalance(&mut self) {
        loop {
            if self.root.needs_split() {
                let (from, to) = self.root.split_pair();
                if !(self.pages.contains_key(&from) && self.pages.contains_key(&to)) {
                    return;
                }
                let level = self.root.level;
                let source = self.pages.get_mut(&from).expect("planned");
                let (moved, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut source.entries)
                    .into_iter()
                    .partition(|e| key_hash(&e[0]) >> level & 1 == 1);
                source.entries = kept;
                source.dirty = true;
                let target = self.pages.get_mut(&to).expect("planned");
                target.entries.extend(moved);
                target.dirty = true;
                self.root.advance_split();
            } else if self.root.needs_merge() {
                let (into, from) = self.root.merge_pair();
                if !(self.pages.contains_key(&from) && self.pages.contains_key(&into)) {
                    return;
                }
                let source = self.pages.get_mut(&from).expect("planned");
                let moved = std::mem::take(&mut source.entries);
                source.dirty = true;
                let target = self.pages.get_mut(&into).expect("planned");
                target.entries.extend(moved);
                target.dirty = true;
                self.root.retreat_split();
            } else {
                return;
            }
            self.root_dirty = true;
        }
    }

    /// Rebalances, then gives the root and pages to store.
    pub fn finish(mut self) -> Output {
        self.rebalance();
        if !self.root_dirty {
            return Output::default();
        }
        let pages = self
            .pages
            .into_iter()
            .filter(|(_, page)| page.dirty)
            .map(|(number, page)| {
                let stored = (!page.entries.is_empty()).then(|| {
                    let mut out = PackedWriter::default();
                    page.entries.iter().flatten().for_each(|e| out.push(e));
                    out.finish()
                });
                (number, stored)
            })
            .collect();
        self.root.header = self.root.header.next();
        Output {
            root: (self.root.count > 0).then(|| self.root.encode()),
            changed: true,
            pages,
        }
    }
}
