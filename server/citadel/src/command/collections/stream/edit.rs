//! A stream inside one update: its root parsed, its pages copied in as a
//! command asks for them. A page the plan did not declare is a [`Fail::Need`]:
//! the command answers `Step::More` and runs again with it (plans are
//! exact for every command here, so that is a safety net, not a path).

use std::collections::BTreeMap;

use citadel_cache::{Changes, ItemRef, PutOptions, ValueKind};
use citadel_collections::paged::is_paged;
use citadel_collections::stream::{group, Group, StreamRoot};

use super::super::paged::{PagePlan, Step};
use crate::command::error::CmdError;

/// Why a stream operation stopped.
#[derive(Debug)]
pub enum Fail {
    /// A page not declared in this update.
    Need(usize, u64),
    /// Several pages not declared (asked for together: one more round).
    NeedAll(Vec<(usize, u64)>),
    Cmd(CmdError),
}

impl From<CmdError> for Fail {
    fn from(e: CmdError) -> Self {
        Fail::Cmd(e)
    }
}

impl From<citadel_collections::Corrupt> for Fail {
    fn from(_: citadel_collections::Corrupt) -> Self {
        Fail::Cmd(CmdError::CorruptValue)
    }
}

/// The step an update's closure answers for an operation's result.
pub fn step<R>(result: Result<R, Fail>) -> Result<Step<R>, CmdError> {
    match result {
        Ok(r) => Ok(Step::Done(r)),
        Err(fail) => retry(fail),
    }
}

/// The step for an operation that stopped (`Fail::Need`: run again).
pub fn retry<R>(fail: Fail) -> Result<Step<R>, CmdError> {
    match fail {
        Fail::Need(user, page) => Ok(Step::More(vec![(user, page)])),
        Fail::NeedAll(pages) => Ok(Step::More(pages)),
        Fail::Cmd(e) => Err(e),
    }
}

/// A failure where every page is loaded already: a need is corruption.
pub fn loaded_only(fail: Fail) -> CmdError {
    match fail {
        Fail::Need(..) | Fail::NeedAll(_) => CmdError::CorruptValue,
        Fail::Cmd(e) => e,
    }
}

/// User key `user`'s stream in an update.
pub struct StreamTxn<'p, 'i> {
    pub root: StreamRoot,
    expire_at: Option<u64>,
    items: &'p [Option<ItemRef<'i>>],
    plan: &'p PagePlan,
    user: usize,
    /// Pages read or written (None: deleted).
    pages: BTreeMap<u64, Option<Vec<u8>>>,
    dirty: Vec<u64>,
    /// The consumer groups, parsed on first use and written back with
    /// the root.
    groups: Option<Vec<Group>>,
}

/// User key `user`'s root, if it is a stream (WRONGTYPE for another kind;
/// None when missing).
pub fn root_of(item: Option<&ItemRef<'_>>) -> Result<Option<(StreamRoot, Option<u64>)>, CmdError> {
    let Some(item) = item else {
        return Ok(None);
    };
    if item.kind() != ValueKind::Stream {
        return Err(CmdError::WrongType);
    }
    let mut bytes = Vec::new();
    item.write_value_to(&mut bytes);
    if !is_paged(&bytes) {
        return Err(CmdError::CorruptValue);
    }
    Ok(Some((StreamRoot::parse(&bytes)?, item.expire_at())))
}

