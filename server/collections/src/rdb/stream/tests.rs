//! Streams against a payload captured from Redis 7.0.15, round trips in
//! both stream versions, and corrupt payloads.

use super::super::{decode, encode, RdbError, RdbValue, RDB_VERSION};
use super::*;
use crate::stream::whole::WholeEntry;

/// `DUMP s` from Redis 7.0.15 after: XADD s 1-1 f v n 1, XADD s 1-2 f v2
/// n 2, XADD s 2-0 other x, XADD s 3-5 f 12345678901 n -7, XDEL s 1-2,
/// XGROUP CREATE s g1 0, XGROUP CREATE s g0 $, XREADGROUP GROUP g1 alice
/// COUNT 2 ... >, XREADGROUP GROUP g1 bob COUNT 1 ... >, XGROUP
/// CREATECONSUMER s g1 carol.
const REDIS_DUMP: &str = "13011000000000000000010000000000000001405a5a0000001f00030101010201816602816e02000102010001000181760201010501030100010101827632030201050100010101dfff020101856f74686572068178020601020102010401f4351cdcdf0200000009dff9020501ff030305010101020402026730030581ffffffffffffffff0000026731030504030000000000000001000000000000000199913c3ea2010000010000000000000002000000000000000099913c3ea20100000100000000000000030000000000000005a1913c3ea2010000010305616c69636599913c3ea201000002000000000000000100000000000000010000000000000002000000000000000003626f62a1913c3ea20100000100000000000000030000000000000005056361726f6ca8913c3ea2010000000a008b9fdc0993307d96";

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn entry(ms: u64, seq: u64, fields: &[&str]) -> WholeEntry {
    WholeEntry {
        id: StreamId::new(ms, seq),
        fields: fields.iter().map(|f| f.as_bytes().to_vec()).collect(),
    }
}

fn stream_of(value: RdbValue) -> WholeStream {
    match value {
        RdbValue::Stream(s) => *s,
        other => panic!("not a stream: {other:?}"),
    }
}

#[test]
fn decodes_redis_7_stream_with_deleted_entries_and_groups() {
    let s = stream_of(decode(&unhex(REDIS_DUMP)).unwrap());
    assert_eq!(
        s.entries.to_vec(),
        vec![
            entry(1, 1, &["f", "v", "n", "1"]),
            entry(2, 0, &["other", "x"]),
            entry(3, 5, &["f", "12345678901", "n", "-7"]),
        ]
    );
    assert_eq!(
        s.meta,
        StreamMeta {
            length: 3,
            last_id: StreamId::new(3, 5),
            first_id: StreamId::new(1, 1),
            max_deleted: StreamId::new(1, 2),
            entries_added: 4,
        }
    );
    let names: Vec<&[u8]> = s.groups.iter().map(|g| &g.name[..]).collect();
    assert_eq!(names, vec![&b"g0"[..], b"g1"]);
    assert_eq!(s.groups[0].entries_read, INVALID_ENTRIES_READ);
    let g1 = &s.groups[1];
    assert_eq!((g1.last_id, g1.entries_read), (StreamId::new(3, 5), 4));
    let consumers: Vec<&[u8]> = g1.consumers.iter().map(|c| &c.name[..]).collect();
    assert_eq!(consumers, vec![&b"alice"[..], b"bob", b"carol"]);
    let owners: Vec<(StreamId, usize, u64)> = g1
        .pending
        .iter()
        .map(|p| (p.id, p.consumer, p.delivery_count))
        .collect();
    assert_eq!(
        owners,
        vec![
            (StreamId::new(1, 1), 0, 1),
            (StreamId::new(2, 0), 0, 1),
            (StreamId::new(3, 5), 1, 1),
        ]
    );
    assert_eq!(g1.pending[0].delivery_time, g1.consumers[0].seen_time);
}

/// A stream with many nodes, a field set change, huge and integer
/// values, sequence numbers below the node's master ID, and a group.
fn sample() -> WholeStream {
    let mut entries: Vec<WholeEntry> = (0..350u64)
        .map(|i| {
            entry(
                10 + i / 3,
                (i % 3) * 7,
                &["temp", &format!("{}", i * 13), "unit", "C"],
            )
        })
        .collect();
    entries[120] = entry(50, 0, &["other", "field", "x", ""]);
    entries[121].fields[1] = vec![b'z'; 9000];
    // A node of one-field entries (SAMEFIELDS with one master field).
    for (i, e) in entries[200..300].iter_mut().enumerate() {
        e.fields = vec![b"only".to_vec(), i.to_string().into_bytes()];
    }
    let last = entries[349].id;
    WholeStream {
        meta: StreamMeta {
            length: 350,
            last_id: last,
            first_id: entries[0].id,
            max_deleted: StreamId::MIN,
            entries_added: 350,
        },
        groups: vec![WholeGroup {
            name: b"12".to_vec(),
            last_id: entries[9].id,
            entries_read: 10,
            pending: (0..10)
                .map(|i| WholePending {
                    id: entries[i].id,
                    delivery_time: 1_700_000_000_000 + i as u64,
                    delivery_count: 1 + i as u64,
                    consumer: i % 2,
                })
                .collect(),
            consumers: vec![
                WholeConsumer {
                    name: b"a".to_vec(),
                    seen_time: 5,
                },
                WholeConsumer {
                    name: b"b".to_vec(),
                    seen_time: u64::MAX,
                },
            ],
        }],
        entries: Entries::from(&entries[..]),
    }
}

