//! Hash commands against a real redis-server: seeded random streams of
//! every hash command must get byte-identical replies; then type checks
//! (WRONGTYPE both ways), key commands on hashes, RESP3 replies, and the
//! properties of what is random (HRANDFIELD) or server-specific (HSCAN of
//! a big hash).

use std::collections::{HashMap, HashSet};

use citadel_tests::differential::{push_words as push, Pair, Rng};
use citadel_tests::Server;
use redis::Value;

const KEYS: &[&str] = &["h0", "h1", "h2", "s"];
const FIELDS: &[&str] = &[
    "f0",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
    "f7",
    "",
    "a-long-field-name",
];
/// Stored values and increments (float sums of every shape are in
/// tests/tests/incrbyfloat.rs).
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-3",
    "17",
    "1.5",
    "-2.25",
    "0.125",
    "1e3",
    "10.5",
    "x",
    "",
    " 1",
    "9223372036854775807",
    "-9223372036854775808",
    "inf",
];

const FLOATS: &[&str] = &[
    "0", "1", "-3", "1.5", "-2.25", "0.125", "1e3", "10.5", "x", "", " 1", "inf", "-inf", "nan",
];

fn field(rng: &mut Rng) -> String {
    rng.pick(FIELDS).to_string()
}

fn value(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng.pick(NUMBERS).to_string(),
        1 => rng.int(100).to_string(),
        _ => format!("v{}", rng.below(50)),
    }
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let mut args: Vec<String> = Vec::new();
    match rng.below(100) {
        0..=17 => {
            push(
                &mut args,
                &[rng.pick(&["HSET", "HSET", "HMSET", "hset"]), &key],
            );
            for _ in 0..rng.below(4) + 1 {
                args.push(field(rng));
                args.push(value(rng));
            }
            if rng.below(20) == 0 {
                args.pop(); // a wrong argument count
            }
        }
        18..=21 => push(&mut args, &["HSETNX", &key, &field(rng), &value(rng)]),
        22..=27 => push(&mut args, &["HGET", &key, &field(rng)]),
        28..=30 => {
            push(&mut args, &["HMGET", &key]);
            for _ in 0..rng.below(4) + 1 {
                args.push(field(rng));
            }
        }
        31..=37 => {
            push(&mut args, &["HDEL", &key]);
            for _ in 0..rng.below(3) + 1 {
                args.push(field(rng));
            }
        }
        38..=40 => push(&mut args, &["HLEN", &key]),
        41..=42 => push(&mut args, &["HEXISTS", &key, &field(rng)]),
        43..=44 => push(&mut args, &["HSTRLEN", &key, &field(rng)]),
        45..=47 => push(&mut args, &["HGETALL", &key]),
        48..=49 => push(&mut args, &[rng.pick(&["HKEYS", "HVALS"]), &key]),
        50..=59 => push(
            &mut args,
            &["HINCRBY", &key, &field(rng), &rng.int(1000).to_string()],
        ),
        60..=62 => push(
            &mut args,
            &["HINCRBY", &key, &field(rng), rng.pick(NUMBERS)],
        ),
        // Own fields and small increments: Redis adds in long double, and
        // prints big sums with more digits than an f64 holds.
        63..=70 => push(
            &mut args,
            &[
                "HINCRBYFLOAT",
                &key,
                rng.pick(&["g0", "g1"]),
                rng.pick(FLOATS),
            ],
        ),
        71..=76 => {
            // Counts that cover the whole hash are deterministic in Redis
            // (stored order); the others are checked by properties.
            let count = rng.pick(&["0", "100", "12", "x", "-9223372036854775808", "1 "]);
            push(&mut args, &["HRANDFIELD", &key, count]);
            match rng.below(4) {
                0 => push(&mut args, &["WITHVALUES"]),
                1 => push(
                    &mut args,
                    &[rng.pick(&["withvalues", "WITH", "WITHVALUES x"])],
                ),
                _ => {}
            }
        }
        77..=78 => push(&mut args, &["HRANDFIELD", "none"]),
        79..=84 => {
            push(
                &mut args,
                &["HSCAN", &key, rng.pick(&["0", "0", "7", "x", "-1"])],
            );
            match rng.below(5) {
                0 => push(
                    &mut args,
                    &["MATCH", rng.pick(&["f*", "f[1-3]", "*long*", "?"])],
                ),
                1 => push(&mut args, &["COUNT", rng.pick(&["1", "0", "x", "100"])]),
                2 => push(&mut args, &["TYPE", "hash"]),
                3 => push(&mut args, &["MATCH"]),
                _ => {}
            }
        }
        85..=86 => push(&mut args, &["SET", "s", &value(rng)]),
        87..=88 => {
            let n = 2 + rng.below(2) as usize;
            push(
                &mut args,
                &[rng.pick(&["GET", "STRLEN", "INCR", "APPEND"]), &key, "x"][..n],
            )
        }
        89..=90 => push(&mut args, &["TYPE", &key]),
        91 => push(&mut args, &["OBJECT", "ENCODING", &key]),
        92 => push(&mut args, &["DEL", &key]),
        93..=94 => push(&mut args, &["EXISTS", &key]),
        95 => push(&mut args, &["EXPIRE", &key, "1000"]),
        96 => push(&mut args, &["TTL", &key]),
        _ => push(&mut args, &["HGET", &key]),
    }
    args
}

