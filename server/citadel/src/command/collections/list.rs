//! List commands (Redis 7.0): pushes and pops here, LMOVE and LMPOP in
//! `moves`; reads (LLEN LRANGE LINDEX LPOS) in `read`, in-place edits
//! (LSET LINSERT LREM LTRIM) in `edit`. Every command runs in one atomic
//! update ([`update_lists`]) over a [`ListEdit`] of each list: a packed
//! list is edited whole (it is small), a paged one through the pages the
//! command planned from its root (`citadel_collections::list::paged`:
//! the end pages for a push or pop, one page for LINDEX/LSET, the range's
//! pages for LRANGE). The edit then says how the list is stored: packed,
//! its changed pages and root, or rebuilt as pages when it outgrew
//! list-max-listpack-size; the key goes when it empties.
//!
//! Clients blocked on a key (BLPOP and friends, `blocking.rs`)
//! are woken by the command layer once any list write committed
//! (`command::blocking`).

use std::cell::{Cell, RefCell};
use std::ops::Range;

use citadel_cache::{CacheHandle, Changes, InPlaceEdit, ItemRef, PutOptions, ValueKind};
use citadel_collections::list::paged::{EditableRoot, ListEdit, ListRoot, Stored};
use citadel_resp::Reply;

use super::few::Few;
use super::paged::{
    keep_spare, spare_buf, update_paged_direct, update_paged_hinted, PagePlan, Step,
};
use super::value::Existing;
use super::whole::{put_page, write_built};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

mod blocking;
mod edit;
mod end;
mod in_root;
mod moves;
mod read;

pub(super) use citadel_collections::list::paged::End;

const LIST: ValueKind = ValueKind::List;

fn parse_end(arg: &[u8]) -> Result<End, CmdError> {
    if arg.eq_ignore_ascii_case(b"left") {
        Ok(End::Head)
    } else if arg.eq_ignore_ascii_case(b"right") {
        Ok(End::Tail)
    } else {
        Err(CmdError::Syntax)
    }
}

/// A list a command opened: its edit and what the write keeps (None: a
/// new list).
pub(super) struct Opened {
    pub edit: ListEdit,
    pub existing: Option<Existing>,
    /// A spare buffer a paged list's new root is written into (empty for
    /// a packed list).
    root_buf: Vec<u8>,
}

/// The root the command's plan parsed last: (user key, the address and
/// length of the bytes parsed, which name them while the plan holds them:
/// compared, never dereferenced; what an edit in the root needs of the
/// parse). A push or pop edits from it instead of parsing the root again
/// (`in_root.rs`).
type PlanParse = Cell<Option<(usize, (usize, usize), EditableRoot)>>;

/// The lists of one update: opened from its items (a paged one with the
/// pages planned for it), saved back together once the command is done.
pub(super) struct Lists<'u, 'i, 'c> {
    items: &'u [Option<ItemRef<'i>>],
    plan: &'u PagePlan,
    plan_parse: &'u PlanParse,
    /// The update's writes (a push or pop edits its root in place here:
    /// `in_root.rs`; the rest at `commit`).
    changes: &'u mut Changes<'c>,
    /// The lists saved, in order: the first inline (a push or pop saves
    /// one; no allocation), the others after it.
    saved: Option<(usize, Opened)>,
    saved_more: Vec<(usize, Opened)>,
}

