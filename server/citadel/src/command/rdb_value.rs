//! The stored kinds (a string, or a collection in the packed form of
//! `citadel-collections`) as DUMP payloads, and the neutral [`RdbValue`]
//! of the RDB codec as what RESTORE stores. (A stream is always a root and
//! pages: it converts whole, `collections::stream::whole`.)

use citadel_cache::ValueKind;
use citadel_collections::rdb::{self, Dumpable, RdbValue};
use citadel_collections::stream::WholeStream;
use citadel_collections::{zset, HashView, Packed, PackedWriter, SetEncoding};

use super::collections::hash::is_listpack;
use super::error::CmdError;

/// The DUMP payload of a stored `kind` value, in the form Redis 7.0
/// writes for the encoding OBJECT ENCODING reports (`paged`: stored in
/// pages, past Redis's listpack and intset limits, and Redis never
/// converts back), written from the stored bytes without copying them.
pub fn dump_stored(kind: ValueKind, stored: &[u8], paged: bool) -> Result<Vec<u8>, CmdError> {
    let packed = match kind {
        ValueKind::String => return Ok(rdb::dump(Dumpable::String(stored))),
        // Never a key (hidden from the keyspace): nothing to dump.
        ValueKind::Page => return Err(CmdError::NoSuchKey),
        // Never packed: read whole instead.
        ValueKind::Stream => return Err(CmdError::CorruptValue),
        ValueKind::List | ValueKind::Set | ValueKind::Hash | ValueKind::ZSet => {
            Packed::parse(stored)?
        }
    };
    if kind == ValueKind::ZSet {
        let entries = zset::entries(packed)?;
        let listpack = !paged && zset::redis_encoding(&entries) == "listpack";
        return Ok(rdb::dump(Dumpable::ZSet {
            entries: &entries,
            listpack,
        }));
    }
    let elements = packed.to_vec()?;
    let compact = !paged
        && match kind {
            ValueKind::Set => SetEncoding::of(&elements) == SetEncoding::IntSet,
            ValueKind::Hash => is_listpack(&HashView::new(packed)?)?,
            _ => false,
        };
    Ok(rdb::dump(match kind {
        ValueKind::Set => Dumpable::Set {
            members: &elements,
            intset: compact,
        },
        ValueKind::Hash => Dumpable::Hash {
            fields_and_values: &elements,
            listpack: compact,
        },
        _ => Dumpable::List(&elements),
    }))
}

/// What RESTORE stores.
#[derive(Debug, PartialEq)]
pub enum Restorable {
    /// A string, or a collection in the packed form (never empty: the
    /// codec refuses empty collections).
    Packed(ValueKind, Vec<u8>),
    /// A stream, stored as a root and pages.
    Stream(Box<WholeStream>),
}

/// What RESTORE stores for an RDB value.
pub fn from_rdb(value: RdbValue) -> Result<Restorable, CmdError> {
    Ok(match value {
        RdbValue::Stream(whole) => Restorable::Stream(whole),
        value => {
            let (kind, packed) = packed_from_rdb(value)?;
            Restorable::Packed(kind, packed)
        }
    })
}

/// The kind and stored bytes of an RDB value other than a stream.
fn packed_from_rdb(value: RdbValue) -> Result<(ValueKind, Vec<u8>), CmdError> {
    let packed = |elements: &mut dyn Iterator<Item = &[u8]>| {
        let mut w = PackedWriter::default();
        elements.for_each(|e| w.push(e));
        w.finish()
    };
    Ok(match value {
        RdbValue::String(s) => (ValueKind::String, s),
        RdbValue::List(l) => (ValueKind::List, packed(&mut l.iter().map(|e| &e[..]))),
        RdbValue::Set(s) => {
            // Through the set encoder: an integer set is kept sorted.
            let mut members: Vec<&[u8]> = s.iter().map(|e| &e[..]).collect();
            (
                ValueKind::Set,
                citadel_collections::set::encode(&mut members),
            )
        }
        RdbValue::Hash(h) => (
            ValueKind::Hash,
            packed(&mut h.iter().flat_map(|(f, v)| [&f[..], &v[..]])),
        ),
        RdbValue::ZSet(pairs) => (ValueKind::ZSet, zset_from_rdb(pairs)?),
        RdbValue::Stream(_) => return Err(CmdError::CorruptValue),
    })
}

/// Stores RDB's pairs (in any order) in the sorted set's order.
fn zset_from_rdb(pairs: Vec<(Vec<u8>, f64)>) -> Result<Vec<u8>, CmdError> {
    let mut entries: Vec<zset::Entry<'_>> = pairs.iter().map(|(m, s)| (*s, &m[..])).collect();
    entries.sort_by(zset::cmp);
    Ok(zset::encode(&entries))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collections_round_trip_through_rdb_values() {
        let values = [
            RdbValue::String(b"v".to_vec()),
            RdbValue::List(vec![b"a".to_vec(), b"a".to_vec(), b"".to_vec()]),
            RdbValue::Set(vec![b"1".to_vec(), b"x".to_vec()]),
            RdbValue::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
            RdbValue::ZSet(vec![(b"a".to_vec(), -1.5), (b"m".to_vec(), 1.0)]),
        ];
        for value in values {
            let Restorable::Packed(kind, stored) = from_rdb(value.clone()).unwrap() else {
                panic!("{value:?} is packed");
            };
            let payload = dump_stored(kind, &stored, false).unwrap();
            assert_eq!(rdb::decode(&payload).unwrap(), value);
        }
        let stream = Box::new(WholeStream::default());
        let restorable = from_rdb(RdbValue::Stream(stream.clone())).unwrap();
        assert_eq!(restorable, Restorable::Stream(stream));
        assert_eq!(
            dump_stored(ValueKind::Set, b"\x01", false),
            Err(CmdError::CorruptValue)
        );
    }
}