#[test]
fn random_hash_commands_match_redis() {
    let mut pair = Pair::start();
    pair.random_streams(&[3, 11, 2024], 3000, random_command, |pair| {
        for key in KEYS {
            pair.same_str(&["TYPE", key]);
            pair.same_str(&["HGETALL", key]);
        }
    });
}

#[test]
fn hash_edge_cases_match_redis() {
    let mut pair = Pair::start();
    let long = "x".repeat(65);
    let cases: &[&[&str]] = &[
        &["HSET", "h", "a", "1", "b", "2"],
        &["OBJECT", "ENCODING", "h"],
        &["HSET", "h", "big", &long],
        &["OBJECT", "ENCODING", "h"],
        &["HINCRBY", "h", "a", "9223372036854775807"],
        &["HINCRBY", "h", "b", "-9223372036854775808"],
        &["HINCRBY", "h", "b", "-9223372036854775808"],
        &["HINCRBY", "h", "big", "1"],
        &["HINCRBYFLOAT", "h", "big", "1"],
        &["HINCRBYFLOAT", "h", "a", "inf"],
        &["HINCRBYFLOAT", "h", "a", "-inf"],
        &["HINCRBYFLOAT", "h", "a", "nan"],
        &["HSET", "h", "inf", "inf"],
        &["HINCRBYFLOAT", "h", "inf", "1"],
        &["HINCRBYFLOAT", "h", "new", "2.5"],
        &["HINCRBYFLOAT", "h", "new", "-2.5"],
        &["HGET", "h", "new"],
        &["HINCRBY", "h", "a", "1", "extra"],
        &["HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"],
        &["HRANDFIELD", "h", "4611686018427387904", "WITHVALUES"],
        &["HRANDFIELD", "h", "1", "WITHVALUES", "x"],
        &["HRANDFIELD", "none", "-5", "WITHVALUES"],
        &["HRANDFIELD", "none", "x"],
        &["HSCAN", "none", "0", "COUNT", "x"],
        &["HSCAN", "h", "18446744073709551616"],
        &["HSCAN", "h", "0", "COUNT", "0"],
        // The last field deleted takes the key with it.
        &["HSET", "gone", "f", "v"],
        &["HDEL", "gone", "f", "f"],
        &["EXISTS", "gone"],
        &["TYPE", "gone"],
        // Key commands keep a hash a hash, with its fields and TTL.
        &["HSET", "k", "f1", "v1", "f2", "v2"],
        &["EXPIRE", "k", "1000"],
        &["HSET", "k", "f3", "v3"],
        &["TTL", "k"],
        &["PERSIST", "k"],
        &["TTL", "k"],
        &["RENAME", "k", "k2"],
        &["TYPE", "k2"],
        &["HGETALL", "k2"],
        &["COPY", "k2", "k3"],
        &["HGETALL", "k3"],
        &["HINCRBY", "k3", "n", "5"],
        &["HGETALL", "k2"],
        &["OBJECT", "ENCODING", "k3"],
        // String commands on a hash, hash commands on a string.
        &["SET", "str", "12"],
        &["HGET", "str", "f"],
        &["HSET", "str", "f", "v"],
        &["HINCRBY", "str", "f", "1"],
        &["HINCRBYFLOAT", "str", "f", "1"],
        &["HRANDFIELD", "str"],
        &["HRANDFIELD", "str", "2"],
        &["HSCAN", "str", "0"],
        &["HGETALL", "str"],
        &["HLEN", "str"],
        &["GET", "k2"],
        &["APPEND", "k2", "x"],
        &["INCR", "k2"],
        &["INCRBYFLOAT", "k2", "1"],
        &["SETRANGE", "k2", "0", "x"],
        &["GETRANGE", "k2", "0", "1"],
        &["STRLEN", "k2"],
        &["BITCOUNT", "k2"],
        &["SETBIT", "k2", "1", "1"],
        &["PFADD", "k2", "x"],
        &["PFCOUNT", "k2"],
        &["GETDEL", "k2"],
        &["MGET", "k2", "str"],
        &["TYPE", "k2"],
        &["SET", "k2", "now a string"],
        &["TYPE", "k2"],
        &["HGET", "k2", "f1"],
        // Inside a transaction.
        &["MULTI"],
        &["HSET", "t", "a", "1"],
        &["HINCRBY", "t", "a", "2"],
        &["HINCRBY", "str", "a", "2"],
        &["HINCRBYFLOAT", "t", "b", "0.5"],
        &["HGETALL", "t"],
        &["EXEC"],
    ];
    for case in cases {
        pair.same_str(case);
    }
    // A hash past 512 fields is a hash table; HSCAN of a listpack-sized one
    // is one whole reply in stored order.
    let mut args = vec!["HSET".to_string(), "many".to_string()];
    for i in 0..513 {
        args.push(format!("f{i}"));
        args.push(i.to_string());
    }
    pair.same_strings(&args);
    pair.same_str(&["OBJECT", "ENCODING", "many"]);
    pair.same_str(&["HDEL", "many", "f0"]);
    pair.same_str(&["HLEN", "many"]);
    pair.same_str(&["HSCAN", "k3", "0", "MATCH", "f*", "COUNT", "1"]);
}

