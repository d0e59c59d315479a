//! Reading a DUMP payload's object (after its type byte) into an
//! [`RdbValue`]: every encoding Redis 7.0 writes, and the ziplist and
//! stream forms of older versions.

use std::collections::HashSet;

use super::reader::{parse_double, Reader};
use super::{listpack, stream, types, ziplist, RdbError, RdbValue};

/// The object of type `kind` at the reader's position.
pub fn object(kind: u8, r: &mut Reader<'_>) -> Result<RdbValue, RdbError> {
    let value = match kind {
        types::STRING => RdbValue::String(r.string()?.into_owned()),
        types::LIST => RdbValue::List(strings(r, 1)?),
        types::SET => RdbValue::Set(strings(r, 1)?),
        types::ZSET => RdbValue::ZSet(scored(r, Reader::text_double)?),
        types::ZSET_2 => RdbValue::ZSet(scored(r, Reader::binary_double)?),
        types::HASH => RdbValue::Hash(pairs(strings(r, 2)?)?),
        types::LIST_ZIPLIST => RdbValue::List(ziplist::elements(&r.string()?)?),
        types::SET_INTSET => RdbValue::Set(intset(&r.string()?)?),
        types::ZSET_ZIPLIST => RdbValue::ZSet(scores(ziplist::elements(&r.string()?)?)?),
        types::HASH_ZIPLIST => RdbValue::Hash(pairs(ziplist::elements(&r.string()?)?)?),
        types::LIST_QUICKLIST => RdbValue::List(quicklist(r, false)?),
        types::HASH_LISTPACK => RdbValue::Hash(pairs(listpack::elements(&r.string()?)?)?),
        types::ZSET_LISTPACK => RdbValue::ZSet(scores(listpack::elements(&r.string()?)?)?),
        types::LIST_QUICKLIST_2 => RdbValue::List(quicklist(r, true)?),
        types::STREAM_LISTPACKS => RdbValue::Stream(Box::new(stream::read(r, false)?)),
        types::STREAM_LISTPACKS_2 => RdbValue::Stream(Box::new(stream::read(r, true)?)),
        _ => return Err(RdbError::BadData),
    };
    check(&value)?;
    Ok(value)
}

/// Redis never stores an empty collection, nor a set, hash or sorted set
/// with a member twice.
fn check(value: &RdbValue) -> Result<(), RdbError> {
    fn unique<'a>(mut keys: impl ExactSizeIterator<Item = &'a [u8]>) -> Result<(), RdbError> {
        let mut seen = HashSet::with_capacity(keys.len());
        match keys.all(|k| seen.insert(k)) {
            true => Ok(()),
            false => Err(RdbError::BadData),
        }
    }
    let empty = match value {
        RdbValue::String(_) => false,
        RdbValue::List(l) => l.is_empty(),
        RdbValue::Set(s) => {
            unique(s.iter().map(|m| &m[..]))?;
            s.is_empty()
        }
        RdbValue::ZSet(z) => {
            unique(z.iter().map(|(m, _)| &m[..]))?;
            z.is_empty()
        }
        RdbValue::Hash(h) => {
            unique(h.iter().map(|(f, _)| &f[..]))?;
            h.is_empty()
        }
        // (Checked as read; a stream may be empty.)
        RdbValue::Stream(_) => false,
    };
    if empty {
        return Err(RdbError::BadData);
    }
    Ok(())
}

/// A count, then `count * per` strings (a hash counts its pairs).
fn strings(r: &mut Reader<'_>, per: usize) -> Result<Vec<Vec<u8>>, RdbError> {
    let count = r.count(per)? * per;
    (0..count).map(|_| Ok(r.string()?.into_owned())).collect()
}

