//! Set commands against a real redis-server: seeded random command streams
//! over RESP2 and RESP3 connections, then fixed error and encoding cases.
//!
//! Replies are compared byte for byte, except where Redis's own order is
//! its hash order: set-valued replies (SMEMBERS, SINTER, SUNION, SDIFF,
//! SPOP with a count) are compared as sorted multisets, random picks
//! (SPOP, SRANDMEMBER) by their properties, and a whole SSCAN by the
//! members it returned. SPOP runs on Citadel only; the members it popped
//! are then removed from Redis with SREM (which must remove them all), so
//! both keep the same sets.

use std::collections::BTreeSet;

use citadel_tests::differential::{Pair, Rng};

const KEYS: &[&str] = &["s0", "s1", "s2", "s3", "str"];

/// Integers (canonical or not) and words, so sets are intsets or not.
const MEMBERS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "5",
    "8",
    "13",
    "21",
    "-1",
    "-100",
    "007",
    "+5",
    "a",
    "b",
    "c",
    "d",
    "hello",
    "",
    "9223372036854775807",
    "-9223372036854775808",
    "1.5",
];

/// The elements of a set or array reply of bulk strings, sorted; None for
/// any other reply.
fn elements(reply: &str) -> Option<Vec<String>> {
    let rest = reply
        .strip_prefix('*')
        .or_else(|| reply.strip_prefix('~'))?;
    let (count, mut rest) = rest.split_once("\r\n")?;
    let mut out = Vec::new();
    for _ in 0..count.parse::<usize>().ok()? {
        let (len, tail) = rest.strip_prefix('$')?.split_once("\r\n")?;
        let len: usize = len.parse().ok()?;
        out.push(tail.get(..len)?.to_string());
        rest = tail.get(len + 2..)?;
    }
    out.sort();
    Some(out)
}

/// The reply with a set's elements sorted (the header byte kept, so a
/// RESP3 set must still be a set).
fn sorted(reply: &str) -> String {
    match elements(reply) {
        Some(e) => format!("{}{}{e:?}", &reply[..1], e.len()),
        None => reply.to_string(),
    }
}

fn random_members(rng: &mut Rng, args: &mut Vec<String>, max: u64) {
    for _ in 0..1 + rng.below(max) {
        args.push(rng.pick(MEMBERS).to_string());
    }
}

fn random_keys(rng: &mut Rng, args: &mut Vec<String>) {
    for _ in 0..1 + rng.below(3) {
        args.push(rng.pick(KEYS).to_string());
    }
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let mut args: Vec<String>;
    let word = |w: &str| w.to_string();
    match rng.below(100) {
        0..=24 => {
            args = vec![word("SADD"), key];
            // Now and then many integers, so an intset turns hashtable.
            if rng.below(40) == 0 {
                args.extend((0..520).map(|i| (i * 3).to_string()));
            } else {
                random_members(rng, &mut args, 5);
            }
        }
        25..=34 => {
            args = vec![word("SREM"), key];
            random_members(rng, &mut args, 4);
        }
        35..=39 => args = vec![word("SMEMBERS"), key],
        40..=44 => args = vec![word("SISMEMBER"), key, rng.pick(MEMBERS).into()],
        45..=47 => {
            args = vec![word("SMISMEMBER"), key];
            random_members(rng, &mut args, 4);
        }
        48..=50 => args = vec![word("SCARD"), key],
        51..=55 => {
            let (src, dst) = (key, rng.pick(KEYS).to_string());
            args = vec![word("SMOVE"), src, dst, rng.pick(MEMBERS).into()];
        }
        56..=65 => {
            args = vec![rng.pick(&["SINTER", "SUNION", "SDIFF"]).into()];
            random_keys(rng, &mut args);
        }
        66..=73 => {
            args = vec![
                rng.pick(&["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"])
                    .into(),
                key,
            ];
            random_keys(rng, &mut args);
        }
        74..=77 => {
            let keys = 1 + rng.below(3);
            args = vec![word("SINTERCARD"), keys.to_string()];
            (0..keys).for_each(|_| args.push(rng.pick(KEYS).into()));
            if rng.below(2) == 0 {
                args.push(word("LIMIT"));
                args.push(rng.below(4).to_string());
            }
        }
        78..=80 => args = vec![word("SET"), word("str"), word("text")],
        81..=83 => args = vec![word("EXPIRE"), key, word("1000")],
        84..=86 => args = vec![word("PERSIST"), key],
        87..=89 => args = vec![word("TYPE"), key],
        _ => args = vec![word("EXISTS"), key],
    }
    args
}

