//! LPUSH/RPUSH and LPOP/RPOP of a paged list by an edit of its root in
//! place (`CacheHandle::edit_in_place`, `paged::update_paged_direct`):
//! a push or pop inside its end's slot (most of them) needs no page, so
//! no plan, no root hint and none of an update's machinery, only the
//! root's head (`EditableRoot::from_head`, `ROOT_HEAD_LEN` bytes copied
//! onto the stack) and, for a pop, the bytes it takes. Its writes are the
//! edit `in_root.rs` makes from a planned root (the same `EndEdit`: the
//! elements below the front, the unused descriptor, the selector byte),
//! planned straight into the engine's edit buffer and stored under the
//! key's home lock at the version the lookup read: a torn read (another
//! core editing) fails that lock and plans again. A key this thread
//! last found paged (`PAGED`) tries the edit alone first, before any
//! update is set up; anything else runs the update, which offers the
//! edit a paged root it has no plan for (its first pass; a packed list
//! is not offered). Whatever the edit declines (a spill, a refill, a
//! root of an earlier layout or written without `editable`) is planned
//! by the update as before.

use std::cell::Cell;

use citadel_cache::{InPlaceEdit, ItemRef, KeyHash};
use citadel_collections::list::paged::{pop_front, push_head, EditableRoot, ROOT_HEAD_LEN};
use citadel_collections::paged::ENCODING_PAGED;

use super::{End, LIST};

/// Bytes read from a pop's front first: one short element and its
/// length (a longer one reads its end's elements whole).
const FRONT_READ: usize = 64;
/// Room for `N` bytes read as the whole words covering them (wherever
/// they start in a word).
const fn covering(n: usize) -> usize {
    (n + 7).next_multiple_of(8)
}

thread_local! {
    /// Hashes of the keys this thread last found holding a paged list
    /// (direct-mapped; 0: none). Their pushes and pops try the root's
    /// edit alone first (`CacheHandle::edit_in_place`: no update set up);
    /// others run the update, which offers the edit a paged root (a
    /// packed list, most small queues, is then looked up once). A hint
    /// only: a stale one costs a lookup, a missing one an update's setup.
    static PAGED: [Cell<u64>; PAGED_SLOTS] = const { [const { Cell::new(0) }; PAGED_SLOTS] };
}
const PAGED_SLOTS: usize = 1024;

/// Whether the key hashed `h` held a paged list when this thread last
/// pushed or popped it.
pub(super) fn likely_paged(h: KeyHash) -> bool {
    let h = u64::from(h);
    PAGED.with(|t| t[h as usize % PAGED_SLOTS].get() == h)
}

/// Notes whether the key hashed `h` holds a paged list (`paged`).
pub(super) fn note_paged(h: KeyHash, paged: bool) {
    let h = u64::from(h);
    PAGED.with(|t| {
        let slot = &t[h as usize % PAGED_SLOTS];
        if paged {
            slot.set(h);
        } else if slot.get() == h {
            slot.set(0);
        }
    });
}

/// The editable-layout list root `item` from its head; None for anything
/// else (the planned path reads it whole and answers: WRONGTYPE, a packed
/// list, corrupt bytes).
fn stored_root(item: &ItemRef<'_>) -> Option<EditableRoot> {
    if item.kind() != LIST {
        return None;
    }
    let value = item.contiguous()?;
    // (A packed list is told by its first byte, before the head's copy.)
    if value.head::<8>()?[0] != ENCODING_PAGED {
        return None;
    }
    // (Whole words on the stack: no byte loops at the edges.)
    let mut words = [0u8; covering(ROOT_HEAD_LEN)];
    let read = value.get(0..ROOT_HEAD_LEN)?.copy_covering(&mut words);
    let head = &words[read];
    if head[0] != ENCODING_PAGED {
        return None;
    }
    EditableRoot::from_head(head, value.len()).ok().flatten()
}

/// The in-place edit (`CacheHandle::edit_in_place`,
/// `paged::update_paged_direct`) of a push of `elements` at `end`: the
/// list's new length, or None (nothing recorded: not a paged list of the
/// editable layout, or the push spills or does not fit below its end's
/// front; the update goes on). Sets `paged` when the list is paged.
pub(super) fn push<'e>(
    end: End,
    elements: &'e [&'e [u8]],
    paged: &'e Cell<bool>,
) -> impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<u64> + 'e {
    let limit = crate::collection_limits::list();
    move |item, edit| {
        let root = stored_root(item)?;
        paged.set(true);
        let bytes = edit.buffer();
        let planned = push_head(&root, end, elements, limit, bytes)?;
        planned.append_selector(bytes);
        edit.record(item, &planned.spans()).ok()?;
        Some(planned.len)
    }
}

/// The in-place edit of a pop of `count` elements off `end`, handing
/// them to `f` in pop order: Some(true) once recorded (the update's
/// answer for a list found), None when declined
/// (nothing recorded, nothing handed over). `start` runs before an
/// attempt hands any over (one whose edit is not stored runs again).
/// Sets `paged` when the list is paged.
pub(super) fn pop<'e>(
    end: End,
    count: u64,
    paged: &'e Cell<bool>,
    mut start: impl FnMut() + 'e,
    mut f: impl FnMut(&[u8]) + 'e,
) -> impl FnMut(&ItemRef<'_>, &mut InPlaceEdit<'_>) -> Option<bool> + 'e {
    let limit = crate::collection_limits::list();
    // A longer front than the stack's is read whole into this.
    let mut whole = Vec::new();
    move |item, edit| {
        let value = item.contiguous()?;
        let root = stored_root(item)?;
        paged.set(true);
        let at = root.front(end);
        // A short first element is in the first few bytes (read onto the
        // stack); else, or for a longer pop, the end's elements are read
        // whole.
        let mut first = [0u8; covering(FRONT_READ)];
        let short = at.len().min(FRONT_READ);
        let read = value
            .get(at.start..at.start + short)?
            .copy_covering(&mut first);
        let mut front = &first[read];
        let mut planned = pop_front(&root, end, count, front, limit, edit.buffer());
        if planned.is_err() && short < at.len() {
            // (Inside the value: `from_head` checked the slots against
            // its length.)
            whole.clear();
            value.get(at.clone())?.append_to(&mut whole);
            front = &whole;
            planned = pop_front(&root, end, count, front, limit, edit.buffer());
        }
        let planned = planned.ok().flatten()?;
        planned.append_selector(edit.buffer());
        edit.record(item, &planned.spans()).ok()?;
        start();
        // (`pop_front` read these elements' lengths: they read again. One
        // that reads corrupt declines, the edit recorded is dropped, and
        // the update answers it.)
        let popped = planned.popped_front(front).try_for_each(|e| e.map(&mut f));
        popped.ok().map(|()| true)
    }
}
