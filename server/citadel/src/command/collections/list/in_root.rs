//! A push or pop inside the inline buffer at its end (most of them)
//! writes the paged list's new root straight from the stored one
//! (`citadel_collections::list::paged::push_root`, `pop_root`): no
//! `ListEdit`, no copies of the inline buffers; `Lists::commit` stores
//! it. The rest (a spill, a refill, a list packed, new or going back to
//! the packed form) takes the general edit (`Lists::open`).

use citadel_collections::list::paged::{pop_root, push_root};

use super::{End, Lists, LIST};
use crate::command::error::CmdError;

/// A paged list's stored root and its expiry.
type PagedRoot<'a> = (&'a [u8], Option<u64>);

impl Lists<'_, '_> {
    /// A paged list's stored root at user key `i` (planned, and checked
    /// to be the item's) and its expiry; None when the key is missing or
    /// not paged; WRONGTYPE for another kind.
    fn paged_root(&self, i: usize) -> Result<Option<PagedRoot<'_>>, CmdError> {
        let Some(item) = &self.items[i] else {
            return Ok(None);
        };
        if item.kind() != LIST {
            return Err(CmdError::WrongType);
        }
        Ok(self.plan.root(i).map(|root| (root, item.expire_at())))
    }

    /// Pushes `elements` at `end` of the paged list at user key `i` by
    /// writing its new root straight from the stored one
    /// (`list::paged::push_root`: no edit, no buffer copies); returns the
    /// new length, or None when the push needs the general edit (a spill,
    /// a list not paged or missing). The root is stored at `commit`.
    pub fn push_in_root(
        &mut self,
        i: usize,
        end: End,
        elements: &[&[u8]],
    ) -> Result<Option<u64>, CmdError> {
        let Some((stored, expire_at)) = self.paged_root(i)? else {
            return Ok(None);
        };
        let [mut root] = self.plan.spare_bufs();
        let limit = crate::collection_limits::list();
        match push_root(stored, end, elements, limit, &mut root)? {
            Some(len) => {
                self.saved_root = Some((i, root, expire_at));
                Ok(Some(len))
            }
            None => {
                self.plan.keep_spares([root]);
                Ok(None)
            }
        }
    }

    /// [`Lists::push_in_root`] for a pop of `count` elements, handed to
    /// `f` in pop order (`list::paged::pop_root`); false (nothing handed
    /// to `f`) when the pop needs the general edit (a refill, the list
    /// emptied or going back to the packed form).
    pub fn pop_in_root(
        &mut self,
        i: usize,
        end: End,
        count: u64,
        f: impl FnMut(&[u8]),
    ) -> Result<bool, CmdError> {
        let Some((stored, expire_at)) = self.paged_root(i)? else {
            return Ok(false);
        };
        let [mut root] = self.plan.spare_bufs();
        let limit = crate::collection_limits::list();
        let done = pop_root(stored, end, count, limit, &mut root, f)?;
        match done {
            true => self.saved_root = Some((i, root, expire_at)),
            false => self.plan.keep_spares([root]),
        }
        Ok(done)
    }
}