#[test]
fn streams_round_trip_in_both_versions() {
    let whole = sample();
    let value = RdbValue::Stream(Box::new(whole.clone()));
    let payload = encode(&value);
    assert_eq!(payload[0], super::super::types::STREAM_LISTPACKS_2);
    assert_eq!(decode(&payload).unwrap(), value);
    // Redis's own payload, decoded and encoded again, means the same.
    let redis = decode(&unhex(REDIS_DUMP)).unwrap();
    assert_eq!(decode(&encode(&redis)).unwrap(), redis);

    // The pre-7.0 form: no first ID, deleted ID or entries added; a
    // group's entries-read is estimated, as Redis 7.0 loads it.
    let mut body = vec![super::super::types::STREAM_LISTPACKS];
    write_version(&whole, &mut body, false);
    let old = stream_of(decode(&sealed(&body)).unwrap());
    assert_eq!(old.entries, whole.entries);
    assert_eq!(old.meta.entries_added, 350);
    assert_eq!(old.meta.max_deleted, StreamId::MIN);
    // (Redis's estimate knows only the ends of the stream.)
    assert_eq!(old.groups[0].entries_read, INVALID_ENTRIES_READ);
    assert_eq!(old.groups[0].pending, whole.groups[0].pending);
}

#[test]
fn an_empty_stream_round_trips() {
    let whole = WholeStream::default();
    let value = RdbValue::Stream(Box::new(whole));
    assert_eq!(decode(&encode(&value)).unwrap(), value);
}

fn sealed(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = super::super::crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn every_truncation_and_inconsistency_is_bad_data() {
    let payload = unhex(REDIS_DUMP);
    let body = &payload[..payload.len() - 10];
    for cut in 1..body.len() {
        assert_eq!(
            decode(&sealed(&body[..cut])),
            Err(RdbError::BadData),
            "cut {cut}"
        );
    }
    let mut whole = stream_of(decode(&payload).unwrap());
    let bad = |w: &WholeStream| {
        let mut body = vec![super::super::types::STREAM_LISTPACKS_2];
        write_version(w, &mut body, true);
        decode(&sealed(&body))
    };
    // A length that disagrees with the entries (the byte after the one
    // node's 16-byte key and 90-byte listpack), entries out of order.
    let length_at = 1 + 1 + 17 + 2 + 90;
    assert_eq!(body[length_at], 3);
    let mut longer = body.to_vec();
    longer[length_at] = 4;
    assert_eq!(decode(&sealed(&longer)), Err(RdbError::BadData));
    let mut owned = whole.entries.to_vec();
    owned.swap(0, 1);
    whole.entries = Entries::from(&owned[..]);
    assert_eq!(bad(&whole), Err(RdbError::BadData));
    // Every byte of Redis's payload flipped in turn: an error or a stream
    // that holds together, never a panic.
    for at in 1..body.len() {
        let mut flipped = body.to_vec();
        flipped[at] ^= 0x55;
        if let Ok(RdbValue::Stream(s)) = decode(&sealed(&flipped)) {
            assert!(s.check().is_ok());
        }
    }
}

#[test]
fn a_pending_entry_must_have_exactly_one_consumer() {
    let payload = unhex(REDIS_DUMP);
    let body = &payload[..payload.len() - 10];
    // bob's one pending ID (3-5) changed to alice's 1-1: 3-5 is unowned
    // and 1-1 owned twice.
    let bob = body.windows(3).position(|w| w == b"bob").unwrap();
    let id_at = bob + 3 + 8 + 1;
    let mut twice = body.to_vec();
    twice[id_at..id_at + 16].copy_from_slice(&raw_id(StreamId::new(1, 1)));
    assert_eq!(decode(&sealed(&twice)), Err(RdbError::BadData));
    // An ID missing from the group's PEL.
    let mut missing = body.to_vec();
    missing[id_at..id_at + 16].copy_from_slice(&raw_id(StreamId::new(9, 9)));
    assert_eq!(decode(&sealed(&missing)), Err(RdbError::BadData));
}
