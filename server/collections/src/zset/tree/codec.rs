//! The byte forms of the tree's pages: leaves (a packed sorted set),
//! inner nodes (packed (child page | count | greatest score, greatest
//! member) pairs) and freed pages (the next page of the free chain).

use std::borrow::Cow;

use super::super::{decode_score, encode_iter};
use super::{Child, Key};
use crate::packed::{Corrupt, Packed, PackedWriter};

/// What an entry adds to a page (its packed member and its score).
pub(super) fn key_bytes(key: &Key<'_>) -> usize {
    PackedWriter::element_cost(key.1.len()) + 9
}

/// A leaf's entries, their members borrowed from `bytes`.
pub fn decode_leaf(bytes: &[u8]) -> Result<Vec<Key<'_>>, Corrupt> {
    leaf_keys(Packed::parse(bytes)?)
}

/// The entries of a leaf page already parsed.
pub(super) fn leaf_keys(packed: Packed<'_>) -> Result<Vec<Key<'_>>, Corrupt> {
    if packed.len() % 2 != 0 {
        return Err(Corrupt);
    }
    // One slot spare: a leaf is mostly decoded to take one more entry (an
    // insert, a move's landing), which would otherwise copy it whole.
    let mut keys = Vec::with_capacity(packed.len().min(packed.body_len()) / 2 + 1);
    let mut elements = packed.iter();
    while let Some(member) = elements.next() {
        let score = elements.next().ok_or(Corrupt)??;
        keys.push((decode_score(score)?, Cow::Borrowed(member?)));
    }
    Ok(keys)
}

pub fn encode_leaf(keys: &[Key<'_>]) -> Vec<u8> {
    encode_iter(keys.iter().map(|(s, m)| (*s, &m[..])))
}

/// An inner node's children, their greatest members borrowed from `bytes`.
pub fn decode_inner(bytes: &[u8]) -> Result<Vec<Child<'_>>, Corrupt> {
    let packed = Packed::parse(bytes)?;
    if packed.len() % 2 != 0 {
        return Err(Corrupt);
    }
    let mut children = Vec::with_capacity(packed.len().min(bytes.len()) / 2);
    let mut elements = packed.iter();
    while let Some(head) = elements.next() {
        let head: &[u8; 24] = head?.try_into().map_err(|_| Corrupt)?;
        let member = elements.next().ok_or(Corrupt)??;
        let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8"));
        let score = f64::from_bits(word(16));
        if score.is_nan() {
            return Err(Corrupt);
        }
        children.push(Child {
            page: word(0),
            count: word(8),
            max: (score, Cow::Borrowed(member)),
        });
    }
    Ok(children)
}

pub fn encode_inner(children: &[Child<'_>]) -> Vec<u8> {
    let bytes = children
        .iter()
        .map(|c| 25 + PackedWriter::element_cost(c.max.1.len()));
    let mut out = PackedWriter::with_capacity(bytes.sum());
    for child in children {
        let mut head = [0u8; 24];
        head[..8].copy_from_slice(&child.page.to_le_bytes());
        head[8..16].copy_from_slice(&child.count.to_le_bytes());
        head[16..].copy_from_slice(&child.max.0.to_bits().to_le_bytes());
        out.push(&head);
        out.push(&child.max.1);
    }
    out.finish()
}

/// A freed page: the next one of the chain.
pub fn encode_free(next: u64) -> Vec<u8> {
    let mut out = PackedWriter::default();
    out.push(&next.to_le_bytes());
    out.finish()
}

pub(super) fn decode_free(bytes: &[u8]) -> Result<u64, Corrupt> {
    let elements = Packed::parse(bytes)?.to_vec()?;
    match elements[..] {
        [next] => Ok(u64::from_le_bytes(next.try_into().map_err(|_| Corrupt)?)),
        _ => Err(Corrupt),
    }
}
