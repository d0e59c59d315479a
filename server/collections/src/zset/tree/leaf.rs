//! A leaf being read or edited: its entries, and while it differs from
//! the page it was read from by one insert, one removal or one move, that page,
//! so that writing it copies the stored bytes around the change instead
//! of encoding every entry again (a ZADD moves a member between two
//! leaves: one removal and one insert).

use std::ops::Deref;

use super::codec::{key_bytes, leaf_keys};
use super::Key;
use crate::packed::{packed_header_len, write_packed_header, Corrupt, Packed, PackedWriter};
use crate::zset::{encode_iter, score_bytes};

#[derive(Clone, Debug, Default)]
pub(super) struct Leaf<'a> {
    keys: Vec<Key<'a>>,
    /// The page the entries were decoded from, and the edit since (None:
    /// none yet). No origin: encode every entry.
    origin: Option<(Packed<'a>, Option<Edit>)>,
}

/// The edit of a leaf since it was read.
#[derive(Clone, Copy, Debug)]
enum Edit {
    /// An entry inserted at this index.
    Inserted(usize),
    /// The entry at this index removed.
    Removed(usize),
    /// The entry at `removed` removed, then one inserted at `inserted`
    /// (an index of the entries after both): a member moved within the
    /// leaf (ZINCRBY, or a ZADD of a nearby score).
    Moved { removed: usize, inserted: usize },
}
impl<'a> Leaf<'a> {
    /// The leaf stored as `bytes`, its members borrowed from them.
    pub(super) fn decode(bytes: &'a [u8]) -> Result<Leaf<'a>, Corrupt> {
        let page = Packed::parse(bytes)?;
        Ok(Leaf {
            keys: leaf_keys(page)?,
            origin: Some((page, None)),
        })
    }

    /// A leaf of `keys` not read from a page (a new leaf, a split's half).
    pub(super) fn new(keys: Vec<Key<'a>>) -> Leaf<'a> {
        Leaf { keys, origin: None }
    }

    /// The entries, to change freely: the leaf is then encoded whole.
    pub(super) fn keys_mut(&mut self) -> &mut Vec<Key<'a>> {
        self.origin = None;
        &mut self.keys
    }

    pub(super) fn into_keys(self) -> Vec<Key<'a>> {
        self.keys
    }

    pub(super) fn insert(&mut self, at: usize, key: Key<'a>) {
        self.keys.insert(at, key);
        self.note(Edit::Inserted(at));
    }

    pub(super) fn remove(&mut self, at: usize) -> Key<'a> {
        let key = self.keys.remove(at);
        self.note(Edit::Removed(at));
        key
    }

    /// Keeps the origin for a first edit, or an insert after a removal;
    /// anything more means encode the leaf whole.
    fn note(&mut self, edit: Edit) {
        self.origin = match (self.origin.take(), edit) {
            (Some((page, None)), edit) => Some((page, Some(edit))),
            (Some((page, Some(Edit::Removed(removed)))), Edit::Inserted(inserted)) => {
                Some((page, Some(Edit::Moved { removed, inserted })))
            }
            _ => None,
        };
    }

    /// The page's bytes: the stored elements copied around the one edit,
    /// or every entry encoded.
    pub(super) fn encode(&self) -> Vec<u8> {
        let spliced = self
            .origin
            .and_then(|(page, edit)| self.splice(page, edit).ok());
        spliced.unwrap_or_else(|| encode_iter(self.keys.iter().map(|(s, m)| (*s, &m[..]))))
    }

    /// The stored `page` with `edit` made in its bytes (an error only for
    /// a page that did not decode, which has no origin).
    fn splice(&self, page: Packed<'_>, edit: Option<Edit>) -> Result<Vec<u8>, Corrupt> {
        // Each cut: the stored entry bytes it replaces, then the entry put
        // there (None: removed), in body order.
        let removal = |at: usize| -> Result<_, Corrupt> {
            let offset = page.offset_of(2 * at)?;
            Ok((offset..page.entry_end(offset, 2)?, None))
        };
        let insert = |stored_at: usize, at: usize| -> Result<_, Corrupt> {
            let offset = page.offset_of(2 * stored_at)?;
            Ok((offset..offset, Some(self.keys.get(at).ok_or(Corrupt)?)))
        };
        let cuts = match edit {
            None => [None, None],
            Some(Edit::Inserted(at)) => [Some(insert(at, at)?), None],
            Some(Edit::Removed(at)) => [Some(removal(at)?), None],
            Some(Edit::Moved { removed, inserted }) => {
                // The stored entry the new one goes before (the removed
                // one still counted).
                let stored_at = inserted + usize::from(inserted > removed);
                let (add, cut) = (insert(stored_at, inserted)?, removal(removed)?);
                match stored_at <= removed {
                    true => [Some(add), Some(cut)],
                    false => [Some(cut), Some(add)],
                }
            }
        };
        let body = page.body();
        let count = 2 * self.keys.len() as u64;
        let mut bytes = packed_header_len(count) + body.len();
        for (span, new) in cuts.iter().flatten() {
            bytes = bytes - span.len() + new.map_or(0, key_bytes);
        }
        let mut out = Vec::with_capacity(bytes);
        write_packed_header(&mut out, count);
        let mut copied = 0;
        for (span, new) in cuts.into_iter().flatten() {
            out.extend_from_slice(&body[copied..span.start]);
            if let Some((score, member)) = new {
                PackedWriter::put_element(&mut out, member);
                PackedWriter::put_element(&mut out, &score_bytes(*score));
            }
            copied = span.end;
        }
        out.extend_from_slice(&body[copied..]);
        Ok(out)
    }
}

impl<'a> Deref for Leaf<'a> {
    type Target = [Key<'a>];

    fn deref(&self) -> &[Key<'a>] {
        &self.keys
    }
}
