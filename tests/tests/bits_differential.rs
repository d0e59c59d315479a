//! Bitmap and HyperLogLog commands against a real redis-server: a seeded
//! random stream of commands goes to both, and every reply and every final
//! value must be byte-identical; then fixed edge cases the same way.

use citadel_tests::differential::{Pair, Rng};
use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{RespReader, Server};

const BIT_KEYS: &[&str] = &["b0", "b1", "b2", "b3", "b4"];
const HLL_KEYS: &[&str] = &["h0", "h1", "h2", "h3", "h4"];

fn random_type(rng: &mut Rng) -> String {
    let bits = 1 + rng.below(64);
    match rng.below(20) {
        0 => rng.pick(&["u64", "i65", "i0", "x8", "U8", ""]).to_string(),
        n if n < 10 || bits == 64 => format!("i{bits}"),
        _ => format!("u{bits}"),
    }
}

fn random_bitfield(rng: &mut Rng, read_only: bool) -> Vec<String> {
    let mut args = vec![
        if read_only { "BITFIELD_RO" } else { "BITFIELD" }.to_string(),
        rng.pick(BIT_KEYS).to_string(),
    ];
    for _ in 0..rng.below(4) + 1 {
        let ty = random_type(rng);
        let offset = match rng.below(6) {
            0 => format!("#{}", rng.below(40)),
            1 => rng.int(2000).to_string(),
            _ => rng.below(300).to_string(),
        };
        match rng.below(if read_only { 8 } else { 5 }) {
            0 if !read_only => {
                args.push("OVERFLOW".into());
                args.push(rng.pick(&["WRAP", "SAT", "FAIL", "fail", "bad"]).into());
            }
            1 => args.extend(["SET".into(), ty, offset, rng.int(300).to_string()]),
            2 => args.extend(["INCRBY".into(), ty, offset, rng.int(300).to_string()]),
            _ => args.extend(["GET".into(), ty, offset]),
        }
    }
    args
}

fn random_range(rng: &mut Rng, args: &mut Vec<String>, max_extra: u64) {
    let extra = rng.below(max_extra + 1);
    for i in 0..extra {
        if i == 2 {
            args.push(rng.pick(&["BYTE", "BIT", "bit", "BYTES"]).into());
        } else {
            args.push(rng.int(40).to_string());
        }
    }
}

fn random_command(rng: &mut Rng, element: &mut u64) -> Vec<String> {
    let bit_key = rng.pick(BIT_KEYS).to_string();
    let hll_key = rng.pick(HLL_KEYS).to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match rng.below(100) {
        0..=19 => {
            let offset = if rng.below(20) == 0 {
                rng.int(100_000).to_string()
            } else {
                rng.below(400).to_string()
            };
            let value = rng.pick(&["0", "1", "1", "0", "2", "x"]);
            s(&["SETBIT", &bit_key, &offset, value])
        }
        20..=27 => s(&["GETBIT", &bit_key, &rng.below(500).to_string()]),
        28..=35 => {
            let mut args = s(&["BITCOUNT", &bit_key]);
            random_range(rng, &mut args, 3);
            args
        }
        36..=43 => {
            let mut args = s(&["BITPOS", &bit_key, rng.pick(&["0", "1", "1", "0", "2"])]);
            random_range(rng, &mut args, 3);
            args
        }
        44..=49 => {
            let op = rng.pick(&["AND", "OR", "XOR", "NOT", "not", "NAND"]);
            let mut args = s(&["BITOP", op, &bit_key]);
            for _ in 0..(if op.eq_ignore_ascii_case("not") && rng.below(5) > 0 {
                1
            } else {
                rng.below(3) + 1
            }) {
                args.push(rng.pick(BIT_KEYS).into());
            }
            args
        }
        50..=59 => random_bitfield(rng, false),
        60..=62 => random_bitfield(rng, true),
        63..=77 => {
            let mut args = s(&["PFADD", &hll_key]);
            // Now and then a large batch, so sparse values turn dense.
            let n = if rng.below(15) == 0 {
                600
            } else {
                rng.below(8)
            };
            for _ in 0..n {
                // Half new elements, half repeats.
                let e = if rng.below(2) == 0 {
                    *element += 1;
                    *element
                } else {
                    rng.below(*element + 1)
                };
                args.push(format!("e{e}"));
            }
            args
        }
        78..=85 => {
            let mut args = s(&["PFCOUNT", &hll_key]);
            for _ in 0..rng.below(3) {
                args.push(rng.pick(HLL_KEYS).into());
            }
            args
        }
        86..=90 => {
            let mut args = s(&["PFMERGE", rng.pick(&["h0", "h1", "h2", "h3", "h4", "h5"])]);
            for _ in 0..rng.below(3) {
                args.push(rng.pick(HLL_KEYS).into());
            }
            args
        }
        // Type confusion: PF* on bitmaps, bit commands on HLLs.
        91..=93 => s(&["PFADD", &bit_key, "x"]),
        94..=95 => s(&["PFCOUNT", &hll_key, &bit_key]),
        96 => s(&["SETBIT", &hll_key, &rng.below(200).to_string(), "1"]),
        97 => s(&["DEL", &bit_key]),
        _ => s(&["GET", &hll_key]),
    }
}

