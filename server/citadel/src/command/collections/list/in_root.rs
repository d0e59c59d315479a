//! A push or pop inside its end's slot of an editable root (most of them)
//! edits the stored root in place (`citadel_collections::list::paged::
//! push_root`, `pop_root` plan the writes; `Changes::edit` stores them
//! under the key's home lock when the update publishes): no new root item
//! written, copied, hashed or published. The thread's hint of the root is
//! the planned root with the same writes applied. The rest (a spill, a
//! refill, a root of an earlier layout or written without `editable`, an
//! edit the engine refuses, a list packed, new or going back to the
//! packed form) takes the general edit (`Lists::open`).

use citadel_collections::list::paged::{pop_root, push_root, EditableRoot, EndEdit};

use super::{End, Lists, LIST};
use crate::command::collections::paged::PagePlan;
use crate::command::error::CmdError;

impl<'u> Lists<'u, '_, '_> {
    /// A paged list's stored root at user key `i` (planned, and checked to
    /// be the item's); None when the key is missing or not paged;
    /// WRONGTYPE for another kind.
    fn paged_root(&self, i: usize) -> Result<Option<&'u [u8]>, CmdError> {
        let plan: &'u PagePlan = self.plan;
        let Some(item) = &self.items[i] else {
            return Ok(None);
        };
        if item.kind() != LIST {
            return Err(CmdError::WrongType);
        }
        Ok(plan.root(i))
    }

    /// The plan's parse of `stored`, user key `i`'s planned root, if it
    /// parsed these bytes (the plan's last parse: it plans each root it
    /// holds before the update runs).
    fn plan_parse(&self, i: usize, stored: &[u8]) -> Option<EditableRoot> {
        let named = (stored.as_ptr() as usize, stored.len());
        match self.plan_parse.get() {
            Some((user, at, root)) if user == i && at == named => Some(root),
            _ => None,
        }
    }

    /// Records `edit` (planned into `bytes`) of user key `i`'s root as
    /// the update's in-place edit; false when the engine refuses it
    /// (nothing recorded).
    fn edit_root(&mut self, i: usize, edit: &EndEdit, bytes: &[u8]) -> bool {
        let Some(item) = &self.items[i] else {
            return false;
        };
        self.changes.edit(i, item, &edit.writes(bytes)).is_ok()
    }

    /// Pushes `elements` at `end` of the paged list at user key `i` by an
    /// edit of its root in place; returns the new length, or None when
    /// the push needs the general edit (a spill, a push that does not
    /// fit its slot, a refused edit, a list not paged or missing).
    pub fn push_in_root(
        &mut self,
        i: usize,
        end: End,
        elements: &[&[u8]],
    ) -> Result<Option<u64>, CmdError> {
        let Some(stored) = self.paged_root(i)? else {
            return Ok(None);
        };
        let [mut bytes] = self.plan.spare_bufs();
        let limit = crate::collection_limits::list();
        let parsed = self.plan_parse(i, stored);
        let planned = push_root(stored, parsed, end, elements, limit, &mut bytes)?;
        match planned {
            Some(edit) if self.edit_root(i, &edit, &bytes) => {
                let len = edit.len;
                // The thread's hint: the planned root with these writes.
                self.plan.edited_root(i, edit, bytes);
                Ok(Some(len))
            }
            _ => {
                self.plan.keep_spares([bytes]);
                Ok(None)
            }
        }
    }

    /// [`Lists::push_in_root`] for a pop of `count` elements, handed to
    /// `f` in pop order; false (nothing handed to `f`) when the pop needs
    /// the general edit (a refill, the list emptied or going back to the
    /// packed form, a refused edit).
    pub fn pop_in_root(
        &mut self,
        i: usize,
        end: End,
        count: u64,
        mut f: impl FnMut(&[u8]),
    ) -> Result<bool, CmdError> {
        let Some(stored) = self.paged_root(i)? else {
            return Ok(false);
        };
        let [mut bytes] = self.plan.spare_bufs();
        let limit = crate::collection_limits::list();
        let parsed = self.plan_parse(i, stored);
        let planned = pop_root(stored, parsed, end, count, limit, &mut bytes)?;
        let edit = match planned {
            Some(edit) if self.edit_root(i, &edit, &bytes) => edit,
            _ => {
                self.plan.keep_spares([bytes]);
                return Ok(false);
            }
        };
        // (The popped elements' length prefixes were read to plan the
        // edit: they read again, no error after the edit is recorded.)
        // Read from the planned root before the hint's copy is edited.
        let popped = edit.popped(stored).try_for_each(|e| e.map(&mut f));
        self.plan.edited_root(i, edit, bytes);
        popped?;
        Ok(true)
    }
}
