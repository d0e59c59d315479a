//! INCRBYFLOAT and HINCRBYFLOAT against a real redis-server, byte for byte:
//! Redis adds in x87 `long double` and prints `%.17Lf`, so every reply
//! and stored text depends on extended-precision rounding. Seeded random
//! streams of increments (short decimals, long digit strings, huge and tiny
//! exponents, hex floats, signs, invalid texts) on string keys and hash
//! fields, with SET/HSET of arbitrary texts in between; then fixed edge
//! cases.

use citadel_tests::differential::{push_words as push, Pair, Rng};

const KEYS: &[&str] = &["f0", "f1", "f2"];
const HASHES: &[&str] = &["h0", "h1"];
const FIELDS: &[&str] = &["a", "b", "c"];
const INVALID: &[&str] = &[
    "",
    " 1",
    "1 ",
    "1x",
    "nan",
    "-nan",
    "inf",
    "-inf",
    "infinity",
    "1e",
    "1e+",
    "0x",
    "0x1p",
    ".",
    "+-1",
    "--1",
    "1e-5000",
    "1e5000",
    "0x1p-16446",
    "\t2",
];
const SPECIAL: &[&str] = &[
    "0.1",
    "0.2",
    "-0.3",
    "+.5",
    "5.",
    "0",
    "-0",
    "1e-17",
    "5e-18",
    "-5e-18",
    "1.5e-17",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "0x1p-18",
    "0x3p-18",
    "1.18e4932",
    "-1.18e4932",
    "3.6451995318824746025e-4951",
    "0x1p-16445",
    "1e4932",
    "INF",
    "Infinity",
];

/// `min` to `min + spread - 1` random decimal digits.
fn digits(rng: &mut Rng, min: u64, spread: u64) -> String {
    let n = min + rng.below(spread);
    (0..n)
        .map(|_| char::from(b'0' + rng.below(10) as u8))
        .collect()
}

fn sign(rng: &mut Rng) -> &'static str {
    ["", "", "-", "+"][rng.below(4) as usize]
}

/// An increment (or a stored text): mostly valid, of every shape.
fn number(rng: &mut Rng) -> String {
    match rng.below(20) {
        0..=6 => {
            let int = rng.below(1000);
            format!("{}{int}.{}", sign(rng), digits(rng, 0, 7))
        }
        7..=8 => rng.int(1000).to_string(),
        9..=10 => {
            let mantissa = format!("{}.{}", rng.below(10), digits(rng, 0, 20));
            let exp = rng.below(10000) as i64 - 5000;
            format!("{}{mantissa}e{exp}", sign(rng))
        }
        11 => {
            let exp = rng.below(60) as i64 - 30;
            format!("{}{}E{exp}", sign(rng), digits(rng, 1, 25))
        }
        12 => format!("{}{}", sign(rng), digits(rng, 20, 60)),
        13 => format!("{}0.{}", sign(rng), digits(rng, 18, 40)),
        14 => {
            let hex: String = (0..rng.below(20) + 1)
                .map(|_| char::from(b"0123456789abcdefABCDEF"[rng.below(22) as usize]))
                .collect();
            let (int, frac) = hex.split_at(rng.below(hex.len() as u64 + 1) as usize);
            let exp = rng.below(400) as i64 - 200;
            let exp = if rng.below(8) == 0 { exp * 80 } else { exp };
            format!("{}0{}{int}.{frac}p{exp}", sign(rng), rng.pick(&["x", "X"]))
        }
        15..=16 => rng.pick(INVALID).to_string(),
        _ => rng.pick(SPECIAL).to_string(),
    }
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let mut args = Vec::new();
    let key = rng.pick(KEYS);
    let (hash, field) = (rng.pick(HASHES), rng.pick(FIELDS));
    match rng.below(100) {
        0..=44 => push(&mut args, &["INCRBYFLOAT", key, &number(rng)]),
        45..=84 => push(&mut args, &["HINCRBYFLOAT", hash, field, &number(rng)]),
        85..=88 => push(&mut args, &["SET", key, &number(rng)]),
        89..=91 => push(&mut args, &["HSET", hash, field, &number(rng)]),
        92..=94 => push(&mut args, &["GET", key]),
        95..=96 => push(&mut args, &["HGET", hash, field]),
        // A key of the other type: WRONGTYPE before any float check.
        97 => push(&mut args, &["INCRBYFLOAT", hash, &number(rng)]),
        98 => push(&mut args, &["HINCRBYFLOAT", key, field, &number(rng)]),
        _ => push(&mut args, &["DEL", key, hash]),
    }
    args
}