fn assert_same_values(pair: &mut Pair) {
    for key in BIT_KEYS.iter().chain(HLL_KEYS).chain(&["h5"]) {
        pair.same_str(&["GET", key]);
    }
}

#[test]
fn random_bit_and_hll_commands_match_redis() {
    let mut pair = Pair::start();
    for seed in [1u64, 7, 42] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        let mut element = 0;
        for _ in 0..2500 {
            let args = random_command(&mut rng, &mut element);
            let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
            pair.same(&args);
        }
        assert_same_values(&mut pair);
        pair.same_str(&["FLUSHALL"]);
    }
}

#[test]
fn bit_edge_cases_match_redis() {
    let mut pair = Pair::start();
    let cases: &[&[&str]] = &[
        // Missing keys: zeros everywhere, arguments unchecked where Redis
        // 7.0 does not look at them.
        &["GETBIT", "none", "100"],
        &["BITCOUNT", "none"],
        &["BITCOUNT", "none", "x", "y"],
        &["BITCOUNT", "none", "0"],
        &["BITPOS", "none", "0"],
        &["BITPOS", "none", "1", "x"],
        &["BITPOS", "none", "3"],
        &["BITFIELD", "none", "GET", "u8", "0", "GET", "i64", "#3"],
        &["BITFIELD", "none"],
        &["BITFIELD_RO", "none", "GET", "i5", "100"],
        &["BITOP", "AND", "dest", "none", "none2"],
        &["EXISTS", "dest"],
        // Offsets out of range.
        &["SETBIT", "k", "-1", "1"],
        &["SETBIT", "k", "4294967296", "1"],
        &["SETBIT", "k", "#1", "1"],
        &["SETBIT", "k", "1.5", "1"],
        &["GETBIT", "k", "99999999999999"],
        &["BITFIELD", "k", "SET", "u8", "4294967296", "1"],
        &["BITFIELD", "k", "GET", "u8", "#-1"],
        &["BITFIELD", "k", "GET", "u8", "#"],
        // Values and types.
        &["SETBIT", "k", "7", "2"],
        &["SETBIT", "k", "7", "-1"],
        &["SETBIT", "k", "7", "1"],
        &["SETBIT", "k", "7", "1"],
        &["GET", "k"],
        &["BITFIELD", "k", "GET", "u64", "0"],
        &["BITFIELD", "k", "GET", "i65", "0"],
        &["BITFIELD", "k", "GET", "I8", "0"],
        &["BITFIELD", "k", "GET", "u8"],
        &["BITFIELD", "k", "OVERFLOW", "nope", "GET", "u8", "0"],
        &["BITFIELD", "k", "SET", "u8", "0", "x"],
        &["BITFIELD", "k", "FOO", "u8", "0"],
        &["BITFIELD_RO", "k", "SET", "u8", "0", "1"],
        &[
            "BITFIELD_RO",
            "k",
            "GET",
            "u8",
            "0",
            "INCRBY",
            "u8",
            "0",
            "1",
        ],
        // OVERFLOW FAIL answers nil and leaves the field (but grows the value).
        &[
            "BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u2", "100", "5",
        ],
        &["GET", "f"],
        &[
            "BITFIELD", "f", "OVERFLOW", "FAIL", "SET", "i8", "0", "127", "INCRBY", "i8", "0", "1",
        ],
        &[
            "BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "i8", "0", "1", "OVERFLOW", "WRAP",
            "INCRBY", "i8", "0", "1",
        ],
        &[
            "BITFIELD",
            "f",
            "SET",
            "i64",
            "0",
            "-9223372036854775808",
            "INCRBY",
            "i64",
            "0",
            "-1",
        ],
        &[
            "BITFIELD", "f", "OVERFLOW", "SAT", "SET", "u63", "#1", "-1", "GET", "u63", "#1",
        ],
        &["GET", "f"],
        // Ranges.
        &["SET", "r", "foobar"],
        &["BITCOUNT", "r", "1", "1"],
        &["BITCOUNT", "r", "5", "30", "BIT"],
        &["BITCOUNT", "r", "-3", "-1", "bit"],
        // Negative indexes that cross count nothing (clamped, -6 -7 of a
        // 6-byte value would be byte 0); BITPOS clamps them.
        &["BITCOUNT", "r", "-6", "-7"],
        &["BITCOUNT", "r", "-6", "-15", "BIT"],
        &["BITCOUNT", "r", "-100", "-50"],
        &["BITPOS", "r", "1", "-6", "-7"],
        &["BITCOUNT", "r", "0"],
        &["BITCOUNT", "r", "0", "1", "WORD"],
        &["BITCOUNT", "r", "0", "1", "BIT", "x"],
        &["BITPOS", "r", "1", "2", "-1", "BYTE"],
        &["BITPOS", "r", "0", "7", "15", "BIT"],
        &["BITPOS", "r", "1", "7", "15", "BIT"],
        &["BITPOS", "r", "0", "1", "x", "BIT"],
        &["BITPOS", "r", "0", "1", "2", "FOO"],
        &["SET", "ones", "\u{7f}"], // one byte: 0x7f
        &["BITPOS", "ones", "0"],
        &["BITPOS", "ones", "0", "0", "-1"],
        &["BITPOS", "ones", "1", "1", "7", "BIT"],
        &["BITPOS", "ones", "0", "1", "7", "BIT"],
        // BITOP.
        &["SET", "a", "abc"],
        &["SET", "b", "x"],
        &["BITOP", "AND", "d", "a", "b"],
        &["GET", "d"],
        &["BITOP", "or", "d", "a", "b", "none"],
        &["GET", "d"],
        &["BITOP", "XOR", "d", "a", "d"],
        &["GET", "d"],
        &["BITOP", "NOT", "d", "a"],
        &["GET", "d"],
        &["BITOP", "NOT", "d", "a", "b"],
        &["BITOP", "NAND", "d", "a"],
        &["EXPIRE", "d", "100"],
        &["BITOP", "NOT", "d", "a"],
        &["TTL", "d"],
        &["BITOP", "AND", "d", "none"],
        &["EXISTS", "d"],
        // A bit command keeps the TTL.
        &["SET", "t", "x", "EX", "100"],
        &["SETBIT", "t", "100", "1"],
        &["TTL", "t"],
        &["GETBIT", "t", "100"],
    ];
    for case in cases {
        pair.same_str(case);
    }
}

