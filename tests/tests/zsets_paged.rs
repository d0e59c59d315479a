//! A sorted set far past the paging threshold (200,000 members: the paged
//! form, a member index and an order-statistic B+tree in pages) against a
//! real redis-server, every reply byte for byte: a seeded stream of ZADD
//! (NX XX GT LT CH INCR), ZINCRBY, ZREM, ZSCORE, ZMSCORE, ZCARD, ZRANK,
//! ZREVRANK, ZRANGE by rank and BYSCORE/BYLEX with REV and LIMIT, ZCOUNT,
//! ZPOPMIN/ZPOPMAX, ZREMRANGEBYRANK/SCORE, also inside MULTI/EXEC and a Lua script; ZRANDMEMBER
//! by its properties; a full ZSCAN walk; then the whole set, a warm
//! restart that keeps it, and DEL/UNLINK whose pages are reclaimed.

use std::collections::HashSet;

use citadel_tests::differential::{Pair, Rng};

const MEMBERS: u64 = 200_000;
const BATCH: u64 = 2_000;

fn member(i: u64) -> String {
    format!("member:{i}")
}

fn fill(pair: &mut Pair, key: &str, n: u64, rng: &mut Rng) {
    for start in (0..n).step_by(BATCH as usize) {
        let mut args = vec!["ZADD".to_string(), key.to_string()];
        // Scores mostly rising with the batch: each ZADD edits a few
        // leaves, as a leaderboard's fill does, not every page at once.
        for i in start..(start + BATCH).min(n) {
            let score = i as i64 / 2 - 50_000 + rng.below(8) as i64;
            args.push(score.to_string());
            args.push(member(i));
        }
        pair.same_strings(&args);
    }
}

fn score(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => format!("{}.25", rng.int(50_000)),
        1 => "+inf".into(),
        2 => "-inf".into(),
        _ => rng.int(50_000).to_string(),
    }
}

fn bound(rng: &mut Rng) -> String {
    let b = score(rng);
    match rng.below(3) {
        0 => format!("({b}"),
        _ => b,
    }
}

fn command(rng: &mut Rng, key: &str) -> Vec<String> {
    let m = member(rng.below(MEMBERS + 1_000));
    let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let rank = |rng: &mut Rng| (rng.below(2 * MEMBERS) as i64 - MEMBERS as i64).to_string();
    let mut args = match rng.below(17) {
        0 | 1 => {
            let mut a = words(&["ZADD", key]);
            let flag = rng.pick(&["", "NX", "XX", "GT", "LT", "CH", "XX CH"]);
            a.extend(flag.split_whitespace().map(String::from));
            for _ in 0..rng.below(4) + 1 {
                a.push(score(rng));
                a.push(member(rng.below(MEMBERS + 1_000)));
            }
            a
        }
        2 => vec!["ZADD".into(), key.into(), "INCR".into(), score(rng), m],
        3 => vec![
            "ZINCRBY".into(),
            key.into(),
            format!("{}.5", rng.int(100)),
            m,
        ],
        4 => vec!["ZREM".into(), key.into(), m, member(rng.below(MEMBERS))],
        5 => vec!["ZSCORE".into(), key.into(), m],
        6 => vec![
            "ZMSCORE".into(),
            key.into(),
            m,
            member(rng.below(MEMBERS)),
            "nope".into(),
        ],
        7 => vec![rng.pick(&["ZRANK", "ZREVRANK"]).into(), key.into(), m],
        8 => {
            let start = rank(rng);
            let len = rng.below(40) as i64;
            let end = (start.parse::<i64>().unwrap() + len).to_string();
            let mut a = vec![
                rng.pick(&["ZRANGE", "ZREVRANGE"]).into(),
                key.into(),
                start,
                end,
            ];
            if rng.below(2) == 0 {
                a.push("WITHSCORES".into());
            }
            a
        }
        9 => {
            let (lo, hi) = (bound(rng), bound(rng));
            let mut a = vec!["ZRANGE".into(), key.into(), lo, hi, "BYSCORE".into()];
            if rng.below(2) == 0 {
                a.push("REV".into());
            }
            a.extend([
                "LIMIT".into(),
                rng.below(50).to_string(),
                rng.below(30).to_string(),
            ]);
            a.push("WITHSCORES".into());
            a
        }
        10 => vec![
            rng.pick(&["ZRANGEBYSCORE", "ZREVRANGEBYSCORE"]).into(),
            key.into(),
            bound(rng),
            bound(rng),
            "LIMIT".into(),
            rng.below(100).to_string(),
            "20".into(),
        ],
        11 => vec!["ZCOUNT".into(), key.into(), bound(rng), bound(rng)],
        12 => vec!["ZCARD".into(), key.into()],
        13 => vec![
            rng.pick(&["ZPOPMIN", "ZPOPMAX"]).into(),
            key.into(),
            rng.below(4).to_string(),
        ],
        14 if rng.below(20) == 0 => vec![
            "ZRANGE".into(),
            key.into(),
            "[member:1".into(),
            "(member:2".into(),
            "BYLEX".into(),
            "LIMIT".into(),
            "0".into(),
            "10".into(),
        ],
        // Narrow removals (the set keeps its size): the range's pages only.
        15 => match rng.below(2) {
            0 => {
                let start = rank(rng);
                let end = (start.parse::<i64>().unwrap() + rng.below(6) as i64).to_string();
                vec!["ZREMRANGEBYRANK".into(), key.into(), start, end]
            }
            _ => {
                let low = rng.int(50_000);
                vec![
                    "ZREMRANGEBYSCORE".into(),
                    key.into(),
                    format!("({low}"),
                    (low + 1).to_string(),
                ]
            }
        },
        _ => vec!["ZSCORE".into(), key.into(), member(rng.below(MEMBERS))],
    };
    args.retain(|a| !a.is_empty());
    args
}

