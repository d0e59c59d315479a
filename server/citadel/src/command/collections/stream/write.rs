//! The stream writes: XADD, XTRIM, XDEL, XSETID. Each is one update of the
//! root and the pages it plans from the root (`plan_*`, pure functions of
//! the root and the arguments).

use citadel_cache::{Changes, ItemRef};
use citadel_collections::stream::page::{self, entries};
use citadel_collections::stream::{StreamId, StreamRoot, Trim, TrimArgs};

use super::super::paged::{update_paged_fresh, PagePlan, Step};
use super::args::{add_or_trim, strict_id, AddArgs, NewId, INVALID_ID};
use super::edit::{step, Fail, StreamTxn};
use crate::command::args::Args;
use crate::command::context::Ctx;
use crate::command::error::{CmdError, CmdResult};

/// Parses a planned root; another kind's root plans nothing (the update
/// then answers WRONGTYPE).
fn planned(root: &[u8]) -> Option<StreamRoot> {
    StreamRoot::parse(root).ok()
}

/// Declares the pages trimming `root` with `trim` reads or drops.
fn plan_trim(root: &StreamRoot, trim: &TrimArgs, user: usize, plan: &mut PagePlan) {
    let (whole, cut) = root.trim_span(trim);
    for p in &root.dir[..whole + usize::from(cut)] {
        plan.need(user, p.page);
    }
}

/// Redis's `streamTrim` on a stream in an update: drops whole leading
/// pages, cuts into the next one when exact. Returns the entries removed.
fn trim(s: &mut StreamTxn<'_, '_>, args: &TrimArgs) -> Result<u64, Fail> {
    let (whole, cut) = s.root.trim_span(args);
    let mut deleted = 0u64;
    for p in s.root.dir.drain(..whole).collect::<Vec<_>>() {
        s.set_page(p.page, None)?;
        deleted += u64::from(p.count);
    }
    s.root.meta.length -= deleted;
    if cut {
        let info = s.root.dir[0];
        let bytes = s.page(info.page)?.to_vec();
        let mut list = entries(&bytes)?;
        let mut length = s.root.meta.length;
        let keep = list
            .iter()
            .position(|e| {
                let stop = match args.trim {
                    Trim::MaxLen(max) => length <= max,
                    Trim::MinId(id) => e.id >= id,
                };
                if !stop {
                    length -= 1;
                }
                stop
            })
            .unwrap_or(list.len());
        if keep > 0 {
            list.drain(..keep);
            let first = list.first().ok_or(CmdError::CorruptValue)?.id;
            let p = &mut s.root.dir[0];
            p.first = first;
            p.count -= keep as u32;
            p.deleted += keep as u32;
            s.root.meta.length = length;
            deleted += keep as u64;
            s.set_page(info.page, Some(page::encode(&list)))?;
        }
    }
    if deleted > 0 {
        s.root.meta.first_id = s.root.dir.first().map_or(StreamId::MIN, |p| p.first);
    }
    Ok(deleted)
}

/// The ID XADD stores after `last`, or its error.
fn new_id(id: NewId, last: StreamId) -> Result<StreamId, CmdError> {
    const SMALLER: CmdError = CmdError::Static(
        "ERR The ID specified in XADD is equal or smaller than the target stream top item",
    );
    let id = match id {
        NewId::Auto => {
            let now = citadel_cache::unix_millis();
            if now > last.ms {
                StreamId::new(now, 0)
            } else {
                last.next().ok_or(SMALLER)?
            }
        }
        NewId::AutoSeq(ms) if ms == last.ms => last.next().filter(|n| n.ms == ms).ok_or(SMALLER)?,
        NewId::AutoSeq(ms) => StreamId::new(ms, 0),
        NewId::Given(id) => id,
    };
    if id <= last {
        return Err(SMALLER);
    }
    Ok(id)
}