/// An HLL value Redis writes, built by PFADD of `n` elements.
fn pfadd_elements(pair: &mut Pair, key: &str, from: usize, n: usize) {
    let elements: Vec<String> = (from..from + n).map(|i| format!("elem:{i}")).collect();
    for batch in elements.chunks(500) {
        let mut args = vec!["PFADD", key];
        args.extend(batch.iter().map(String::as_str));
        pair.same_str(&args);
    }
}

#[test]
fn hll_edge_cases_match_redis() {
    let mut pair = Pair::start();
    let cases: &[&[&[u8]]] = &[
        &[b"PFCOUNT", b"none"],
        &[b"PFCOUNT", b"none", b"none2"],
        &[b"PFADD", b"empty"],
        &[b"GET", b"empty"],
        &[b"PFADD", b"empty"],
        &[b"PFCOUNT", b"empty"],
        &[b"GET", b"empty"],
        // PFMERGE into a new key, with and without sources.
        &[b"PFMERGE", b"new1"],
        &[b"GET", b"new1"],
        &[b"PFADD", b"s1", b"a", b"b", b"c"],
        &[b"PFADD", b"s2", b"c", b"d"],
        &[b"PFMERGE", b"new2", b"s1", b"s2", b"none"],
        &[b"GET", b"new2"],
        &[b"PFCOUNT", b"new2"],
        &[b"GET", b"new2"],
        &[b"PFCOUNT", b"s1", b"s2", b"new2", b"none"],
        // Not HLLs.
        &[b"SET", b"str", b"hello"],
        &[b"PFADD", b"str", b"x"],
        &[b"PFCOUNT", b"str"],
        &[b"PFCOUNT", b"s1", b"str"],
        &[b"PFMERGE", b"s1", b"str"],
        &[b"PFMERGE", b"str", b"s1"],
        &[b"SET", b"int", b"12345"],
        &[b"PFCOUNT", b"int"],
        &[b"SET", b"badenc", b"HYLL\x02\0\0\0\0\0\0\0\0\0\0\0"],
        &[b"PFCOUNT", b"badenc"],
        &[b"SET", b"shortdense", b"HYLL\0\0\0\0\0\0\0\0\0\0\0\0abc"],
        &[b"PFADD", b"shortdense", b"x"],
        // Corrupt sparse values: runs that do not cover the registers.
        &[b"SET", b"corrupt", b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\0"],
        &[b"PFCOUNT", b"corrupt"],
        &[b"PFCOUNT", b"corrupt", b"s1"],
        &[b"PFMERGE", b"dst", b"corrupt"],
        &[b"EXISTS", b"dst"],
        &[b"PFADD", b"corrupt", b"a", b"b", b"c"],
        &[b"GET", b"corrupt"],
        // Runs past the last register.
        &[
            b"SET",
            b"overrun",
            b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\x7f\xff\x80",
        ],
        &[b"PFCOUNT", b"overrun", b"s1"],
        &[b"PFCOUNT", b"overrun"],
        &[b"PFMERGE", b"overrun2", b"overrun", b"s2"],
        &[b"GET", b"overrun2"],
        &[b"PFADD", b"overrun", b"a", b"b", b"c", b"d", b"e"],
        &[b"GET", b"overrun"],
        // A valid cache is answered as is, even if the registers disagree.
        &[
            b"SET",
            b"cached",
            b"HYLL\x01\0\0\0\x05\0\0\0\0\0\0\0\x7f\xff",
        ],
        &[b"PFCOUNT", b"cached"],
        // PFADD keeps the TTL.
        &[b"PFADD", b"ttl", b"a"],
        &[b"EXPIRE", b"ttl", b"100"],
        &[b"PFADD", b"ttl", b"b", b"c"],
        &[b"TTL", b"ttl"],
        &[b"PFMERGE", b"ttl", b"s1"],
        &[b"TTL", b"ttl"],
    ];
    for case in cases {
        pair.same(case);
    }
    // A sparse value near the size limit whose runs overrun the registers:
    // PFADD edits it in place until the promotion to dense finds the fault.
    let mut value = b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80".to_vec();
    for _ in 0..1480 {
        value.extend_from_slice(&[0x80, 0x00]); // VAL(1,1) ZERO(1)
    }
    value.extend_from_slice(&[0x7f, 0xff, 0x80]);
    pair.same(&[b"SET", b"nearlimit", &value]);
    let mut args: Vec<String> = vec!["PFADD".into(), "nearlimit".into()];
    args.extend((0..200).map(|i| format!("x{i}")));
    pair.same_str(&args.iter().map(String::as_str).collect::<Vec<_>>());
    pair.same_str(&["GET", "nearlimit"]);
    // Sparse, then dense (past 3000 sparse bytes), then merges of both.
    pfadd_elements(&mut pair, "sparse", 0, 100);
    pfadd_elements(&mut pair, "dense", 0, 5000);
    for key in ["sparse", "dense"] {
        pair.same_str(&["GET", key]);
        pair.same_str(&["PFCOUNT", key]);
        pair.same_str(&["GET", key]);
    }
    pair.same_str(&["PFMERGE", "m1", "sparse", "s1"]);
    pair.same_str(&["PFMERGE", "m2", "sparse", "dense"]);
    pair.same_str(&["PFMERGE", "sparse", "dense"]);
    let many: Vec<String> = (0..40).map(|i| format!("many{i}")).collect();
    for (i, key) in many.iter().enumerate() {
        pfadd_elements(&mut pair, key, i * 37, 50 + i * 10);
    }
    let mut args = vec!["PFCOUNT"];
    args.extend(many.iter().map(String::as_str));
    args.extend(["m1", "m2", "none", "dense"]);
    pair.same_str(&args);
    for key in ["m1", "m2", "sparse"] {
        pair.same_str(&["GET", key]);
        pair.same_str(&["PFCOUNT", key]);
    }
}

/// PFDEBUG, Redis's internal HLL inspection command, answers as Redis's:
/// the sparse opcodes, the encoding, the registers (a sparse value turned
/// dense in place, TTL kept), and its errors.
#[test]
fn pfdebug_matches_redis() {
    let mut pair = Pair::start();
    pfadd_elements(&mut pair, "small", 0, 40);
    pfadd_elements(&mut pair, "big", 0, 3000);
    let cases: &[&[&str]] = &[
        &["PFDEBUG", "DECODE", "small"],
        &["PFDEBUG", "encoding", "small"],
        &["PFDEBUG", "ENCODING", "big"],
        &["PFDEBUG", "DECODE", "big"],
        &["EXPIRE", "small", "100"],
        &["PFDEBUG", "GETREG", "small"],
        &["PFDEBUG", "ENCODING", "small"],
        &["TTL", "small"],
        &["GET", "small"],
        &["PFADD", "other", "a", "b"],
        &["PFDEBUG", "TODENSE", "other"],
        &["PFDEBUG", "TODENSE", "other"],
        &["GET", "other"],
        &["PFCOUNT", "other", "small"],
        &["PFDEBUG", "GETREG", "big"],
        &["PFDEBUG", "nope", "big"],
        &["PFDEBUG", "nope", "missing"],
        &["PFDEBUG", "GETREG", "missing"],
        &["SET", "str", "hello"],
        &["PFDEBUG", "ENCODING", "str"],
        &["PFDEBUG", "ENCODING"],
        &["PFDEBUG", "GETREG", "big", "extra"],
    ];
    for case in cases {
        pair.same_str(case);
    }
    // A corrupt sparse value: TODENSE and GETREG refuse it and leave it.
    let corrupt: &[&[u8]] = &[b"SET", b"corrupt", b"HYLL\x01\0\0\0\0\0\0\0\0\0\0\x80\0"];
    pair.same(corrupt);
    for case in [
        &["PFDEBUG", "TODENSE", "corrupt"][..],
        &["PFDEBUG", "GETREG", "corrupt"],
        &["PFDEBUG", "DECODE", "corrupt"],
        &["GET", "corrupt"],
    ] {
        pair.same_str(case);
    }
}

/// HLL values Redis wrote, copied into Citadel with GET + SET, count the
/// same and keep evolving identically.
#[test]
fn hll_values_copied_from_redis_work_in_citadel() {
    let redis = RedisServer::start();
    let citadel = Server::start(&[]);
    let mut r = RespReader::new(redis.raw());
    let mut c = RespReader::new(citadel.raw());
    let call = |conn: &mut RespReader, args: &[&[u8]]| {
        conn.send(&encode_command(args));
        conn.raw_reply().unwrap()
    };
    for (key, n) in [("small", 20), ("mid", 700), ("big", 20_000)] {
        for i in (0..n).step_by(500) {
            let elements: Vec<String> =
                (i..(i + 500).min(n)).map(|e| format!("{key}{e}")).collect();
            let mut args: Vec<&[u8]> = vec![b"PFADD", key.as_bytes()];
            args.extend(elements.iter().map(|e| e.as_bytes()));
            call(&mut r, &args);
        }
        let bulk = call(&mut r, &[b"GET", key.as_bytes()]);
        // The bulk's payload: after the "$<len>\r\n" line, before "\r\n".
        let start = bulk.iter().position(|&b| b == b'\n').unwrap() + 1;
        let value = &bulk[start..bulk.len() - 2];
        assert_eq!(call(&mut c, &[b"SET", key.as_bytes(), value]), b"+OK\r\n");
        for args in [
            &[&b"PFCOUNT"[..], key.as_bytes()][..],
            &[b"PFADD", key.as_bytes(), b"new1", b"new2", b"new3"],
            &[b"PFCOUNT", key.as_bytes()],
            &[b"GET", key.as_bytes()],
        ] {
            assert_eq!(call(&mut c, args), call(&mut r, args), "{key}");
        }
    }
}

/// Citadel's own limit: a bit offset inside proto-max-bulk-len but past
/// max-value-size is refused without allocating.
#[test]
fn offsets_past_max_value_size_are_refused() {
    let citadel = Server::start(&["--max-value-size", "1mb"]);
    let mut c = RespReader::new(citadel.raw());
    let offset = ((1u64 << 20) * 8 + 64).to_string();
    for args in [
        &[&b"SETBIT"[..], b"k", offset.as_bytes(), b"1"][..],
        &[b"BITFIELD", b"k", b"SET", b"u8", offset.as_bytes(), b"1"],
    ] {
        c.send(&encode_command(args));
        let reply = String::from_utf8(c.raw_reply().unwrap()).unwrap();
        assert!(
            reply.starts_with("-ERR value of ") && reply.contains("too large"),
            "{reply}"
        );
    }
    c.send(&encode_command(&[b"EXISTS", b"k"]));
    assert_eq!(c.raw_reply().unwrap(), b":0\r\n");
}
