//! The paged form of a sorted set: a member index (linear hashing of
//! member, score pairs: `crate::linear_hash`, as a paged hash) and an
//! order-statistic B+tree of (score, member) entries (`tree.rs`), both in
//! pages of one root. The root (the user key) is
//!
//! ```text
//! RootHeader | count:u64 | index bytes:u64 | level:u8 | split:u64
//!   | height:u8 | slots:u64 | free:u64 | top node (packed)
//! ```
//!
//! Index page `k` is page `BASE + k`; tree slot `s` is page `BASE - 1 -
//! s`, so the root's page range `BASE - slots .. BASE + P` stays compact
//! as both grow (the engine reclaims that range when the root goes).

use std::borrow::Cow;

use super::tree::{decode_inner, encode_inner, encode_leaf, Child, Key, Shape, Tree, NO_PAGE};
use super::Entry;
use crate::linear_hash::{self, Root};
use crate::packed::{Corrupt, Packed, PackedWriter};
use crate::paged::{Built, RootHeader, ROOT_HEADER_LEN};

/// The page number between the tree's slots (below) and the index's
/// pages (from it up).
pub const BASE: u64 = 1 << 62;
/// Entries per member-index entry: the member, its score (8 bytes).
pub const ARITY: usize = 2;
/// Entries a leaf gets when a sorted set is built whole (room to grow).
const BUILD_LEAF: usize = 48;
/// Children an inner node gets when built whole.
const BUILD_INNER: usize = 48;

/// A parsed sorted-set root.
#[derive(Clone, Debug, PartialEq)]
pub struct ZRoot<'a> {
    /// The member index's root (its header's pages are `0..P`, relative).
    pub index: Root,
    /// The tree's shape, its top node's members borrowed from the root.
    pub tree: Shape<'a>,
}

impl<'a> ZRoot<'a> {
    pub fn parse(bytes: &'a [u8]) -> Result<ZRoot<'a>, Corrupt> {
        ZRoot::parse_with(bytes, true)
    }

    /// The root less its top node (left empty, not decoded): what planning
    /// an update's pages needs (the member index and the free chain), at
    /// a fraction of the cost. Not for running a command on.
    pub fn parse_for_plan(bytes: &'a [u8]) -> Result<ZRoot<'a>, Corrupt> {
        ZRoot::parse_with(bytes, false)
    }

    fn parse_with(bytes: &'a [u8], top: bool) -> Result<ZRoot<'a>, Corrupt> {
        let (header, rest) = RootHeader::parse(bytes)?;
        if rest.len() < 25 + 17 {
            return Err(Corrupt);
        }
        let word = |at: usize| u64::from_le_bytes(rest[at..at + 8].try_into().expect("8 bytes"));
        let index = Root {
            header: RootHeader {
                pages: 0..1,
                ..header.clone()
            },
            count: word(0),
            bytes: word(8),
            level: u32::from(rest[16]),
            split: word(17),
        };
        if index.level > 62 || index.split >= 1 << index.level {
            return Err(Corrupt);
        }
        let mut index = index;
        index.header.pages = 0..index.page_count();
        let tree = Shape {
            height: u32::from(rest[25]),
            slots: word(26),
            free: word(34),
            top: match top {
                true => decode_inner(&rest[42..])?,
                false => Vec::new(),
            },
        };
        let root = ZRoot { index, tree };
        if header.pages != root.pages() || root.tree.height == 0 || root.tree.slots > BASE {
            return Err(Corrupt);
        }
        Ok(root)
    }

    /// Every page of the root: the tree's slots, then the index's pages.
    pub fn pages(&self) -> std::ops::Range<u64> {
        BASE - self.tree.slots..BASE + self.index.page_count()
    }

    pub fn len(&self) -> u64 {
        self.index.count
    }

    pub fn is_empty(&self) -> bool {
        self.index.count == 0
    }

    /// The root's bytes and the pages written after an edit of `tree`
    /// (this root's tree) alone: the member index is left as it is but
    /// for its count. For tests and fuzzing, which edit the tree without
    /// a member index (a command writes both: `paged/update.rs`).
    pub fn after_tree_edit(&self, tree: Tree<'_>) -> (Vec<u8>, Vec<(u64, Vec<u8>)>) {
        let edited = ZRoot {
            index: Root {
                count: tree.len(),
                ..self.index.clone()
            },
            tree: tree.shape.clone(),
        };
        (edited.encode(), tree.finish())
    }

    /// The root's bytes (the header's version as in `index.header`).
    pub fn encode(&self) -> Vec<u8> {
        let top = encode_inner(&self.tree.top);
        let mut out = Vec::with_capacity(ROOT_HEADER_LEN + 25 + 17 + top.len());
        RootHeader {
            pages: self.pages(),
            ..self.index.header.clone()
        }
        .write(&mut out);
        out.extend_from_slice(&self.index.count.to_le_bytes());
        out.extend_from_slice(&self.index.bytes.to_le_bytes());
        out.push(self.index.level as u8);
        out.extend_from_slice(&self.index.split.to_le_bytes());
        out.push(self.tree.height as u8);
        out.extend_from_slice(&self.tree.slots.to_le_bytes());
        out.extend_from_slice(&self.tree.free.to_le_bytes());
        out.extend_from_slice(&top);
        out
    }

    /// The index pages (absolute numbers) the members `keys` lie on, plus
    /// those of the splits or merges `adds`/`removes` entries may cause.
    pub fn index_pages<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k [u8]>,
        adds: u64,
        removes: u64,
    ) -> Vec<u64> {
        self.index
            .pages_for(keys, adds, adds * 64, removes)
            .into_iter()
            .map(|p| BASE + p)
            .collect()
    }

    /// A tree over `pages` (absolute numbers; tree pages are picked out).
    pub fn tree<'p>(&self, pages: &'p [(u64, Option<Vec<u8>>)]) -> Tree<'p>
    where
        'a: 'p,
    {
        let loaded = pages
            .iter()
            .filter(|(p, _)| *p < BASE)
            .filter_map(|(p, b)| b.as_deref().map(|b| (*p, b)));
        Tree::new(self.tree.clone(), BASE, loaded)
    }

    /// The member index over `pages` (absolute numbers; index pages are
    /// picked out).
    pub fn table<'p>(
        &self,
        pages: &'p [(u64, Option<Vec<u8>>)],
    ) -> Result<linear_hash::Table<'p>, Corrupt> {
        let loaded = pages
            .iter()
            .filter(|(p, _)| *p >= BASE)
            .map(|(p, b)| (p - BASE, b.as_deref()));
        linear_hash::Table::from_root(self.index.clone(), ARITY, loaded)
    }
}

