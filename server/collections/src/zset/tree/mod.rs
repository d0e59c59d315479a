//! The order-statistic (counted) B+tree of a paged sorted set: its
//! (score, member) entries in leaves, each inner node listing its
//! children with their entry counts and greatest entries. The top node
//! lives in the root item; every other node is a page. So a member's
//! rank, the entries at a rank range, and an insert or removal touch one
//! path of pages (O(log n)).
//!
//! A [`Tree`] works over the pages a command loaded. When it needs one
//! that was not loaded it answers [`Miss::Need`] with every page it can
//! tell it needs at that point: the command loads them and runs again
//! (each run sees the same root, so the same tree), one tree level per
//! run.
//!
//! Pages: a leaf is a packed sorted set (member, score pairs in order);
//! an inner node a packed list of (child page | count | greatest score,
//! greatest member) pairs; a freed page holds one element, the next free
//! page (a chain the root's `free` starts), so page numbers stay compact.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::cmp;
use crate::packed::Corrupt;

mod codec;
mod inner;
mod leaf;
mod moves;
mod read;
mod rebalance;

use codec::decode_free;
pub use codec::{decode_inner, decode_leaf, encode_free, encode_inner, encode_leaf};
use inner::Inner;
use leaf::Leaf;

/// An entry: its member borrowed from the page it was read from, owned
/// when the command brings it (decoding a page allocates no member).
pub type Key<'a> = (f64, Cow<'a, [u8]>);

/// The node id of the top node (held in the root).
pub const TOP: u64 = u64::MAX;
/// The end of the free chain.
pub const NO_PAGE: u64 = u64::MAX;

/// A leaf splits past this many entries ...
pub const LEAF_ENTRIES: usize = 64;
/// ... or this many bytes (when it holds two entries or more).
pub const LEAF_BYTES: usize = 2048;
/// An inner node (the top too) splits past this many children ...
pub const INNER_CHILDREN: usize = 64;
/// ... or this many bytes.
pub const INNER_BYTES: usize = 8192;

/// An inner node's entry for one child.
#[derive(Clone, Debug, PartialEq)]
pub struct Child<'a> {
    pub page: u64,
    pub count: u64,
    /// The child's greatest entry.
    pub max: Key<'a>,
}

/// Why a tree operation could not finish.
#[derive(Debug, PartialEq, Eq)]
pub enum Miss {
    /// Load these pages and run again.
    Need(Vec<u64>),
    Corrupt,
}

impl From<Corrupt> for Miss {
    fn from(_: Corrupt) -> Miss {
        Miss::Corrupt
    }
}

/// `keys` with their members copied out of the pages.
pub fn into_owned(keys: Vec<Key<'_>>) -> Vec<(f64, Vec<u8>)> {
    keys.into_iter().map(|(s, m)| (s, m.into_owned())).collect()
}

fn key_cmp(a: &Key<'_>, b: &Key<'_>) -> Ordering {
    cmp(&(a.0, &a.1), &(b.0, &b.1))
}

#[derive(Clone, Debug)]
enum Node<'a> {
    Leaf(Leaf<'a>),
    Inner(Inner<'a>),
}

/// The tree's part of the root.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape<'a> {
    /// Inner levels: 1 when the top's children are leaves.
    pub height: u32,
    /// Page slots ever allocated (pages `pages.start..` of the root).
    pub slots: u64,
    /// The first free page, or [`NO_PAGE`].
    pub free: u64,
    pub top: Vec<Child<'a>>,
}

/// The tree over the loaded pages, being read or edited.
pub struct Tree<'a> {
    pub shape: Shape<'a>,
    /// Page number of slot 0; slot `s` is page `base - 1 - s`.
    base: u64,
    raw: BTreeMap<u64, &'a [u8]>,
    nodes: BTreeMap<u64, Node<'a>>,
    dirty: BTreeSet<u64>,
    /// Pages freed by this edit, with the next page of the chain.
    freed: BTreeMap<u64, u64>,
    changed: bool,
}

