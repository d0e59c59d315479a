//! [`decode_stored`]'s direct paths against the general one (`decode`,
//! then [`stored`]): the same stored value or the same error, on Redis's
//! own payloads, on Citadel's, on forged ones and on corrupted ones.

use super::listpack::{Element, ListpackWriter};
use super::tests::{corrupted_vectors, sealed, vectors};
use super::writer::{length, string};
use super::*;

/// Both paths give the same answer for `payload`.
fn agree(payload: &[u8]) -> Result<Stored, RdbError> {
    let direct = decode_stored(payload);
    assert_eq!(direct, decode(payload).map(stored), "{payload:02x?}");
    direct
}

#[test]
fn redis_payloads_decode_the_same_both_ways() {
    for v in vectors() {
        agree(&v.payload).unwrap_or_else(|e| panic!("{}: {e}", v.key));
    }
}

#[test]
fn citadel_payloads_decode_the_same_both_ways() {
    let ints: Vec<Vec<u8>> = (-300i64..300)
        .map(|n| (n * 1_000_003).to_string().into_bytes())
        .collect();
    let ints: Vec<&[u8]> = ints.iter().map(Vec::as_slice).collect();
    let words: [&[u8]; 6] = [b"a", b"", b"-0", b"007", b"12", &[b'x'; 300]];
    let hash: Vec<&[u8]> = words
        .iter()
        .zip(&ints)
        .flat_map(|(w, i)| [*w, *i, *i, *w])
        .collect();
    let entries: Vec<(f64, &[u8])> = [-1e300, -2.5, -0.0, 0.0, 0.1, 7.0, 1e17, f64::INFINITY]
        .into_iter()
        .zip(words.iter().chain(&ints).copied())
        .collect();
    let payloads = [
        dump(Dumpable::Hash {
            fields_and_values: &hash,
            listpack: true,
        }),
        dump(Dumpable::ZSet {
            entries: &entries,
            listpack: true,
        }),
        dump(Dumpable::Set {
            members: &ints,
            intset: true,
        }),
        dump(Dumpable::Set {
            members: &ints[..5],
            intset: true,
        }),
        dump(Dumpable::List(&ints)),
        dump(Dumpable::List(&words)),
    ];
    for payload in payloads {
        let Stored::Packed(..) = agree(&payload).unwrap() else {
            panic!("a collection");
        };
    }
}

/// A listpack of `elements` as `kind`'s payload (strings stay strings,
/// even those that spell integers).
fn listpack_payload(kind: u8, elements: &[Element<'_>]) -> Vec<u8> {
    let mut lp = ListpackWriter::default();
    for e in elements {
        match *e {
            Element::Int(n) => lp.int(n),
            Element::Str(s) => lp.raw_string(s),
        }
    }
    let mut body = vec![kind];
    string(&mut body, &lp.finish());
    sealed(&body, RDB_VERSION)
}

#[test]
fn forged_compact_forms_are_refused_the_same_way() {
    use Element::{Int, Str};
    let bad = [
        // The field "1" twice: once as an integer, once as a string.
        listpack_payload(
            types::HASH_LISTPACK,
            &[Int(1), Str(b"a"), Str(b"1"), Str(b"b")],
        ),
        listpack_payload(types::HASH_LISTPACK, &[Str(b"f")]),
        listpack_payload(types::HASH_LISTPACK, &[]),
        listpack_payload(types::ZSET_LISTPACK, &[Str(b"m"), Str(b"nan")]),
        listpack_payload(
            types::ZSET_LISTPACK,
            &[Str(b"m"), Int(1), Str(b"m"), Int(2)],
        ),
        listpack_payload(types::ZSET_LISTPACK, &[Str(b"m"), Str(b"x")]),
    ];
    for payload in bad {
        assert_eq!(agree(&payload), Err(RdbError::BadData));
    }
    // Distinct texts that look alike are not repeats.
    let fine = listpack_payload(
        types::HASH_LISTPACK,
        &[
            Int(0),
            Str(b"a"),
            Str(b"-0"),
            Str(b"b"),
            Str(b"00"),
            Str(b"c"),
        ],
    );
    agree(&fine).unwrap();
    // Unsorted sorted-set listpacks are stored in order.
    let unsorted = listpack_payload(
        types::ZSET_LISTPACK,
        &[Str(b"b"), Int(2), Str(b"a"), Int(1)],
    );
    agree(&unsorted).unwrap();
    let intset = |width: u32, ints: &[i16]| {
        let mut blob = width.to_le_bytes().to_vec();
        blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
        ints.iter()
            .for_each(|n| blob.extend_from_slice(&n.to_le_bytes()));
        let mut body = vec![types::SET_INTSET];
        string(&mut body, &blob);
        sealed(&body, RDB_VERSION)
    };
    assert_eq!(agree(&intset(2, &[3, 1, 3])), Err(RdbError::BadData));
    assert_eq!(agree(&intset(2, &[])), Err(RdbError::BadData));
    assert_eq!(agree(&intset(4, &[1, 2])), Err(RdbError::BadData));
    agree(&intset(2, &[3, -1, 2])).unwrap();
    let mut quicklist = vec![types::LIST_QUICKLIST_2];
    length(&mut quicklist, 2);
    length(&mut quicklist, 1);
    string(&mut quicklist, b"plain");
    length(&mut quicklist, 3);
    string(&mut quicklist, b"what");
    assert_eq!(
        agree(&sealed(&quicklist, RDB_VERSION)),
        Err(RdbError::BadData)
    );
}

#[test]
fn corrupted_payloads_fail_or_decode_the_same_both_ways() {
    corrupted_vectors(0x2545_f491_4f6c_dd1d, 300, |payload| {
        let _ = agree(payload);
    });
}
