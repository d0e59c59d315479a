//! Sorted sets against a real redis-server: seeded random command streams
//! (every reply byte-identical, RESP2 and a RESP3 connection), fixed edge
//! cases (option conflicts, bad floats, WRONGTYPE, infinities, lex
//! bounds), and a leaderboard of concurrent ZINCRBYs whose final scores
//! must be exact.

use citadel_tests::differential::{Pair, Rng};

const KEYS: &[&str] = &["z0", "z1", "z2", "z3"];
const MEMBERS: &[&str] = &[
    "a", "b", "c", "d", "e", "f", "g", "aa", "ab", "", "m:1", "zz",
];

fn random_score(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => rng
            .pick(&["inf", "-inf", "+inf", "0", "-0", "1e300", "-1.5e-7"])
            .into(),
        1 => rng.pick(&["x", "nan", "1e400", "", " 1", "1.5.2"]).into(),
        2..=5 => format!("{}.{}", rng.int(50), rng.below(100)),
        6 => format!("0.{}", rng.below(1000)),
        _ => rng.int(20).to_string(),
    }
}

fn score_bound(rng: &mut Rng) -> String {
    let v = match rng.below(9) {
        0 => rng.pick(&["-inf", "+inf", "inf", "x", ""]).to_string(),
        // strtod's other forms (zslParseRange): hex floats, leading
        // spaces, out of range saturating, a NUL ending the text.
        1 => rng
            .pick(&[
                "0x10",
                "-0x1.8p2",
                " 0xA",
                "0x1p2000",
                "-0x1p-2000",
                "0x",
                "0x1p",
                "\t3",
                "1e400",
                "3 ",
                "0X.8p4",
                "4\0x",
            ])
            .to_string(),
        _ => (rng.below(30) as i64 - 10).to_string(),
    };
    if rng.below(3) == 0 {
        format!("({v}")
    } else {
        v
    }
}

fn lex_bound(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => "-".into(),
        1 => "+".into(),
        2 => rng.pick(&["a", "+x", "", "(", "["]).into(),
        n => format!(
            "{}{}",
            if n % 2 == 0 { "[" } else { "(" },
            rng.pick(MEMBERS)
        ),
    }
}

fn rank(rng: &mut Rng) -> String {
    (rng.below(16) as i64 - 8).to_string()
}

/// Range options: a random subset, in random order, sometimes invalid.
fn range_options(rng: &mut Rng, args: &mut Vec<String>, lex: bool) {
    for _ in 0..rng.below(3) {
        match rng.below(6) {
            0 if !lex => args.push("WITHSCORES".into()),
            1 | 2 => {
                args.push("LIMIT".into());
                args.push(rng.int(4).to_string());
                args.push((rng.below(6) as i64 - 1).to_string());
            }
            3 => args.push(rng.pick(&["REV", "BYSCORE", "BYLEX", "withscores"]).into()),
            _ => {}
        }
    }
}

fn zrange(rng: &mut Rng, key: &str) -> Vec<String> {
    let mut args = vec!["ZRANGE".to_string(), key.into()];
    let (by, rev) = (rng.below(3), rng.below(2) == 1);
    let (a, b) = match by {
        0 => (rank(rng), rank(rng)),
        1 => (score_bound(rng), score_bound(rng)),
        _ => (lex_bound(rng), lex_bound(rng)),
    };
    args.extend([a, b]);
    match by {
        1 => args.push("BYSCORE".into()),
        2 => args.push("BYLEX".into()),
        _ => {}
    }
    if rev {
        args.push("REV".into());
    }
    if by == 0 && rng.below(4) > 0 {
        if rng.below(2) == 0 {
            args.push("WITHSCORES".into());
        }
    } else {
        range_options(rng, &mut args, by == 2);
    }
    args
}

