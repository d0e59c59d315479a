//! Stream consumer groups against a real redis-server: seeded random
//! XGROUP (every subcommand), XREADGROUP (`>`, history, NOACK), XACK,
//! XPENDING (both forms), XCLAIM (FORCE, JUSTID, RETRYCOUNT, TIME,
//! LASTID), XAUTOCLAIM, XINFO GROUPS / CONSUMERS / STREAM FULL, mixed
//! with XADD, XDEL, XTRIM and XSETID, in RESP2 and RESP3. Replies are
//! compared byte for byte except the clock's values: idle times and
//! delivery or seen times (masked where they stand, as the stream test
//! masks nothing else); then the errors, byte for byte.

use citadel_tests::differential::{Pair, Rng};

/// A parsed reply, enough of RESP2/3 for these commands.
#[derive(Debug, PartialEq)]
enum V {
    Line(u8, String),
    Bulk(Option<String>),
    Agg(u8, Vec<V>),
}

fn parse(b: &[u8], at: &mut usize) -> V {
    let end = b[*at..].windows(2).position(|w| w == b"\r\n").unwrap() + *at;
    let kind = b[*at];
    let line = String::from_utf8_lossy(&b[*at + 1..end]).into_owned();
    *at = end + 2;
    match kind {
        b'$' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                return V::Bulk(None);
            }
            let s = String::from_utf8_lossy(&b[*at..*at + n as usize]).into_owned();
            *at += n as usize + 2;
            V::Bulk(Some(s))
        }
        b'*' | b'%' => {
            let n: i64 = line.parse().unwrap();
            if n < 0 {
                return V::Line(b'_', String::new());
            }
            let n = if kind == b'%' { 2 * n } else { n };
            V::Agg(kind, (0..n).map(|_| parse(b, at)).collect())
        }
        _ => V::Line(kind, line),
    }
}

/// Masks the clock's values: after an `idle`, `seen-time` key, any
/// integer that is a Unix time in ms, and XPENDING rows' idle times;
/// and XINFO STREAM's `radix-tree-nodes` (an estimate, README).
fn mask(v: &mut V, pending_rows: bool) {
    if let V::Agg(_, items) = v {
        let row = pending_rows
            && items.len() == 4
            && matches!(&items[0], V::Bulk(Some(s)) if s.contains('-'))
            && matches!(&items[2], V::Line(b':', _));
        if row {
            items[2] = V::Line(b':', "idle".into());
        }
        let mut masked_next = false;
        for item in items.iter_mut() {
            if masked_next {
                *item = V::Line(b':', "time".into());
                masked_next = false;
                continue;
            }
            if matches!(item, V::Bulk(Some(s)) if s == "idle" || s == "seen-time" || s == "radix-tree-nodes")
            {
                masked_next = true;
            }
            mask(item, pending_rows);
        }
    } else if let V::Line(b':', n) = v {
        if n.parse::<i64>().is_ok_and(|n| n >= 1_000_000_000_000) {
            *n = "time".into();
        }
    }
}

/// Sends `args` to both on `conn`; the replies must match once masked.
fn same_masked(pair: &mut Pair, conn: usize, args: &[String]) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let (want, got) = pair.each_on(conn, &a);
    let rows = args[0].eq_ignore_ascii_case("xpending");
    let (mut w, mut g) = (
        parse(want.as_bytes(), &mut 0),
        parse(got.as_bytes(), &mut 0),
    );
    mask(&mut w, rows);
    mask(&mut g, rows);
    assert!(
        g == w,
        "reply to {args:?} on connection {conn}:\nredis:   {want:?}\ncitadel: {got:?}"
    );
}

