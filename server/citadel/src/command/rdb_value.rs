//! The stored kinds (a string, or a collection in the packed form of
//! `citadel-collections`) as DUMP payloads, and DUMP payloads as what
//! RESTORE stores (the codec decodes straight into the packed form). (A
//! stream is always a root and pages: it converts whole,
//! `collections::stream::whole`.)

use citadel_cache::ValueKind;
use citadel_collections::rdb::{self, Collection, Dumpable, Stored};
use citadel_collections::stream::WholeStream;
use citadel_collections::{zset, HashView, Packed, SetEncoding};

use super::collections::hash::is_listpack;
use super::collections::small_form;
use super::error::CmdError;

/// The DUMP payload of a stored `kind` value, in the form Redis 7.0
/// writes for the encoding OBJECT ENCODING reports (`paged`: stored in
/// pages, past Redis's listpack and intset limits, and Redis never
/// converts back; so is a packed value marked big, `small_form`),
/// written from the stored bytes without copying them.
pub fn dump_stored(kind: ValueKind, stored: &[u8], paged: bool) -> Result<Vec<u8>, CmdError> {
    let paged = paged || small_form::is_big(stored);
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
    Ok(rdb::dump(match kind {
        ValueKind::Set => Dumpable::Set {
            members: &elements,
            intset: !paged && SetEncoding::of(&elements) == SetEncoding::IntSet,
        },
        ValueKind::Hash => Dumpable::Hash {
            fields_and_values: &elements,
            listpack: !paged && is_listpack(&HashView::new(packed)?)?,
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

/// What RESTORE stores for a DUMP payload (checked whole first: a bad
/// one is an error, nothing stored).
pub fn restorable(payload: &[u8]) -> Result<Restorable, CmdError> {
    Ok(match rdb::decode_stored(payload)? {
        Stored::String(s) => Restorable::Packed(ValueKind::String, s),
        Stored::Packed(collection, packed) => {
            let kind = match collection {
                Collection::List => ValueKind::List,
                Collection::Set => ValueKind::Set,
                Collection::Hash => ValueKind::Hash,
                Collection::ZSet => ValueKind::ZSet,
            };
            Restorable::Packed(kind, packed)
        }
        Stored::Stream(whole) => Restorable::Stream(whole),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_collections::rdb::RdbValue;

    #[test]
    fn collections_round_trip_through_payloads() {
        let values = [
            RdbValue::String(b"v".to_vec()),
            RdbValue::List(vec![b"a".to_vec(), b"a".to_vec(), b"".to_vec()]),
            RdbValue::Set(vec![b"1".to_vec(), b"x".to_vec()]),
            RdbValue::Set(vec![b"3".to_vec(), b"-1".to_vec()]),
            RdbValue::Hash(vec![(b"f".to_vec(), b"v".to_vec())]),
            RdbValue::ZSet(vec![(b"a".to_vec(), -1.5), (b"m".to_vec(), 1.0)]),
        ];
        for value in values {
            let Restorable::Packed(kind, stored) = restorable(&rdb::encode(&value)).unwrap() else {
                panic!("{value:?} is packed");
            };
            let payload = dump_stored(kind, &stored, false).unwrap();
            let mut back = rdb::decode(&payload).unwrap();
            if let RdbValue::Set(members) = &mut back {
                // An integer set comes back as an intset, in order.
                if members.len() == 2 && members[0] == b"-1" {
                    members.reverse();
                }
            }
            assert_eq!(back, value);
        }
        let stream = Box::new(WholeStream::default());
        let payload = rdb::encode(&RdbValue::Stream(stream.clone()));
        assert_eq!(restorable(&payload).unwrap(), Restorable::Stream(stream));
        assert_eq!(
            dump_stored(ValueKind::Set, b"\x01", false),
            Err(CmdError::CorruptValue)
        );
    }
}