fn add(rng: &mut Rng, key: &str) -> Vec<String> {
    let mut args = vec!["ZADD".to_string(), key.into()];
    if rng.below(3) == 0 {
        for _ in 0..rng.below(3) + 1 {
            args.push(
                rng.pick(&["NX", "XX", "GT", "LT", "CH", "INCR", "ch", "gt"])
                    .into(),
            );
        }
    }
    let n = if args.iter().any(|a| a.eq_ignore_ascii_case("incr")) && rng.below(4) > 0 {
        1
    } else {
        rng.below(4) + 1
    };
    for _ in 0..n {
        args.push(random_score(rng));
        args.push(rng.pick(MEMBERS).into());
    }
    if rng.below(30) == 0 {
        args.pop();
    }
    args
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let other = rng.pick(KEYS).to_string();
    let member = rng.pick(MEMBERS).to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match rng.below(100) {
        0..=19 => add(rng, &key),
        20..=24 => {
            let by = random_score(rng);
            s(&["ZINCRBY", &key, &by, &member])
        }
        25..=27 => s(&["ZSCORE", &key, &member]),
        28..=29 => s(&["ZMSCORE", &key, &member, rng.pick(MEMBERS)]),
        30 => s(&["ZCARD", &key]),
        31..=34 => s(&["ZREM", &key, &member, rng.pick(MEMBERS)]),
        35..=36 => s(&["ZRANK", &key, &member]),
        37 => s(&["ZREVRANK", &key, &member]),
        38..=49 => zrange(rng, &key),
        50..=51 => {
            let (a, b) = (rank(rng), rank(rng));
            let mut args = s(&["ZREVRANGE", &key, &a, &b]);
            range_options(rng, &mut args, false);
            args
        }
        52..=55 => {
            let cmd = rng.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]);
            let mut args = s(&[cmd, &key, &score_bound(rng), &score_bound(rng)]);
            range_options(rng, &mut args, false);
            args
        }
        56..=58 => {
            let cmd = rng.pick(&["ZRANGEBYLEX", "ZREVRANGEBYLEX"]);
            let mut args = s(&[cmd, &key, &lex_bound(rng), &lex_bound(rng)]);
            range_options(rng, &mut args, true);
            args
        }
        59..=60 => s(&["ZCOUNT", &key, &score_bound(rng), &score_bound(rng)]),
        61..=62 => s(&["ZLEXCOUNT", &key, &lex_bound(rng), &lex_bound(rng)]),
        63..=65 => {
            let cmd = rng.pick(&["ZPOPMIN", "ZPOPMAX"]);
            match rng.below(3) {
                0 => s(&[cmd, &key]),
                _ => s(&[cmd, &key, &(rng.below(5) as i64 - 1).to_string()]),
            }
        }
        66..=67 => s(&["ZREMRANGEBYRANK", &key, &rank(rng), &rank(rng)]),
        68 => s(&[
            "ZREMRANGEBYSCORE",
            &key,
            &score_bound(rng),
            &score_bound(rng),
        ]),
        69 => s(&["ZREMRANGEBYLEX", &key, &lex_bound(rng), &lex_bound(rng)]),
        70..=72 => {
            let mut args = zrange(rng, &other);
            args[0] = "ZRANGESTORE".into();
            args.insert(1, key);
            args
        }
        73..=74 => {
            let mut args = s(&["ZMPOP", &(rng.below(3)).to_string(), &key, &other]);
            args.push(rng.pick(&["MIN", "MAX", "min", "MID"]).into());
            if rng.below(2) == 0 {
                args.extend(["COUNT".into(), (rng.below(4) as i64 - 1).to_string()]);
            }
            args
        }
        // Deterministic ZRANDMEMBER forms only: the whole set, or nothing.
        75 => s(&[
            "ZRANDMEMBER",
            &key,
            rng.pick(&["100", "0", "x"]),
            "WITHSCORES",
        ]),
        76 => s(&["ZRANDMEMBER", &key, "100"]),
        77 => {
            let mut args = s(&["ZSCAN", &key, rng.pick(&["0", "x", "-1"])]);
            if rng.below(2) == 0 {
                args.extend(["MATCH".into(), rng.pick(&["a*", "*", "?", "[a-c]"]).into()]);
            }
            if rng.below(3) == 0 {
                args.extend(["COUNT".into(), rng.pick(&["10", "0", "x"]).into()]);
            }
            args
        }
        78..=90 => algebra(rng, &key),
        91 => s(&[
            "ZINTERCARD",
            "2",
            &key,
            &other,
            "LIMIT",
            rng.pick(&["0", "1", "-1"]),
        ]),
        // Other kinds under the same names: WRONGTYPE both ways.
        92 => s(&["SET", &key, "str"]),
        93 => s(&["GET", &key]),
        94 => s(&["DEL", &key]),
        95 => s(&["OBJECT", "ENCODING", &key]),
        96 => s(&["TYPE", &key]),
        // PERSIST tells (deterministically) whether a write kept the TTL.
        97 => s(&["PERSIST", &key]),
        _ => s(&["EXPIRE", &key, "1000"]),
    }
}

