//! LPUSH/RPUSH and LPOP/RPOP of a paged list, planned from its root as
//! stored (`paged::update_paged_direct`): a push or pop inside its end's
//! slot (most of them) needs no page, so no plan and no root hint, only
//! the root's head (`EditableRoot::from_head`, `ROOT_HEAD_LEN` bytes
//! copied onto the stack) and, for a pop, the bytes it takes. Its writes
//! are the in-place edit `in_root.rs` makes from a planned root (the same
//! `EndEdit`: the elements below the front, the unused descriptor, the
//! selector byte), stored by the engine under the key's home lock at the
//! version the update's lookup read: a torn read (another core editing)
//! fails that lock and runs again. Anything else (a spill, a refill, a
//! root of an earlier layout or written without `editable`, a packed
//! list, another kind) is declined, and the update plans as before.

use citadel_cache::{Changes, ItemRef};
use citadel_collections::list::paged::{pop_front, push_head, EditableRoot, ROOT_HEAD_LEN};
use citadel_collections::paged::ENCODING_PAGED;

use super::{End, LIST};
use crate::command::collections::paged::{Direct, PagePlan};

/// Bytes read from a pop's front first: one short element and its
/// length (a longer one reads its end's elements whole).
const FRONT_READ: usize = 64;
/// Room for `N` bytes read as the whole words covering them (wherever
/// they start in a word).
const fn covering(n: usize) -> usize {
    (n + 7).next_multiple_of(8)
}

/// The editable-layout list root `item` from its head; None for anything
/// else (the planned path reads it whole and answers: WRONGTYPE, a packed
/// list, corrupt bytes).
fn stored_root(item: &ItemRef<'_>) -> Option<EditableRoot> {
    if item.kind() != LIST {
        return None;
    }
    let value = item.contiguous()?;
    // (Whole words on the stack: no byte loops at the edges.)
    let mut words = [0u8; covering(ROOT_HEAD_LEN)];
    let read = value.get(0..ROOT_HEAD_LEN)?.copy_covering(&mut words);
    let head = &words[read];
    if head[0] != ENCODING_PAGED {
        return None;
    }
    EditableRoot::from_head(head, value.len()).ok().flatten()
}

/// Pushes `elements` at `end` of the list at user key 0 by an edit of its
/// root in place: the list's new length, or None (nothing written).
pub(super) fn push(
    items: &[Option<ItemRef<'_>>],
    changes: &mut Changes,
    plan: &PagePlan,
    end: End,
    elements: &[&[u8]],
) -> Direct<u64> {
    let item = items[0].as_ref()?;
    let root = stored_root(item)?;
    let limit = crate::collection_limits::list();
    let [mut bytes] = plan.spare_bufs();
    let edited = push_head(&root, end, elements, limit, &mut bytes)
        .filter(|edit| changes.edit(0, item, &edit.writes(&bytes)).is_ok());
    plan.keep_spares([bytes]);
    let edit = edited?;
    // (A paged root's access count keeps its pages through eviction.)
    changes.touch(0);
    Some(Ok(edit.len))
}

/// Pops `count` elements off `end` of the list at user key 0 by an edit
/// of its root in place, handing them to `f` in pop order: Some once
/// done, None (nothing written, nothing handed over) when declined.
pub(super) fn pop(
    items: &[Option<ItemRef<'_>>],
    changes: &mut Changes,
    plan: &PagePlan,
    end: End,
    count: u64,
    mut f: impl FnMut(&[u8]),
) -> Direct<bool> {
    let item = items[0].as_ref()?;
    let value = item.contiguous()?;
    let root = stored_root(item)?;
    let limit = crate::collection_limits::list();
    let at = root.front(end);
    // A short first element is in the first few bytes (read onto the
    // stack); else, or for a longer pop, the end's elements are read whole.
    let (mut first, mut whole) = ([0u8; covering(FRONT_READ)], Vec::new());
    let short = at.len().min(FRONT_READ);
    let read = value
        .get(at.start..at.start + short)?
        .copy_covering(&mut first);
    let mut front = &first[read];
    let [mut bytes] = plan.spare_bufs();
    let mut planned = pop_front(&root, end, count, front, limit, &mut bytes);
    if planned.is_err() && short < at.len() {
        // (Inside the value: `from_head` checked the slots against its
        // length.)
        value.get(at.clone())?.append_to(&mut whole);
        front = &whole;
        planned = pop_front(&root, end, count, front, limit, &mut bytes);
    }
    let edited = planned
        .ok()
        .flatten()
        .filter(|edit| changes.edit(0, item, &edit.writes(&bytes)).is_ok());
    let Some(edit) = edited else {
        plan.keep_spares([bytes]);
        return None;
    };
    changes.touch(0);
    // (`pop_front` read these elements' lengths: they read again.)
    let popped = edit.popped_front(front).try_for_each(|e| e.map(&mut f));
    plan.keep_spares([bytes]);
    Some(popped.map(|()| true).map_err(Into::into))
}
