//! Sorted-set commands on the paged form (`citadel_collections::zset::
//! paged`): a root, a member index (linear-hash pages of member, score)
//! and an order-statistic B+tree of (score, member) in pages. A command
//! plans from the root the index pages of the members it names and the
//! free chain's head; the tree's pages are found level by level: a run
//! that meets a page it has not loaded asks for it (`Step::More`) and the
//! update runs again with it, the root unchanged (else everything is
//! planned afresh). So ZADD, ZINCRBY, ZREM, ZSCORE, ZRANK, ZCARD, ZCOUNT,
//! ZRANGE by rank or score and ZPOPMIN/MAX read and write O(log n) pages,
//! all in one update of root and pages (atomic to readers, crash-atomic).
//! A command runs ahead of that update over pages copied without locks
//! (`ahead.rs`) and the update stores its edit (`update.rs`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeSet;

use citadel_cache::CacheHandle;
use citadel_collections::linear_hash::Table;
use citadel_collections::zset::paged::{index_score, ZRoot, ARITY, BASE};
use citadel_collections::zset::tree::{Key, Miss, Shape, Tree};
use citadel_collections::Corrupt;

use super::super::linear::{loaded_entries, scan_table};
use super::ZSET;
use crate::command::error::CmdError;

mod ahead;
mod update;

pub(super) use update::{read_one, update_guarded, update_into, update_one, update_planned};

/// Why a paged run stopped: pages to load first, or an error to answer.
pub(super) enum Fail {
    Need(Vec<u64>),
    Cmd(CmdError),
}

impl From<Miss> for Fail {
    fn from(miss: Miss) -> Fail {
        match miss {
            Miss::Need(pages) => Fail::Need(pages),
            Miss::Corrupt => Fail::Cmd(CmdError::CorruptValue),
        }
    }
}

impl From<CmdError> for Fail {
    fn from(e: CmdError) -> Fail {
        Fail::Cmd(e)
    }
}

impl From<Corrupt> for Fail {
    fn from(_: Corrupt) -> Fail {
        Fail::Cmd(CmdError::CorruptValue)
    }
}

/// Several tree probes in one round: each answer, or the pages it still
/// needs gathered into `need` (then None), so probes whose paths differ
/// load their pages together instead of one run per probe and level.
pub(super) fn gather<T>(probe: Result<T, Miss>, need: &mut Vec<u64>) -> Result<Option<T>, Fail> {
    match probe {
        Ok(value) => Ok(Some(value)),
        Err(Miss::Need(pages)) => {
            need.extend(pages);
            Ok(None)
        }
        Err(Miss::Corrupt) => Err(Fail::Cmd(CmdError::CorruptValue)),
    }
}

/// The (member, score) pairs of one ZSCAN call.
pub(super) type ScanPage = Vec<(Vec<u8>, f64)>;

/// A paged sorted set loaded for one run of a command.
pub(super) struct PagedZ<'p> {
    /// The root as parsed, less its top node (`tree` has it).
    root: ZRoot<'p>,
    planned: BTreeSet<u64>,
    table: Table<'p>,
    pub tree: Tree<'p>,
    /// The last member looked up and its score: a command run ahead runs
    /// once per tree level it loads, and an edit looks its member up
    /// again; each lookup would scan the member's index page.
    last_score: RefCell<Option<(Vec<u8>, Option<f64>)>>,
}