impl Lists<'_, '_, '_> {
    /// The list at user key `i`; None when missing; WRONGTYPE for another
    /// kind.
    pub fn open(&self, i: usize) -> Result<Option<Opened>, CmdError> {
        let Some(item) = &self.items[i] else {
            return Ok(None);
        };
        if item.kind() != LIST {
            return Err(CmdError::WrongType);
        }
        let existing = Some(Existing {
            expire_at: item.expire_at(),
            big: false,
        });
        let (edit, root_buf) = match self.plan.root(i) {
            Some(root) => {
                // (Planned pages come sorted: `ListEdit::paged` keeps them so.)
                let pages = self.plan.pages_of(i).filter_map(|(page, at)| {
                    let item = self.items[at].as_ref()?;
                    Some((page, editable_copy(item)))
                });
                // The inline ends' copies and the new root's buffer.
                let [head, tail, root_buf] = self.plan.spare_bufs();
                (ListEdit::paged(root, pages, head, tail)?, root_buf)
            }
            None => (ListEdit::packed_owned(editable_copy(item))?, Vec::new()),
        };
        Ok(Some(Opened {
            edit,
            existing,
            root_buf,
        }))
    }

    /// Whether user key `i` holds something other than a list (a blocked
    /// client passes it over: `pop_first`, `move_one`).
    pub fn holds_other_kind(&self, i: usize) -> bool {
        self.items[i]
            .as_ref()
            .is_some_and(|item| item.kind() != LIST)
    }

    /// The list at `i`, or a new empty one.
    pub fn open_or_new(&self, i: usize) -> Result<Opened, CmdError> {
        match self.open(i)? {
            Some(opened) => Ok(opened),
            None => Ok(Opened {
                edit: ListEdit::packed(&[])?,
                existing: None,
                root_buf: Vec::new(),
            }),
        }
    }

    /// Stores `opened` as user key `i` when the command succeeds.
    pub fn save(&mut self, i: usize, opened: Opened) {
        match self.saved {
            None => self.saved = Some((i, opened)),
            Some(_) => self.saved_more.push((i, opened)),
        }
    }

    /// Writes the saved lists; or, before writing anything, names the
    /// fresh pages a list outgrowing the packed form needs.
    /// (By reference: moving the lists, edits inline, cost a copy of
    /// several hundred bytes per command.)
    fn commit(&mut self) -> Result<Vec<(usize, Range<u64>)>, CmdError> {
        let changes = &mut *self.changes;
        let limit = crate::collection_limits::list();
        // (A plain loop: a push or pop on a paged list asks for nothing,
        // and an empty Vec allocates nothing.)
        let mut wanted: Vec<(usize, Range<u64>)> = Vec::new();
        for (i, opened) in self.saved.iter().chain(&self.saved_more) {
            let Some(pages) = opened.edit.build_pages(limit) else {
                continue;
            };
            if self.plan.fresh(*i).map(|f| f.1) != Some(pages.clone()) {
                wanted.push((*i, pages));
            }
        }
        if !wanted.is_empty() {
            return Ok(wanted);
        }
        let saved_more = std::mem::take(&mut self.saved_more);
        for (i, opened) in self.saved.take().into_iter().chain(saved_more) {
            let Opened {
                edit,
                existing,
                root_buf,
            } = opened;
            let generation = self.plan.fresh(i).map_or(0, |f| f.0);
            let expire_at = existing.and_then(|e| e.expire_at);
            // A paged list's new root is built in the spare buffer `open`
            // took (a packed list's is empty).
            match edit.finish_in(limit, generation, root_buf) {
                Stored::Unchanged => {}
                Stored::Empty => {
                    if existing.is_some() {
                        changes.delete(i);
                    }
                    self.plan.wrote_root(i, None);
                }
                Stored::Packed(value) => {
                    put(changes, i, &value, expire_at)?;
                    keep_spare(value);
                    self.plan.wrote_root(i, None);
                }
                Stored::Paged { root, pages, spare } => {
                    self.plan.keep_spares(spare);
                    for (page, bytes) in pages {
                        let at = self.plan.item(i, page).ok_or(CmdError::CorruptValue)?;
                        match bytes {
                            Some(bytes) => {
                                put_page(changes, at, &bytes)?;
                                keep_spare(bytes);
                            }
                            None if self.items[at].is_some() => changes.delete(at),
                            None => {}
                        }
                    }
                    put_root(changes, i, &root, expire_at)?;
                    self.plan.wrote_root(i, Some(root));
                }
                Stored::Built(built) => {
                    write_built(changes, self.plan, i, LIST, &built, expire_at)?;
                    self.plan.wrote_root(i, Some(built.root));
                }
            }
        }
        Ok(Vec::new())
    }
}

/// Room a copied page keeps past its value: a push of a few short
/// elements is then written into the copy (`ListEdit::push`) without a
/// second allocation.
const PUSH_ROOM: usize = 64;