fn command(rng: &mut Rng, ms: &mut u64) -> Vec<String> {
    let key = if rng.below(5) == 0 { "s2" } else { "s" }.to_string();
    let group = rng.pick(&["g1", "g1", "g2"]).to_string();
    let consumer = rng.pick(&["alice", "bob", "carol"]).to_string();
    let id = |rng: &mut Rng, ms: u64| format!("{}-{}", rng.below(ms + 2), rng.below(3));
    let s = |x: &str| x.to_string();
    let ids = |rng: &mut Rng, ms: u64, most: u64| -> Vec<String> {
        let n = 1 + rng.below(most);
        (0..n).map(|_| id(rng, ms)).collect()
    };
    let mut c: Vec<String> = match rng.below(30) {
        0..=6 => {
            *ms += rng.below(3);
            let mut c = vec![s("XADD"), key, format!("{ms}-{}", rng.below(4))];
            for f in 0..1 + rng.below(2) {
                c.push(format!("f{f}"));
                c.push("v".repeat(rng.below(3) as usize));
            }
            c
        }
        7 => {
            let start = rng.pick(&["$", "0", "0-0"]).to_string();
            let mut c = vec![s("XGROUP"), s("CREATE"), key, group, start];
            if rng.below(2) == 0 {
                c.push(s("MKSTREAM"));
            }
            if rng.below(4) == 0 {
                c.extend([s("ENTRIESREAD"), rng.below(5).to_string()]);
            }
            c
        }
        8 => {
            let to = if rng.below(3) == 0 {
                s("$")
            } else {
                id(rng, *ms)
            };
            let mut c = vec![s("XGROUP"), s("SETID"), key, group, to];
            if rng.below(3) == 0 {
                c.extend([s("ENTRIESREAD"), rng.below(6).to_string()]);
            }
            c
        }
        9 if rng.below(4) == 0 => vec![s("XGROUP"), s("DESTROY"), key, group],
        9 | 10 => vec![
            s("XGROUP"),
            s(rng.pick(&["CREATECONSUMER", "DELCONSUMER"])),
            key,
            group,
            consumer,
        ],
        11..=15 => {
            let mut c = vec![s("XREADGROUP"), s("GROUP"), group, consumer];
            if rng.below(3) > 0 {
                c.extend([s("COUNT"), (1 + rng.below(6)).to_string()]);
            }
            if rng.below(6) == 0 {
                c.push(s("NOACK"));
            }
            c.push(s("STREAMS"));
            c.push(key);
            c.push(match rng.below(4) {
                0 => s("0"),
                1 => id(rng, *ms),
                _ => s(">"),
            });
            c
        }
        16 | 17 => {
            let mut c = vec![s("XACK"), key, group];
            c.extend(ids(rng, *ms, 4));
            c
        }
        18 => vec![s("XPENDING"), key, group],
        19 => {
            let mut c = vec![s("XPENDING"), key, group];
            if rng.below(3) == 0 {
                c.extend([s("IDLE"), s(rng.pick(&["0", "3600000"]))]);
            }
            c.extend([s("-"), s("+"), rng.below(8).to_string()]);
            if rng.below(2) == 0 {
                c.push(consumer);
            }
            c
        }
        20 | 21 => {
            let min_idle = s(rng.pick(&["0", "0", "3600000"]));
            let mut c = vec![s("XCLAIM"), key, group, consumer, min_idle];
            c.extend(ids(rng, *ms, 3));
            for opt in ["JUSTID", "FORCE"] {
                if rng.below(3) == 0 {
                    c.push(s(opt));
                }
            }
            if rng.below(4) == 0 {
                c.extend([s("RETRYCOUNT"), rng.below(9).to_string()]);
            }
            if rng.below(4) == 0 {
                c.extend([s("TIME"), s("1000")]);
            }
            if rng.below(6) == 0 {
                c.extend([s("LASTID"), id(rng, *ms)]);
            }
            c
        }
        22 => {
            let min_idle = s(rng.pick(&["0", "3600000"]));
            let mut c = vec![
                s("XAUTOCLAIM"),
                key,
                group,
                consumer,
                min_idle,
                id(rng, *ms),
            ];
            if rng.below(2) == 0 {
                c.extend([s("COUNT"), (1 + rng.below(5)).to_string()]);
            }
            if rng.below(3) == 0 {
                c.push(s("JUSTID"));
            }
            c
        }
        23 => {
            let mut c = vec![s("XDEL"), key];
            c.extend(ids(rng, *ms, 3));
            c
        }
        24 => vec![s("XTRIM"), key, s("MAXLEN"), rng.below(20).to_string()],
        25 => vec![s("XINFO"), s("GROUPS"), key],
        26 => vec![s("XINFO"), s("CONSUMERS"), key, group],
        27 => {
            let mut c = vec![s("XINFO"), s("STREAM"), key, s("FULL")];
            if rng.below(2) == 0 {
                c.extend([s("COUNT"), rng.below(4).to_string()]);
            }
            c
        }
        28 => vec![s("XINFO"), s("STREAM"), key],
        _ => vec![s("XLEN"), key],
    };
    c.shrink_to_fit();
    c
}