fn algebra(rng: &mut Rng, dest: &str) -> Vec<String> {
    let op = rng.pick(&[
        "ZUNION",
        "ZINTER",
        "ZDIFF",
        "ZUNIONSTORE",
        "ZINTERSTORE",
        "ZDIFFSTORE",
    ]);
    let mut args = vec![op.to_string()];
    if op.ends_with("STORE") {
        args.push(dest.into());
    }
    let n = rng.below(3) + 1;
    args.push(if rng.below(20) == 0 {
        "0".into()
    } else {
        n.to_string()
    });
    for _ in 0..n {
        args.push(rng.pick(KEYS).into());
    }
    if rng.below(2) == 0 {
        args.push("WEIGHTS".into());
        for _ in 0..n {
            args.push(rng.pick(&["1", "2", "-1", "0.5", "0", "inf", "x"]).into());
        }
    }
    if rng.below(2) == 0 {
        args.extend([
            "AGGREGATE".into(),
            rng.pick(&["SUM", "MIN", "MAX", "avg"]).into(),
        ]);
    }
    if rng.below(2) == 0 {
        args.push("WITHSCORES".into());
    }
    args
}

fn run_stream(pair: &mut Pair, conn: usize, seed: u64, steps: usize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
    for _ in 0..steps {
        let args = random_command(&mut rng);
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        pair.same_on(conn, &args);
    }
    for key in KEYS {
        pair.same_str_on(conn, &["ZRANGE", key, "0", "-1", "WITHSCORES"]);
    }
}

#[test]
fn random_sorted_set_commands_match_redis() {
    let mut pair = Pair::start();
    for seed in [1u64, 7, 42, 1234, 5, 77] {
        run_stream(&mut pair, 0, seed, 3000);
        pair.same_str(&["FLUSHALL"]);
    }
}

#[test]
fn random_sorted_set_commands_match_redis_in_resp3() {
    let mut pair = Pair::start();
    pair.both(0, &["HELLO", "3"]);
    for seed in [3u64, 99] {
        run_stream(&mut pair, 0, seed, 1500);
        pair.same_str(&["FLUSHALL"]);
    }
}

