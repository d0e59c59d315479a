//! An inner node being read or edited: its children, and while they
//! differ from the page they were read from in a few counts only, that
//! page and which counts, so that writing it copies the stored bytes and
//! writes those counts over them: a member moved between two leaves of
//! one parent changes two counts, and the copy costs a fraction of
//! encoding the page (or of comparing every child to find out that only
//! counts changed).

use std::ops::Deref;

use super::codec::{decode_inner, encode_inner};
use super::Child;
use crate::packed::{Corrupt, Packed};

#[derive(Clone, Debug, Default)]
pub(super) struct Inner<'a> {
    kids: Vec<Child<'a>>,
    /// The page the children were decoded from, while only the counts
    /// of `recounted` changed since (None: encode every child).
    stored: Option<&'a [u8]>,
    recounted: Recounted,
}

/// The children whose counts changed, in the order they changed.
#[derive(Clone, Copy, Debug, Default)]
struct Recounted {
    at: [u32; RECOUNTED],
    len: usize,
}

/// Counts a node tracks to patch (a path's edit changes one or two).
const RECOUNTED: usize = 4;

impl<'a> Inner<'a> {
    /// The node stored as `bytes`, its members borrowed from them.
    pub(super) fn decode(bytes: &'a [u8]) -> Result<Inner<'a>, Corrupt> {
        Ok(Inner {
            kids: decode_inner(bytes)?,
            stored: Some(bytes),
            recounted: Recounted::default(),
        })
    }

    /// A node of `kids` not read from a page (a new node, a split's half).
    pub(super) fn new(kids: Vec<Child<'a>>) -> Inner<'a> {
        Inner {
            kids,
            stored: None,
            recounted: Recounted::default(),
        }
    }

    /// The children, to change freely: the node is then encoded whole.
    pub(super) fn kids_mut(&mut self) -> &mut Vec<Child<'a>> {
        self.stored = None;
        &mut self.kids
    }

    pub(super) fn into_kids(self) -> Vec<Child<'a>> {
        self.kids
    }

    /// Child `at`'s count; the page stays patchable (while a few
    /// children were recounted).
    pub(super) fn set_count(&mut self, at: usize, count: u64) {
        if self.kids[at].count == count {
            return;
        }
        self.kids[at].count = count;
        let recounted = &mut self.recounted;
        match recounted.at[..recounted.len].contains(&(at as u32)) {
            true => {}
            false if recounted.len < RECOUNTED => {
                recounted.at[recounted.len] = at as u32;
                recounted.len += 1;
            }
            false => self.stored = None,
        }
    }

    /// The page's bytes: the stored page with the changed counts written
    /// over, or every child encoded.
    pub(super) fn encode(&self) -> Vec<u8> {
        let patched = self.stored.and_then(|page| {
            let recounted = &self.recounted.at[..self.recounted.len];
            patch_counts(page, &self.kids, recounted.iter().map(|&at| at as usize))
        });
        patched.unwrap_or_else(|| encode_inner(&self.kids))
    }
}

impl<'a> Deref for Inner<'a> {
    type Target = [Child<'a>];

    fn deref(&self) -> &[Child<'a>] {
        &self.kids
    }
}

/// `stored` (the page `children` were decoded from, differing from it in
/// the counts of `recounted` only) with those counts written over; None
/// when its shape does not match (not expected: then the caller encodes).
fn patch_counts(
    stored: &[u8],
    children: &[Child<'_>],
    recounted: impl Iterator<Item = usize>,
) -> Option<Vec<u8>> {
    let packed = Packed::parse(stored).ok()?;
    if packed.len() != 2 * children.len() {
        return None;
    }
    let mut out = stored.to_vec();
    for at in recounted {
        // (Only the length prefixes before the child's head are read.)
        let offset = packed.offset_of(2 * at).ok()?;
        let head = Packed::from_body(&packed.body()[offset..], 1)
            .iter()
            .next()?
            .ok()?;
        if head.len() != 24 {
            return None;
        }
        // Where the head lies in the page (it borrows `stored`).
        let count_at = head.as_ptr() as usize - stored.as_ptr() as usize + 8;
        out[count_at..count_at + 8].copy_from_slice(&children.get(at)?.count.to_le_bytes());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    fn children() -> Vec<Child<'static>> {
        (0..40u64)
            .map(|i| Child {
                page: 1000 - i,
                count: 50 + i,
                max: (
                    i as f64 * 1.5,
                    Cow::Owned(format!("member-{i}").into_bytes()),
                ),
            })
            .collect()
    }

    #[test]
    fn counts_patched_into_the_stored_page_match_a_fresh_encoding() {
        let stored = encode_inner(&children());
        let mut node = Inner::decode(&stored).unwrap();
        node.set_count(3, 51);
        node.set_count(17, 0);
        node.set_count(39, u64::MAX);
        assert!(node.stored.is_some());
        let mut kids = children();
        (kids[3].count, kids[17].count, kids[39].count) = (51, 0, u64::MAX);
        assert_eq!(node.encode(), encode_inner(&kids));
        assert_eq!(decode_inner(&node.encode()), Ok(kids));
    }

    #[test]
    fn any_other_change_encodes_the_node_whole() {
        let stored = encode_inner(&children());
        let changes: [for<'a> fn(&mut Vec<Child<'a>>); 5] = [
            |k| k[5].page += 1,
            |k| k[5].max.0 += 0.5,
            |k| k[5].max.1 = Cow::Owned(b"member-5x".to_vec()),
            |k| drop(k.remove(5)),
            |k| k.push(k[0].clone()),
        ];
        for change in changes {
            let mut node = Inner::decode(&stored).unwrap();
            change(node.kids_mut());
            let mut kids = children();
            change(&mut kids);
            assert_eq!(node.encode(), encode_inner(&kids));
        }
        assert_eq!(patch_counts(b"not a page", &children(), 0..1), None);
    }

    #[test]
    fn many_recounts_encode_the_node_whole() {
        let stored = encode_inner(&children());
        let mut node = Inner::decode(&stored).unwrap();
        let mut kids = children();
        for at in [1, 7, 7, 30, 2, 1, 33, 39] {
            node.set_count(at, 1000 + at as u64);
            kids[at].count = 1000 + at as u64;
            assert_eq!(node.encode(), encode_inner(&kids));
        }
        assert!(node.stored.is_none());
    }
}
