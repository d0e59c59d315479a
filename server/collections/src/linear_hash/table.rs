//! A paged hash or set being read or edited: the root and the pages a
//! command planned (`Root::pages_for`), entries borrowed from the stored
//! pages until changed. `finish` gives what to store.

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use super::page::Entry;
use super::page::{Found, Page};
use super::{entry_bytes, key_hash, Root};
use crate::packed::{Corrupt, Packed};

/// A loaded page's entries, each a slice of `arity` elements.
pub type Entries<'t, 'a> = std::slice::ChunksExact<'t, Cow<'a, [u8]>>;

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
        let mut table = Table {
            root,
            arity,
            pages: BTreeMap::new(),
            root_dirty: false,
        };
        for (number, bytes) in pages {
            table.add_page(number, bytes)?;
        }
        Ok(table)
    }

    /// Loads one more page (None: missing, an empty page); a page loaded
    /// already is kept as it is.
    pub fn add_page(&mut self, number: u64, bytes: Option<&'a [u8]>) -> Result<(), Corrupt> {
        let mut page = Page::default();
        if let Some(bytes) = bytes {
            let packed = Packed::parse(bytes)?;
            if packed.len() % self.arity != 0 {
                return Err(Corrupt);
            }
            page.stored = Some(packed);
        }
        self.pages.entry(number).or_insert(page);
        Ok(())
    }

    /// Whether an edit changed anything (a page or the root).
    pub fn changed(&self) -> bool {
        self.root_dirty
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
    pub fn get(&self, key: &[u8]) -> Result<Option<Entry<'a>>, Corrupt> {
        let (_, page) = self.page_for(key)?;
        let arity = self.arity;
        match page.find(arity, key)? {
            None => Ok(None),
            // (A page not decoded is not decoded for a lookup.)
            Some(Found {
                entry: Some(entry), ..
            }) => Ok(Some(entry)),
            Some(Found { at, entry: None }) => {
                let elements = page.elements()?;
                let entry = elements.get(at * arity..(at + 1) * arity).ok_or(Corrupt)?;
                Ok(Some(entry.to_vec()))
            }
        }
    }

    /// Inserts or replaces the entry of `entry[0]` (the elements are
    /// copied); true when it was new. With `only_new`, an existing entry
    /// is left as it is.
    pub fn put(&mut self, entry: &[&[u8]], only_new: bool) -> Result<bool, Corrupt> {
        debug_assert_eq!(entry.len(), self.arity);
        let (number, _) = self.page_for(entry[0])?;
        let page = self.pages.get_mut(&number).expect("just found");
        let added = entry_bytes(entry.iter().copied());
        let owned = entry.iter().map(|e| Cow::Owned(e.to_vec()));
        let new = match page.find(self.arity, entry[0])? {
            Some(_) if only_new => return Ok(false),
            Some(found) => {
                let removed = page.replace(self.arity, found, owned.collect())?;
                self.root.bytes = self.root.bytes + added - removed;
                false
            }
            None => {
                page.append(owned);
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
        let Some(found) = page.find(self.arity, key)? else {
            return Ok(None);
        };
        let entry = page.remove(self.arity, found)?;
        page.dirty = true;
        self.root.count -= 1;
        self.root.bytes -= entry_bytes(entry.iter().map(|e| &e[..]));
        self.root_dirty = true;
        Ok(Some(entry))
    }

    /// The loaded pages and their entries, in page order.
    pub fn pages(&self) -> Result<Vec<(u64, Entries<'_, 'a>)>, Corrupt> {
        let arity = self.arity;
        self.pages
            .iter()
            .map(move |(n, p)| Ok((*n, p.elements()?.chunks_exact(arity))))
            .collect()
    }

    /// Splits or merges while the load asks for it and the pages involved
    /// were planned (a write that could not catch up leaves it to the next).
    pub fn rebalance(&mut self) -> Result<(), Corrupt> {
        loop {
            if self.root.needs_split() {
                let (from, to) = self.root.split_pair();
                if !(self.pages.contains_key(&from) && self.pages.contains_key(&to)) {
                    return Ok(());
                }
                let (level, arity) = (self.root.level, self.arity);
                let source = self.pages.get_mut(&from).expect("planned");
                let (mut kept, mut moved) = (Vec::new(), Vec::new());
                let mut elements = std::mem::take(source.elements_mut()?).into_iter();
                while let Some(key) = elements.next() {
                    let to = if key_hash(&key) >> level & 1 == 1 {
                        &mut moved
                    } else {
                        &mut kept
                    };
                    to.push(key);
                    to.extend(elements.by_ref().take(arity - 1));
                }
                *source.elements_mut()? = kept;
                source.dirty = true;
                let target = self.pages.get_mut(&to).expect("planned");
                target.elements_mut()?.extend(moved);
                target.dirty = true;
                self.root.advance_split();
            } else if self.root.needs_merge() {
                let (into, from) = self.root.merge_pair();
                if !(self.pages.contains_key(&from) && self.pages.contains_key(&into)) {
                    return Ok(());
                }
                let source = self.pages.get_mut(&from).expect("planned");
                let moved = std::mem::take(source.elements_mut()?);
                source.dirty = true;
                let target = self.pages.get_mut(&into).expect("planned");
                target.elements_mut()?.extend(moved);
                target.dirty = true;
                self.root.retreat_split();
            } else {
                return Ok(());
            }
            self.root_dirty = true;
        }
    }

    /// Rebalances, then gives the root and pages to store.
    pub fn finish(mut self) -> Result<Output, Corrupt> {
        self.rebalance()?;
        if !self.root_dirty {
            return Ok(Output::default());
        }
        let pages = self
            .pages
            .into_iter()
            .filter(|(_, page)| page.dirty)
            .map(|(number, page)| (number, page.encode()))
            .collect();
        self.root.header = self.root.header.next();
        Ok(Output {
            root: (self.root.count > 0).then(|| self.root.encode()),
            changed: true,
            pages,
        })
    }

    /// The pages [`Table::finish`] would write, without encoding them.
    pub fn pages_to_write(&mut self) -> Result<Vec<u64>, Corrupt> {
        self.rebalance()?;
        Ok(match self.root_dirty {
            true => self
                .pages
                .iter()
                .filter(|(_, p)| p.dirty)
                .map(|(n, _)| *n)
                .collect(),
            false => Vec::new(),
        })
    }
}