#[test]
fn sorted_set_edge_cases_match_redis() {
    let mut pair = Pair::start();
    let cases: &[&[&str]] = &[
        // Option conflicts and arity, before the key is looked at.
        &["ZADD", "z"],
        &["ZADD", "z", "1"],
        &["ZADD", "z", "NX", "XX", "1", "a"],
        &["ZADD", "z", "GT", "LT", "1", "a"],
        &["ZADD", "z", "GT", "NX", "1", "a"],
        &["ZADD", "z", "LT", "NX", "1", "a"],
        &["ZADD", "z", "INCR", "1", "a", "2", "b"],
        &["ZADD", "z", "NX", "XX", "1", "a", "2"],
        &["ZADD", "z", "XX", "1", "a"],
        &["EXISTS", "z"],
        &["ZADD", "z", "XX", "INCR", "1", "a"],
        // Floats as Redis's string2d takes them.
        &["ZADD", "z", "x", "a"],
        &["ZADD", "z", "1e400", "a"],
        &["ZADD", "z", "1e-400", "a"],
        // Hex floats, strtod's: rounding at 53 bits, subnormals, ERANGE.
        &[
            "ZADD",
            "z",
            "0x1.8p3",
            "h1",
            "-0X.8",
            "h2",
            "0x20000000000001",
            "h3",
        ],
        &["ZADD", "z", "0x1p-1074", "h4", "0x1.8p-1075", "h5"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZADD", "z", "0x1p-1075", "a"],
        &["ZADD", "z", "0x1p1024", "a"],
        &["ZADD", "z", "0x", "a"],
        &["ZADD", "z", "0x1p", "a"],
        &["ZREM", "z", "h1", "h2", "h3", "h4", "h5"],
        // Score bounds: zslParseRange's strtod (hex floats, spaces,
        // saturation, a NUL ends the text), not string2d.
        &["ZADD", "b", "1", "a", "8", "b", "16", "c", "24", "d"],
        &["ZRANGEBYSCORE", "b", "0x8", "(0x1.8p4", "WITHSCORES"],
        &["ZRANGEBYSCORE", "b", "( 0x8", "0x1p1024"],
        &["ZREVRANGEBYSCORE", "b", "0X10", "-0x1p-1075"],
        &[
            "ZRANGE", "b", "(0x1", "+0x1.8P4", "BYSCORE", "LIMIT", "1", "5",
        ],
        &["ZCOUNT", "b", "\x0b-0x1p2000", "0x1p2000"],
        &["ZCOUNT", "b", "0x", "1"],
        &["ZCOUNT", "b", "0x1p", "1"],
        &["ZCOUNT", "b", "1", "0x1 "],
        &["ZCOUNT", "b", "1", "8\0junk"],
        &["ZRANGESTORE", "bd", "b", "0x1", "0x10", "BYSCORE"],
        &["ZREMRANGEBYSCORE", "b", "(0x1", "0x8"],
        &["ZRANGE", "b", "0", "-1", "WITHSCORES"],
        &["DEL", "b", "bd"],
        &["ZADD", "z", "nan", "a"],
        &["ZADD", "z", " 1", "a"],
        &["ZADD", "z", "1 ", "a"],
        &["ZADD", "z", "", "a"],
        &[
            "ZADD",
            "z",
            "0.1",
            "a",
            "1e20",
            "b",
            "1.5e-7",
            "c",
            "123456789012345678",
            "d",
        ],
        &[
            "ZADD", "z", "+inf", "p", "-inf", "n", "-0", "zero", "4.9e-324", "tiny",
        ],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        &["ZSCORE", "z", "a"],
        &["ZINCRBY", "z", "0.2", "a"],
        &["ZINCRBY", "z", "-inf", "p"],
        &["ZADD", "z", "INCR", "-inf", "p"],
        &["ZINCRBY", "z", "x", "a"],
        &["ZINCRBY", "z", "1", "new"],
        // GT / LT / CH / INCR replies.
        &["ZADD", "z", "GT", "CH", "1", "new", "5", "b", "6", "brand"],
        &["ZADD", "z", "LT", "CH", "INCR", "-1", "brand"],
        &["ZADD", "z", "GT", "INCR", "-1", "brand"],
        &["ZADD", "z", "NX", "INCR", "1", "brand"],
        &["ZADD", "z", "CH", "1", "dup", "2", "dup"],
        &["ZADD", "z", "1", "dup2", "2", "dup2"],
        &["ZSCAN", "z", "0"],
        &["ZSCAN", "z", "0", "MATCH", "d*", "COUNT", "5"],
        &["ZSCAN", "z", "0", "TYPE", "zset"],
        &["ZSCAN", "z", "18446744073709551616"],
        &["ZSCAN", "nokey", "0"],
        // Range parsing errors, before and after the key lookup.
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "1"],
        &["ZRANGE", "z", "0", "-1", "LIMIT", "0", "-1"],
        &["ZRANGE", "z", "-", "+", "BYLEX", "WITHSCORES"],
        &["ZRANGE", "z", "0", "-1", "BYSCORE", "BYLEX"],
        &["ZRANGE", "z", "0", "-1", "REV", "REV"],
        &["ZRANGEBYSCORE", "z", "0", "5", "BYSCORE"],
        &["ZREVRANGE", "z", "0", "-1", "REV"],
        &["ZRANGE", "z", "x", "1"],
        &["ZRANGE", "z", "a", "b", "BYSCORE"],
        &["ZRANGE", "nokey", "a", "b", "BYLEX"],
        &["ZRANGEBYLEX", "z", "-", "+", "LIMIT", "0"],
        &[
            "ZRANGE",
            "z",
            "(1",
            "+inf",
            "BYSCORE",
            "WITHSCORES",
            "LIMIT",
            "1",
            "2",
        ],
        &["ZRANGE", "z", "+inf", "(1", "BYSCORE", "REV", "WITHSCORES"],
        &["ZRANGE", "z", "(", "(", "BYSCORE"],
        &[
            "ZRANGEBYSCORE",
            "z",
            "-inf",
            "+inf",
            "WITHSCORES",
            "LIMIT",
            "-1",
            "1",
        ],
        &["ZPOPMIN", "z", "-1"],
        &["ZPOPMIN", "z", "x"],
        &["ZPOPMIN", "z", "1", "2"],
        &["ZPOPMAX", "z", "2"],
        &["ZPOPMIN", "z"],
        &["ZPOPMIN", "nokey"],
        &["ZPOPMIN", "nokey", "3"],
        // Lex ranges over equal scores.
        &[
            "ZADD", "lex", "0", "a", "0", "b", "0", "c", "0", "d", "0", "e", "0", "ab",
        ],
        &["ZRANGEBYLEX", "lex", "-", "+"],
        &["ZRANGEBYLEX", "lex", "[a", "(c"],
        &["ZRANGEBYLEX", "lex", "(a", "[c", "LIMIT", "1", "2"],
        &["ZREVRANGEBYLEX", "lex", "+", "-", "LIMIT", "0", "3"],
        &["ZREVRANGEBYLEX", "lex", "[c", "(a"],
        &["ZLEXCOUNT", "lex", "[b", "+"],
        &["ZLEXCOUNT", "lex", "+", "-"],
        &["ZLEXCOUNT", "lex", "a", "b"],
        &["ZREMRANGEBYLEX", "lex", "[b", "[c"],
        &["ZRANGE", "lex", "0", "-1"],
        &["ZREMRANGEBYLEX", "lex", "-", "+"],
        &["EXISTS", "lex"],
        // Stores.
        &["ZRANGESTORE", "d", "z", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGESTORE",
            "d",
            "z",
            "0",
            "1",
            "BYSCORE",
            "LIMIT",
            "0",
            "1",
        ],
        &["ZRANGE", "d", "0", "-1", "WITHSCORES"],
        &["ZRANGESTORE", "d", "z", "5", "1"],
        &["EXISTS", "d"],
        &["ZRANGESTORE", "z", "z", "0", "2"],
        &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
        // Algebra.
        &["ZADD", "u1", "1", "a", "2", "b", "3", "c"],
        &["ZADD", "u2", "1", "a", "5", "d"],
        &["ZUNION", "0", "u1"],
        &["ZUNION", "3", "u1"],
        &["ZUNION", "1", "u1", "WEIGHTS", "x"],
        &["ZUNION", "1", "u1", "WEIGHTS", "1", "2"],
        &["ZUNION", "1", "u1", "AGGREGATE", "foo"],
        &[
            "ZUNION",
            "2",
            "u1",
            "u2",
            "WEIGHTS",
            "2",
            "inf",
            "WITHSCORES",
        ],
        &["ZUNION", "2", "u1", "u2", "AGGREGATE", "MAX", "WITHSCORES"],
        &["ZINTER", "2", "u1", "u2", "WITHSCORES"],
        &["ZDIFF", "2", "u1", "u2", "WITHSCORES"],
        &["ZDIFF", "2", "u1", "u2", "WEIGHTS", "1", "1"],
        &["ZUNIONSTORE", "d", "2", "u1", "u2", "WITHSCORES"],
        &["ZUNIONSTORE", "d", "2", "u1", "u2"],
        &["ZINTERSTORE", "d", "2", "u1", "nokey"],
        &["EXISTS", "d"],
        &["ZINTERCARD", "2", "u1", "u2"],
        &["ZINTERCARD", "2", "u1", "u2", "LIMIT", "-1"],
        &["ZINTERCARD", "0", "u1"],
        &["ZADD", "i1", "inf", "a", "-inf", "b"],
        &["ZADD", "i2", "-inf", "a", "inf", "b"],
        &["ZUNION", "2", "i1", "i2", "WITHSCORES"],
        &["ZUNION", "2", "i1", "i2", "WEIGHTS", "0", "1", "WITHSCORES"],
        &["ZMPOP", "0", "u1", "MIN"],
        &["ZMPOP", "2", "u1", "MIN"],
        &["ZMPOP", "1", "u1", "MIN", "COUNT", "0"],
        &["ZMPOP", "1", "u1", "MIN", "COUNT", "1", "COUNT", "2"],
        &["ZMPOP", "2", "nokey", "u1", "MAX", "COUNT", "2"],
        &["ZMPOP", "1", "nokey", "MIN"],
        &["ZRANDMEMBER", "u1", "x"],
        &["ZRANDMEMBER", "u1", "-9223372036854775808"],
        &["ZRANDMEMBER", "u1", "1", "WITHSCORES", "extra"],
        &["ZRANDMEMBER", "nokey"],
        &["ZRANDMEMBER", "nokey", "5"],
        // WRONGTYPE on every command, both ways.
        &["SET", "s", "v"],
        &["ZADD", "s", "1", "a"],
        &["ZADD", "s", "x", "a"],
        &["ZINCRBY", "s", "1", "a"],
        &["ZSCORE", "s", "a"],
        &["ZMSCORE", "s", "a"],
        &["ZCARD", "s"],
        &["ZREM", "s", "a"],
        &["ZRANK", "s", "a"],
        &["ZRANGE", "s", "0", "1"],
        &["ZRANGE", "s", "0", "1", "BYLEX"],
        &["ZRANGEBYSCORE", "s", "0", "1"],
        &["ZCOUNT", "s", "0", "1"],
        &["ZLEXCOUNT", "s", "-", "+"],
        &["ZPOPMIN", "s"],
        &["ZPOPMIN", "s", "0"],
        &["ZREMRANGEBYRANK", "s", "0", "1"],
        &["ZRANGESTORE", "d", "s", "0", "1"],
        &["ZRANGESTORE", "s", "u1", "0", "1"],
        &["TYPE", "s"],
        &["ZUNION", "2", "u1", "s", "WEIGHTS", "x"],
        &["ZMPOP", "2", "s", "u1", "MIN"],
        &["ZMPOP", "2", "u2", "s", "MIN"],
        &["ZRANDMEMBER", "s"],
        &["ZRANDMEMBER", "s", "0"],
        &["ZINTERCARD", "2", "u1", "s"],
        &["ZUNIONSTORE", "s", "1", "u1"],
        &["TYPE", "s"],
        &["SET", "s", "v"],
        &["ZSCAN", "s", "0"],
        &["GET", "u2"],
        &["APPEND", "u2", "x"],
        // More corners.
        &["ZADD", "nk", "GT", "INCR", "5", "a"],
        &["ZADD", "nk", "1", ""],
        &["ZINCRBY", "nk", "1e308", "big"],
        &["ZINCRBY", "nk", "1e308", "big"],
        &["ZINCRBY", "nk", "0.00001", "small"],
        &["ZRANGE", "nk", "0", "-1", "WITHSCORES"],
        &[
            "ZRANGE",
            "nk",
            "-inf",
            "+inf",
            "BYSCORE",
            "LIMIT",
            "9223372036854775807",
            "1",
        ],
        &[
            "ZRANGE",
            "nk",
            "-inf",
            "+inf",
            "BYSCORE",
            "LIMIT",
            "1",
            "9223372036854775807",
        ],
        &["ZRANGE", "nk", "0", "9223372036854775807"],
        &[
            "ZRANGE",
            "nk",
            "-9223372036854775808",
            "-9223372036854775808",
        ],
        &[
            "ZRANGESTORE",
            "nk2",
            "lex",
            "+",
            "-",
            "BYLEX",
            "REV",
            "LIMIT",
            "1",
            "2",
        ],
        &["ZADD", "mixed", "3", "a", "1", "c", "2", "b", "0", "d"],
        &["ZREVRANGEBYLEX", "mixed", "[c", "-", "LIMIT", "1", "5"],
        &["ZRANGEBYLEX", "mixed", "(a", "+", "LIMIT", "2", "5"],
        &["ZLEXCOUNT", "mixed", "[b", "[c"],
        &["ZUNIONSTORE", "mixed", "2", "mixed", "nk"],
        &["ZRANGE", "mixed", "0", "-1", "WITHSCORES"],
        &["ZINTERCARD", "3", "mixed", "nk"],
        &["ZMPOP", "1", "mixed", "MAX", "COUNT", "9223372036854775807"],
        &["ZRANDMEMBER", "nokey", "-5"],
        &["ZRANDMEMBER", "s", "0"],
        // Inside MULTI and scripts.
        &["MULTI"],
        &["ZADD", "m", "1", "a", "2", "b"],
        &["ZINCRBY", "m", "2.5", "a"],
        &["ZRANGE", "m", "0", "-1", "WITHSCORES"],
        &["ZPOPMAX", "m"],
        &["EXEC"],
        &[
            "EVAL",
            "return redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')",
            "1",
            "m",
        ],
        &[
            "EVAL",
            "return redis.call('ZSCORE', KEYS[1], 'b')",
            "1",
            "m",
        ],
        &[
            "EVAL",
            "return redis.call('ZADD', KEYS[1], 'x', 'b')",
            "1",
            "m",
        ],
        // Keys after numkeys.
        &["COMMAND", "GETKEYS", "ZUNIONSTORE", "d", "2", "a", "b"],
        &["COMMAND", "GETKEYS", "ZMPOP", "2", "a", "b", "MIN"],
        &["COMMAND", "GETKEYS", "ZINTER", "1", "a", "WITHSCORES"],
        &["COMMAND", "GETKEYS", "ZRANGESTORE", "d", "s", "0", "1"],
        // ZADD keeps the TTL; the last ZREM deletes the key.
        &["ZADD", "t", "1", "a"],
        &["EXPIRE", "t", "100"],
        &["ZADD", "t", "2", "b"],
        &["TTL", "t"],
        &["ZREM", "t", "a", "b"],
        &["EXISTS", "t"],
    ];
    for case in cases {
        pair.same_str(case);
    }
}