/// A count, then (member, score) pairs with scores read by `score`.
fn scored<'a>(
    r: &mut Reader<'a>,
    score: fn(&mut Reader<'a>) -> Result<f64, RdbError>,
) -> Result<Vec<(Vec<u8>, f64)>, RdbError> {
    let count = r.count(2)?;
    (0..count)
        .map(|_| Ok((r.string()?.into_owned(), score(r)?)))
        .collect()
}

/// A hash field and value, or a member and its score as text.
type Pair = (Vec<u8>, Vec<u8>);

/// Alternating elements as (first, second) pairs.
fn pairs(elements: Vec<Vec<u8>>) -> Result<Vec<Pair>, RdbError> {
    if elements.len() % 2 != 0 {
        return Err(RdbError::BadData);
    }
    let mut it = elements.into_iter();
    Ok(std::iter::from_fn(|| Some((it.next()?, it.next()?))).collect())
}

/// Alternating member, score-as-text elements.
fn scores(elements: Vec<Vec<u8>>) -> Result<Vec<(Vec<u8>, f64)>, RdbError> {
    pairs(elements)?
        .into_iter()
        .map(|(member, score)| Ok((member, parse_double(&score)?)))
        .collect()
}

/// An intset blob's members as text.
fn intset(blob: &[u8]) -> Result<Vec<Vec<u8>>, RdbError> {
    Ok(intset_ints(blob)?
        .into_iter()
        .map(listpack::decimal)
        .collect())
}

/// An intset blob: `encoding:u32le (2, 4 or 8) | count:u32le | ints`,
/// its integers in stored order.
pub(super) fn intset_ints(blob: &[u8]) -> Result<Vec<i64>, RdbError> {
    let header = blob.get(..8).ok_or(RdbError::BadData)?;
    let width = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    let count = u32::from_le_bytes(header[4..].try_into().expect("4 bytes")) as usize;
    let body = &blob[8..];
    if !matches!(width, 2 | 4 | 8) || count.checked_mul(width) != Some(body.len()) {
        return Err(RdbError::BadData);
    }
    Ok(body
        .chunks_exact(width)
        .map(|int| {
            let raw = int.iter().rev().fold(0u64, |v, &b| (v << 8) | u64::from(b));
            listpack::sign_extend(raw, width as u32 * 8)
        })
        .collect())
}

/// One quicklist node's blob, by its container.
pub(super) enum Node<'b> {
    /// One element (version 2's plain container).
    Plain(&'b [u8]),
    Listpack(&'b [u8]),
    /// Version 1's only container.
    Ziplist(&'b [u8]),
}

/// Quicklist nodes: ziplists (version 1), or with `v2` a container byte
/// each: 1 a plain node (one element), 2 a listpack. Each is handed to
/// `node`.
pub(super) fn quicklist_nodes(
    r: &mut Reader<'_>,
    v2: bool,
    mut node: impl FnMut(Node<'_>) -> Result<(), RdbError>,
) -> Result<(), RdbError> {
    const PLAIN: u64 = 1;
    const PACKED: u64 = 2;
    let nodes = r.count(1)?;
    for _ in 0..nodes {
        let container = if v2 { r.length()? } else { PACKED };
        let blob = r.string()?;
        node(match (container, v2) {
            (PLAIN, true) => Node::Plain(&blob),
            (PACKED, true) => Node::Listpack(&blob),
            (PACKED, false) => Node::Ziplist(&blob),
            _ => return Err(RdbError::BadData),
        })?;
    }
    Ok(())
}

/// A quicklist's elements (empty nodes are skipped, as Redis does).
fn quicklist(r: &mut Reader<'_>, v2: bool) -> Result<Vec<Vec<u8>>, RdbError> {
    let mut out = Vec::new();
    quicklist_nodes(r, v2, |node| {
        match node {
            Node::Plain(e) => out.push(e.to_vec()),
            Node::Listpack(blob) => out.extend(listpack::elements(blob)?),
            Node::Ziplist(blob) => out.extend(ziplist::elements(blob)?),
        }
        Ok(())
    })?;
    Ok(out)
}