/// A copy of `item`'s value to edit.
fn editable_copy(item: &ItemRef<'_>) -> Vec<u8> {
    let mut bytes = spare_buf();
    bytes.reserve(item.value_len() + PUSH_ROOM);
    item.write_value_to(&mut bytes);
    bytes
}

fn put(
    changes: &mut Changes,
    i: usize,
    value: &[u8],
    expire_at: Option<u64>,
) -> Result<(), CmdError> {
    let opts = PutOptions {
        expire_at,
        kind: LIST,
        ..PutOptions::default()
    };
    Ok(changes.put_with(i, &[value], opts)?)
}

/// [`put`] of a paged list's root, written editable (its region the
/// editable layout's: pushes and pops then edit it in place).
fn put_root(
    changes: &mut Changes,
    i: usize,
    root: &[u8],
    expire_at: Option<u64>,
) -> Result<(), CmdError> {
    let opts = PutOptions {
        expire_at,
        kind: LIST,
        editable: true,
        ..PutOptions::default()
    };
    Ok(changes.put_with(i, &[root], opts)?)
}

/// Runs `f` over the lists at `keys` in one atomic update: `plan(i, root,
/// pages)` names the pages of a paged list `f` touches (a paged root of
/// another kind plans none: `open` answers WRONGTYPE), `f` opens and
/// saves lists, and what it saved is written together.
pub(super) fn update_lists<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    plan: impl FnMut(usize, &ListRoot, &mut PagePlan),
    f: impl FnMut(&mut Lists<'_, '_, '_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    update_lists_in(cache, keys, None::<EditFn<R>>, plan, f)
}

/// An in-place edit of a list's root (`end.rs`).
type EditFn<R> = fn(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>;

/// [`update_lists`] of one list's end (a push or pop): `edit` edits a
/// paged list's root in place when it can (`end.rs`), alone first when
/// this thread last found the list paged (`end::likely_paged`), else
/// offered by the update; otherwise, and for a packed or missing list,
/// `f` runs as in `update_lists`, planned without the thread's root
/// hints (which `edit` does not keep). `paged`: set by `edit` when it met
/// a paged root, which the thread then notes for the key.
fn update_list_end<R>(
    cache: &mut CacheHandle,
    key: &[u8],
    paged: &Cell<bool>,
    mut edit: impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>,
    plan: impl FnMut(usize, &ListRoot, &mut PagePlan),
    f: impl FnMut(&mut Lists<'_, '_, '_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let h = cache.key_hash(key);
    if end::likely_paged(h) {
        if let Some(done) = cache.edit_in_place(key, h, &mut edit) {
            return Ok(done);
        }
    }
    let done = update_lists_in(cache, &[key], Some(edit), plan, f);
    end::note_paged(h, paged.get());
    done
}

fn update_lists_in<R>(
    cache: &mut CacheHandle,
    keys: &[&[u8]],
    edit: Option<impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<R>>,
    mut plan: impl FnMut(usize, &ListRoot, &mut PagePlan),
    mut f: impl FnMut(&mut Lists<'_, '_, '_>) -> Result<R, CmdError>,
) -> Result<R, CmdError> {
    let plan_parse = PlanParse::default();
    let plan = |i: usize, bytes: &[u8], pages: &mut PagePlan| {
        let parsed = ListRoot::parse(bytes);
        // Set for every root planned (None when it has no editable
        // parse): what is kept is always the last root planned.
        let editable = parsed.as_ref().ok().and_then(ListRoot::editable);
        let named = (bytes.as_ptr() as usize, bytes.len());
        plan_parse.set(editable.map(|e| (i, named, e)));
        let Ok(root) = parsed else {
            return Ok(());
        };
        plan(i, &root, pages);
        // An earlier-layout root keeps its end elements in pages.
        for page in root.legacy_pages().into_iter().flatten() {
            pages.need(i, page);
        }
        Ok(())
    };
    let f = |items: &[Option<ItemRef<'_>>], changes: &mut Changes, plan: &PagePlan| {
        let mut lists = Lists {
            items,
            plan,
            plan_parse: &plan_parse,
            changes,
            saved: None,
            saved_more: Vec::new(),
        };
        let result = f(&mut lists)?;
        // A push or pop inside its end's slot (most) saved no edit:
        // no call to set up. (`save` fills `saved` first.)
        if lists.saved.is_none() {
            return Ok(Step::Done(result));
        }
        let wanted = lists.commit()?;
        Ok(match wanted.is_empty() {
            true => Step::Done(result),
            false => Step::Fresh(wanted),
        })
    };
    match edit {
        None => update_paged_hinted(cache, keys, plan, f),
        Some(edit) => update_paged_direct(cache, keys, edit, plan, f),
    }
}

/// LPUSH RPUSH LPUSHX RPUSHX: the new length (0 for an X on no list).
fn push_command(ctx: &mut Ctx<'_>, args: Args<'_>, end: End, only_existing: bool) -> CmdResult {
    let key = args.get(1);
    // A push of a few elements (the common one) lists them on the stack.
    let elements: Few<&[u8]> = args.from(2).iter().collect();
    let elements = &elements[..];
    let count = elements.len() as u64;
    let paged = Cell::new(false);
    let len = update_list_end(
        &mut ctx.thread.cache,
        key,
        &paged,
        end::push(end, elements, &paged),
        |i, root, plan| plan.need_all(i, root.pages_for_push(end, count)),
        |lists| {
            if let Some(len) = lists.push_in_root(0, end, elements)? {
                return Ok(len);
            }
            let mut list = match lists.open(0)? {
                Some(list) => list,
                None if only_existing => return Ok(0),
                None => lists.open_or_new(0)?,
            };
            list.edit.push(end, elements)?;
            let len = list.edit.len();
            lists.save(0, list);
            Ok(len)
        },
    )?;
    ctx.out.int(len as i64);
    Ok(())
}

pub fn lpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Head, false)
}

pub fn rpush(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Tail, false)
}