impl<'p, 'i> StreamTxn<'p, 'i> {
    /// The stream at user key `user`; None when missing.
    pub fn open(
        items: &'p [Option<ItemRef<'i>>],
        plan: &'p PagePlan,
        user: usize,
    ) -> Result<Option<Self>, CmdError> {
        Ok(
            root_of(items[user].as_ref())?.map(|(root, expire_at)| StreamTxn {
                root,
                expire_at,
                items,
                plan,
                user,
                pages: BTreeMap::new(),
                dirty: Vec::new(),
                groups: None,
            }),
        )
    }

    /// A new, empty stream at user key `user`, whose pages are the fresh
    /// ones granted (None: none granted yet).
    pub fn create(
        items: &'p [Option<ItemRef<'i>>],
        plan: &'p PagePlan,
        user: usize,
    ) -> Option<Self> {
        let (generation, pages) = plan.fresh(user)?;
        let mut root = StreamRoot::new(generation);
        root.header.pages = pages.start..pages.start;
        Some(StreamTxn {
            root,
            expire_at: None,
            items,
            plan,
            user,
            pages: BTreeMap::new(),
            dirty: Vec::new(),
            groups: None,
        })
    }

    fn index(&self, page: u64) -> Result<usize, Fail> {
        self.plan
            .item(self.user, page)
            .or_else(|| self.plan.fresh_item(self.user, page))
            .ok_or(Fail::Need(self.user, page))
    }

    /// Page `page`'s bytes (as this update has them).
    pub fn page(&mut self, page: u64) -> Result<&[u8], Fail> {
        if !self.pages.contains_key(&page) {
            let idx = self.index(page)?;
            let item = self.items[idx].as_ref().ok_or(CmdError::CorruptValue)?;
            let mut bytes = Vec::new();
            item.write_value_to(&mut bytes);
            self.pages.insert(page, Some(bytes));
        }
        self.pages
            .get(&page)
            .and_then(|b| b.as_deref())
            .ok_or(Fail::Cmd(CmdError::CorruptValue))
    }

    /// Loads every page of `pages` (so they can be read together); the
    /// ones not declared are asked for together.
    pub fn load_all(&mut self, pages: &[u64]) -> Result<(), Fail> {
        let mut missing = Vec::new();
        for &p in pages {
            match self.page(p) {
                Ok(_) => {}
                Err(Fail::Need(user, page)) => missing.push((user, page)),
                Err(e) => return Err(e),
            }
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(Fail::NeedAll(missing))
        }
    }

    /// The stream's consumer groups (parsed once per update).
    pub fn groups(&mut self) -> Result<&mut Vec<Group>, CmdError> {
        if self.groups.is_none() {
            self.groups = Some(group::parse(&self.root.rest, &self.root.header.pages)?);
        }
        Ok(self.groups.as_mut().expect("parsed"))
    }

    /// The index of group `name`.
    pub fn find_group(&mut self, name: &[u8]) -> Result<Option<usize>, CmdError> {
        Ok(self
            .groups()?
            .binary_search_by(|g| g.name.as_slice().cmp(name))
            .ok())
    }

    /// Group `g` (found before).
    pub fn group(&mut self, g: usize) -> &mut Group {
        &mut self.groups.as_mut().expect("groups parsed")[g]
    }

    /// A new page number (stream and PEL pages share the numbering).
    pub fn new_page(&mut self) -> u64 {
        let page = self.root.header.pages.end;
        self.root.header.pages.end += 1;
        page
    }

    /// A page loaded before (see [`StreamTxn::load_all`]).
    pub fn loaded(&self, page: u64) -> Result<&[u8], CmdError> {
        self.pages
            .get(&page)
            .and_then(|b| b.as_deref())
            .ok_or(CmdError::CorruptValue)
    }

    /// Replaces page `page` (None: deletes it).
    pub fn set_page(&mut self, page: u64, bytes: Option<Vec<u8>>) -> Result<(), Fail> {
        self.index(page)?;
        self.pages.insert(page, bytes);
        self.dirty.push(page);
        Ok(())
    }

    /// Page `page` to edit (an empty vector for a page not stored yet).
    pub fn take_page(&mut self, page: u64, new: bool) -> Result<Vec<u8>, Fail> {
        if new {
            self.index(page)?;
            return Ok(Vec::new());
        }
        self.page(page)?;
        Ok(self
            .pages
            .get_mut(&page)
            .and_then(Option::take)
            .unwrap_or_default())
    }

    /// Writes the root (version moved on) and the changed pages.
    pub fn commit(mut self, changes: &mut Changes) -> Result<(), CmdError> {
        if let Some(groups) = &self.groups {
            self.root.rest = group::encode(groups);
        }
        self.root.bump();
        let opts = PutOptions {
            expire_at: self.expire_at,
            kind: ValueKind::Stream,
            ..PutOptions::default()
        };
        changes.put_with(self.user, &[&self.root.encode()[..]], opts)?;
        self.dirty.sort_unstable();
        self.dirty.dedup();
        for &page in &self.dirty {
            let idx = self.index(page).map_err(|_| CmdError::CorruptValue)?;
            match self.pages.get(&page).and_then(|b| b.as_deref()) {
                Some(bytes) => changes.put_with(idx, &[bytes], PutOptions::PAGE)?,
                None => {
                    if self.items[idx].is_some() {
                        changes.delete(idx);
                    }
                }
            }
        }
        Ok(())
    }
}