/// Sets past the listpack limits (Redis's skiplist): rank and score
/// commands only, where the skiplist answers as the listpack does.
#[test]
fn large_sorted_sets_match_redis() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x5eed_0f2a_1100);
    let members: Vec<String> = (0..400).map(|i| format!("member:{i}")).collect();
    for chunk in members.chunks(100) {
        let mut args = vec!["ZADD".to_string(), "big".into()];
        for m in chunk {
            args.push((rng.below(1000) as i64 - 500).to_string());
            args.push(m.clone());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pair.same_str(&args);
    }
    for _ in 0..1500 {
        let m = &members[rng.below(members.len() as u64) as usize];
        let (a, b) = (rng.int(500).to_string(), rng.int(500).to_string());
        let args: Vec<String> = match rng.below(12) {
            0 | 1 => vec!["ZADD".into(), "big".into(), a, m.clone()],
            2 => vec![
                "ZINCRBY".into(),
                "big".into(),
                format!("{}.5", rng.int(20)),
                m.clone(),
            ],
            3 => vec!["ZREM".into(), "big".into(), m.clone()],
            4 => vec!["ZRANK".into(), "big".into(), m.clone()],
            5 => vec![
                "ZRANGE".into(),
                "big".into(),
                (rng.below(400) as i64 - 200).to_string(),
                (rng.below(400) as i64 - 200).to_string(),
                "WITHSCORES".into(),
            ],
            6 => vec![
                "ZRANGEBYSCORE".into(),
                "big".into(),
                format!("({a}"),
                b,
                "LIMIT".into(),
                rng.below(5).to_string(),
                rng.below(20).to_string(),
            ],
            7 => vec![
                "ZREVRANGEBYSCORE".into(),
                "big".into(),
                b,
                a,
                "WITHSCORES".into(),
                "LIMIT".into(),
                "0".into(),
                "10".into(),
            ],
            8 => vec!["ZCOUNT".into(), "big".into(), a, b],
            9 => vec![
                rng.pick(&["ZPOPMIN", "ZPOPMAX"]).into(),
                "big".into(),
                rng.below(3).to_string(),
            ],
            10 => vec!["ZREMRANGEBYSCORE".into(), "big".into(), a.clone(), a],
            _ => vec![
                "ZUNIONSTORE".into(),
                "u".into(),
                "2".into(),
                "big".into(),
                "u".into(),
                "WEIGHTS".into(),
                "1".into(),
                "0.5".into(),
            ],
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pair.same_str(&args);
    }
    pair.same_str(&["ZRANGE", "big", "0", "-1", "WITHSCORES"]);
    pair.same_str(&["ZRANGE", "u", "0", "-1", "WITHSCORES"]);
    pair.same_str(&["ZRANDMEMBER", "big", "1000", "WITHSCORES"]);
}

/// Random argument lists to every sorted-set command: errors or answers,
/// never a crash or a hang (the server still answers PING after each).
#[test]
fn hostile_arguments_never_crash() {
    let server = citadel_tests::Server::start(&[]);
    let mut con = server.client();
    let names = [
        "ZADD",
        "ZINCRBY",
        "ZSCORE",
        "ZMSCORE",
        "ZCARD",
        "ZREM",
        "ZRANK",
        "ZREVRANK",
        "ZRANGE",
        "ZREVRANGE",
        "ZRANGEBYSCORE",
        "ZREVRANGEBYSCORE",
        "ZRANGEBYLEX",
        "ZREVRANGEBYLEX",
        "ZRANGESTORE",
        "ZCOUNT",
        "ZLEXCOUNT",
        "ZREMRANGEBYRANK",
        "ZREMRANGEBYSCORE",
        "ZREMRANGEBYLEX",
        "ZPOPMIN",
        "ZPOPMAX",
        "ZMPOP",
        "ZRANDMEMBER",
        "ZSCAN",
        "ZUNION",
        "ZINTER",
        "ZDIFF",
        "ZINTERCARD",
        "ZUNIONSTORE",
        "ZINTERSTORE",
        "ZDIFFSTORE",
    ];
    let words = [
        "z",
        "z",
        "y",
        "1",
        "2",
        "-1",
        "0",
        "(1",
        "[a",
        "(",
        "[",
        "-",
        "+",
        "inf",
        "-inf",
        "nan",
        "LIMIT",
        "WITHSCORES",
        "REV",
        "BYSCORE",
        "BYLEX",
        "WEIGHTS",
        "AGGREGATE",
        "MAX",
        "MIN",
        "COUNT",
        "MATCH",
        "NX",
        "XX",
        "GT",
        "LT",
        "CH",
        "INCR",
        "9223372036854775807",
        "-9223372036854775807",
        "-9223372036854775808",
        "1e308",
        "",
        "\u{ff}",
    ];
    let _: i64 = citadel_tests::redis::cmd("ZADD")
        .arg("z")
        .arg(&["1", "a", "2", "b", "3", "c"])
        .query(&mut con)
        .unwrap();
    let mut rng = Rng(0xbad_a125);
    for _ in 0..3000 {
        let mut cmd = citadel_tests::redis::cmd(rng.pick(&names));
        for _ in 0..rng.below(8) {
            cmd.arg(rng.pick(&words));
        }
        let _: citadel_tests::redis::RedisResult<citadel_tests::redis::Value> = cmd.query(&mut con);
    }
    let pong: String = citadel_tests::redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(pong, "PONG");
}

/// Random samples: sizes, distinctness and scores (the picks differ).
#[test]
fn zrandmember_samples_are_members() {
    let server = citadel_tests::Server::start(&[]);
    let mut con = server.client();
    let cmd = |name: &str| citadel_tests::redis::cmd(name);
    for (i, m) in ["a", "b", "c", "d", "e"].iter().enumerate() {
        let _: i64 = cmd("ZADD").arg("r").arg(i).arg(m).query(&mut con).unwrap();
    }
    let picked: Vec<(String, f64)> = cmd("ZRANDMEMBER")
        .arg("r")
        .arg(-20)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    assert_eq!(picked.len(), 20);
    for (m, s) in &picked {
        let want = ["a", "b", "c", "d", "e"]
            .iter()
            .position(|x| x == m)
            .unwrap();
        assert_eq!(*s, want as f64);
    }
    let distinct: Vec<String> = cmd("ZRANDMEMBER").arg("r").arg(3).query(&mut con).unwrap();
    let mut sorted = distinct.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "{distinct:?}");
    let one: String = cmd("ZRANDMEMBER").arg("r").query(&mut con).unwrap();
    assert!(["a", "b", "c", "d", "e"].contains(&one.as_str()));
}