pub fn lpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Head, true)
}

pub fn rpushx(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    push_command(ctx, args, End::Tail, true)
}

/// LPOP/RPOP key [count]: one element (nil when missing), or with a count
/// an array (nil array when missing, empty for count 0).
fn pop_command(ctx: &mut Ctx<'_>, args: Args<'_>, end: End, name: &'static str) -> CmdResult {
    const NOT_POSITIVE: CmdError = CmdError::Static("ERR value is out of range, must be positive");
    let count = match args.len() {
        2 => None,
        3 => Some(
            usize::try_from(args.int(2).map_err(|_| NOT_POSITIVE)?).map_err(|_| NOT_POSITIVE)?,
        ),
        _ => return Err(CmdError::Arity(name)),
    };
    let n = count.unwrap_or(1) as u64;
    // The popped elements go straight into the reply (no copies); an
    // attempt that runs again, or fails, takes back what it wrote.
    // (Both attempts write into it, one at a time.)
    let reply = RefCell::new(&mut ctx.out);
    let mark = reply.borrow().buf.len();
    // (Only a pop that goes ahead hands elements over: the array header
    // comes with the first.)
    let element = |out: &mut Reply, first: &mut bool, e: &[u8]| {
        if std::mem::take(first) && count.is_some() {
            out.array(n as usize);
        }
        out.bulk(e);
    };
    // A root's edit in place first (most pops); an attempt that runs
    // again starts over at the mark.
    let (first, paged) = (Cell::new(true), Cell::new(false));
    let edit = end::pop(
        end,
        n,
        &paged,
        || {
            reply.borrow_mut().buf.truncate(mark);
            first.set(true);
        },
        |e| {
            let mut is_first = first.get();
            element(&mut reply.borrow_mut(), &mut is_first, e);
            first.set(is_first);
        },
    );
    let found = update_list_end(
        &mut ctx.thread.cache,
        args.get(1),
        &paged,
        edit,
        |i, root, plan| plan.need_all(i, root.pages_for_pop(end, n)),
        |lists| {
            let out = &mut **reply.borrow_mut();
            out.buf.truncate(mark);
            let mut first = true;
            let in_root = lists.pop_in_root(0, end, n, |e| element(out, &mut first, e))?;
            if in_root {
                return Ok(true);
            }
            let Some(mut list) = lists.open(0)? else {
                return Ok(false);
            };
            let n = n.min(list.edit.len());
            if count.is_some() {
                out.array(n as usize);
            }
            list.edit.pop_with(end, n, |e| out.bulk(e))?;
            lists.save(0, list);
            Ok(true)
        },
    );
    let out = reply.into_inner();
    match found {
        Err(e) => {
            out.buf.truncate(mark);
            return Err(e);
        }
        // A stored list is never empty; a corrupt one may read so.
        Ok(true) if count.is_none() && out.buf.len() == mark => return Err(CmdError::CorruptValue),
        Ok(true) => {}
        Ok(false) if count.is_none() => out.null(),
        Ok(false) => out.null_array(),
    }
    Ok(())
}