#[test]
fn random_float_increments_match_redis() {
    let mut pair = Pair::start();
    pair.random_streams(&[1, 7, 2026], 2500, random_command, |pair| {
        for key in KEYS {
            pair.same_str(&["GET", key]);
        }
        // Field by field: a hash with a long value is a hashtable in
        // Redis, whose HGETALL order is its own.
        for hash in HASHES {
            for field in FIELDS {
                pair.same_str(&["HGET", hash, field]);
            }
        }
    });
}

#[test]
fn float_increment_edge_cases_match_redis() {
    let mut pair = Pair::start();
    let cases: &[&[&str]] = &[
        &["INCRBYFLOAT", "k", "0.1"],
        &["INCRBYFLOAT", "k", "0.2"],
        &["INCRBYFLOAT", "k", "1e300"],
        &["INCRBYFLOAT", "k", "-1e300"],
        &["INCRBYFLOAT", "big", "1e4000"],
        &["INCRBYFLOAT", "big", "1e4000"],
        &["STRLEN", "big"],
        &["INCRBYFLOAT", "big", "1.1e4932"],
        &["INCRBYFLOAT", "tiny", "0x1p-18"],
        &["INCRBYFLOAT", "tiny", "-0x1p-18"],
        &["INCRBYFLOAT", "tiny", "-1e-20"],
        &["SET", "s", "1\u{0}"],
        &["INCRBYFLOAT", "s", "1"],
        &["SET", "s", ""],
        &["INCRBYFLOAT", "s", "1"],
        &["SET", "s", "0x10"],
        &["INCRBYFLOAT", "s", "0x.8p1"],
        &["SET", "s", "  3"],
        &["INCRBYFLOAT", "s", "1"],
        &["SET", "s", "inf"],
        &["INCRBYFLOAT", "s", "0"],
        &["INCRBYFLOAT", "n", "inf"],
        &["INCRBYFLOAT", "n", "nan"],
        &["EXISTS", "n"],
        &["LPUSH", "l", "x"],
        &["INCRBYFLOAT", "l", "nope"],
        &["HINCRBYFLOAT", "l", "f", "nope"],
        &["HINCRBYFLOAT", "l", "f", "inf"],
        &["HINCRBYFLOAT", "h", "f", "0.1"],
        &["HINCRBYFLOAT", "h", "f", "0.2"],
        &["HINCRBYFLOAT", "h", "f", "1e-5000"],
        &["HINCRBYFLOAT", "h", "f", "1.18e4932"],
        &["HINCRBYFLOAT", "h", "f", "1.18e4932"],
        &["HSET", "h", "g", "12"],
        &["HINCRBYFLOAT", "h", "g", "0.5"],
        &["HGET", "h", "f"],
        &["HGET", "h", "g"],
        &["SET", "e", "1"],
        &["EXPIRE", "e", "1000"],
        &["INCRBYFLOAT", "e", "0.5"],
        &["TTL", "e"],
    ];
    for case in cases {
        pair.same_str(case);
    }
    let long = "1".repeat(5 * 1024 - 1);
    pair.same_str(&["SET", "s", &long[..4000]]);
    pair.same_str(&["INCRBYFLOAT", "s", "1"]);
    pair.same_str(&["SET", "s", &long]);
    pair.same_str(&["INCRBYFLOAT", "s", "1"]);
    pair.same_str(&["INCRBYFLOAT", "t", &format!("0.{long}")[..5 * 1024 - 1]]);
    pair.same_str(&["INCRBYFLOAT", "t", &format!("0.{long}")[..5 * 1024]]);
}
