//! Root hints: per worker thread, the roots of the last few paged
//! collections it planned from or wrote. A command on a paged key must
//! know its root to declare its pages; without a hint it first runs an
//! update over the key alone to read the root, then the planned one.
//! With the root it last wrote (a queue pushed and popped by one core),
//! the first update is the planned one. A hint is only a guess: the
//! update checks each root against the plan byte for byte, and a stale
//! hint costs the pass it would have cost anyway.

use std::cell::RefCell;

use super::PagePlan;
use crate::command::error::CmdError;

/// Keys remembered per thread (a few hot collections; older ones are
/// overwritten round robin).
const SLOTS: usize = 8;

#[derive(Default)]
struct Hints {
    /// (key, root value); buffers reused when overwritten.
    slots: Vec<(Vec<u8>, Vec<u8>)>,
    next: usize,
}

impl Hints {
    fn find(&self, key: &[u8]) -> Option<usize> {
        self.slots.iter().position(|(k, _)| k == key)
    }

    fn set(&mut self, key: &[u8], root: &[u8]) {
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
        let slot = &mut self.slots[at].1;
        slot.clear();
        slot.extend_from_slice(root);
    }

    fn forget(&mut self, key: &[u8]) {
        if let Some(at) = self.find(key) {
            self.slots[at].1.clear();
        }
    }
}

thread_local! {
    static HINTS: RefCell<Hints> = RefCell::default();
}

/// A plan from the hinted roots of `keys`; None when no key has a hint
/// (or a hint does not plan: the update then plans from what it sees).
pub(super) fn plan(
    keys: &[&[u8]],
    plan: &mut impl FnMut(usize, &[u8], &mut PagePlan) -> Result<(), CmdError>,
) -> Option<PagePlan> {
    let mut current = PagePlan::new(keys.len());
    let any = HINTS.with(|hints| {
        let hints = hints.borrow();
        let mut any = false;
        for (i, key) in keys.iter().enumerate() {
            let root = hints.find(key).map(|at| &hints.slots[at].1);
            if let Some(root) = root.filter(|r| !r.is_empty()) {
                let mut copy = current.buf();
                copy.extend_from_slice(root);
                current.roots[i] = Some(copy);
                any = true;
            }
        }
        any
    });
    if !any {
        current.recycle();
        return None;
    }
    for i in 0..keys.len() {
        // Lent out while it plans (a hinted `plan` reads the root it is
        // given, not `PagePlan::root`), then put back.
        if let Some(root) = current.roots[i].take() {
            let planned = plan(i, &root, &mut current);
            current.roots[i] = Some(root);
            planned.ok()?;
        }
    }
    current.finish(keys).ok()?;
    Some(current)
}

/// Remembers the roots `plan` ended with: those planned from, then
/// those written (`wrote_root`; last, so they win when a key is named
/// twice, as LMOVE of a list onto itself names it).
pub(super) fn remember(keys: &[&[u8]], plan: &PagePlan) {
    HINTS.with(|hints| {
        let mut hints = hints.borrow_mut();
        let mut note = |key: &[u8], root: Option<&[u8]>| match root {
            Some(root) => hints.set(key, root),
            None => hints.forget(key),
        };
        let written = plan.written.borrow();
        for (i, key) in keys.iter().enumerate() {
            // (A key written is noted once, with its new root.)
            if !written.iter().any(|(w, _)| *w == i) {
                note(key, plan.root(i));
            }
        }
        for (i, root) in written.iter() {
            note(keys[*i], root.as_deref());
        }
    });
}