#[test]
fn object_encoding_follows_redis_limits() {
    let mut pair = Pair::start();
    let members: Vec<String> = (0..130).map(|i| format!("m{i}")).collect();
    for (i, m) in members.iter().enumerate() {
        pair.same_str(&["ZADD", "big", &i.to_string(), m]);
        if i % 16 == 0 || i >= 126 {
            pair.same_str(&["OBJECT", "ENCODING", "big"]);
        }
    }
    pair.same_str(&["ZADD", "long", "1", &"x".repeat(64)]);
    pair.same_str(&["OBJECT", "ENCODING", "long"]);
    pair.same_str(&["ZADD", "longer", "1", &"x".repeat(65)]);
    pair.same_str(&["OBJECT", "ENCODING", "longer"]);
    pair.same_str(&["ZRANGE", "big", "120", "-1", "WITHSCORES"]);
}

/// A leaderboard: several connections (the server's threads on different
/// cores) ZINCRBY the same members at once; every increment must count
/// (integers, so the sums are exact), a reader meanwhile sees every
/// player exactly once, and ZRANGE gives the scores' order.
fn leaderboard(players: u64) {
    const WRITERS: u64 = 6;
    const ROUNDS: u64 = 400;
    let server = citadel_tests::Server::start(&[]);
    let mut con = server.client();
    for start in (0..players).step_by(500) {
        let mut zadd = citadel_tests::redis::cmd("ZADD");
        zadd.arg("board");
        for p in start..(start + 500).min(players) {
            zadd.arg(0).arg(format!("player{p}"));
        }
        let _: i64 = zadd.query(&mut con).unwrap();
    }
    let player = move |t: u64, i: u64| (i * 7 + t * 1_013) % players;
    let threads: Vec<_> = (0..WRITERS)
        .map(|t| {
            let mut con = server.client();
            std::thread::spawn(move || {
                for i in 0..ROUNDS {
                    let _: f64 = citadel_tests::redis::cmd("ZINCRBY")
                        .arg("board")
                        .arg(t + 1)
                        .arg(format!("player{}", player(t, i)))
                        .query(&mut con)
                        .unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let mut con = server.client();
        std::thread::spawn(move || {
            for _ in 0..20 {
                let all: Vec<String> = citadel_tests::redis::cmd("ZRANGE")
                    .arg("board")
                    .arg(0)
                    .arg(-1)
                    .query(&mut con)
                    .unwrap();
                let distinct: std::collections::HashSet<&String> = all.iter().collect();
                assert_eq!(
                    (all.len(), distinct.len()),
                    (players as usize, players as usize)
                );
            }
        })
    };
    for t in threads {
        t.join().unwrap();
    }
    reader.join().unwrap();
    let mut expected = vec![0u64; players as usize];
    for t in 0..WRITERS {
        for i in 0..ROUNDS {
            expected[player(t, i) as usize] += t + 1;
        }
    }
    let board: Vec<(String, f64)> = citadel_tests::redis::cmd("ZRANGE")
        .arg("board")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut con)
        .unwrap();
    assert_eq!(board.len(), players as usize);
    for (player, score) in &board {
        let p: usize = player["player".len()..].parse().unwrap();
        assert_eq!(*score, expected[p] as f64, "{player}");
    }
    let mut sorted = board.clone();
    sorted.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then(a.0.cmp(&b.0)));
    assert_eq!(board, sorted, "ZRANGE order");
}

#[test]
fn concurrent_zincrby_keeps_every_increment() {
    leaderboard(8);
}

/// The same on a board past the paging limit: each ZINCRBY moves a player
/// between leaves of the tree, edits the member index, and runs ahead of
/// its update on pages read without locks (`zset/paged/ahead.rs`), which
/// another core's increment may have replaced meanwhile.
#[test]
fn concurrent_zincrby_on_a_paged_board_keeps_every_increment() {
    leaderboard(3_000);
}
