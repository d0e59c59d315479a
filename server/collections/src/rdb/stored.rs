//! Decoding a DUMP payload straight into the form Citadel stores: a
//! string, a collection in the packed encoding (`crate::packed`), or a
//! stream whole. The compact forms Redis 7.0's DUMP writes (hash and
//! sorted-set listpacks, intsets, quicklists of listpacks) go from the
//! payload's blob to the packed value without an owned copy of each
//! element; the other forms are read into an [`RdbValue`] first
//! ([`super::decode`]) and converted. Both paths check the same things
//! (`stored_tests.rs`, and the `rdb_decode` fuzz target compares
//! them on every input).

use std::borrow::Cow;
use std::collections::HashSet;

use super::listpack::{self, canonical_int, Element};
use super::read::{self, Node};
use super::reader::{parse_double, Reader};
use super::{types, RdbError, RdbValue};
use crate::decimal::i64_text;
use crate::packed::PackedWriter;
use crate::stream::whole::WholeStream;
use crate::{set, zset};

/// Which collection a packed value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    List,
    Set,
    Hash,
    ZSet,
}

/// A payload's value as Citadel stores it.
#[derive(Debug, PartialEq)]
pub enum Stored {
    String(Vec<u8>),
    /// Never empty (the codec refuses empty collections).
    Packed(Collection, Vec<u8>),
    Stream(Box<WholeStream>),
}

/// The value of a DUMP payload in its stored form, after checking its
/// version and checksum, then its object (as [`super::decode`]).
pub fn decode_stored(payload: &[u8]) -> Result<Stored, RdbError> {
    let (kind, mut r) = super::open(payload)?;
    let stored = match kind {
        types::HASH_LISTPACK => hash_listpack(&r.string()?)?,
        types::ZSET_LISTPACK => zset_listpack(&r.string()?)?,
        types::SET_INTSET => intset(&r.string()?)?,
        types::LIST_QUICKLIST_2 => quicklist(&mut r)?,
        _ => stored(read::object(kind, &mut r)?),
    };
    if !r.at_end() {
        return Err(RdbError::BadData);
    }
    Ok(stored)
}

/// An [`RdbValue`] in its stored form (checked as read: never empty, no
/// member twice).
pub fn stored(value: RdbValue) -> Stored {
    let packed = |elements: &mut dyn Iterator<Item = &[u8]>| {
        let mut w = PackedWriter::default();
        elements.for_each(|e| w.push(e));
        w.finish()
    };
    match value {
        RdbValue::String(s) => Stored::String(s),
        RdbValue::Stream(whole) => Stored::Stream(whole),
        RdbValue::List(l) => {
            Stored::Packed(Collection::List, packed(&mut l.iter().map(|e| &e[..])))
        }
        RdbValue::Set(s) => {
            let mut members: Vec<&[u8]> = s.iter().map(|e| &e[..]).collect();
            Stored::Packed(Collection::Set, set::encode(&mut members))
        }
        RdbValue::Hash(h) => Stored::Packed(
            Collection::Hash,
            packed(&mut h.iter().flat_map(|(f, v)| [&f[..], &v[..]])),
        ),
        RdbValue::ZSet(pairs) => {
            let mut entries: Vec<zset::Entry<'_>> =
                pairs.iter().map(|(m, s)| (*s, &m[..])).collect();
            entries.sort_by(zset::cmp);
            Stored::Packed(Collection::ZSet, zset::encode(&entries))
        }
    }
}

/// An element's text: a string as it is, an integer in decimal (written
/// into `digits`).
fn text<'a>(element: &Element<'a>, digits: &'a mut [u8; 20]) -> &'a [u8] {
    match *element {
        Element::Str(s) => s,
        Element::Int(n) => i64_text(n, digits),
    }
}

/// An element as a key for finding repeats: the same text is the same
/// key, whether stored as an integer or as a string.
fn identity<'a>(element: &Element<'a>) -> Element<'a> {
    match *element {
        Element::Str(s) => canonical_int(s).map_or(Element::Str(s), Element::Int),
        int => int,
    }
}