/// An index entry's score.
pub fn index_score(entry: &[std::borrow::Cow<'_, [u8]>]) -> Result<f64, Corrupt> {
    let bytes: [u8; 8] = entry.get(1).ok_or(Corrupt)?[..]
        .try_into()
        .map_err(|_| Corrupt)?;
    let score = f64::from_le_bytes(bytes);
    (!score.is_nan()).then_some(score).ok_or(Corrupt)
}

/// The tree's layout of `entries` (in order): its shape and its pages.
fn layout<'e>(entries: &[Entry<'e>]) -> (Shape<'e>, Vec<(u64, Vec<u8>)>) {
    let mut pages = Vec::new();
    let mut slots = 0u64;
    let mut level: Vec<Child> = Vec::new();
    for chunk in entries.chunks(BUILD_LEAF) {
        let keys: Vec<Key> = chunk.iter().map(|(s, m)| (*s, Cow::Borrowed(*m))).collect();
        slots += 1;
        let page = BASE - slots;
        pages.push((page, encode_leaf(&keys)));
        level.push(Child {
            page,
            count: keys.len() as u64,
            max: keys.last().expect("a chunk is not empty").clone(),
        });
    }
    let mut height = 1;
    while level.len() > BUILD_INNER {
        let mut up = Vec::new();
        for chunk in level.chunks(BUILD_INNER) {
            slots += 1;
            let page = BASE - slots;
            pages.push((page, encode_inner(chunk)));
            up.push(Child {
                page,
                count: chunk.iter().map(|c| c.count).sum(),
                max: chunk.last().expect("not empty").max.clone(),
            });
        }
        level = up;
        height += 1;
    }
    let shape = Shape {
        height,
        slots,
        free: NO_PAGE,
        top: level,
    };
    (shape, pages)
}

/// The pages [`build`] stores the packed sorted set `packed` in.
pub fn build_range(packed: Packed<'_>) -> Result<std::ops::Range<u64>, Corrupt> {
    let built = build(packed, 0)?;
    Ok(RootHeader::parse(&built.root)?.0.pages)
}

/// The paged form of the packed sorted set `packed` under `generation`.
pub fn build(packed: Packed<'_>, generation: u64) -> Result<Built, Corrupt> {
    let entries = super::entries(packed)?;
    let mut members = PackedWriter::default();
    let mut scores = Vec::with_capacity(entries.len());
    for (score, _) in &entries {
        scores.push(super::score_bytes(*score));
    }
    for ((_, member), score) in entries.iter().zip(&scores) {
        members.push(member);
        members.push(score);
    }
    let members = members.finish();
    let index = linear_hash::build(Packed::parse(&members)?, ARITY, generation)?;
    let (tree, mut pages) = layout(&entries);
    let root = ZRoot {
        index: Root::parse(&index.root)?,
        tree,
    };
    pages.extend(index.pages.into_iter().map(|(p, b)| (BASE + p, b)));
    pages.sort_by_key(|(p, _)| *p);
    Ok(Built {
        root: root.encode(),
        pages,
    })
}

/// The packed sorted set of a paged one, from all its pages (absolute
/// numbers; missing pages are not passed).
pub fn flatten(root: &[u8], pages: &[(u64, Option<Vec<u8>>)]) -> Result<Vec<u8>, Corrupt> {
    let root = ZRoot::parse(root)?;
    let mut tree = root.tree(pages);
    let keys = tree.range(0, tree.len()).map_err(|_| Corrupt)?;
    Ok(encode_leaf(&keys))
}
