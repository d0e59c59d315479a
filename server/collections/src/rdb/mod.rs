//! Redis's serialization format (the DUMP / RESTORE payload), as a pure
//! codec between bytes and a neutral [`RdbValue`]: the server converts that
//! to and from its own stored kinds.
//!
//! ```text
//! type:u8 | object | rdb_version:u16le | crc64:u64le (of everything before)
//! ```
//!
//! [`dump`] writes a stored value, borrowed, in the forms Redis 7.0's
//! DUMP writes (listpacks, intsets, quicklists: cheap for a Redis target
//! to load); [`encode`] writes an owned [`RdbValue`] in the element-by-
//! element forms; [`decode`] reads
//! every form Redis 7.0's DUMP writes (int-encoded and LZF strings,
//! listpacks, intsets, quicklists with plain nodes, streams with their
//! consumer groups) and the ziplist and stream forms of older versions. Decoding is bounds-checked throughout: garbage is an
//! error, never a panic or a huge allocation (fuzzed by
//! `server/collections/fuzz`).

mod crc64;
mod listpack;
mod lzf;
mod read;
mod reader;
mod stored;
mod stream;
mod write;
mod writer;
mod ziplist;

pub use crc64::crc64;
pub use stored::{decode_stored, stored, Collection, Stored};

use crate::stream::whole::WholeStream;

/// The RDB version this codec writes: Redis 7.0's. Payloads of a later
/// version are refused, as Redis 7.0 refuses them.
pub const RDB_VERSION: u16 = 10;

/// The object type bytes (Redis's `RDB_TYPE_*`).
pub mod types {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

/// A value as DUMP carries it, independent of how either side stores it.
#[derive(Clone, Debug, PartialEq)]
pub enum RdbValue {
    String(Vec<u8>),
    /// Elements, head first.
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    /// (member, score) pairs in no particular order; scores are never NaN.
    ZSet(Vec<(Vec<u8>, f64)>),
    /// (field, value) pairs; fields unique.
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    /// Entries, metadata and consumer groups (checked as read).
    Stream(Box<WholeStream>),
}

/// A stored value, borrowed, and the encoding Redis 7.0 would hold it in
/// (which DUMP form it gets).
#[derive(Clone, Copy, Debug)]
pub enum Dumpable<'a> {
    String(&'a [u8]),
    /// Elements, head first (a quicklist, as Redis 7.0 holds every list).
    List(&'a [&'a [u8]]),
    /// Members; `intset`: Redis would hold them as an intset (each a
    /// canonical integer, few enough).
    Set {
        members: &'a [&'a [u8]],
        intset: bool,
    },
    /// Fields and values alternating; `listpack`: small enough for one.
    Hash {
        fields_and_values: &'a [&'a [u8]],
        listpack: bool,
    },
    /// (score, member) entries, in the sorted set's order when `listpack`
    /// (small enough for one); scores are never NaN.
    ZSet {
        entries: &'a [(f64, &'a [u8])],
        listpack: bool,
    },
    Stream(&'a WholeStream),
}

/// Why a payload was refused, with Redis's reply for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RdbError {
    /// Too short, a later RDB version, or a checksum mismatch.
    #[error("ERR DUMP payload version or checksum are wrong")]
    VersionOrChecksum,
    /// The object does not parse (or is of a type not supported).
    #[error("ERR Bad data format")]
    BadData,
}

/// Version and checksum: the trailer's size.
const TRAILER: usize = 2 + 8;

/// The DUMP payload of a stored value.
pub fn dump(value: Dumpable<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    write::object(value, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The DUMP payload of `value`: hashes, sets and sorted sets element by
/// element (no listpack or intset), lists as a quicklist.
pub fn encode(value: &RdbValue) -> Vec<u8> {
    fn slices(v: &[Vec<u8>]) -> Vec<&[u8]> {
        v.iter().map(Vec::as_slice).collect()
    }
    match value {
        RdbValue::String(s) => dump(Dumpable::String(s)),
        RdbValue::List(elements) => dump(Dumpable::List(&slices(elements))),
        RdbValue::Set(members) => dump(Dumpable::Set {
            members: &slices(members),
            intset: false,
        }),
        RdbValue::ZSet(pairs) => {
            let entries: Vec<(f64, &[u8])> = pairs.iter().map(|(m, s)| (*s, &m[..])).collect();
            dump(Dumpable::ZSet {
                entries: &entries,
                listpack: false,
            })
        }
        RdbValue::Hash(pairs) => {
            let flat: Vec<&[u8]> = pairs.iter().flat_map(|(f, v)| [&f[..], &v[..]]).collect();
            dump(Dumpable::Hash {
                fields_and_values: &flat,
                listpack: false,
            })
        }
        RdbValue::Stream(whole) => dump(Dumpable::Stream(whole)),
    }
}

/// The value of a DUMP payload, after checking its version and checksum
/// (as Redis's `verifyDumpPayload`), then its object.
pub fn decode(payload: &[u8]) -> Result<RdbValue, RdbError> {
    let (kind, mut r) = open(payload)?;
    let value = read::object(kind, &mut r)?;
    if !r.at_end() {
        return Err(RdbError::BadData);
    }
    Ok(value)
}

/// A payload's type byte and a reader over its object, once its version
/// and checksum are checked.
fn open(payload: &[u8]) -> Result<(u8, reader::Reader<'_>), RdbError> {
    let body_len = payload
        .len()
        .checked_sub(8)
        .filter(|_| payload.len() >= TRAILER)
        .ok_or(RdbError::VersionOrChecksum)?;
    let (body, crc) = payload.split_at(body_len);
    let version = u16::from_le_bytes([body[body_len - 2], body[body_len - 1]]);
    if version > RDB_VERSION || crc64(body) != u64::from_le_bytes(crc.try_into().expect("8 bytes"))
    {
        return Err(RdbError::VersionOrChecksum);
    }
    let mut r = reader::Reader::new(&body[..body_len - 2]);
    let kind = r.u8().map_err(|_| RdbError::BadData)?;
    Ok((kind, r))
}

#[cfg(test)]
mod dump_tests;
#[cfg(test)]
mod stored_tests;
#[cfg(test)]
mod tests;
