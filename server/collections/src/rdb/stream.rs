//! Streams in a DUMP payload: RDB_TYPE_STREAM_LISTPACKS_2 (Redis 7.0)
//! written and read, RDB_TYPE_STREAM_LISTPACKS (Redis 5 to 6.2) read.
//!
//! ```text
//! nodes:len | (master id:string(16, big endian) | listpack:string) x nodes
//!   | length:len | last id | [first id | max deleted id | entries added:len]
//!   | groups:len | group x groups
//! id: ms:len | seq:len
//! group: name:string | last id | [entries read:len] | pel:len | nack x pel
//!   | consumers:len | consumer x consumers
//! nack: id:raw(16, big endian) | delivery time:u64le | deliveries:len
//! consumer: name:string | seen time:u64le | pel:len | id:raw(16) x pel
//! ```
//!
//! (`[...]`: version 2 only.) A node's listpack is Redis's stream node: a
//! master entry (count, deleted, master fields, 0), then per entry its
//! flags, ID offsets from the master ID, fields or (flag SAMEFIELDS) only
//! values, and its element count. Deleted entries are skipped on reading
//! and never written.

use super::listpack::{self, Element, ListpackWriter};
use super::reader::Reader;
use super::writer::{length, string};
use super::RdbError;
use crate::stream::group::{estimate_entries_read, INVALID_ENTRIES_READ};
use crate::stream::whole::{Entries, WholeConsumer, WholeGroup, WholePending, WholeStream};
use crate::stream::{node_max_bytes, node_max_entries, StreamId, StreamMeta};

const FLAG_DELETED: i64 = 1;
const FLAG_SAMEFIELDS: i64 = 2;

/// A stream ID as RDB's raw 16 bytes (big endian, so they sort as IDs).
fn raw_id(id: StreamId) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&id.ms.to_be_bytes());
    b[8..].copy_from_slice(&id.seq.to_be_bytes());
    b
}

fn read_raw_id(bytes: &[u8]) -> Result<StreamId, RdbError> {
    let bytes: &[u8; 16] = bytes.try_into().map_err(|_| RdbError::BadData)?;
    let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    Ok(StreamId::new(word(0), word(8)))
}

fn write_id(out: &mut Vec<u8>, id: StreamId) {
    length(out, id.ms);
    length(out, id.seq);
}

/// The object of `stream` (after its type byte, RDB_TYPE_STREAM_LISTPACKS_2).
pub fn write(stream: &WholeStream, out: &mut Vec<u8>) {
    write_version(stream, out, true);
}

/// The object of `stream` as RDB_TYPE_STREAM_LISTPACKS_2 (`v2`) or as the
/// older RDB_TYPE_STREAM_LISTPACKS (tests: Redis 7.0 writes only v2).
fn write_version(stream: &WholeStream, out: &mut Vec<u8>, v2: bool) {
    let nodes = nodes(&stream.entries);
    length(out, nodes.len() as u64);
    for node in nodes {
        string(out, &raw_id(stream.entries.get(node.start).id));
        string(out, &node_listpack(&stream.entries, node));
    }
    let m = &stream.meta;
    length(out, stream.entries.len() as u64);
    write_id(out, m.last_id);
    if v2 {
        write_id(out, m.first_id);
        write_id(out, m.max_deleted);
        length(out, m.entries_added);
    }
    length(out, stream.groups.len() as u64);
    for g in &stream.groups {
        string(out, &g.name);
        write_id(out, g.last_id);
        if v2 {
            length(out, g.entries_read as u64);
        }
        length(out, g.pending.len() as u64);
        for p in &g.pending {
            out.extend_from_slice(&raw_id(p.id));
            out.extend_from_slice(&p.delivery_time.to_le_bytes());
            length(out, p.delivery_count);
        }
        // Each consumer's IDs, sorted out in one pass over the PEL.
        let mut owned: Vec<Vec<StreamId>> = vec![Vec::new(); g.consumers.len()];
        for p in &g.pending {
            // (A consumer index out of range, never in a checked stream,
            // owns nothing rather than panicking.)
            if let Some(ids) = owned.get_mut(p.consumer) {
                ids.push(p.id);
            }
        }
        length(out, g.consumers.len() as u64);
        for (c, ids) in g.consumers.iter().zip(owned) {
            string(out, &c.name);
            out.extend_from_slice(&c.seen_time.to_le_bytes());
            length(out, ids.len() as u64);
            for id in ids {
                out.extend_from_slice(&raw_id(id));
            }
        }
    }
}

