//! A member's new score as one edit of the tree: when the old and the new
//! entry fall in the same leaf (ZINCRBY, or a ZADD to a nearby score) the
//! leaf is edited once and its path fixed once, so its parent's entry for
//! it (count, greatest entry) usually comes out the same and the inner
//! pages above it are not rewritten.

use super::{key_cmp, Key, Miss, Tree};

impl<'a> Tree<'a> {
    /// Replaces entry `old` with `new` (a member's score changed; `old` is
    /// there: the member index says so). Both paths are loaded before
    /// anything changes, so a `Miss::Need` leaves the tree as it was.
    pub fn move_entry(&mut self, old: &Key<'_>, new: Key<'a>) -> Result<(), Miss> {
        if self.shape.top.is_empty() {
            return self.insert(new);
        }
        let (path, leaf) = self.path_to(old)?;
        let new_leaf = self.walk(&new, |_, _| {})?;
        let keys = self.leaf(leaf)?;
        let Ok(from) = keys.binary_search_by(|k| key_cmp(k, old)) else {
            return self.insert(new);
        };
        keys.remove(from);
        if new_leaf != leaf {
            // Another leaf: the removal fixed first, then an insert by
            // the paths as they are after it.
            self.fix(path, leaf)?;
            return self.insert(new);
        }
        let to = keys
            .binary_search_by(|k| key_cmp(k, &new))
            .unwrap_or_else(|at| at);
        keys.insert(to, new);
        self.fix(path, leaf)
    }
}