/// XADD key [NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT count]] *|id field value [field value ...]
pub fn xadd(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let a: AddArgs = add_or_trim(&args, true)?;
    let fields: Vec<&[u8]> = (a.fields_at..args.len()).map(|i| args.get(i)).collect();
    if fields.len() < 2 || !fields.len().is_multiple_of(2) {
        return Err(CmdError::Arity("xadd"));
    }
    if a.id == NewId::Given(StreamId::MIN) {
        return Err(CmdError::Static(
            "ERR The ID specified in XADD must be greater than 0-0",
        ));
    }
    let key = args.get(1);
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let Some(mut root) = planned(root) {
            // The append's page (the last, or a new one), then the trim's.
            if let Some(last) = root.dir.last() {
                plan.need(user, last.page);
            }
            plan.need(user, root.header.pages.end);
            if let Some(t) = &a.trim {
                let id = new_id(a.id, root.meta.last_id).unwrap_or(StreamId::MAX);
                root.note_append(id, &fields);
                plan_trim(&root, t, user, plan);
            }
        }
        Ok(())
    };
    let added = update_paged_fresh(
        &mut ctx.thread.cache,
        &[key],
        plan,
        |items, changes, plan| {
            let s = match StreamTxn::open(items, plan, 0)? {
                Some(s) => s,
                None if a.no_mkstream => return Ok(Step::Done(None)),
                None => match StreamTxn::create(items, plan, 0) {
                    Some(s) => s,
                    None => return Ok(Step::Fresh(vec![(0, 0..1)])),
                },
            };
            step(append(s, &a, &fields, changes))
        },
    )?;
    match added {
        Some(id) => ctx.out.bulk(&id.text()),
        None => ctx.out.null(),
    }
    Ok(())
}

fn append(
    mut s: StreamTxn<'_, '_>,
    a: &AddArgs,
    fields: &[&[u8]],
    changes: &mut citadel_cache::Changes,
) -> Result<Option<StreamId>, Fail> {
    if s.root.meta.last_id == StreamId::MAX {
        return Err(CmdError::Static(
            "ERR The stream has exhausted the last possible ID, unable to add more items",
        )
        .into());
    }
    let id = new_id(a.id, s.root.meta.last_id)?;
    let at = s.root.note_append(id, fields);
    let info = s.root.dir[at];
    let mut bytes = s.take_page(info.page, info.count == 1)?;
    page::append(&mut bytes, id, fields)?;
    s.set_page(info.page, Some(bytes))?;
    if let Some(t) = &a.trim {
        trim(&mut s, t)?;
    }
    s.commit(changes)?;
    Ok(Some(id))
}

/// XTRIM key MAXLEN|MINID [=|~] threshold [LIMIT count]
pub fn xtrim(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let a = add_or_trim(&args, false)?;
    let t = a.trim.ok_or(CmdError::Syntax)?;
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let Some(root) = planned(root) {
            plan_trim(&root, &t, user, plan);
        }
        Ok(())
    };
    let n = update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(1)],
        plan,
        |items, changes, plan| removing(items, plan, changes, |s| trim(s, &t)),
    )?;
    ctx.out.int(n as i64);
    Ok(())
}

/// XDEL key id [id ...]
pub fn xdel(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    // (Redis answers 0 for a missing key before it looks at the IDs.)
    let ids: Option<Vec<StreamId>> = (2..args.len())
        .map(|i| strict_id(args.get(i), 0).ok())
        .collect();
    let plan = |user: usize, root: &[u8], plan: &mut PagePlan| {
        if let Some(root) = planned(root) {
            for id in ids.iter().flatten() {
                let at = root.first_page_from(*id);
                if root.dir.get(at).is_some_and(|p| p.first <= *id) {
                    plan.need(user, root.dir[at].page);
                }
            }
        }
        Ok(())
    };
    let n = update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(1)],
        plan,
        |items, changes, plan| {
            removing(items, plan, changes, |s| match ids.as_deref() {
                Some(ids) => delete(s, ids),
                None => Err(Fail::from(INVALID_ID)),
            })
        },
    )?;
    ctx.out.int(n as i64);
    Ok(())
}

