//! Writing a [`Dumpable`] value as a DUMP payload's object, in the forms
//! Redis 7.0's DUMP writes for the same value: a small hash or sorted set
//! as one listpack, an integer set as an intset, every list as a
//! quicklist of listpack nodes, larger hashes, sets and sorted sets
//! element by element (RDB_TYPE_HASH / SET / ZSET_2), streams as Redis
//! 7.0 writes them (`stream.rs`). Elements are written from the stored
//! bytes, never copied into owned values first.

use super::listpack::{canonical_int, ListpackWriter};
use super::writer::{length, string};
use super::{stream, types, Dumpable};

/// A quicklist node's listpack holds at most this many bytes: Redis's
/// default `list-max-listpack-size` (-2, 8 KiB).
const NODE_BYTES: usize = 8 * 1024;
/// Quicklist node containers (RDB_TYPE_LIST_QUICKLIST_2).
const PACKED_NODE: u64 = 2;

/// The type byte and the object of `value`, appended to `out`.
pub fn object(value: Dumpable<'_>, out: &mut Vec<u8>) {
    match value {
        Dumpable::String(s) => {
            out.push(types::STRING);
            string(out, s);
        }
        Dumpable::List(elements) => {
            out.push(types::LIST_QUICKLIST_2);
            quicklist(out, elements);
        }
        Dumpable::Set { members, intset } => match intset.then(|| intset_blob(members)).flatten() {
            Some(blob) => {
                out.push(types::SET_INTSET);
                string(out, &blob);
            }
            None => {
                out.push(types::SET);
                length(out, members.len() as u64);
                members.iter().for_each(|m| string(out, m));
            }
        },
        Dumpable::Hash {
            fields_and_values,
            listpack: true,
        } => {
            out.push(types::HASH_LISTPACK);
            let mut lp = ListpackWriter::with_capacity(listpack_bytes(fields_and_values));
            fields_and_values.iter().for_each(|e| lp.string(e));
            string(out, &lp.finish());
        }
        Dumpable::Hash {
            fields_and_values,
            listpack: false,
        } => {
            out.push(types::HASH);
            length(out, (fields_and_values.len() / 2) as u64);
            fields_and_values.iter().for_each(|e| string(out, e));
        }
        Dumpable::ZSet {
            entries,
            listpack: true,
        } => {
            out.push(types::ZSET_LISTPACK);
            let bytes = entries.iter().map(|(_, m)| m.len() + 12).sum();
            let mut lp = ListpackWriter::with_capacity(bytes);
            for &(score, member) in entries {
                lp.string(member);
                listpack_score(&mut lp, score);
            }
            string(out, &lp.finish());
        }
        Dumpable::ZSet {
            entries,
            listpack: false,
        } => {
            out.push(types::ZSET_2);
            length(out, entries.len() as u64);
            for &(score, member) in entries {
                string(out, member);
                out.extend_from_slice(&score.to_le_bytes());
            }
        }
        Dumpable::Stream(whole) => {
            out.push(types::STREAM_LISTPACKS_2);
            stream::write(whole, out);
        }
    }
}

/// A list as quicklist nodes of at most [`NODE_BYTES`] each (a longer
/// element gets a node of its own), as Redis 7.0 holds every list.
fn quicklist(out: &mut Vec<u8>, elements: &[&[u8]]) {
    let mut nodes = Vec::new();
    let mut node = ListpackWriter::default();
    for e in elements {
        if node.count() > 0 && node.bytes() + ListpackWriter::entry_bytes(e) > NODE_BYTES {
            nodes.push(std::mem::take(&mut node).finish());
        }
        node.string(e);
    }
    if node.count() > 0 {
        nodes.push(node.finish());
    }
    length(out, nodes.len() as u64);
    for blob in nodes {
        length(out, PACKED_NODE);
        string(out, &blob);
    }
}

/// About the bytes a listpack of `elements` takes (each entry's header
/// and back-length are a few bytes).
fn listpack_bytes(elements: &[&[u8]]) -> usize {
    elements.iter().map(|e| e.len() + 3).sum::<usize>() + 7
}

/// A score in a sorted set's listpack, as Redis's `zzlInsertAt` stores
/// it: an integer within +-2^52 as an integer, -0 and the infinities as
/// Redis spells them, any other score as text that reads back to the same
/// double (Redis writes `%.17g`, the same double): a few decimals when
/// that is exact, else ryu's shortest digits (an exponent past 1e16 or
/// below 1e-5, so it stays short).
fn listpack_score(lp: &mut ListpackWriter, score: f64) {
    if score == 0.0 && score.is_sign_negative() {
        lp.string(b"-0");
    } else if score.fract() == 0.0 && score.abs() < INT_BOUND {
        lp.int(score as i64);
    } else if score.is_infinite() {
        lp.string(if score > 0.0 { b"inf" } else { b"-inf" });
    } else {
        let mut buf = [0u8; 32];
        match few_decimals(score, &mut buf) {
            Some(text) => lp.string(text),
            None => lp.string(ryu::Buffer::new().format_finite(score).as_bytes()),
        }
    }
}

/// Integers within this bound are exact in a double, as are their
/// quotients' inputs below.
const INT_BOUND: f64 = 4_503_599_627_370_496.0; // 2^52

/// `score` written with 1 to 4 decimals, when that text reads back to
/// exactly `score`: n / 10^k for an integer n below 2^52, checked by
/// dividing (IEEE division of two exact operands rounds the quotient as
/// strtod rounds the decimal text). Cheaper than the shortest-digits
/// search for the scores people write (prices, ratings, halves).
fn few_decimals(score: f64, buf: &mut [u8; 32]) -> Option<&[u8]> {
    const SCALES: [f64; 4] = [10.0, 100.0, 1_000.0, 10_000.0];
    let (decimals, scaled) = SCALES.iter().enumerate().find_map(|(i, &scale)| {
        let scaled = score * scale;
        (scaled.abs() < INT_BOUND && scaled.fract() == 0.0 && scaled / scale == score)
            .then_some((i + 1, scaled as i64))
    })?;
    // Digits from the right: the decimals, a point, the integer part
    // (at least "0"), the sign.
    let mut magnitude = scaled.unsigned_abs();
    let mut at = buf.len();
    let mut written = 0;
    while written < decimals + 1 || magnitude > 0 {
        if written == decimals {
            at -= 1;
            buf[at] = b'.';
        }
        at -= 1;
        buf[at] = b'0' + (magnitude % 10) as u8;
        magnitude /= 10;
        written += 1;
    }
    if scaled < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    Some(&buf[at..])
}

/// The intset blob of `members` (`width:u32le | count:u32le | ints`,
/// ascending, each in the narrowest width that holds them all); None if
/// one is not a canonical integer (then the set is written member by
/// member).
fn intset_blob(members: &[&[u8]]) -> Option<Vec<u8>> {
    let mut ints: Vec<i64> = members
        .iter()
        .map(|m| canonical_int(m))
        .collect::<Option<_>>()?;
    ints.sort_unstable();
    let fits = |bits: u32| {
        ints.iter()
            .all(|&n| n >> (bits - 1) == 0 || n >> (bits - 1) == -1)
    };
    let width: usize = if fits(16) {
        2
    } else if fits(32) {
        4
    } else {
        8
    };
    let mut blob = Vec::with_capacity(8 + width * ints.len());
    blob.extend_from_slice(&(width as u32).to_le_bytes());
    blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for n in ints {
        blob.extend_from_slice(&n.to_le_bytes()[..width]);
    }
    Some(blob)
}