impl<'a> Tree<'a> {
    /// The tree of `shape` whose slot pages count down from `base`, over
    /// the loaded pages (missing ones are not passed).
    pub fn new(
        shape: Shape<'a>,
        base: u64,
        pages: impl IntoIterator<Item = (u64, &'a [u8])>,
    ) -> Tree<'a> {
        Tree {
            shape,
            base,
            raw: pages.into_iter().collect(),
            nodes: BTreeMap::new(),
            dirty: BTreeSet::new(),
            freed: BTreeMap::new(),
            changed: false,
        }
    }

    /// Loads one more page (a page loaded already is kept as it is).
    pub fn add_page(&mut self, page: u64, bytes: &'a [u8]) {
        self.raw.entry(page).or_insert(bytes);
    }

    /// Entries in the tree.
    pub fn len(&self) -> u64 {
        self.shape.top.iter().map(|c| c.count).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn changed(&self) -> bool {
        self.changed
    }

    fn load(&mut self, page: u64, leaf: bool) -> Result<(), Miss> {
        if self.nodes.contains_key(&page) {
            return Ok(());
        }
        let bytes = *self.raw.get(&page).ok_or_else(|| Miss::Need(vec![page]))?;
        let node = match leaf {
            true => Node::Leaf(Leaf::decode(bytes)?),
            false => Node::Inner(Inner::decode(bytes)?),
        };
        self.nodes.insert(page, node);
        Ok(())
    }

    /// The children of inner node `id` at `depth` (0 = the top).
    fn kids(&mut self, id: u64, depth: u32) -> Result<&[Child<'a>], Miss> {
        if id == TOP {
            return Ok(&self.shape.top);
        }
        Ok(self.inner(id, depth)?)
    }

    /// The children of inner node `id` at `depth`, to change freely (the
    /// node is then encoded whole).
    fn kids_mut(&mut self, id: u64, depth: u32) -> Result<&mut Vec<Child<'a>>, Miss> {
        if id == TOP {
            return Ok(&mut self.shape.top);
        }
        Ok(self.inner(id, depth)?.kids_mut())
    }