fn zscan_all(pair: &mut Pair, key: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut cursor = "0".to_string();
    loop {
        let mut c = pair.citadel.client();
        let (next, items): (String, Vec<String>) = citadel_tests::redis::cmd("ZSCAN")
            .arg(key)
            .arg(&cursor)
            .arg("COUNT")
            .arg(500)
            .query(&mut c)
            .unwrap();
        seen.extend(items.chunks(2).map(|pair| pair[0].clone()));
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
}

fn info_field(pair: &mut Pair, name: &str) -> u64 {
    let mut c = pair.citadel.client();
    let info: String = citadel_tests::redis::cmd("INFO")
        .arg("memory")
        .arg("stats")
        .query(&mut c)
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_200k_member_sorted_set_matches_redis() {
    // Room for the set, a copy, and the pages of the whole rewrites
    // (ZREMRANGEBYRANK) until they are reclaimed: no eviction.
    let mut pair = Pair::start_with(&["--maxmemory", "1gb"]);
    let mut rng = Rng(0x2a5e_7000_0014);
    fill(&mut pair, "big", MEMBERS, &mut rng);
    pair.same_str(&["OBJECT", "ENCODING", "big"]);
    pair.same_str(&["ZCARD", "big"]);
    for _ in 0..4_000 {
        let args = command(&mut rng, "big");
        pair.same_strings(&args);
    }
    // Atomic groups over the paged form.
    for args in [
        &["MULTI"][..],
        &["ZADD", "big", "7", "member:7", "8", "fresh"],
        &["ZINCRBY", "big", "2", "fresh"],
        &["ZRANK", "big", "fresh"],
        &["ZPOPMIN", "big", "2"],
        &["EXEC"],
    ] {
        pair.same_str(args);
    }
    let script = "redis.call('ZADD', KEYS[1], 3, ARGV[1]) \
                  return {redis.call('ZRANK', KEYS[1], ARGV[1]), redis.call('ZCARD', KEYS[1])}";
    pair.same_str(&["EVAL", script, "1", "big", "scripted"]);
    // ZRANDMEMBER: distinct members of the set.
    let mut c = pair.citadel.client();
    let picks: Vec<String> = citadel_tests::redis::cmd("ZRANDMEMBER")
        .arg("big")
        .arg(100)
        .query(&mut c)
        .unwrap();
    assert_eq!(picks.iter().collect::<HashSet<_>>().len(), 100);
    for pick in &picks {
        pair.same_str(&["ZSCORE", "big", pick]);
    }
    // A full ZSCAN returns every member.
    let scanned = zscan_all(&mut pair, "big");
    let card: usize = pair
        .same_str(&["ZCARD", "big"])
        .trim_start_matches(':')
        .trim()
        .parse()
        .unwrap_or(0);
    assert_eq!(scanned.len(), card, "zscan saw every member once");
    pair.same_str(&["ZRANGE", "big", "0", "-1", "WITHSCORES"]);
    pair.same_str(&["ZRANGEBYLEX", "big", "-", "+", "LIMIT", "0", "50"]);
    pair.same_str(&["ZREMRANGEBYRANK", "big", "100", "199"]);
    pair.same_str(&["ZRANGE", "big", "90", "110", "WITHSCORES"]);

    // A warm restart keeps it whole.
    let before: Vec<String> = {
        let mut c = pair.citadel.client();
        citadel_tests::redis::cmd("ZRANGE")
            .arg("big")
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query(&mut c)
            .unwrap()
    };
    pair.citadel.signal("TERM");
    pair.citadel.wait_exit(std::time::Duration::from_secs(30));
    pair.citadel.restart(false);
    let conn = pair.connect();
    pair.same_str_on(conn, &["ZRANGE", "big", "0", "-1", "WITHSCORES"]);
    let mut c = pair.citadel.client();
    let after: Vec<String> = citadel_tests::redis::cmd("ZRANGE")
        .arg("big")
        .arg(0)
        .arg(-1)
        .arg("WITHSCORES")
        .query(&mut c)
        .unwrap();
    assert_eq!(after, before);

    // DEL and UNLINK drop the root; the engine reclaims every page.
    pair.same_str_on(conn, &["COPY", "big", "copy"]);
    pair.same_str_on(conn, &["ZCARD", "copy"]);
    let reclaimed = info_field(&mut pair, "reclaimed_pages");
    let lazyfreed = info_field(&mut pair, "lazyfreed_objects");
    pair.same_str_on(conn, &["DEL", "big"]);
    pair.same_str_on(conn, &["UNLINK", "copy"]);
    pair.same_str_on(conn, &["DBSIZE"]);
    let mut pending = u64::MAX;
    for _ in 0..10_000 {
        pending = info_field(&mut pair, "reclaim_pending_pages");
        if pending == 0 {
            break;
        }
        std::thread::yield_now();
    }
    assert_eq!(pending, 0);
    // Both sets' pages: ~2,100 tree pages and ~2,000 index pages each.
    let freed = info_field(&mut pair, "reclaimed_pages") - reclaimed;
    assert!(freed > 4_000, "reclaimed {freed} pages");
    // Each dropped set counts once, as Redis's lazy free counts objects.
    let objects = info_field(&mut pair, "lazyfreed_objects") - lazyfreed;
    assert_eq!(objects, 2, "lazyfreed_objects");
    assert_eq!(info_field(&mut pair, "lazyfree_pending_objects"), 0);
}

/// A lex bound around the members of [`lex_fill`]: `-`, `+`, or `[`/`(`
/// before a member, on one, or between two (a prefix).
fn lex_bound(rng: &mut Rng) -> String {
    let m = format!("w{:05}", rng.below(LEX_MEMBERS + 500));
    match rng.below(8) {
        0 => "-".into(),
        1 => "+".into(),
        2 => format!("[{}", &m[..4]),
        3 | 4 => format!("({m}"),
        _ => format!("[{m}"),
    }
}

const LEX_MEMBERS: u64 = 20_000;

fn lex_queries(pair: &mut Pair, rng: &mut Rng, key: &str, n: usize) {
    for _ in 0..n {
        let (lo, hi) = (lex_bound(rng), lex_bound(rng));
        let limit = [rng.below(30).to_string(), rng.below(40).to_string()];
        let args: Vec<String> = match rng.below(5) {
            0 => vec!["ZLEXCOUNT".into(), key.into(), lo, hi],
            1 => vec!["ZRANGEBYLEX".into(), key.into(), lo, hi],
            2 => vec![
                "ZREVRANGEBYLEX".into(),
                key.into(),
                hi,
                lo,
                "LIMIT".into(),
                limit[0].clone(),
                limit[1].clone(),
            ],
            3 => vec![
                "ZRANGE".into(),
                key.into(),
                lo,
                hi,
                "BYLEX".into(),
                "LIMIT".into(),
                limit[0].clone(),
                limit[1].clone(),
            ],
            _ => vec![
                "ZRANGE".into(),
                key.into(),
                hi,
                lo,
                "BYLEX".into(),
                "REV".into(),
            ],
        };
        pair.same_strings(&args);
        if rng.below(4) == 0 {
            let i = rng.below(LEX_MEMBERS + 500);
            let m = format!("w{i:05}");
            match rng.below(3) {
                0 => pair.same_strings(&["ZADD".into(), key.into(), "0".into(), m]),
                1 => pair.same_strings(&["ZREM".into(), key.into(), m]),
                _ => pair.same_strings(&[
                    "ZREMRANGEBYLEX".into(),
                    key.into(),
                    format!("[{m}"),
                    format!("(w{:05}", i + rng.below(5)),
                ]),
            };
        }
    }
}

#[test]
fn lex_ranges_on_a_paged_set_match_redis() {
    let mut pair = Pair::start();
    let mut rng = Rng(0x1e_0000_0014);
    // Every score 0 (the way lex ranges are meant): answered from the tree.
    for start in (0..LEX_MEMBERS).step_by(BATCH as usize) {
        let mut args = vec!["ZADD".to_string(), "words".to_string()];
        for i in (start..start + BATCH).filter(|i| i % 7 != 3) {
            args.push("0".into());
            args.push(format!("w{i:05}"));
        }
        pair.same_strings(&args);
    }
    pair.same_str(&["OBJECT", "ENCODING", "words"]);
    lex_queries(&mut pair, &mut rng, "words", 600);
    // Mixed scores: the set is read whole. Redis's answer then depends on
    // its skiplist's random levels (its descent tests a predicate that is
    // not monotone), except for the whole range.
    pair.same_str(&["ZADD", "words", "5", "w00100", "-3", "w19000"]);
    pair.same_str(&["ZLEXCOUNT", "words", "-", "+"]);
    pair.same_str(&["ZRANGEBYLEX", "words", "-", "+", "LIMIT", "0", "50"]);
    pair.same_str(&["ZREVRANGEBYLEX", "words", "+", "-", "LIMIT", "3", "20"]);
}

/// One ZSCAN call on `port`: the next cursor and the (member, score text)
/// pairs.
fn zscan_call(port: u16, key: &str, cursor: &str, count: usize) -> (String, Vec<(String, String)>) {
    let mut c = citadel_tests::redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let (next, items): (String, Vec<String>) = citadel_tests::redis::cmd("ZSCAN")
        .arg(key)
        .arg(cursor)
        .arg("COUNT")
        .arg(count)
        .query(&mut c)
        .unwrap();
    let pairs = items.chunks(2).map(|p| (p[0].clone(), p[1].clone()));
    (next, pairs.collect())
}

/// A whole walk: every (member, score text) returned, and how many calls.
fn zscan_walk(port: u16, key: &str, count: usize) -> (HashSet<(String, String)>, usize) {
    let (mut seen, mut calls, mut cursor) = (HashSet::new(), 0, "0".to_string());
    loop {
        let (next, pairs) = zscan_call(port, key, &cursor, count);
        calls += 1;
        seen.extend(pairs);
        if next == "0" {
            return (seen, calls);
        }
        cursor = next;
    }
}

/// `n` members (a multiple of 1,000) in a paged set `z` on both servers,
/// with scores Redis's skiplist writes in each of its forms: small and
/// big integers (digits below 2^52, `%.17g` from it), fractions,
/// infinities.
fn fill_mixed(pair: &mut Pair, n: u64) {
    let scores = [
        "7",
        "-3",
        "0.5",
        "1e300",
        "4503599627370497",
        "9007199254740993",
        "-inf",
        "+inf",
    ];
    for start in (0..n).step_by(1_000) {
        let mut args = vec!["ZADD".to_string(), "z".to_string()];
        for i in start..start + 1_000 {
            args.push(scores[(i % scores.len() as u64) as usize].to_string());
            args.push(member(i));
        }
        pair.same_strings(&args);
    }
}

#[test]
fn zscan_of_a_paged_set_reads_pages_not_the_whole_set() {
    let mut pair = Pair::start();
    let n = 5_000u64;
    fill_mixed(&mut pair, n);
    let citadel_port = pair.citadel.port;
    let redis_port = pair.redis.port;
    // Unchanged set: the same members with the same score texts as Redis.
    let (ours, calls) = zscan_walk(citadel_port, "z", 100);
    let (theirs, _) = zscan_walk(redis_port, "z", 100);
    assert_eq!(ours.len() as u64, n);
    assert_eq!(
        ours, theirs,
        "ZSCAN's (member, score) pairs differ from Redis's"
    );
    assert!(
        calls >= 5,
        "a 5,000-member set came back in {calls} calls: read whole"
    );
    // Changed between calls: every member present for the whole scan is
    // returned; no call returns more than a few pages.
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    let mut added = n;
    loop {
        let (next, pairs) = zscan_call(citadel_port, "z", &cursor, 100);
        assert!(
            pairs.len() <= 1_000,
            "one call returned {} members",
            pairs.len()
        );
        seen.extend(pairs.into_iter().map(|(m, _)| m));
        // Grow it (index splits), and move and remove members that are
        // not part of the stable half.
        for _ in 0..50 {
            pair.same_str(&["ZADD", "z", "1", &member(added)]);
            added += 1;
        }
        for i in (n / 2..n)
            .step_by(97)
            .map(|i| (i + added) % (n / 2) + n / 2)
        {
            pair.same_str(&["ZINCRBY", "z", "1", &member(i)]);
            pair.same_str(&["ZREM", "z", &member(i + 1)]);
        }
        if next == "0" {
            break;
        }
        cursor = next;
    }
    let missed: Vec<u64> = (0..n / 2).filter(|&i| !seen.contains(&member(i))).collect();
    assert!(
        missed.is_empty(),
        "members present throughout but never returned: {missed:?}"
    );
}

#[test]
fn zrandmember_of_a_paged_set() {
    let mut pair = Pair::start();
    let n = 5_000u64;
    fill_mixed(&mut pair, n);
    let mut c = pair.citadel.client();
    let query = |c: &mut citadel_tests::redis::Connection, args: &[&str]| -> Vec<String> {
        let mut cmd = citadel_tests::redis::cmd(args[0]);
        args[1..].iter().for_each(|a| {
            cmd.arg(*a);
        });
        cmd.query(c).unwrap()
    };
    let score_of = |c: &mut citadel_tests::redis::Connection, m: &str| -> String {
        citadel_tests::redis::cmd("ZSCORE")
            .arg("z")
            .arg(m)
            .query(c)
            .unwrap()
    };
    let mut seen = HashSet::new();
    for _ in 0..200 {
        let one: String = citadel_tests::redis::cmd("ZRANDMEMBER")
            .arg("z")
            .query(&mut c)
            .unwrap();
        assert!(one.starts_with("member:"), "{one}");
        seen.insert(one);
    }
    assert!(
        seen.len() > 150,
        "200 draws gave {} distinct members",
        seen.len()
    );
    // Distinct members, with their own scores.
    let picked = query(&mut c, &["ZRANDMEMBER", "z", "50", "WITHSCORES"]);
    assert_eq!(picked.len(), 100);
    let members: HashSet<&String> = picked.iter().step_by(2).collect();
    assert_eq!(members.len(), 50, "a positive count repeated a member");
    for p in picked.chunks(2) {
        assert_eq!(p[1], score_of(&mut c, &p[0]), "{}", p[0]);
    }
    // Repeats allowed: exactly the count.
    assert_eq!(query(&mut c, &["ZRANDMEMBER", "z", "-7000"]).len(), 7000);
    // A count covering the set: the whole set, as Redis answers it.
    pair.same_str(&["ZRANDMEMBER", "z", "6000", "WITHSCORES"]);
    pair.same_str(&["ZRANDMEMBER", "z", "5000"]);
    pair.same_str(&["ZRANDMEMBER", "missing", "5"]);
    pair.same_str(&["ZRANDMEMBER", "z", "5", "WITHSCOREZ"]);
}

#[test]
fn multi_key_zmpop_on_a_paged_set_matches_redis() {
    // ZMPOP and BZMPOP over several keys pop from the paged set's end
    // leaves (guarded by the keys before it), in Redis's key order, with
    // WRONGTYPE where Redis answers it.
    let mut pair = Pair::start();
    let mut rng = Rng(0x2a_0000_0014);
    fill_mixed(&mut pair, 5_000);
    pair.same_str(&["SET", "str", "x"]);
    pair.same_str(&["ZADD", "small", "1", "a", "2", "b"]);
    pair.same_str(&["ZMPOP", "2", "str", "z", "MIN"]);
    pair.same_str(&["ZMPOP", "2", "z", "str", "MAX", "COUNT", "3"]);
    for _ in 0..200 {
        let end = rng.pick(&["MIN", "MAX"]);
        let count = (1 + rng.below(5)).to_string();
        pair.same_str(&["ZMPOP", "3", "nokey", "other", "z", end, "COUNT", &count]);
    }
    pair.same_str(&["BZMPOP", "0.01", "2", "nokey", "z", "MAX", "COUNT", "2"]);
    pair.same_str(&["ZMPOP", "2", "small", "z", "MIN", "COUNT", "5"]);
    pair.same_str(&["ZMPOP", "2", "nokey", "z", "MIN"]);
    pair.same_str(&["ZCARD", "z"]);
    pair.same_str(&["ZRANGE", "z", "0", "20", "WITHSCORES"]);
    pair.same_str(&["ZRANGE", "z", "-20", "-1", "WITHSCORES"]);
}