/// The entries cut into nodes by Redis's node rule (at most
/// [`node_max_entries`] entries; a new node once one passes
/// [`node_max_bytes`] of fields and values), as index ranges.
fn nodes(entries: &Entries) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0usize);
    let max_entries = usize::try_from(node_max_entries()).unwrap_or(usize::MAX);
    let max_bytes = usize::try_from(node_max_bytes()).unwrap_or(usize::MAX);
    for (i, e) in entries.iter().enumerate() {
        if i > start && (i - start >= max_entries || bytes >= max_bytes) {
            out.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += e.fields().map(|f| f.len() + 2).sum::<usize>();
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// A node's listpack: the first entry's fields are the master fields.
fn node_listpack(entries: &Entries, node: std::ops::Range<usize>) -> Vec<u8> {
    let first = entries.get(node.start);
    let master = first.id;
    let master_fields: Vec<&[u8]> = first.fields().step_by(2).collect();
    // About its size: the fields and values, a few bytes each besides.
    let bytes: usize = (node.start..node.end)
        .map(|i| entries.get(i).fields().map(|f| f.len() + 3).sum::<usize>() + 12)
        .sum();
    let mut lp = ListpackWriter::with_capacity(bytes + 64);
    lp.int(node.len() as i64);
    lp.int(0);
    lp.int(master_fields.len() as i64);
    for f in &master_fields {
        lp.string(f);
    }
    lp.int(0);
    for e in node.map(|i| entries.get(i)) {
        let pairs = e.len() / 2;
        let same = pairs == master_fields.len()
            && e.fields()
                .step_by(2)
                .zip(&master_fields)
                .all(|(f, m)| f == *m);
        lp.int(if same { FLAG_SAMEFIELDS } else { 0 });
        lp.int(e.id.ms.wrapping_sub(master.ms) as i64);
        lp.int(e.id.seq.wrapping_sub(master.seq) as i64);
        if same {
            for v in e.fields().skip(1).step_by(2) {
                lp.string(v);
            }
            lp.int(pairs as i64 + 3);
        } else {
            lp.int(pairs as i64);
            for f in e.fields() {
                lp.string(f);
            }
            lp.int(2 * pairs as i64 + 4);
        }
    }
    lp.finish()
}

/// An integer element of a stream node (Redis reads a string that holds
/// one too).
fn int(element: Element<'_>) -> Result<i64, RdbError> {
    match element {
        Element::Int(n) => Ok(n),
        Element::Str(s) => std::str::from_utf8(s)
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or(RdbError::BadData),
    }
}

/// The live entries of a node whose master ID is `master`, appended to `out`.
fn read_node(master: StreamId, blob: &[u8], out: &mut Entries) -> Result<(), RdbError> {
    let elements = listpack::stored(blob)?;
    let mut it = elements.into_iter();
    let mut next = || it.next().ok_or(RdbError::BadData);
    let count = int(next()?)?;
    let _deleted = int(next()?)?;
    let master_count = usize::try_from(int(next()?)?).map_err(|_| RdbError::BadData)?;
    let mut master_fields = Vec::new();
    for _ in 0..master_count {
        master_fields.push(next()?);
    }
    if int(next()?)? != 0 {
        return Err(RdbError::BadData);
    }
    let mut live = 0i64;
    let mut rest = it.peekable();
    while rest.peek().is_some() {
        let mut next = || rest.next().ok_or(RdbError::BadData);
        let flags = int(next()?)?;
        let ms = master.ms.wrapping_add(int(next()?)? as u64);
        let seq = master.seq.wrapping_add(int(next()?)? as u64);
        let deleted = flags & FLAG_DELETED != 0;
        // A deleted entry's fields are skipped, never copied.
        let mut keep = |e: Element<'_>| match e {
            _ if deleted => {}
            Element::Int(n) => out.add_int_field(n),
            Element::Str(s) => out.add_field(s),
        };
        let (pairs, elements) = if flags & FLAG_SAMEFIELDS != 0 {
            for f in &master_fields {
                keep(*f);
                keep(next()?);
            }
            (master_count, master_count + 3)
        } else {
            let pairs = usize::try_from(int(next()?)?).map_err(|_| RdbError::BadData)?;
            for _ in 0..pairs.checked_mul(2).ok_or(RdbError::BadData)? {
                keep(next()?);
            }
            (pairs, 2 * pairs + 4)
        };
        // (An entry holds at least one field, as XADD requires.)
        if usize::try_from(int(next()?)?) != Ok(elements) || pairs == 0 {
            return Err(RdbError::BadData);
        }
        if !deleted {
            live += 1;
            out.end_entry(StreamId::new(ms, seq));
        }
    }
    if live != count {
        return Err(RdbError::BadData);
    }
    Ok(())
}

fn read_id(r: &mut Reader<'_>) -> Result<StreamId, RdbError> {
    Ok(StreamId::new(r.length()?, r.length()?))
}

fn millis(r: &mut Reader<'_>) -> Result<u64, RdbError> {
    Ok(u64::from_le_bytes(r.take(8)?.try_into().expect("8 bytes")))
}

/// A stream object (after its type byte); `v2`: RDB_TYPE_STREAM_LISTPACKS_2.
pub fn read(r: &mut Reader<'_>, v2: bool) -> Result<WholeStream, RdbError> {
    let nodes = r.count(2)?;
    let mut entries = Entries::default();
    for _ in 0..nodes {
        let master = read_raw_id(&r.string()?)?;
        read_node(master, &r.string()?, &mut entries)?;
    }
    let length = r.length()?;
    let last_id = read_id(r)?;
    let mut meta = StreamMeta {
        length,
        last_id,
        ..StreamMeta::default()
    };
    if v2 {
        meta.first_id = read_id(r)?;
        meta.max_deleted = read_id(r)?;
        meta.entries_added = r.length()?;
    } else {
        // Redis 7.0's load of an older stream: the first live entry (the
        // greatest ID when none), nothing deleted, every entry added.
        meta.first_id = entries.ids().first().copied().unwrap_or(StreamId::MAX);
        meta.entries_added = length;
    }
    let count = r.count(3)?;
    let mut groups = Vec::with_capacity(count);
    for _ in 0..count {
        let name = r.string()?.into_owned();
        let last_id = read_id(r)?;
        let entries_read = if v2 {
            r.length()? as i64
        } else {
            estimate_entries_read(&meta, last_id)
        };
        groups.push(read_group(r, name, last_id, entries_read)?);
    }
    let stream = WholeStream {
        entries,
        meta,
        groups,
    };
    stream.check().map_err(|_| RdbError::BadData)?;
    Ok(stream)
}

/// A group's PEL and consumers; every pending entry must belong to
/// exactly one consumer.
fn read_group(
    r: &mut Reader<'_>,
    name: Vec<u8>,
    last_id: StreamId,
    entries_read: i64,
) -> Result<WholeGroup, RdbError> {
    let pel = r.count(16 + 8 + 1)?;
    let mut pending = Vec::with_capacity(pel);
    for _ in 0..pel {
        pending.push(WholePending {
            id: read_raw_id(r.take(16)?)?,
            delivery_time: millis(r)?,
            delivery_count: r.length()?,
            consumer: usize::MAX,
        });
    }
    pending.sort_by_key(|p| p.id);
    if pending.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(RdbError::BadData);
    }
    let count = r.count(1 + 8 + 1)?;
    let mut consumers = Vec::with_capacity(count);
    for index in 0..count {
        let name = r.string()?.into_owned();
        let seen_time = millis(r)?;
        let owned = r.count(16)?;
        for _ in 0..owned {
            let id = read_raw_id(r.take(16)?)?;
            let at = pending
                .binary_search_by_key(&id, |p| p.id)
                .map_err(|_| RdbError::BadData)?;
            if pending[at].consumer != usize::MAX {
                return Err(RdbError::BadData);
            }
            pending[at].consumer = index;
        }
        consumers.push(WholeConsumer { name, seen_time });
    }
    if pending.iter().any(|p| p.consumer == usize::MAX) || entries_read < INVALID_ENTRIES_READ {
        return Err(RdbError::BadData);
    }
    Ok(WholeGroup {
        name,
        last_id,
        entries_read,
        pending,
        consumers,
    })
}

#[cfg(test)]
mod tests;
