//! The compact DUMP forms ([`dump`]): Redis 7.0's own bytes where it wrote
//! them uncompressed, and round trips through every edge of each form.

use super::tests::vectors;
use super::*;

fn flat(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<&[u8]> {
    pairs.iter().flat_map(|(f, v)| [&f[..], &v[..]]).collect()
}

#[test]
fn a_small_hash_and_an_integer_set_are_redis_own_bytes() {
    let vector = |key: &str| vectors().into_iter().find(|v| v.key == key).unwrap();
    let hash = vector("hash_listpack");
    let RdbValue::Hash(pairs) = decode(&hash.payload).unwrap() else {
        panic!("a hash");
    };
    let payload = dump(Dumpable::Hash {
        fields_and_values: &flat(&pairs),
        listpack: true,
    });
    assert_eq!(payload, hash.payload);
    let set = vector("set_intset16");
    let RdbValue::Set(members) = decode(&set.payload).unwrap() else {
        panic!("a set");
    };
    // Stored in any order: the intset is sorted.
    let mut members: Vec<&[u8]> = members.iter().map(Vec::as_slice).collect();
    members.reverse();
    let payload = dump(Dumpable::Set {
        members: &members,
        intset: true,
    });
    assert_eq!(payload, set.payload);
}

#[test]
fn listpack_scores_read_back_to_the_same_double() {
    let scores = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        1.5,
        0.1,
        -2.5e-7,
        1e17,
        1e300,
        -1e-300,
        f64::MIN_POSITIVE,
        4_503_599_627_370_495.0,
        4_503_599_627_370_496.0,
        -4_503_599_627_370_496.0,
        9_007_199_254_740_993.0,
        f64::MAX,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ];
    let members: Vec<Vec<u8>> = (0..scores.len()).map(|i| vec![b'm', i as u8]).collect();
    let mut entries: Vec<(f64, &[u8])> = scores
        .iter()
        .copied()
        .zip(members.iter().map(Vec::as_slice))
        .collect();
    entries.sort_by(|a, b| a.0.total_cmp(&b.0));
    let payload = dump(Dumpable::ZSet {
        entries: &entries,
        listpack: true,
    });
    assert_eq!(payload[0], types::ZSET_LISTPACK);
    let RdbValue::ZSet(got) = decode(&payload).unwrap() else {
        panic!("a sorted set");
    };
    assert_eq!(got.len(), entries.len());
    for ((member, score), (want_score, want_member)) in got.iter().zip(&entries) {
        assert_eq!(member, want_member);
        assert_eq!(score.to_bits(), want_score.to_bits(), "{want_score}");
    }
}

#[test]
fn long_lists_split_into_quicklist_nodes() {
    let elements: Vec<Vec<u8>> = (0..5000)
        .map(|i: u32| match i % 3 {
            0 => i.to_string().into_bytes(),
            1 => vec![b'x'; (i % 200) as usize],
            _ => vec![b'y'; 9000 * usize::from(i % 997 == 2)],
        })
        .collect();
    let slices: Vec<&[u8]> = elements.iter().map(Vec::as_slice).collect();
    let payload = dump(Dumpable::List(&slices));
    assert_eq!(payload[0], types::LIST_QUICKLIST_2);
    let mut r = reader::Reader::new(&payload[1..]);
    let nodes = r.length().unwrap();
    assert!(nodes > 20, "{nodes} nodes for ~210 KiB");
    for _ in 0..nodes {
        assert_eq!(r.length().unwrap(), 2, "a listpack node");
        let blob = r.string().unwrap();
        let count = listpack::elements(&blob).unwrap().len();
        assert!(blob.len() <= 8192 || count == 1, "{} bytes", blob.len());
    }
    assert_eq!(decode(&payload).unwrap(), RdbValue::List(elements));
}

#[test]
fn intsets_take_the_narrowest_width_and_fall_back_to_members() {
    for (members, width) in [
        (&[&b"-32768"[..], b"32767"][..], 2u8),
        (&[b"1", b"-32769"], 4),
        (&[b"2147483648", b"0"], 8),
        (&[b"-9223372036854775808", b"9223372036854775807"], 8),
    ] {
        let payload = dump(Dumpable::Set {
            members,
            intset: true,
        });
        assert_eq!(payload[0], types::SET_INTSET);
        let blob = reader::Reader::new(&payload[1..]).string().unwrap();
        assert_eq!(blob[0], width, "{members:?}");
        let RdbValue::Set(mut got) = decode(&payload).unwrap() else {
            panic!("a set");
        };
        got.sort();
        let mut want: Vec<Vec<u8>> = members.iter().map(|m| m.to_vec()).collect();
        want.sort();
        assert_eq!(got, want);
    }
    let mixed: [&[u8]; 2] = [b"1", b"01"];
    let payload = dump(Dumpable::Set {
        members: &mixed,
        intset: true,
    });
    assert_eq!(payload[0], types::SET);
    assert_eq!(
        decode(&payload).unwrap(),
        RdbValue::Set(vec![b"1".to_vec(), b"01".to_vec()])
    );
}

#[test]
fn scores_with_few_decimals_are_written_short_and_exact() {
    for (score, text) in [
        (0.5, "0.5"),
        (-0.5, "-0.5"),
        (0.1, "0.1"),
        (12.25, "12.25"),
        (-3.0625, "-3.0625"),
        (0.0001, "0.0001"),
        (1_700_000_000.123, "1700000000.123"),
    ] {
        let member: [&[u8]; 1] = [b"m"];
        let payload = dump(Dumpable::ZSet {
            entries: &[(score, member[0])],
            listpack: true,
        });
        let blob = reader::Reader::new(&payload[1..]).string().unwrap();
        let elements = listpack::elements(&blob).unwrap();
        assert_eq!(elements[1], text.as_bytes(), "{score}");
        assert_eq!(text.parse::<f64>().unwrap().to_bits(), score.to_bits());
    }
}