/// A random SPOP, on Citadel only; the popped members are then SREMed on
/// Redis, which must find every one of them.
fn spop(pair: &mut Pair, conn: usize, rng: &mut Rng) {
    let key = rng.pick(KEYS);
    let count = rng.below(6).to_string();
    let mut args = vec!["SPOP", key];
    if rng.below(3) > 0 {
        args.push(&count);
    }
    let card = pair.same_str_on(conn, &["SCARD", key]);
    let (_, popped) = pair.split_on(conn, &["PING"], &args);
    let Some(members) = elements(&popped).or_else(|| {
        let bulk = popped.strip_prefix('$')?.split_once("\r\n")?.1;
        Some(vec![bulk.strip_suffix("\r\n")?.to_string()])
    }) else {
        // An error or nil: Redis must answer the same.
        let (want, _) = pair.split_on(conn, &args, &["PING"]);
        assert_eq!(popped, want, "{args:?}");
        return;
    };
    let distinct: BTreeSet<&String> = members.iter().collect();
    assert_eq!(distinct.len(), members.len(), "{args:?} popped a repeat");
    let card: usize = card.trim_start_matches(':').trim().parse().unwrap_or(0);
    let asked: usize = args.get(2).map_or(1, |c| c.parse().unwrap());
    assert_eq!(members.len(), asked.min(card), "{args:?}: {popped}");
    if members.is_empty() {
        return;
    }
    let mut srem = vec!["SREM", key];
    srem.extend(members.iter().map(String::as_str));
    let (removed, _) = pair.split_on(conn, &srem, &["PING"]);
    assert_eq!(removed, format!(":{}\r\n", members.len()), "{args:?}");
}

/// A random SRANDMEMBER, checked by the properties of its picks against
/// Redis's members (errors compared exactly).
fn srandmember(pair: &mut Pair, conn: usize, rng: &mut Rng) {
    let key = rng.pick(KEYS);
    let count = rng.pick(&["3", "-3", "0", "1", "-1", "25", "-25", "x"]);
    let args: Vec<&str> = match rng.below(3) {
        0 => vec!["SRANDMEMBER", key],
        _ => vec!["SRANDMEMBER", key, count],
    };
    let (want, got) = pair.each_on(conn, &args);
    let (Some(want), Some(got)) = (elements(&want), elements(&got)) else {
        let nil = want.starts_with("$-1") || want.starts_with('_');
        if nil || want.starts_with('-') {
            assert_eq!(got, want, "{args:?}");
        } else {
            // One member: it must be one of the set's.
            let members = elements(&pair.each_on(conn, &["SMEMBERS", key]).0).unwrap();
            let member = got.split("\r\n").nth(1).unwrap_or_default().to_string();
            assert!(members.contains(&member), "{args:?}: {got}");
        }
        return;
    };
    assert_eq!(got.len(), want.len(), "{args:?}: length");
    let members = elements(&pair.each_on(conn, &["SMEMBERS", key]).0).unwrap();
    assert!(got.iter().all(|m| members.contains(m)), "{args:?}: {got:?}");
    if !count.starts_with('-') {
        let distinct: BTreeSet<&String> = got.iter().collect();
        assert_eq!(distinct.len(), got.len(), "{args:?}: repeats");
    }
}

/// A whole SSCAN with random COUNT and MATCH: every member once at least,
/// nothing else, on both servers.
fn sscan(pair: &mut Pair, conn: usize, rng: &mut Rng) {
    let key = rng.pick(KEYS);
    let count = (1 + rng.below(5)).to_string();
    let pattern = rng.pick(&["*", "1*", "?", "[a-c]*", "h*"]);
    let mut seen = [BTreeSet::new(), BTreeSet::new()];
    let mut cursors = [String::from("0"), String::from("0")];
    let mut done = [false, false];
    for _ in 0..10_000 {
        if done[0] && done[1] {
            break;
        }
        let to = |c: &str| ["SSCAN", key, c, "COUNT", &count, "MATCH", pattern].map(String::from);
        let (a, b) = (to(&cursors[0]), to(&cursors[1]));
        let (a, b): (Vec<&str>, Vec<&str>) = (
            a.iter().map(String::as_str).collect(),
            b.iter().map(String::as_str).collect(),
        );
        let (want, got) = pair.split_on(conn, &a, &b);
        if want.starts_with('-') {
            assert_eq!(got, want, "SSCAN {key}");
            return;
        }
        for (side, reply) in [want, got].iter().enumerate() {
            if done[side] {
                continue;
            }
            let mut parts = reply.split("\r\n");
            let cursor = parts.nth(2).unwrap_or_default().to_string();
            let page = reply.split_once("\r\n*").map(|(_, p)| format!("*{p}"));
            seen[side].extend(elements(&page.unwrap_or_default()).unwrap_or_default());
            done[side] = cursor == "0";
            cursors[side] = cursor;
        }
    }
    assert!(done[1], "SSCAN {key} ends");
    assert_eq!(
        seen[1], seen[0],
        "SSCAN {key} COUNT {count} MATCH {pattern}"
    );
}

