//! The codec against payloads captured from Redis 7.0.15 (see
//! `testdata/redis7_dumps.tsv`), round trips, and corrupt payloads.

use super::*;

const VECTORS: &str = include_str!("../../testdata/redis7_dumps.tsv");

pub(super) struct Vector {
    pub key: String,
    pub payload: Vec<u8>,
    kind: String,
    elements: Vec<Vec<u8>>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(super) fn vectors() -> Vec<Vector> {
    VECTORS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            let elements = match cols[4] {
                "" => vec![Vec::new()],
                list => list.split(',').map(unhex).collect(),
            };
            Vector {
                key: cols[0].to_string(),
                payload: unhex(cols[2]),
                kind: cols[3].to_string(),
                elements,
            }
        })
        .collect()
}

/// The value as the capture script wrote it: sets and hashes sorted,
/// sorted sets in (score, member) order.
fn canonical(value: &RdbValue) -> (&'static str, Vec<Vec<u8>>) {
    match value {
        RdbValue::String(s) => ("string", vec![s.clone()]),
        RdbValue::List(l) => ("list", l.clone()),
        RdbValue::Set(s) => {
            let mut s = s.clone();
            s.sort();
            ("set", s)
        }
        RdbValue::Hash(h) => {
            let mut h = h.clone();
            h.sort();
            ("hash", h.into_iter().flat_map(|(f, v)| [f, v]).collect())
        }
        RdbValue::ZSet(z) => {
            let mut z = z.clone();
            z.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            let text = z
                .into_iter()
                .flat_map(|(m, s)| [m, s.to_string().into_bytes()])
                .collect();
            ("zset", text)
        }
        // (Streams are checked in `stream/tests.rs`.)
        RdbValue::Stream(_) => ("stream", Vec::new()),
    }
}

fn same(vector: &Vector, value: &RdbValue) {
    let (kind, got) = canonical(value);
    assert_eq!(kind, vector.kind, "{}", vector.key);
    assert_eq!(got.len(), vector.elements.len(), "{}", vector.key);
    for (i, (g, w)) in got.iter().zip(&vector.elements).enumerate() {
        if kind == "zset" && i % 2 == 1 {
            let parse = |b: &[u8]| std::str::from_utf8(b).unwrap().parse::<f64>().unwrap();
            assert_eq!(parse(g), parse(w), "{} score {i}", vector.key);
        } else {
            assert_eq!(g, w, "{} element {i}", vector.key);
        }
    }
}

#[test]
fn decodes_every_redis_7_payload() {
    let vectors = vectors();
    assert!(vectors.len() >= 20);
    for v in &vectors {
        let value = decode(&v.payload).unwrap_or_else(|e| panic!("{}: {e}", v.key));
        same(v, &value);
    }
}

#[test]
fn encoded_values_decode_to_themselves() {
    for v in vectors() {
        let value = decode(&v.payload).unwrap();
        let payload = encode(&value);
        assert_eq!(decode(&payload).unwrap(), value, "{}", v.key);
        assert_eq!(&payload[payload.len() - 10..payload.len() - 8], &[10, 0]);
    }
    let big = RdbValue::String(vec![b'x'; 70_000]);
    assert_eq!(decode(&encode(&big)).unwrap(), big);
}

#[test]
fn the_encoder_writes_redis_own_plain_string_bytes() {
    // DUMP of "hello" (an embstr) in Redis 7.0.15.
    let v = vectors()
        .into_iter()
        .find(|v| v.key == "string_short")
        .unwrap();
    assert_eq!(encode(&RdbValue::String(b"hello".to_vec())), v.payload);
}

