//! Conversion between the stored kinds (a string, or a collection in the
//! packed form of `citadel-collections`) and the neutral [`RdbValue`] of
//! the RDB codec, for DUMP and RESTORE. (A stream is always a root and
//! pages: it converts whole, `collections::stream::whole`.)

use citadel_cache::ValueKind;
use citadel_collections::rdb::RdbValue;
use citadel_collections::stream::WholeStream;
use citadel_collections::{zset, HashView, Packed, PackedWriter};

use super::error::CmdError;

/// The RDB value of a stored `kind` value.
pub fn to_rdb(kind: ValueKind, stored: &[u8]) -> Result<RdbValue, CmdError> {
    let owned = |elements: Vec<&[u8]>| elements.into_iter().map(<[u8]>::to_vec).collect();
    Ok(match kind {
        ValueKind::String => RdbValue::String(stored.to_vec()),
        ValueKind::List => RdbValue::List(owned(Packed::parse(stored)?.to_vec()?)),
        ValueKind::Set => RdbValue::Set(owned(Packed::parse(stored)?.to_vec()?)),
        ValueKind::Hash => RdbValue::Hash(
            HashView::new(Packed::parse(stored)?)?
                .pairs()
                .map(|pair| pair.map(|(f, v)| (f.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()?,
        ),
        ValueKind::ZSet => zset_to_rdb(Packed::parse(stored)?)?,
        // Never a key (hidden from the keyspace): nothing to dump.
        ValueKind::Page => return Err(CmdError::NoSuchKey),
        // Never packed: read whole instead.
        ValueKind::Stream => return Err(CmdError::CorruptValue),
    })
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

/// A sorted set's (member, score) pairs, in its stored (score, member) order.
fn zset_to_rdb(packed: Packed<'_>) -> Result<RdbValue, CmdError> {
    let entries = zset::entries(packed)?;
    Ok(RdbValue::ZSet(
        entries
            .into_iter()
            .map(|(score, m)| (m.to_vec(), score))
            .collect(),
    ))
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
            assert_eq!(to_rdb(kind, &stored).unwrap(), value);
        }
        let stream = Box::new(WholeStream::default());
        let restorable = from_rdb(RdbValue::Stream(stream.clone())).unwrap();
        assert_eq!(restorable, Restorable::Stream(stream));
        assert_eq!(to_rdb(ValueKind::Set, b"\x01"), Err(CmdError::CorruptValue));
    }
}
