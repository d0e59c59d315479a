//! Writing an [`RdbValue`] as a DUMP payload's object, in the simplest
//! forms Redis 7.0 loads: strings (LZF-compressed when long and that
//! saves, as Redis does), RDB_TYPE_LIST / SET / HASH and ZSET_2 (binary
//! doubles), and streams as Redis 7.0 writes them (`stream.rs`). Redis
//! re-encodes small ones (listpack, intset) as it loads them.

use super::writer::{length, string};
use super::{stream, types, RdbValue};

/// The type byte and the object of `value`, appended to `out`.
pub fn object(value: &RdbValue, out: &mut Vec<u8>) {
    match value {
        RdbValue::String(s) => {
            out.push(types::STRING);
            string(out, s);
        }
        RdbValue::List(elements) => {
            out.push(types::LIST);
            strings(out, elements);
        }
        RdbValue::Set(members) => {
            out.push(types::SET);
            strings(out, members);
        }
        RdbValue::ZSet(pairs) => {
            out.push(types::ZSET_2);
            length(out, pairs.len() as u64);
            for (member, score) in pairs {
                string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        RdbValue::Hash(pairs) => {
            out.push(types::HASH);
            length(out, pairs.len() as u64);
            for (field, value) in pairs {
                string(out, field);
                string(out, value);
            }
        }
        RdbValue::Stream(whole) => {
            out.push(types::STREAM_LISTPACKS_2);
            stream::write(whole, out);
        }
    }
}

fn strings(out: &mut Vec<u8>, elements: &[Vec<u8>]) {
    length(out, elements.len() as u64);
    for e in elements {
        string(out, e);
    }
}