#[test]
fn resp3_replies_match_redis() {
    let mut pair = Pair::start();
    pair.both(0, &["HELLO", "3"]);
    for case in [
        &["HSET", "h", "a", "1", "b", "2"][..],
        &["HGETALL", "h"],
        &["HGETALL", "none"],
        &["HRANDFIELD", "h", "5", "WITHVALUES"],
        &["HRANDFIELD", "h", "2"],
        &["HRANDFIELD", "none"],
        &["HRANDFIELD", "none", "3", "WITHVALUES"],
        &["HSCAN", "h", "0"],
        &["HGET", "h", "none"],
        &["HINCRBYFLOAT", "h", "a", "1.5"],
        &["HMGET", "h", "a", "x"],
    ] {
        pair.same_str(case);
    }
}

fn fields_of(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
                other => panic!("not a bulk string: {other:?}"),
            })
            .collect(),
        other => panic!("not an array: {other:?}"),
    }
}

#[test]
fn hrandfield_draws_from_the_hash() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let hash: HashMap<String, String> = (0..20)
        .map(|i| (format!("f{i}"), format!("v{i}")))
        .collect();
    let _: () = redis::cmd("HSET")
        .arg("h")
        .arg(hash.iter().collect::<Vec<_>>())
        .query(&mut con)
        .unwrap();
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let one: String = redis::cmd("HRANDFIELD").arg("h").query(&mut con).unwrap();
        assert!(hash.contains_key(&one));
        seen.insert(one);
    }
    assert!(seen.len() > 1, "always the same field");
    for count in [1, 5, 19, 20, 25] {
        let v: Value = redis::cmd("HRANDFIELD")
            .arg("h")
            .arg(count)
            .query(&mut con)
            .unwrap();
        let got = fields_of(&v);
        assert_eq!(got.len(), count.min(20));
        assert_eq!(
            got.iter().collect::<HashSet<_>>().len(),
            got.len(),
            "distinct"
        );
        assert!(got.iter().all(|f| hash.contains_key(f)));
    }
    for count in [-1, -7, -60] {
        let v: Value = redis::cmd("HRANDFIELD")
            .arg("h")
            .arg(count)
            .arg("WITHVALUES")
            .query(&mut con)
            .unwrap();
        let flat = fields_of(&v);
        assert_eq!(flat.len() as i64, -2 * count);
        for pair in flat.chunks(2) {
            assert_eq!(hash[&pair[0]], pair[1]);
        }
    }
}

/// HSCAN of a hash past listpack size, changed between calls: every field
/// present for the whole scan comes back, and the scan ends.
#[test]
fn hscan_of_a_changing_big_hash_returns_every_lasting_field() {
    let server = Server::start(&[]);
    let mut con = server.client();
    for i in 0..300 {
        let _: () = redis::cmd("HSET")
            .arg("big")
            .arg(format!("keep{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("big")
            .arg(format!("tmp{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    let mut cursor = 0u64;
    let mut seen = HashSet::new();
    let mut calls = 0;
    loop {
        let (next, pairs): (u64, Vec<String>) = redis::cmd("HSCAN")
            .arg("big")
            .arg(cursor)
            .arg("COUNT")
            .arg(25)
            .query(&mut con)
            .unwrap();
        seen.extend(pairs.chunks(2).map(|p| p[0].clone()));
        // Churn: remove some temporary fields, add new ones.
        let _: () = redis::cmd("HDEL")
            .arg("big")
            .arg(format!("tmp{calls}"))
            .query(&mut con)
            .unwrap();
        let _: () = redis::cmd("HSET")
            .arg("big")
            .arg(format!("new{calls}"))
            .arg(1)
            .query(&mut con)
            .unwrap();
        calls += 1;
        assert!(calls < 1000, "the scan does not end");
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    for i in 0..300 {
        assert!(seen.contains(&format!("keep{i}")), "keep{i} missed");
    }
    let with_match: (u64, Vec<String>) = redis::cmd("HSCAN")
        .arg("big")
        .arg(0)
        .arg("MATCH")
        .arg("keep1*")
        .arg("COUNT")
        .arg(10_000)
        .query(&mut con)
        .unwrap();
    assert_eq!(with_match.0, 0);
    assert_eq!(with_match.1.len(), 2 * 111);
}

#[test]
fn scan_type_hash_finds_hashes_only() {
    let mut pair = Pair::start();
    for case in [
        &["HSET", "h1", "a", "1"][..],
        &["SET", "s", "x"],
        &["RPUSH", "l", "x"],
        &["SCAN", "0", "TYPE", "hash", "COUNT", "1000"],
    ] {
        pair.same_str(case);
    }
}