fn assert_same_sets(pair: &mut Pair) {
    for key in KEYS {
        pair.same_str(&["TYPE", key]);
        let (want, got) = pair.each_on(0, &["SMEMBERS", key]);
        assert_eq!(sorted(&got), sorted(&want), "SMEMBERS {key}");
    }
}

#[test]
fn random_set_commands_match_redis() {
    let mut pair = Pair::start();
    let resp3 = pair.connect();
    pair.both(resp3, &["HELLO", "3"]);
    for seed in [3u64, 11, 2024] {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
        pair.same_str(&["SET", "str", "text"]);
        for step in 0..2000 {
            let conn = if rng.below(2) == 0 { 0 } else { resp3 };
            match rng.below(20) {
                0 => spop(&mut pair, conn, &mut rng),
                1 => srandmember(&mut pair, conn, &mut rng),
                2 => sscan(&mut pair, conn, &mut rng),
                _ => {
                    let args = random_command(&mut rng);
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let (want, got) = pair.each_on(conn, &args);
                    assert_eq!(sorted(&got), sorted(&want), "{args:?} (step {step})");
                }
            }
            if step % 250 == 0 {
                assert_same_sets(&mut pair);
            }
        }
        assert_same_sets(&mut pair);
        pair.same_str(&["FLUSHALL"]);
    }
}

#[test]
fn set_errors_match_redis() {
    let mut pair = Pair::start();
    let resp3 = pair.connect();
    pair.both(resp3, &["HELLO", "3"]);
    pair.same_str(&["SET", "str", "x"]);
    pair.same_str(&["SADD", "s", "1", "2", "3"]);
    let cases: &[&[&str]] = &[
        // WRONGTYPE from every command, wherever the string key stands.
        &["SADD", "str", "a"],
        &["SREM", "str", "a"],
        &["SMEMBERS", "str"],
        &["SISMEMBER", "str", "a"],
        &["SMISMEMBER", "str", "a"],
        &["SCARD", "str"],
        &["SPOP", "str"],
        &["SPOP", "str", "0"],
        &["SRANDMEMBER", "str"],
        &["SRANDMEMBER", "str", "2"],
        &["SMOVE", "str", "s", "1"],
        &["SMOVE", "s", "str", "1"],
        &["SMOVE", "missing", "str", "1"],
        &["SINTER", "missing", "str"],
        &["SUNION", "s", "str"],
        &["SDIFF", "missing", "str"],
        &["SINTERSTORE", "d", "missing", "str"],
        &["SUNIONSTORE", "d", "s", "str"],
        &["SDIFFSTORE", "d", "s", "str"],
        &["SINTERCARD", "2", "missing", "str"],
        &["SSCAN", "str", "0"],
        &["SSCAN", "str", "0", "COUNT", "0"],
        // Wrong arity.
        &["SADD", "s"],
        &["SREM", "s"],
        &["SMEMBERS"],
        &["SMEMBERS", "s", "t"],
        &["SISMEMBER", "s"],
        &["SMISMEMBER", "s"],
        &["SCARD"],
        &["SPOP"],
        &["SRANDMEMBER"],
        &["SMOVE", "s", "t"],
        &["SINTER"],
        &["SUNION"],
        &["SDIFF"],
        &["SINTERSTORE", "d"],
        &["SUNIONSTORE", "d"],
        &["SDIFFSTORE", "d"],
        &["SINTERCARD", "1"],
        &["SSCAN", "s"],
        // Counts, numkeys, LIMIT, cursors and options.
        &["SPOP", "s", "-1"],
        &["SPOP", "s", "x"],
        &["SPOP", "missing", "-1"],
        &["SPOP", "s", "1", "2"],
        &["SPOP", "missing", "2"],
        &["SPOP", "missing"],
        &["SRANDMEMBER", "s", "x"],
        &["SRANDMEMBER", "s", "-9223372036854775808"],
        &["SRANDMEMBER", "s", "1", "2"],
        &["SRANDMEMBER", "missing", "-5"],
        &["SRANDMEMBER", "missing"],
        &["SINTERCARD", "0", "s"],
        &["SINTERCARD", "-1", "s"],
        &["SINTERCARD", "x", "s"],
        &["SINTERCARD", "2", "s"],
        &["SINTERCARD", "9223372036854775808", "s"],
        &["SINTERCARD", "1", "s", "LIMIT", "-1"],
        &["SINTERCARD", "1", "s", "LIMIT", "x"],
        &["SINTERCARD", "1", "s", "LIMIT"],
        &["SINTERCARD", "1", "s", "FOO", "1"],
        &["SINTERCARD", "1", "s", "limit", "1", "LIMIT", "2"],
        &["SINTERCARD", "1", "s", "LIMIT", "0"],
        &["SSCAN", "s", "x"],
        &["SSCAN", "s", "18446744073709551616"],
        &["SSCAN", "s", "-1"],
        &["SSCAN", "s", ""],
        &["SSCAN", "s", " 1"],
        &["SSCAN", "s", "0", "COUNT", "0"],
        &["SSCAN", "s", "0", "COUNT", "x"],
        &["SSCAN", "s", "0", "MATCH"],
        &["SSCAN", "s", "0", "TYPE", "set"],
        &["SSCAN", "missing", "0", "COUNT", "0"],
        &["SSCAN", "s", "0", "MATCH", "[12]", "COUNT", "1"],
        &["SMOVE", "s", "s", "1"],
        &["SMOVE", "s", "s", "9"],
        &["SMOVE", "missing", "s", "1"],
    ];
    for conn in [0, resp3] {
        for args in cases {
            pair.same_str_on(conn, args);
        }
    }
}