/// Whether `keys` are all different: their 64-bit hashes sorted, and
/// only when two hashes match (a repeat, or rarely a collision) the keys
/// themselves in a set. (Cheaper than a set of every key: RESTORE checks
/// every field of every hash it loads.)
fn unique<'a>(keys: impl ExactSizeIterator<Item = Element<'a>> + Clone) -> bool {
    let mut hashes: Vec<u64> = keys.clone().map(|k| key_hash(&k)).collect();
    hashes.sort_unstable();
    if hashes.windows(2).all(|w| w[0] != w[1]) {
        return true;
    }
    let mut seen = HashSet::with_capacity(keys.len());
    keys.into_iter().all(|k| seen.insert(k))
}

/// A key's hash: equal keys hash the same (an integer never equals a
/// string after [`identity`]).
fn key_hash(key: &Element<'_>) -> u64 {
    match *key {
        Element::Int(n) => {
            (n as u64)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                .rotate_left(29)
                ^ 1
        }
        Element::Str(s) => xxhash_rust::xxh3::xxh3_64(s),
    }
}

fn hash_listpack(blob: &[u8]) -> Result<Stored, RdbError> {
    let elements = listpack::stored(blob)?;
    let fields = elements.iter().step_by(2).map(identity);
    if elements.is_empty() || elements.len() % 2 != 0 || !unique(fields) {
        return Err(RdbError::BadData);
    }
    let mut w = PackedWriter::with_capacity(blob.len() + elements.len() * 8);
    let mut digits = [0u8; 20];
    for e in &elements {
        w.push(text(e, &mut digits));
    }
    Ok(Stored::Packed(Collection::Hash, w.finish()))
}

fn zset_listpack(blob: &[u8]) -> Result<Stored, RdbError> {
    let elements = listpack::stored(blob)?;
    let members = elements.iter().step_by(2).map(identity);
    if elements.is_empty() || elements.len() % 2 != 0 || !unique(members) {
        return Err(RdbError::BadData);
    }
    let mut entries = Vec::with_capacity(elements.len() / 2);
    for pair in elements.chunks_exact(2) {
        let member: Cow<'_, [u8]> = match pair[0] {
            Element::Str(s) => Cow::Borrowed(s),
            Element::Int(n) => Cow::Owned(i64_text(n, &mut [0u8; 20]).to_vec()),
        };
        let score = match pair[1] {
            Element::Int(n) => n as f64,
            Element::Str(s) => parse_double(s)?,
        };
        entries.push((score, member));
    }
    let mut entries: Vec<zset::Entry<'_>> = entries.iter().map(|(s, m)| (*s, &m[..])).collect();
    entries.sort_by(zset::cmp);
    Ok(Stored::Packed(Collection::ZSet, zset::encode(&entries)))
}

/// An intset blob's members, in the set's stored form.
fn intset(blob: &[u8]) -> Result<Stored, RdbError> {
    let mut ints = read::intset_ints(blob)?;
    if ints.is_empty() {
        return Err(RdbError::BadData);
    }
    // The set encoder orders them as it stores them; repeats are refused.
    let mut text = Vec::with_capacity(ints.len() * 8);
    let mut ends = Vec::with_capacity(ints.len());
    let mut digits = [0u8; 20];
    for &n in &ints {
        text.extend_from_slice(i64_text(n, &mut digits));
        ends.push(text.len());
    }
    ints.sort_unstable();
    if ints.windows(2).any(|w| w[0] == w[1]) {
        return Err(RdbError::BadData);
    }
    let mut members: Vec<&[u8]> = Vec::with_capacity(ends.len());
    let mut start = 0;
    for end in ends {
        members.push(&text[start..end]);
        start = end;
    }
    Ok(Stored::Packed(Collection::Set, set::encode(&mut members)))
}

/// A quicklist 2's elements (empty nodes skipped, as Redis does).
fn quicklist(r: &mut Reader<'_>) -> Result<Stored, RdbError> {
    let mut w = PackedWriter::default();
    let mut digits = [0u8; 20];
    read::quicklist_nodes(r, true, |node| {
        match node {
            Node::Plain(e) => w.push(e),
            Node::Listpack(blob) => {
                for e in listpack::stored(blob)? {
                    w.push(text(&e, &mut digits));
                }
            }
            // (Version 1 only, read through `decode`.)
            Node::Ziplist(_) => return Err(RdbError::BadData),
        }
        Ok(())
    })?;
    if w.count() == 0 {
        return Err(RdbError::BadData);
    }
    Ok(Stored::Packed(Collection::List, w.finish()))
}