/// Runs `remove` on the stream at the update's one key (nothing when it
/// is missing) and writes the stream back when it removed anything:
/// XTRIM and XDEL.
fn removing(
    items: &[Option<ItemRef<'_>>],
    plan: &PagePlan,
    changes: &mut Changes,
    remove: impl FnOnce(&mut StreamTxn<'_, '_>) -> Result<u64, Fail>,
) -> Result<Step<u64>, CmdError> {
    let Some(mut s) = StreamTxn::open(items, plan, 0)? else {
        return Ok(Step::Done(0));
    };
    step(remove(&mut s).and_then(|n| {
        if n > 0 {
            s.commit(changes)?;
        }
        Ok(n)
    }))
}

fn delete(s: &mut StreamTxn<'_, '_>, ids: &[StreamId]) -> Result<u64, Fail> {
    let mut deleted = 0u64;
    let mut first_entry = false;
    for &id in ids {
        let at = s.root.first_page_from(id);
        let Some(info) = s.root.dir.get(at).copied().filter(|p| p.first <= id) else {
            continue;
        };
        let bytes = s.page(info.page)?.to_vec();
        let mut list = entries(&bytes)?;
        let Some(pos) = list.iter().position(|e| e.id == id) else {
            continue;
        };
        list.remove(pos);
        if list.is_empty() {
            s.root.dir.remove(at);
            s.set_page(info.page, None)?;
        } else {
            let p = &mut s.root.dir[at];
            p.count -= 1;
            p.deleted += 1;
            p.first = list[0].id;
            p.last = list[list.len() - 1].id;
            s.set_page(info.page, Some(page::encode(&list)))?;
        }
        s.root.meta.length -= 1;
        if id == s.root.meta.first_id {
            first_entry = true;
        }
        s.root.meta.max_deleted = s.root.meta.max_deleted.max(id);
        deleted += 1;
    }
    if deleted > 0 {
        if s.root.meta.length == 0 {
            s.root.meta.first_id = StreamId::MIN;
        } else if first_entry {
            s.root.meta.first_id = s.root.dir[0].first;
        }
    }
    Ok(deleted)
}

/// XSETID key last-id [ENTRIESADDED entries-added] [MAXDELETEDID max-deleted-id]
pub fn xsetid(ctx: &mut Ctx<'_>, args: Args<'_>) -> CmdResult {
    let id = strict_id(args.get(2), 0)?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if args.is(i, "entriesadded") && more > 0 {
            let n = citadel_resp::num::parse_i64(args.get(i + 1)).ok_or(CmdError::NotInteger)?;
            if n < 0 {
                return Err(CmdError::Static("ERR entries_added must be positive"));
            }
            entries_added = Some(n as u64);
        } else if args.is(i, "maxdeletedid") && more > 0 {
            max_deleted = strict_id(args.get(i + 1), 0)?;
            if id < max_deleted {
                return Err(CmdError::Static(
                    "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let no_pages = |_: usize, _: &[u8], _: &mut PagePlan| Ok(());
    update_paged_fresh(
        &mut ctx.thread.cache,
        &[args.get(1)],
        no_pages,
        |items, changes, plan| {
            let mut s = StreamTxn::open(items, plan, 0)?.ok_or(CmdError::NoSuchKey)?;
            let m = s.root.meta;
            if id < m.max_deleted {
                return Err(CmdError::Static(
                    "ERR The ID specified in XSETID is smaller than current max_deleted_entry_id",
                ));
            }
            if m.length > 0 {
                if s.root.last_valid().is_some_and(|top| id < top) {
                    return Err(CmdError::Static(
                        "ERR The ID specified in XSETID is smaller than the target stream top item",
                    ));
                }
                if entries_added.is_some_and(|n| m.length > n) {
                    return Err(CmdError::Static(
                    "ERR The entries_added specified in XSETID is smaller than the target stream length",
                ));
                }
            }
            let m = &mut s.root.meta;
            m.last_id = id;
            if let Some(n) = entries_added {
                m.entries_added = n;
            }
            if max_deleted != StreamId::MIN {
                m.max_deleted = max_deleted;
            }
            s.commit(changes)?;
            Ok(Step::Done(()))
        },
    )?;
    ctx.out.ok();
    Ok(())
}