#[test]
fn encodings_stores_and_ttls_match_redis() {
    let mut pair = Pair::start();
    let resp3 = pair.connect();
    pair.both(resp3, &["HELLO", "3"]);
    let ints: Vec<String> = (0..600).rev().map(|i| (i * 7 - 900).to_string()).collect();
    let sadd_ints = |pair: &mut Pair, key: &str, n: usize| {
        let mut args = vec!["SADD", key];
        args.extend(ints[..n].iter().map(String::as_str));
        pair.same_str(&args);
    };
    sadd_ints(&mut pair, "ints", 512);
    sadd_ints(&mut pair, "big", 513);
    let cases: &[&[&str]] = &[
        // Intsets reply sorted, as Redis; past 512 members a hashtable.
        &["OBJECT", "ENCODING", "ints"],
        &["OBJECT", "ENCODING", "big"],
        &["SMEMBERS", "ints"],
        &["SSCAN", "ints", "0"],
        &["SADD", "small", "3293", "-3", "-284", "0"],
        &["OBJECT", "ENCODING", "small"],
        &["SMEMBERS", "small"],
        &["SADD", "words", "a", "1"],
        &["OBJECT", "ENCODING", "words"],
        &["SADD", "odd", "007"],
        &["OBJECT", "ENCODING", "odd"],
        &["SINTERSTORE", "inter", "small", "ints"],
        &["OBJECT", "ENCODING", "inter"],
        &["SMEMBERS", "inter"],
        // STORE replaces any destination (TTL included) and deletes it
        // when the result is empty.
        &["SET", "dst", "text", "EX", "1000"],
        &["SUNIONSTORE", "dst", "small"],
        &["TYPE", "dst"],
        &["TTL", "dst"],
        &["SMEMBERS", "dst"],
        &["SDIFFSTORE", "dst", "small", "small"],
        &["EXISTS", "dst"],
        &["SINTERSTORE", "dst", "small", "missing"],
        &["EXISTS", "dst"],
        &["SUNIONSTORE", "small", "small", "words"],
        &["SCARD", "small"],
        // Writes keep a set's TTL; the last member gone, the key goes.
        &["EXPIRE", "words", "1000"],
        &["SADD", "words", "b"],
        &["SREM", "words", "a"],
        &["SMOVE", "words", "moved", "b"],
        &["PERSIST", "words"],
        &["SMOVE", "words", "moved", "1"],
        &["EXISTS", "words"],
        &["TYPE", "moved"],
        &["SPOP", "moved", "5"],
        &["EXISTS", "moved"],
        &["SINTERCARD", "2", "ints", "big", "LIMIT", "100"],
        &["SINTERCARD", "2", "ints", "big"],
        &["SADD", "e", ""],
        &["SISMEMBER", "e", ""],
        &["SMEMBERS", "e"],
    ];
    for args in cases {
        let (want, got) = pair.each_on(0, args);
        assert_eq!(sorted(&got), sorted(&want), "{args:?}");
    }
    for args in [&["SMEMBERS", "small"][..], &["SINTER", "small", "ints"]] {
        let (want, got) = pair.each_on(resp3, args);
        assert_eq!(sorted(&got), sorted(&want), "RESP3 {args:?}");
        assert!(got.starts_with('~'), "RESP3 {args:?} is a set: {got}");
    }
}

