//! Root hints: per worker thread, the roots of the last few paged
//! collections it planned from or wrote. A command on a paged key must
//! know its root to declare its pages; without a hint it first runs an
//! update over the key alone to read the root, then the planned one.
//! With the root it last wrote (a queue pushed and popped by one core),
//! the first update is the planned one. A hint is only a guess: the
//! update checks each root against the plan (`matches_plan`), and a stale
//! hint costs the pass it would have cost anyway. A hint's buffer moves
//! into the plan and the written root's back into the hint: no copies.
//! The hints live in the thread's plan (`PagePlan::hints`), which a
//! command borrows in place: no thread-local access of their own.

use super::PagePlan;
use crate::command::error::CmdError;

/// Keys remembered per thread (a few hot collections; older ones are
/// overwritten round robin).
const SLOTS: usize = 8;

#[derive(Default, Debug)]
pub(super) struct Hints {
    /// (key, root value); buffers reused when overwritten.
    slots: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl Hints {
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.slots.iter().position(|(k, _)| k == key)
    }

    fn slot(&mut self, key: &[u8]) -> &mut Vec<u8> {
        let at = match self.find(key) {
            Some(at) => at,
            None if self.slots.len() < SLOTS => {
                self.slots.push((key.to_vec(), Vec::new()));
                self.slots.len() - 1
            }
            None => {
                let at = self.next;
                self.next = (self.next + 1) % SLOTS;
                let slot = &mut self.slots[at].0;
                slot.clear();
                slot.extend_from_slice(key);
                at
            }
        };
        &mut self.slots[at].1
    }

    fn set(&mut self, key: &[u8], root: &[u8]) {
        let slot = self.slot(key);
        slot.clear();
        slot.extend_from_slice(root);
    }

    /// [`Hints::set`] by moving `root` in; returns the slot's old buffer.
    fn put(&mut self, key: &[u8], root: Vec<u8>) -> Vec<u8> {
        std::mem::replace(self.slot(key), root)
    }

    fn forget(&mut self, key: &[u8]) {
        if let Some(at) = self.find(key) {
            self.slots[at].1.clear();
        }
    }
}

/// Fills `current` (a cleared plan) from the hinted roots of `keys`,
/// each hint's buffer moved into it (the command's end puts the root back:
/// [`keep`]); false when no key has a hint or a hint does not plan (the
/// caller clears `current`; the update then plans from what it sees).
pub(super) fn plan(
    keys: &[&[u8]],
    plan: &mut impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
    current: &mut PagePlan,
) -> bool {
    let PagePlan { hints, roots, .. } = current;
    let mut any = false;
    for (i, key) in keys.iter().enumerate() {
        // A key named twice (LMOVE of a list onto itself) shares the
        // first one's hint, which has moved out already.
        if let Some(first) = keys[..i].iter().position(|k| k == key) {
            roots[i] = roots[first].clone();
            continue;
        }
        let Some(at) = hints.find(key) else {
            continue;
        };
        let root = std::mem::take(&mut hints.slots[at].1);
        if !root.is_empty() {
            roots[i] = Some(root);
            any = true;
        }
    }
    if !any {
        return false;
    }
    for i in 0..keys.len() {
        // Lent out while it plans (a hinted `plan` reads the root it is
        // given, not `PagePlan::root`), then put back.
        if let Some(root) = current.roots[i].take() {
            let planned = plan(i, &root, current);
            current.roots[i] = Some(root);
            if planned.is_err() {
                return false;
            }
        }
    }
    current.finish(keys).is_ok()
}

/// [`remember`] at the end of a command, moving the roots out of `plan`
/// (done with them) instead of copying them.
pub(super) fn keep(keys: &[&[u8]], plan: &mut PagePlan) {
    let PagePlan {
        hints,
        roots,
        written,
        spare,
        edited,
        ..
    } = plan;
    let (written, spare) = (written.get_mut(), spare.get_mut());
    // A root edited in place: the planned copy gets the edit's writes.
    if let Some((i, edit, bytes)) = edited.get_mut().take() {
        if let Some(root) = roots.get_mut(i) {
            if root
                .as_mut()
                .is_some_and(|r| edit.apply_to(r, &bytes).is_err())
            {
                // (Cannot happen: planned from this root.) No hint then.
                *root = None;
            }
        }
        spare.keep(bytes);
    }
    for (i, key) in keys.iter().enumerate() {
        // (A key written is noted once, with its new root; a key
        // named twice once, from its first place.)
        if written.iter().any(|(w, _)| *w == i) || keys[..i].contains(key) {
            continue;
        }
        match roots[i].take() {
            Some(root) => spare.keep(hints.put(key, root)),
            None => hints.forget(key),
        }
    }
    for (i, root) in written.drain(..) {
        match root {
            Some(root) => spare.keep(hints.put(keys[i], root)),
            None => hints.forget(keys[i]),
        }
    }
}

/// Remembers the roots `plan` ended with: those planned from, then
/// those written (`wrote_root`; last, so they win when a key is named
/// twice, as LMOVE of a list onto itself names it).
pub(super) fn remember(keys: &[&[u8]], plan: &mut PagePlan) {
    let PagePlan {
        hints,
        roots,
        written,
        ..
    } = plan;
    let mut note = |key: &[u8], root: Option<&[u8]>| match root {
        Some(root) => hints.set(key, root),
        None => hints.forget(key),
    };
    let written = written.get_mut();
    for (i, key) in keys.iter().enumerate() {
        // (A key written is noted once, with its new root.)
        if !written.iter().any(|(w, _)| *w == i) {
            note(key, roots[i].as_deref());
        }
    }
    for (i, root) in written.iter() {
        note(keys[*i], root.as_deref());
    }
}
