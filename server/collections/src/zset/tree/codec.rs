//! The byte forms of the tree's pages: leaves (a packed sorted set),
//! inner nodes (packed (child page | count | greatest score, greatest
//! member) pairs) and freed pages (the next page of the free chain).

use super::super::{entries, Entry};
use super::{Child, Key};
use crate::packed::{Corrupt, Packed, PackedWriter};

/// What an entry adds to a page (its packed member and its score).
pub(super) fn key_bytes(key: &Key) -> usize {
    PackedWriter::element_cost(key.1.len()) + 9
}

pub fn decode_leaf(bytes: &[u8]) -> Result<Vec<Key>, Corrupt> {
    Ok(entries(Packed::parse(bytes)?)?
        .into_iter()
        .map(|(s, m)| (s, m.to_vec()))
        .collect())
}

pub fn encode_leaf(keys: &[Key]) -> Vec<u8> {
    let borrowed: Vec<Entry<'_>> = keys.iter().map(|(s, m)| (*s, &m[..])).collect();
    super::super::encode(&borrowed)
}

pub fn decode_inner(bytes: &[u8]) -> Result<Vec<Child>, Corrupt> {
    let elements = Packed::parse(bytes)?.to_vec()?;
    if elements.len() % 2 != 0 {
        return Err(Corrupt);
    }
    elements
        .chunks(2)
        .map(|pair| {
            let head: &[u8; 24] = pair[0].try_into().map_err(|_| Corrupt)?;
            let word = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().expect("8"));
            let score = f64::from_bits(word(16));
            if score.is_nan() {
                return Err(Corrupt);
            }
            Ok(Child {
                page: word(0),
                count: word(8),
                max: (score, pair[1].to_vec()),
            })
        })
        .collect()
}

pub fn encode_inner(children: &[Child]) -> Vec<u8> {
    let mut out = PackedWriter::default();
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