pub fn lpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_command(ctx, args, End::Head, "lpop")
}

pub fn rpop(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    pop_command(ctx, args, End::Tail, "rpop")
}

use crate::command::table::{c, CommandDef, KEY1, KEYS_2, NOKEYS, R, RF, W, WF, WM, WMF};

const L: &str = "list";

#[rustfmt::skip]
pub static COMMANDS: &[CommandDef] = &[
    c("lpush", -3, WMF, KEY1, L, "1.0.0", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", lpush),
    c("rpush", -3, WMF, KEY1, L, "1.0.0", "Appends one or more elements to a list. Creates the key if it doesn't exist.", rpush),
    c("lpushx", -3, WMF, KEY1, L, "2.2.0", "Prepends one or more elements to a list only when the list exists.", lpushx),
    c("rpushx", -3, WMF, KEY1, L, "2.2.0", "Appends an element to a list only when the list exists.", rpushx),
    c("lpop", -2, WF, KEY1, L, "1.0.0", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", lpop),
    c("rpop", -2, WF, KEY1, L, "1.0.0", "Returns and removes the last elements of the list. Deletes the list if the last element was popped.", rpop),
    c("llen", 2, RF, KEY1, L, "1.0.0", "Returns the length of a list.", read::llen),
    c("lrange", 4, R, KEY1, L, "1.0.0", "Returns a range of elements from a list.", read::lrange),
    c("lindex", 3, R, KEY1, L, "1.0.0", "Returns an element from a list by its index.", read::lindex),
    c("lpos", -3, R, KEY1, L, "6.0.6", "Returns the index of matching elements in a list.", read::lpos),
    c("lset", 4, WM, KEY1, L, "1.0.0", "Sets the value of an element in a list by its index.", edit::lset),
    c("linsert", 5, WM, KEY1, L, "2.2.0", "Inserts an element before or after another element in a list.", edit::linsert),
    c("lrem", 4, W, KEY1, L, "1.0.0", "Removes elements from a list. Deletes the list if the last element was removed.", edit::lrem),
    c("ltrim", 4, W, KEY1, L, "1.0.0", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", edit::ltrim),
    c("lmove", 5, WM, KEYS_2, L, "6.2.0", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", moves::lmove),
    c("rpoplpush", 3, WM, KEYS_2, L, "1.2.0", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", moves::rpoplpush),
    c("lmpop", -4, &["write", "movablekeys"], NOKEYS, L, "7.0.0", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", moves::lmpop).finding_keys(moves::lmpop_keys),
    c("blpop", -3, BLOCKING, (1, -2, 1), L, "2.0.0", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blpop),
    c("brpop", -3, BLOCKING, (1, -2, 1), L, "2.0.0", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::brpop),
    c("blmove", 6, BLOCKING_M, KEYS_2, L, "6.2.0", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", blocking::blmove),
    c("brpoplpush", 4, BLOCKING_M, KEYS_2, L, "2.2.0", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", blocking::brpoplpush),
    c("blmpop", -5, &["write", "blocking", "movablekeys"], NOKEYS, L, "7.0.0", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", blocking::blmpop).finding_keys(moves::blmpop_keys),
];

const BLOCKING: &[&str] = &["write", "noscript", "blocking"];
const BLOCKING_M: &[&str] = &["write", "denyoom", "noscript", "blocking"];
