//! DUMP and RESTORE between a real redis-server (7.0) and Citadel: values
//! dumped by Redis restore into Citadel and read back the same, values
//! dumped by Citadel restore into Redis the same, for strings, hashes,
//! sets and lists in each of Redis's encodings; then the error and option
//! cases, whose replies must be byte-identical to Redis's.

use std::collections::BTreeMap;
use std::time::Duration;

use citadel_collections::rdb::{crc64, encode, RdbValue};
use citadel_tests::differential::{Clients as Both, Pair, Rng};
use citadel_tests::reference::encode_command;
use citadel_tests::RespReader;
use redis::{Connection, Value};

fn dump(con: &mut Connection, key: &str) -> Vec<u8> {
    let payload: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query(con).unwrap();
    payload.unwrap_or_else(|| panic!("{key} is missing"))
}

fn restore(con: &mut Connection, key: &str, payload: &[u8]) {
    let ok: String = redis::cmd("RESTORE")
        .arg(key)
        .arg(0)
        .arg(payload)
        .arg("REPLACE")
        .query(con)
        .unwrap_or_else(|e| panic!("RESTORE {key}: {e}"));
    assert_eq!(ok, "OK");
}

/// A value as a type and its elements, sorted where order is not part of
/// the value (sets, hashes), read with the commands of its type.
fn read(con: &mut Connection, key: &str) -> (String, Vec<Vec<u8>>) {
    let kind: String = redis::cmd("TYPE").arg(key).query(con).unwrap();
    let elements = match kind.as_str() {
        "string" => vec![redis::cmd("GET").arg(key).query(con).unwrap()],
        "list" => redis::cmd("LRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .query(con)
            .unwrap(),
        "set" => {
            let mut members: Vec<Vec<u8>> = redis::cmd("SMEMBERS").arg(key).query(con).unwrap();
            members.sort();
            members
        }
        "hash" => {
            let map: BTreeMap<Vec<u8>, Vec<u8>> =
                redis::cmd("HGETALL").arg(key).query(con).unwrap();
            map.into_iter().flat_map(|(f, v)| [f, v]).collect()
        }
        "zset" => redis::cmd("ZRANGE")
            .arg(key)
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(con)
            .unwrap(),
        other => panic!("{key}: type {other}"),
    };
    (kind, elements)
}

/// Redis `key` → Citadel → back into Redis as `back:key`: the same value.
/// Where Citadel has the type's commands (strings, hashes) it is read
/// there too.
fn redis_to_citadel_and_back(both: &mut Both, key: &str) {
    let want = read(&mut both.redis, key);
    restore(&mut both.citadel, key, &dump(&mut both.redis, key));
    let kind: String = redis::cmd("TYPE")
        .arg(key)
        .query(&mut both.citadel)
        .unwrap();
    assert_eq!(kind, want.0, "{key}");
    if matches!(kind.as_str(), "string" | "hash") {
        assert_eq!(read(&mut both.citadel, key), want, "{key} read in Citadel");
    }
    let back = format!("back:{key}");
    let ours = dump(&mut both.citadel, key);
    // The same form Redis's own DUMP writes (a listpack, an intset, a
    // quicklist...), so a Redis target loads it as cheaply.
    assert_eq!(ours[0], dump(&mut both.redis, key)[0], "{key}: DUMP form");
    restore(&mut both.redis, &back, &ours);
    assert_eq!(read(&mut both.redis, &back), want, "{key} back in Redis");
    if kind != "string" {
        assert_eq!(
            encoding(&mut both.redis, &back),
            encoding(&mut both.redis, key),
            "{key}: encoding back in Redis"
        );
    }
}

fn encoding(con: &mut Connection, key: &str) -> String {
    redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(key)
        .query(con)
        .unwrap()
}

fn run(con: &mut Connection, args: &[&[u8]]) {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    args[1..].iter().for_each(|a| {
        cmd.arg(*a);
    });
    let _: Value = cmd.query(con).unwrap();
}

#[test]
fn strings_move_both_ways() {
    let mut both = Both::start();
    let binary: Vec<u8> = (0..=255).collect();
    let compressible = "abc".repeat(2000);
    let incompressible: Vec<u8> = (0..5000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let values: [(&str, &[u8]); 11] = [
        ("short", b"hello"),
        ("empty", b""),
        ("int8", b"-12"),
        ("int16", b"1234"),
        ("int32", b"-123456789"),
        ("int64", b"12345678901234"),
        ("not_canonical_int", b"007"),
        ("compressible", compressible.as_bytes()),
        ("incompressible", &incompressible),
        ("binary", &binary),
        ("crlf", b"a\r\nb\0c"),
    ];
    for (key, value) in values {
        run(&mut both.redis, &[b"SET", key.as_bytes(), value]);
        redis_to_citadel_and_back(&mut both, key);
        // Citadel's own value into Redis.
        let own = format!("own:{key}");
        run(&mut both.citadel, &[b"SET", own.as_bytes(), value]);
        restore(&mut both.redis, &own, &dump(&mut both.citadel, &own));
        assert_eq!(
            read(&mut both.redis, &own),
            ("string".into(), vec![value.to_vec()])
        );
    }
}

#[test]
fn hashes_move_both_ways() {
    let mut both = Both::start();
    run(
        &mut both.redis,
        &[
            b"HSET", b"small", b"f", b"v", b"n", b"42", b"neg", b"-70000", b"e", b"",
        ],
    );
    let mut big: Vec<Vec<u8>> = vec![b"HSET".to_vec(), b"big".to_vec()];
    for i in 0..1000 {
        big.push(format!("field:{i}").into_bytes());
        big.push(format!("value:{}", i * 7).into_bytes());
    }
    run(
        &mut both.redis,
        &big.iter().map(|a| &a[..]).collect::<Vec<_>>(),
    );
    run(
        &mut both.redis,
        &[b"HSET", b"long", b"a", &[b'x'; 300], b"b", b"1"],
    );
    for key in ["small", "big", "long"] {
        redis_to_citadel_and_back(&mut both, key);
    }
    // A hash written by Citadel's HSET into Redis.
    run(
        &mut both.citadel,
        &[b"HSET", b"own", b"a", b"1", b"b", b"two"],
    );
    restore(&mut both.redis, "own", &dump(&mut both.citadel, "own"));
    assert_eq!(read(&mut both.redis, "own"), read(&mut both.citadel, "own"));
    assert_eq!(encoding(&mut both.redis, "own"), "listpack");
}

#[test]
fn sets_and_lists_move_both_ways() {
    let mut both = Both::start();
    run(
        &mut both.redis,
        &[b"SADD", b"ints", b"1", b"-5", b"100000", b"5000000000"],
    );
    run(
        &mut both.redis,
        &[b"SADD", b"strings", b"a", b"b", b"", b"1"],
    );
    let many: Vec<String> = (0..600).map(|i| (i * 3).to_string()).collect();
    let mut sadd = vec!["SADD", "many_ints"];
    sadd.extend(many.iter().map(|s| s.as_str()));
    run(
        &mut both.redis,
        &sadd.iter().map(|s| s.as_bytes()).collect::<Vec<_>>(),
    );
    run(
        &mut both.redis,
        &[
            b"RPUSH",
            b"list",
            b"a",
            b"1",
            b"-20",
            b"",
            b"4294967296",
            b"a",
        ],
    );
    let mut rpush = vec!["RPUSH", "long_list"];
    rpush.extend(many.iter().map(|s| s.as_str()));
    run(
        &mut both.redis,
        &rpush.iter().map(|s| s.as_bytes()).collect::<Vec<_>>(),
    );
    let big_element = "y".repeat(20_000);
    run(
        &mut both.redis,
        &[b"RPUSH", b"big_elements", big_element.as_bytes(), b"z"],
    );
    for key in [
        "ints",
        "strings",
        "many_ints",
        "list",
        "long_list",
        "big_elements",
    ] {
        redis_to_citadel_and_back(&mut both, key);
    }
}

/// An element near one of the encodings' boundaries: integers of every
/// width, strings around the 6/12/14-bit length limits, compressible runs.
fn random_element(rng: &mut Rng, big: bool) -> Vec<u8> {
    match rng.below(5) {
        0 | 1 => rng.int(300).to_string().into_bytes(),
        2 => {
            let lengths: &[usize] = if big {
                &[0, 1, 63, 64, 4095, 4096, 16384]
            } else {
                &[0, 1, 63, 64, 127, 128]
            };
            let len = lengths[rng.below(lengths.len() as u64) as usize];
            vec![b'a' + rng.below(26) as u8; len]
        }
        _ => (0..rng.below(40)).map(|_| rng.next_u64() as u8).collect(),
    }
}

#[test]
fn random_values_go_from_redis_to_citadel_and_back() {
    let mut both = Both::start();
    let mut rng = Rng(0x0dd5_eed5_2026);
    for i in 0..80 {
        let key = format!("random:{i}");
        let few = rng.below(4) != 0;
        let n = 1 + rng.below(if few { 12 } else { 700 });
        let (command, per) = [("SET", 1), ("HSET", 2), ("SADD", 1), ("RPUSH", 1)][i % 4];
        let n = if command == "SET" { 1 } else { n };
        let mut args = vec![command.as_bytes().to_vec(), key.as_bytes().to_vec()];
        for _ in 0..n * per {
            args.push(random_element(&mut rng, few));
        }
        run(
            &mut both.redis,
            &args.iter().map(|a| &a[..]).collect::<Vec<_>>(),
        );
        redis_to_citadel_and_back(&mut both, &key);
    }
}

#[test]
fn zsets_move_both_ways() {
    let mut both = Both::start();
    run(
        &mut both.redis,
        &[
            b"ZADD", b"small", b"1.5", b"a", b"-2", b"b", b"inf", b"c", b"0.1", b"d",
        ],
    );
    let mut zadd: Vec<Vec<u8>> = vec![b"ZADD".to_vec(), b"big".to_vec()];
    for i in 0..300 {
        zadd.push(format!("{}", i as f64 * 0.25 - 20.0).into_bytes());
        zadd.push(format!("member:{i}").into_bytes());
    }
    run(
        &mut both.redis,
        &zadd.iter().map(|a| &a[..]).collect::<Vec<_>>(),
    );
    for key in ["small", "big"] {
        redis_to_citadel_and_back(&mut both, key);
        assert_eq!(
            read(&mut both.citadel, key),
            read(&mut both.redis, key),
            "{key} read in Citadel"
        );
    }
}

/// `body` (type byte and object) sealed with `version` and a valid CRC.
fn sealed(body: &[u8], version: u16) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    let crc = crc64(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn errors_and_options_match_redis() {
    let mut pair = Pair::start();
    let good = encode(&RdbValue::String(b"hello".to_vec()));
    let body = &good[..good.len() - 10];
    let mut flipped = good.clone();
    flipped[3] ^= 0x20;
    let newer = sealed(body, 11);
    let older = sealed(body, 9);
    let cut = &good[..good.len() - 1];
    let bad_object = sealed(&[0, 0x3f, b'x'], 10);
    let unknown_type = sealed(&[99, 0], 10);
    let empty_list = sealed(&[1, 0], 10);
    let cases: Vec<Vec<&[u8]>> = vec![
        vec![b"DUMP", b"missing"],
        vec![b"RESTORE", b"k", b"0", &flipped],
        vec![b"RESTORE", b"k", b"0", &newer],
        vec![b"RESTORE", b"k", b"0", cut],
        vec![b"RESTORE", b"k", b"0", b"short"],
        vec![b"RESTORE", b"k", b"0", &bad_object],
        vec![b"RESTORE", b"k", b"0", &unknown_type],
        vec![b"RESTORE", b"k", b"0", &empty_list],
        vec![b"RESTORE", b"k", b"-1", &good],
        vec![b"RESTORE", b"k", b"ten", &good],
        vec![b"RESTORE", b"k", b"0", &good, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k", b"0", &good, b"FREQ", b"256"],
        vec![
            b"RESTORE",
            b"k",
            b"0",
            &good,
            b"FREQ",
            b"1",
            b"IDLETIME",
            b"1",
        ],
        vec![b"RESTORE", b"k", b"0", &good, b"BOGUS"],
        vec![b"RESTORE", b"k", b"0", &good, b"IDLETIME"],
        vec![b"EXISTS", b"k"],
        vec![b"RESTORE", b"k", b"0", &older, b"IDLETIME", b"10"],
        vec![b"GET", b"k"],
        vec![b"DUMP", b"k"],
        // An existing key: BUSYKEY comes before the TTL and payload checks.
        vec![b"RESTORE", b"k", b"0", &good],
        vec![b"RESTORE", b"k", b"-1", &flipped],
        vec![b"SET", b"k", b"other"],
        vec![b"RESTORE", b"k", b"0", &good, b"REPLACE", b"FREQ", b"5"],
        vec![b"GET", b"k"],
        vec![b"TTL", b"k"],
        // ABSTTL in the past: OK, and REPLACE deletes the old key.
        vec![b"RESTORE", b"k", b"1", &good, b"REPLACE", b"ABSTTL"],
        vec![b"EXISTS", b"k"],
        vec![b"RESTORE", b"gone", b"1000", &good, b"ABSTTL"],
        vec![b"EXISTS", b"gone"],
        // A TTL far enough ahead to read back as the same whole seconds.
        vec![b"RESTORE", b"t", b"100000000", &good],
        vec![b"TTL", b"t"],
        vec![
            b"RESTORE",
            b"t",
            b"32503680000000",
            &good,
            b"REPLACE",
            b"ABSTTL",
        ],
        vec![b"EXPIRETIME", b"t"],
        vec![b"RESTORE", b"t", b"0", &good, b"REPLACE"],
        vec![b"TTL", b"t"],
        vec![b"RESTORE", b"h", b"0", &good, b"absttl", b"replace"],
        vec![b"TYPE", b"h"],
    ];
    for proto in ["2", "3"] {
        pair.both(0, &["HELLO", proto]);
        pair.both(0, &["FLUSHALL"]);
        for case in &cases {
            pair.same(case);
        }
    }
}

/// Real Redis payloads of every encoding, corrupted and resealed with a
/// valid checksum: Citadel answers OK or `Bad data format` and stays up.
#[test]
fn corrupt_payloads_are_refused_cleanly() {
    let mut both = Both::start();
    run(
        &mut both.redis,
        &[b"HSET", b"h", b"f", b"v", b"n", b"-70000"],
    );
    run(
        &mut both.redis,
        &[b"SADD", b"s", b"1", b"-5", b"5000000000"],
    );
    run(
        &mut both.redis,
        &[b"RPUSH", b"l", b"a", b"12", b"hello world"],
    );
    run(
        &mut both.redis,
        &[b"SET", b"z", "abc".repeat(50).as_bytes()],
    );
    let mut rng = Rng(0xbad_da7a);
    for key in ["h", "s", "l", "z"] {
        let payload = dump(&mut both.redis, key);
        let body = &payload[..payload.len() - 10];
        for _ in 0..100 {
            let mut bytes = body.to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(bytes.len() as u64) as usize;
                bytes[i] = rng.next_u64() as u8;
            }
            let reply = redis::cmd("RESTORE")
                .arg("target")
                .arg(0)
                .arg(sealed(&bytes, 10))
                .arg("REPLACE")
                .query::<String>(&mut both.citadel);
            if let Err(e) = reply {
                assert!(e.to_string().contains("Bad data format"), "{key}: {e}");
            }
        }
    }
    let pong: String = redis::cmd("PING").query(&mut both.citadel).unwrap();
    assert_eq!(pong, "PONG");
}

/// RESTORE publishes `restore` (also over an existing key with REPLACE),
/// and `del` when REPLACE meets a TTL already past, as Redis does.
#[test]
fn keyspace_events_match_redis() {
    let mut pair = Pair::start();
    pair.same_str(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let subscribe = |stream| {
        let mut r = RespReader::new(stream);
        r.send(&encode_command(&[b"PSUBSCRIBE", b"__key*__:*"]));
        r.raw_reply().expect("psubscribe reply");
        r
    };
    let (mut rsub, mut csub) = (subscribe(pair.redis.raw()), subscribe(pair.citadel.raw()));
    let payload = encode(&RdbValue::String(b"v".to_vec()));
    let cases: [&[&[u8]]; 4] = [
        &[b"RESTORE", b"k", b"0", &payload],
        &[b"RESTORE", b"k", b"0", &payload, b"REPLACE"],
        &[b"RESTORE", b"k", b"100000", &payload, b"REPLACE"],
        &[b"RESTORE", b"k", b"1", &payload, b"REPLACE", b"ABSTTL"],
    ];
    for case in cases {
        pair.same(case);
        let want = rsub.pending(Duration::from_millis(100));
        let got = csub.pending_like(
            want.len(),
            Duration::from_secs(2),
            Duration::from_millis(30),
        );
        assert!(!want.is_empty());
        assert_eq!(
            got,
            want,
            "notifications of {:?}",
            String::from_utf8_lossy(case[4..].concat().as_slice())
        );
    }
}