/// `body` (type byte and object) with a version and a valid checksum.
pub(super) fn sealed(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn version_checksum_and_truncation_errors() {
    let good = encode(&RdbValue::String(b"hello".to_vec()));
    let body = &good[..good.len() - TRAILER];
    assert_eq!(decode(&sealed(body, 11)), Err(RdbError::VersionOrChecksum));
    assert!(decode(&sealed(body, 9)).is_ok(), "older versions load");
    let mut flipped = good.clone();
    flipped[2] ^= 1;
    assert_eq!(decode(&flipped), Err(RdbError::VersionOrChecksum));
    for cut in 0..good.len() {
        assert_eq!(
            decode(&good[..cut]),
            Err(RdbError::VersionOrChecksum),
            "cut {cut}"
        );
    }
    // Cut objects with a valid trailer: bad data.
    for cut in 0..body.len() {
        assert_eq!(
            decode(&sealed(&body[..cut], 10)),
            Err(RdbError::BadData),
            "cut {cut}"
        );
    }
    let mut trailing = body.to_vec();
    trailing.push(0);
    assert_eq!(decode(&sealed(&trailing, 10)), Err(RdbError::BadData));
}

#[test]
fn empty_collections_duplicates_and_nan_are_bad_data() {
    let bad: [&[u8]; 6] = [
        &[types::LIST, 0],
        &[types::SET, 2, 1, b'a', 1, b'a'],
        &[types::HASH, 2, 1, b'a', 0, 1, b'a', 0],
        &[types::ZSET, 1, 1, b'a', 253],
        &[types::LIST_QUICKLIST_2, 1, 3, 1, b'a'],
        &[99, 0],
    ];
    for body in bad {
        assert_eq!(
            decode(&sealed(body, 10)),
            Err(RdbError::BadData),
            "{body:?}"
        );
    }
}

#[test]
fn old_ziplist_forms_decode() {
    let zl = ziplist::tests::ziplist(&[
        &[0x01, b'f'],
        &[0xf3],
        &[0x01, b'g'],
        &[0x03, b'1', b'.', b'5'],
    ]);
    let blob = |kind: u8| {
        let mut body = vec![kind];
        writer::length(&mut body, zl.len() as u64);
        body.extend_from_slice(&zl);
        sealed(&body, 7)
    };
    let pairs = vec![
        (b"f".to_vec(), b"2".to_vec()),
        (b"g".to_vec(), b"1.5".to_vec()),
    ];
    assert_eq!(
        decode(&blob(types::HASH_ZIPLIST)).unwrap(),
        RdbValue::Hash(pairs)
    );
    assert_eq!(
        decode(&blob(types::ZSET_ZIPLIST)).unwrap(),
        RdbValue::ZSet(vec![(b"f".to_vec(), 2.0), (b"g".to_vec(), 1.5)])
    );
    let list = decode(&blob(types::LIST_ZIPLIST)).unwrap();
    assert_eq!(
        list,
        RdbValue::List(vec![
            b"f".to_vec(),
            b"2".to_vec(),
            b"g".to_vec(),
            b"1.5".to_vec()
        ])
    );
    let mut quicklist = vec![types::LIST_QUICKLIST, 2];
    for _ in 0..2 {
        writer::length(&mut quicklist, zl.len() as u64);
        quicklist.extend_from_slice(&zl);
    }
    match decode(&sealed(&quicklist, 7)).unwrap() {
        RdbValue::List(l) => assert_eq!(l.len(), 8),
        other => panic!("{other:?}"),
    }
    let scores = ziplist::tests::ziplist(&[&[0x01, b'm'], &[0x01, b'x']]);
    let mut body = vec![types::ZSET_ZIPLIST];
    writer::length(&mut body, scores.len() as u64);
    body.extend_from_slice(&scores);
    assert_eq!(
        decode(&sealed(&body, 8)),
        Err(RdbError::BadData),
        "x is no score"
    );
}

/// Each captured payload, `per_vector` times with 1 to 4 random bytes
/// changed and a valid trailer (so the object readers are reached),
/// handed to `check`.
pub(super) fn corrupted_vectors(seed: u64, per_vector: usize, mut check: impl FnMut(&[u8])) {
    let mut seed = seed;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for v in vectors() {
        let body = &v.payload[..v.payload.len() - TRAILER];
        for _ in 0..per_vector {
            let mut bytes = body.to_vec();
            for _ in 0..1 + next() % 4 {
                let i = (next() % bytes.len() as u64) as usize;
                bytes[i] = next() as u8;
            }
            check(&sealed(&bytes, RDB_VERSION));
        }
    }
}

#[test]
fn random_corruption_with_a_valid_checksum_never_panics() {
    corrupted_vectors(0x9e37_79b9_7f4a_7c15, 200, |payload| {
        let _ = decode(payload);
    });
}