impl<'p> PagedZ<'p> {
    /// The set whose root is `root`, over the copied pages `pages`.
    pub(super) fn load(
        root: &'p [u8],
        pages: &'p [(u64, Option<Vec<u8>>)],
    ) -> Result<PagedZ<'p>, CmdError> {
        PagedZ::from_slices(root, pages.iter().map(|(p, b)| (*p, b.as_deref())))
    }

    /// The set whose root is `root`, over pages (page number, bytes; None:
    /// not stored) borrowed from wherever they were read.
    pub(super) fn from_slices(
        root: &'p [u8],
        pages: impl IntoIterator<Item = (u64, Option<&'p [u8]>)>,
    ) -> Result<PagedZ<'p>, CmdError> {
        PagedZ::from_parsed(ZRoot::parse(root)?, pages)
    }

    /// [`PagedZ::from_slices`] with the root already parsed.
    pub(super) fn from_parsed(
        mut root: ZRoot<'p>,
        pages: impl IntoIterator<Item = (u64, Option<&'p [u8]>)>,
    ) -> Result<PagedZ<'p>, CmdError> {
        // The tree takes the root's top node (not a copy); the set keeps
        // the rest of the root, which it plans index pages from.
        let top = std::mem::take(&mut root.tree.top);
        let shape = Shape {
            top,
            ..root.tree.clone()
        };
        let mut z = PagedZ {
            planned: BTreeSet::new(),
            table: Table::from_root(root.index.clone(), ARITY, std::iter::empty())?,
            tree: Tree::new(shape, BASE, std::iter::empty()),
            root,
            last_score: RefCell::new(None),
        };
        z.add_pages(pages)?;
        Ok(z)
    }

    /// Loads more pages (absolute numbers), as [`PagedZ::from_slices`].
    pub(super) fn add_pages(
        &mut self,
        pages: impl IntoIterator<Item = (u64, Option<&'p [u8]>)>,
    ) -> Result<(), Corrupt> {
        for (page, bytes) in pages {
            self.planned.insert(page);
            match (page >= BASE, bytes) {
                (true, bytes) => self.table.add_page(page - BASE, bytes)?,
                (false, Some(bytes)) => self.tree.add_page(page, bytes),
                (false, None) => {}
            }
        }
        Ok(())
    }

    /// Whether a run changed anything.
    pub(super) fn edited(&self) -> bool {
        self.tree.changed() || self.table.changed()
    }

    pub fn len(&self) -> u64 {
        self.root.len()
    }

    /// Asks for the index pages of `members` (and of the splits or merges
    /// `adds`/`removes` entries may cause) when they were not planned.
    pub fn need_members<'m>(
        &self,
        members: impl IntoIterator<Item = &'m [u8]>,
        adds: u64,
        removes: u64,
    ) -> Result<(), Fail> {
        let missing: Vec<u64> = self
            .root
            .index_pages(members, adds, removes)
            .into_iter()
            .filter(|p| !self.planned.contains(p))
            .collect();
        match missing.is_empty() {
            true => Ok(()),
            false => Err(Fail::Need(missing)),
        }
    }

    /// `member`'s score, if present.
    pub fn score(&self, member: &[u8]) -> Result<Option<f64>, Fail> {
        if let Some((last, score)) = &*self.last_score.borrow() {
            if last[..] == *member {
                return Ok(*score);
            }
        }
        self.need_members([member], 0, 0)?;
        let score = match self.table.get(member)? {
            Some(entry) => Some(index_score(&entry)?),
            None => None,
        };
        let mut last = self.last_score.borrow_mut();
        let (bytes, known) = last.get_or_insert_with(|| (Vec::new(), None));
        bytes.clear();
        bytes.extend_from_slice(member);
        *known = score;
        Ok(score)
    }

    /// Sets `member`'s score (`old`: its current one, if any).
    pub fn set(&mut self, member: &[u8], old: Option<f64>, score: f64) -> Result<(), Fail> {
        let score = score + 0.0;
        self.last_score.take();
        let new = (score, Cow::Owned(member.to_vec()));
        match old {
            Some(old) => self.tree.move_entry(&(old, Cow::Borrowed(member)), new)?,
            None => self.tree.insert(new)?,
        }
        self.table.put(&[member, &score.to_le_bytes()], false)?;
        Ok(())
    }

    /// Removes `member`; returns its score.
    pub fn remove(&mut self, member: &[u8]) -> Result<Option<f64>, Fail> {
        let Some(score) = self.score(member)? else {
            return Ok(None);
        };
        self.last_score.take();
        self.tree.remove(&(score, Cow::Borrowed(member)))?;
        self.table.remove(member)?;
        Ok(Some(score))
    }

    /// One ZSCAN call from `cursor` over the member index (its pages
    /// planned by `linear::scan_plan`): (member, score) pairs and the next
    /// cursor (0: done).
    pub fn scan(&self, cursor: u64, count: usize) -> Result<(ScanPage, u64), Fail> {
        let (entries, next) = scan_table(&self.table, cursor, count)?;
        let pairs = entries.into_iter().map(|mut entry| {
            let score = entry.pop().ok_or(Corrupt)?;
            let score = <[u8; 8]>::try_from(&score[..]).map_err(|_| Corrupt)?;
            let member = entry.pop().ok_or(Corrupt)?;
            Ok((member, f64::from_le_bytes(score)))
        });
        Ok((pairs.collect::<Result<_, Corrupt>>()?, next))
    }

    /// The (member, score) pairs of the loaded index pages if they hold at
    /// least `want` members (or the whole set); None: plan more pages.
    pub fn sample(&self, want: u64) -> Result<Option<ScanPage>, Fail> {
        let entries = loaded_entries(&self.table)?;
        if (entries.len() as u64) < want.min(self.table.len()) {
            return Ok(None);
        }
        let pairs = entries.into_iter().map(|entry| {
            let score = index_score(entry)?;
            Ok((entry[0].to_vec(), score))
        });
        Ok(Some(pairs.collect::<Result<_, Corrupt>>()?))
    }

    /// The pages (absolute numbers) this run's edits write, when it
    /// changed anything.
    pub(super) fn written_pages(&mut self) -> Result<Vec<u64>, Corrupt> {
        if !self.tree.changed() {
            return Ok(Vec::new());
        }
        let mut pages = self.tree.pages_to_write();
        let index = self.table.pages_to_write()?;
        pages.extend(index.into_iter().map(|p| BASE + p));
        Ok(pages)
    }

    /// Loads the tree paths of `keys` in one round (an edit naming many).
    pub fn prefetch<'k, 'm: 'k>(
        &mut self,
        keys: impl IntoIterator<Item = &'k Key<'m>>,
    ) -> Result<(), Fail> {
        let need = self.tree.missing_for(keys)?;
        match need.is_empty() {
            true => Ok(()),
            false => Err(Fail::Need(need)),
        }
    }
}

/// Whether `key` holds a paged sorted set now (a read then takes the
/// paged path; a packed one is read with one lookup as before).
pub(super) fn is_paged(cache: &mut CacheHandle, key: &[u8]) -> bool {
    cache
        .get(key, |item| item.is_root() && item.kind() == ZSET)
        .unwrap_or(false)
}