    /// Inner node `id` (not the top) at `depth`, loaded.
    fn inner(&mut self, id: u64, depth: u32) -> Result<&mut Inner<'a>, Miss> {
        debug_assert!(depth > 0 && depth < self.shape.height + 1);
        self.load(id, false)?;
        match self.nodes.get_mut(&id) {
            Some(Node::Inner(node)) => Ok(node),
            _ => Err(Miss::Corrupt),
        }
    }

    /// Sets child `at` of inner node `id` at `depth` to `entry`; whether
    /// that changed it. A new count alone leaves a stored node patchable.
    fn set_child(
        &mut self,
        id: u64,
        depth: u32,
        at: usize,
        entry: Child<'a>,
    ) -> Result<bool, Miss> {
        if id == TOP {
            let changed = self.shape.top[at] != entry;
            self.shape.top[at] = entry;
            return Ok(changed);
        }
        let node = self.inner(id, depth)?;
        let old = &node[at];
        let same_place = old.page == entry.page
            && old.max.0.to_bits() == entry.max.0.to_bits()
            && old.max.1 == entry.max.1;
        if same_place {
            let changed = old.count != entry.count;
            node.set_count(at, entry.count);
            return Ok(changed);
        }
        node.kids_mut()[at] = entry;
        Ok(true)
    }

    fn leaf(&mut self, id: u64) -> Result<&mut Leaf<'a>, Miss> {
        self.load(id, true)?;
        match self.nodes.get_mut(&id) {
            Some(Node::Leaf(keys)) => Ok(keys),
            _ => Err(Miss::Corrupt),
        }
    }

    /// The path from the top toward `key`: (node, child index) per inner
    /// level, and the leaf (the last one when `key` is past every entry).
    fn path_to(&mut self, key: &Key<'_>) -> Result<(Vec<(u64, usize)>, u64), Miss> {
        let mut path = Vec::with_capacity(self.shape.height as usize);
        let leaf = self.walk(key, |id, at| path.push((id, at)))?;
        Ok((path, leaf))
    }

    /// The leaf toward `key` (as [`Tree::path_to`]), `step` told each
    /// inner level's (node, child index).
    fn walk(&mut self, key: &Key<'_>, mut step: impl FnMut(u64, usize)) -> Result<u64, Miss> {
        let mut id = TOP;
        for depth in 0..self.shape.height {
            let kids = self.kids(id, depth)?;
            if kids.is_empty() {
                return Err(Miss::Corrupt);
            }
            // (Children are in the order of their greatest entries.)
            let at = kids
                .partition_point(|c| key_cmp(&c.max, key) == Ordering::Less)
                .min(kids.len() - 1);
            step(id, at);
            id = kids[at].page;
        }
        self.leaf(id)?;
        Ok(id)
    }

    /// The pages to load so that each of `keys` can be found (empty: all
    /// are loaded); for an edit naming several entries.
    pub fn missing_for<'k, 'm: 'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k Key<'m>>,
    ) -> Result<Vec<u64>, Miss> {
        let mut need = Vec::new();
        for key in keys {
            match self.walk(key, |_, _| {}) {
                Ok(_) => {}
                Err(Miss::Need(pages)) => need.extend(pages),
                Err(e) => return Err(e),
            }
        }
        need.sort_unstable();
        need.dedup();
        Ok(need)
    }

    /// Inserts `key` (not present: the member index says so).
    pub fn insert(&mut self, key: Key<'a>) -> Result<(), Miss> {
        if self.shape.top.is_empty() {
            let page = self.alloc();
            self.nodes.insert(page, Node::Leaf(Leaf::default()));
            self.shape.top.push(Child {
                page,
                count: 0,
                max: key.clone(),
            });
        }
        let (path, leaf) = self.path_to(&key)?;
        let keys = self.leaf(leaf)?;
        let at = keys
            .binary_search_by(|k| key_cmp(k, &key))
            .unwrap_or_else(|at| at);
        keys.insert(at, key);
        self.fix(path, leaf)
    }

    /// Removes `key`; false when it was not there.
    pub fn remove(&mut self, key: &Key<'_>) -> Result<bool, Miss> {
        if self.shape.top.is_empty() {
            return Ok(false);
        }
        let (path, leaf) = self.path_to(key)?;
        let keys = self.leaf(leaf)?;
        let Ok(at) = keys.binary_search_by(|k| key_cmp(k, key)) else {
            return Ok(false);
        };
        keys.remove(at);
        self.fix(path, leaf)?;
        Ok(true)
    }

    /// After an edit of `leaf`: recounts each node of `path` bottom up,
    /// splits what grew too big, drops what became empty, and merges what
    /// became too small with a neighbour (or takes entries from it). A
    /// parent whose entry for the child comes out the same (a member moved
    /// within its leaf: same count, same greatest entry) is not rewritten.
    fn fix(&mut self, path: Vec<(u64, usize)>, leaf: u64) -> Result<(), Miss> {
        self.changed = true;
        self.dirty.insert(leaf);
        for (depth, &(parent, at)) in path.iter().enumerate().rev() {
            let depth = depth as u32;
            let child = self.kids(parent, depth)?[at].page;
            let (summary, split) = self.summarize(child)?;
            let small = summary.is_some() && split.is_none() && self.underfull(child);
            let mut changed = small || split.is_some();
            match summary {
                None => {
                    self.kids_mut(parent, depth)?.remove(at);
                    self.free(child);
                    changed = true;
                }
                Some(summary) => {
                    changed |= self.set_child(parent, depth, at, summary)?;
                    if let Some(extra) = split {
                        self.kids_mut(parent, depth)?.insert(at + 1, extra);
                    }
                }
            }
            if small {
                self.rebalance(parent, depth, at)?;
            }
            if changed && parent != TOP {
                self.dirty.insert(parent);
            }
        }
        self.fix_top()
    }

    /// The child entry for `page` (None: empty, to drop), and the entry of
    /// the page it split off, if it grew too big.
    fn summarize(&mut self, page: u64) -> Result<(Option<Child<'a>>, Option<Child<'a>>), Miss> {
        let split = if self.nodes.get(&page).ok_or(Miss::Corrupt)?.oversized() {
            let half = self.nodes.get_mut(&page).ok_or(Miss::Corrupt)?.split_half();
            let new = self.alloc();
            self.nodes.insert(new, half);
            self.dirty.insert(new);
            self.dirty.insert(page);
            self.summary_of(new)
        } else {
            None
        };
        Ok((self.summary_of(page), split))
    }

    fn summary_of(&self, page: u64) -> Option<Child<'a>> {
        let (count, max) = match self.nodes.get(&page)? {
            Node::Leaf(keys) => (keys.len() as u64, keys.last()?.clone()),
            Node::Inner(node) => (node.iter().map(|c| c.count).sum(), node.last()?.max.clone()),
        };
        Some(Child { page, count, max })
    }

    /// Grows the tree when the top is too big, shrinks it when the top has
    /// one inner child left (loaded).
    fn fix_top(&mut self) -> Result<(), Miss> {
        if rebalance::too_big(&self.shape.top) {
            let page = self.alloc();
            let kids = std::mem::take(&mut self.shape.top);
            self.nodes.insert(page, Node::Inner(Inner::new(kids)));
            self.dirty.insert(page);
            self.shape.height += 1;
            let (summary, split) = self.summarize(page)?;
            self.shape.top.extend(summary);
            self.shape.top.extend(split);
        }
        while self.shape.height > 1 && self.shape.top.len() == 1 {
            let only = self.shape.top[0].page;
            let Some(Node::Inner(node)) = self.nodes.get(&only) else {
                break;
            };
            self.shape.top = node.to_vec();
            self.shape.height -= 1;
            self.free(only);
        }
        if self.shape.top.is_empty() {
            self.shape.height = 1;
        }
        Ok(())
    }

    fn alloc(&mut self) -> u64 {
        let free = self.shape.free;
        let next = match self.freed.remove(&free) {
            Some(next) => Some(next),
            None => self.raw.get(&free).and_then(|b| decode_free(b).ok()),
        };
        match next {
            Some(next) if free != NO_PAGE => {
                self.raw.remove(&free);
                self.shape.free = next;
                free
            }
            _ => {
                self.shape.slots += 1;
                self.base - self.shape.slots
            }
        }
    }

    fn free(&mut self, page: u64) {
        self.nodes.remove(&page);
        self.dirty.remove(&page);
        self.freed.insert(page, self.shape.free);
        self.shape.free = page;
    }

    /// The pages to write: (page, bytes) for changed nodes and freed pages.
    pub fn finish(self) -> Vec<(u64, Vec<u8>)> {
        let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
        for page in &self.dirty {
            match self.nodes.get(page) {
                Some(Node::Leaf(leaf)) => out.push((*page, leaf.encode())),
                Some(Node::Inner(node)) => out.push((*page, node.encode())),
                None => {}
            }
        }
        out.extend(
            self.freed
                .iter()
                .map(|(&page, &next)| (page, encode_free(next))),
        );
        out.sort_by_key(|(page, _)| *page);
        out
    }

    /// The pages [`Tree::finish`] would write, without encoding them.
    pub fn pages_to_write(&self) -> Vec<u64> {
        let dirty = self.dirty.iter().filter(|p| self.nodes.contains_key(p));
        dirty.chain(self.freed.keys()).copied().collect()
    }

    /// The pages the next allocation may read (the free chain's head).
    pub fn free_head(shape: &Shape<'_>) -> Option<u64> {
        (shape.free != NO_PAGE).then_some(shape.free)
    }
}