#[test]
fn random_group_commands_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    let mut rng = Rng(0x6e0_c0de);
    for round in 0..3 {
        let mut ms = 1u64;
        for _ in 0..1500 {
            let cmd = command(&mut rng, &mut ms);
            let conn = if rng.below(4) == 0 { conn3 } else { 0 };
            same_masked(&mut pair, conn, &cmd);
        }
        pair.same_str(&["FLUSHALL"]);
        let _ = round;
    }
}

#[test]
fn group_errors_match_redis() {
    let mut pair = Pair::start();
    let conn3 = pair.connect();
    pair.both(conn3, &["HELLO", "3"]);
    let setup: &[&[&str]] = &[
        &["SET", "str", "x"],
        &["XADD", "s", "1-1", "f", "v"],
        &["XADD", "s", "2-1", "f", "v"],
        &["XGROUP", "CREATE", "s", "g", "0"],
    ];
    for c in setup {
        pair.same_str(c);
    }
    let cases: &[&[&str]] = &[
        &["XGROUP", "CREATE", "missing", "g", "$"],
        &["XGROUP", "CREATE", "s", "g", "$"],
        &["XGROUP", "CREATE", "str", "g", "$"],
        &["XGROUP", "CREATE", "s", "g2", "bad"],
        &["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "-5"],
        &["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "x"],
        &["XGROUP", "CREATE", "s", "g2", "$", "BOGUS"],
        &["XGROUP", "SETID", "s", "nog", "$"],
        &["XGROUP", "SETID", "s", "g", "$", "MKSTREAM"],
        &["XGROUP", "SETID", "s", "g", "-"],
        &["XGROUP", "CREATECONSUMER", "s", "nog", "c"],
        &["XGROUP", "DELCONSUMER", "s", "g", "nobody"],
        &["XGROUP", "DESTROY", "s", "nog"],
        &["XGROUP", "DESTROY", "s"],
        &["XGROUP", "NOPE", "s", "g"],
        &["XGROUP", "HELP"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "$"],
        &["XREADGROUP", "GROUP", "nog", "c", "STREAMS", "s", ">"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "missing", ">"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "str", ">"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "s", ">"],
        &["XREADGROUP", "COUNT", "1", "STREAMS", "s", ">"],
        &["XREAD", "GROUP", "g", "c", "STREAMS", "s", "0"],
        &["XREAD", "NOACK", "STREAMS", "s", "0"],
        &["XREAD", "COUNT", "1", "NOACK"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", "bad"],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "x",
            "STREAMS",
            "s",
            ">",
        ],
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "NOACK",
            "STREAMS",
            "s",
            "0",
        ],
        &["XACK", "s", "g", "bad"],
        &["XACK", "missing", "g", "bad"],
        &["XACK", "str", "g", "1-1"],
        &["XPENDING", "s", "nog"],
        &["XPENDING", "s", "g", "-", "+"],
        &["XPENDING", "s", "g", "IDLE", "x", "-", "+", "5"],
        &["XPENDING", "s", "g", "IDLE", "5", "-", "+"],
        &["XPENDING", "s", "g", "(-", "+", "5"],
        &["XPENDING", "s", "g", "-", "+", "x"],
        &["XPENDING", "str", "g"],
        &["XCLAIM", "s", "nog", "c", "0", "1-1"],
        &["XCLAIM", "s", "g", "c", "x", "1-1"],
        &["XCLAIM", "s", "g", "c", "0", "1-1", "BOGUS"],
        &["XCLAIM", "s", "g", "c", "0", "1-1", "IDLE", "x"],
        &["XCLAIM", "s", "g", "c", "0", "1-1", "RETRYCOUNT", "x"],
        &["XCLAIM", "s", "g", "c", "0", "1-1", "LASTID", "x"],
        &["XAUTOCLAIM", "s", "g", "c", "0", "0", "COUNT", "0"],
        &["XAUTOCLAIM", "s", "g", "c", "x", "0"],
        &["XAUTOCLAIM", "s", "g", "c", "0", "bad"],
        &["XAUTOCLAIM", "s", "nog", "c", "0", "0"],
        &["XAUTOCLAIM", "s", "g", "c", "0", "0", "BOGUS"],
        &["XINFO", "GROUPS", "missing"],
        &["XINFO", "CONSUMERS", "s", "nog"],
        &["XINFO", "CONSUMERS", "str", "g"],
        &["XINFO", "HELP"],
        &["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"],
        &["XCLAIM", "s", "g", "d", "0", "1-1", "2-1", "JUSTID"],
        &["XAUTOCLAIM", "s", "g", "e", "0", "0", "JUSTID"],
        &["XPENDING", "s", "g"],
        &["XINFO", "GROUPS", "s"],
    ];
    for c in cases {
        pair.same_str(c);
        pair.same_str_on(conn3, c);
    }
}

/// PELs of thousands of entries (many PEL pages: splits, emptied pages,
/// a consumer's entries spread over them), against Redis.
#[test]
fn big_pels_match_redis() {
    let mut pair = Pair::start();
    let mut rng = Rng(0xb16_9e1);
    let s = |x: &str| x.to_string();
    for i in 1..=3000 {
        pair.same_strings(&[s("XADD"), s("big"), format!("{i}-0"), s("f"), i.to_string()]);
    }
    pair.same_str(&["XGROUP", "CREATE", "big", "g", "0"]);
    for (consumer, count) in [("a", "700"), ("b", "900"), ("a", "500"), ("c", "400")] {
        let cmd = [
            "XREADGROUP",
            "GROUP",
            "g",
            consumer,
            "COUNT",
            count,
            "STREAMS",
            "big",
            ">",
        ];
        same_masked(&mut pair, 0, &cmd.map(s));
    }
    for step in 0..400 {
        let id = |rng: &mut Rng| format!("{}-0", 1 + rng.below(3000));
        let cmd: Vec<String> = match step % 8 {
            0..=2 => {
                let mut c = vec![s("XACK"), s("big"), s("g")];
                (0..1 + rng.below(20)).for_each(|_| c.push(id(&mut rng)));
                c
            }
            3 => vec![s("XPENDING"), s("big"), s("g")],
            4 => {
                let mut c = vec![s("XPENDING"), s("big"), s("g"), id(&mut rng), s("+")];
                c.push(rng.below(300).to_string());
                if rng.below(2) == 0 {
                    c.push(s(rng.pick(&["a", "b", "c"])));
                }
                c
            }
            5 => {
                let mut c = vec![
                    s("XCLAIM"),
                    s("big"),
                    s("g"),
                    s(rng.pick(&["a", "b", "d"])),
                    s("0"),
                ];
                (0..1 + rng.below(10)).for_each(|_| c.push(id(&mut rng)));
                c.push(s("JUSTID"));
                c
            }
            6 => vec![
                s("XAUTOCLAIM"),
                s("big"),
                s("g"),
                s(rng.pick(&["a", "c"])),
                s("0"),
                id(&mut rng),
                s("COUNT"),
                (1 + rng.below(200)).to_string(),
                s("JUSTID"),
            ],
            _ => {
                let mut c = vec![s("XDEL"), s("big")];
                (0..1 + rng.below(5)).for_each(|_| c.push(id(&mut rng)));
                c
            }
        };
        same_masked(&mut pair, 0, &cmd);
    }
    for cmd in [
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "COUNT",
            "50",
            "STREAMS",
            "big",
            "1500",
        ][..],
        &["XINFO", "CONSUMERS", "big", "g"],
        &["XINFO", "STREAM", "big", "FULL", "COUNT", "20"],
        &["XGROUP", "DELCONSUMER", "big", "g", "a"],
        &["XPENDING", "big", "g"],
        &["XINFO", "GROUPS", "big"],
        &["XGROUP", "DESTROY", "big", "g"],
        &["XINFO", "GROUPS", "big"],
    ] {
        same_masked(&mut pair, 0, &cmd.iter().map(|a| s(a)).collect::<Vec<_>>());
    }
}