/// Random words in set commands' places: every reply is a well-formed
/// reply or error, and the server keeps serving.
#[test]
fn random_arguments_never_break_the_server() {
    let server = citadel_tests::Server::start(&[]);
    let mut con = citadel_tests::RespReader::new(server.raw());
    let commands = [
        "SADD",
        "SREM",
        "SMEMBERS",
        "SISMEMBER",
        "SMISMEMBER",
        "SCARD",
        "SPOP",
        "SRANDMEMBER",
        "SMOVE",
        "SINTER",
        "SINTERCARD",
        "SUNION",
        "SDIFF",
        "SINTERSTORE",
        "SUNIONSTORE",
        "SDIFFSTORE",
        "SSCAN",
        "OBJECT",
    ];
    let words = [
        "s0",
        "s1",
        "str",
        "LIMIT",
        "COUNT",
        "MATCH",
        "TYPE",
        "ENCODING",
        "0",
        "1",
        "2",
        "-1",
        "-5",
        "99",
        "x",
        "",
        "*",
        "[",
        "9223372036854775807",
        "-9223372036854775808",
        "-9223372036854775807",
        "18446744073709551615",
        "-16777217",
    ];
    let mut rng = Rng(0x5e75);
    con.send(&citadel_tests::reference::encode_command(&[
        b"SET", b"str", b"v",
    ]));
    con.raw_reply().expect("reply");
    for _ in 0..3000 {
        let mut args: Vec<&[u8]> = vec![rng.pick(&commands).as_bytes()];
        for _ in 0..rng.below(6) {
            args.push(rng.pick(&words).as_bytes());
        }
        con.send(&citadel_tests::reference::encode_command(&args));
        con.raw_reply().expect("the server answers");
    }
    con.send(&citadel_tests::reference::encode_command(&[b"PING"]));
    assert_eq!(con.raw_reply().unwrap(), b"+PONG\r\n");
}

/// Keyspace notifications of set writes, against Redis's (SREM or SPOP
/// that empties a set, and SMOVE, are left out: Citadel reports one event
/// per key and command, `del` for the first, `set` for SMOVE).
#[test]
fn set_notifications_match_redis() {
    use citadel_tests::reference::encode_command;
    use citadel_tests::RespReader;
    let subscriber = |stream| {
        let mut r = RespReader::new(stream);
        r.send(&encode_command(&[b"PSUBSCRIBE", b"__key*__:*"]));
        r.raw_reply().expect("psubscribe reply");
        r
    };
    let mut pair = Pair::start();
    pair.same_str(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let (mut rsub, mut csub) = (subscriber(pair.redis.raw()), subscriber(pair.citadel.raw()));
    let cases: &[&[&str]] = &[
        &["SADD", "a", "1", "2", "3"],
        &["SADD", "a", "1"],
        &["SREM", "a", "1"],
        &["SREM", "a", "9"],
        &["SADD", "p", "x", "y"],
        &["SPOP", "p", "1"],
        &["SADD", "b", "2", "3", "x"],
        &["SINTERSTORE", "d", "a", "b"],
        &["SUNIONSTORE", "d", "a", "b"],
        &["SDIFFSTORE", "d", "b", "a"],
        &["SDIFFSTORE", "d", "b", "b"],
        &["SINTERSTORE", "d", "b", "missing"],
    ];
    for case in cases {
        let (want, got) = pair.each_on(0, case);
        assert_eq!(got.starts_with('-'), want.starts_with('-'), "{case:?}");
        let want = rsub.pending(std::time::Duration::from_millis(100));
        let got = csub.pending(std::time::Duration::from_millis(300));
        assert_eq!(got, want, "notifications of {case:?}");
    }
}
