//! Big lists (thousands of elements: the paged form, a root and pages)
//! against a real redis-server: every list command, byte for byte, on
//! lists of 5,000 to 20,000 elements, plain, inside MULTI/EXEC and inside
//! a Lua script; then RENAME, COPY, DUMP + RESTORE and SORT ... STORE of
//! a big list, CONFIG SET list-max-listpack-size live, and the unused
//! room a paged list keeps as it grows (MEMORY USAGE).

use citadel_tests::differential::{push_words as push, Pair, Rng};
use citadel_tests::reference::encode_command;
use citadel_tests::RespReader;

const KEYS: &[&str] = &["big0", "big1"];

/// Fills each key with `n` numbered elements (some pushed at the head).
fn fill(pair: &mut Pair, n: usize) {
    for (k, key) in KEYS.iter().enumerate() {
        for batch in 0..n / 500 {
            let cmd = if batch % 3 == 0 { "LPUSH" } else { "RPUSH" };
            let mut args = vec![cmd.to_string(), key.to_string()];
            args.extend((0..500).map(|i| format!("{k}-{batch}-{i}")));
            pair.same_strings(&args);
        }
    }
}

fn index(rng: &mut Rng, len: i64) -> String {
    match rng.below(6) {
        0 => (-(rng.below(len as u64 + 5) as i64)).to_string(),
        1 => rng.int(100).to_string(),
        _ => rng.below(len as u64 + 5).to_string(),
    }
}

/// A command on the big lists (mostly O(1) or O(window) ones).
fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let other = rng.pick(KEYS).to_string();
    let element = format!("e{}", rng.below(50));
    let mut args = Vec::new();
    let len = 20_000;
    match rng.below(100) {
        0..=19 => {
            push(
                &mut args,
                &[rng.pick(&["LPUSH", "RPUSH", "LPUSHX", "RPUSHX"]), &key],
            );
            for _ in 0..rng.below(200) + 1 {
                args.push(format!("p{}", rng.below(1000)));
            }
        }
        20..=31 => {
            push(&mut args, &[rng.pick(&["LPOP", "RPOP"]), &key]);
            if rng.below(2) == 0 {
                args.push(rng.pick(&["1", "7", "130", "300", "0"]).to_string());
            }
        }
        32..=35 => push(&mut args, &["LLEN", &key]),
        36..=45 => {
            let start = index(rng, len);
            let width = rng.below(700) as i64;
            let stop = match start.parse::<i64>() {
                Ok(s) if s >= 0 => (s + width).to_string(),
                _ => index(rng, len),
            };
            push(&mut args, &["LRANGE", &key, &start, &stop]);
        }
        46..=53 => push(&mut args, &["LINDEX", &key, &index(rng, len)]),
        54..=59 => push(&mut args, &["LSET", &key, &index(rng, len), &element]),
        60..=65 => {
            let from = rng.pick(&["LEFT", "RIGHT"]);
            let to = rng.pick(&["LEFT", "RIGHT"]);
            push(&mut args, &["LMOVE", &key, &other, from, to]);
        }
        66..=68 => push(&mut args, &["RPOPLPUSH", &key, &other]),
        69..=72 => {
            let count = rng.pick(&["1", "50", "200"]);
            let end = rng.pick(&["LEFT", "RIGHT"]);
            push(
                &mut args,
                &["LMPOP", "2", &key, &other, end, "COUNT", count],
            );
        }
        73..=75 => push(
            &mut args,
            &[rng.pick(&["BLPOP", "BRPOP"]), &key, &other, "0.01"],
        ),
        76..=77 => {
            let from = rng.pick(&["LEFT", "RIGHT"]);
            push(&mut args, &["BLMOVE", &key, &other, from, "LEFT", "0.01"]);
        }
        78 => push(&mut args, &["BRPOPLPUSH", &key, &other, "0.01"]),
        79 => push(
            &mut args,
            &["BLMPOP", "0.01", "1", &key, "RIGHT", "COUNT", "3"],
        ),
        80..=82 => {
            push(
                &mut args,
                &["LPOS", &key, &element, "RANK", rng.pick(&["1", "-1", "2"])],
            );
            if rng.below(2) == 0 {
                push(&mut args, &["COUNT", "0", "MAXLEN", "3000"]);
            }
        }
        83..=84 => {
            let side = rng.pick(&["BEFORE", "AFTER"]);
            push(&mut args, &["LINSERT", &key, side, &element, "ins"]);
        }
        85..=86 => push(
            &mut args,
            &["LREM", &key, rng.pick(&["1", "-2", "0"]), &element],
        ),
        87..=88 => {
            // Trim a little off either end (or much, rarely).
            let most = if rng.below(10) == 0 { 3000 } else { 300 };
            let start = rng.below(most);
            let stop = -(rng.below(300) as i64) - 1;
            push(
                &mut args,
                &["LTRIM", &key, &start.to_string(), &stop.to_string()],
            );
        }
        89 => push(&mut args, &["OBJECT", "ENCODING", &key]),
        90 => push(&mut args, &["TYPE", &key]),
        _ => push(&mut args, &["LRANGE", &key, "-5", "-1"]),
    }
    args
}

fn check(pair: &mut Pair) {
    for key in KEYS {
        pair.same_str(&["LLEN", key]);
        pair.same_str(&["LRANGE", key, "0", "-1"]);
    }
}

#[test]
fn big_list_commands_match_redis() {
    let mut pair = Pair::start();
    for seed in [3, 8] {
        fill(&mut pair, 10_000);
        let mut rng = Rng(0x51ed ^ seed);
        for _ in 0..1500 {
            pair.same_strings(&random_command(&mut rng));
        }
        check(&mut pair);
        pair.same_str(&["FLUSHALL"]);
    }
}

#[test]
fn big_lists_in_transactions_and_scripts_match_redis() {
    let mut pair = Pair::start();
    fill(&mut pair, 20_000);
    let mut rng = Rng(77);
    for round in 0..20 {
        pair.same_str(&["MULTI"]);
        for _ in 0..8 {
            pair.same_strings(&random_command(&mut rng));
        }
        pair.same_str(&["EXEC"]);
        let script = "local a = redis.call('LPUSH', KEYS[1], ARGV[1]) \
             local b = redis.call('RPOP', KEYS[2], 3) \
             local c = redis.call('LINDEX', KEYS[1], 9000) \
             redis.call('LSET', KEYS[2], -4000, ARGV[1]) \
             local d = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') \
             local e = redis.call('BLPOP', KEYS[2], 0) \
             local f = redis.call('LRANGE', KEYS[1], 4990, 5010) \
             return {a, b, c, d, e, f, redis.call('LLEN', KEYS[2])}";
        let arg = format!("s{round}");
        pair.same_str(&["EVAL", script, "2", "big0", "big1", &arg]);
    }
    check(&mut pair);
}

#[test]
fn big_lists_rename_copy_dump_restore_sort_match_redis() {
    let mut pair = Pair::start();
    fill(&mut pair, 10_000);
    pair.same_str(&["EXPIRE", "big0", "1000"]);
    pair.same_str(&["RENAME", "big0", "moved"]);
    pair.same_str(&["TTL", "moved"]);
    pair.same_str(&["EXISTS", "big0"]);
    pair.same_str(&["COPY", "moved", "copied"]);
    pair.same_str(&["RPOP", "moved", "5"]);
    pair.same_str(&["LPUSH", "copied", "x"]);
    pair.same_str(&["COPY", "copied", "big1"]);
    pair.same_str(&["COPY", "copied", "big1", "REPLACE"]);
    pair.same_str(&["RENAMENX", "copied", "big1"]);
    for key in ["moved", "copied", "big1"] {
        pair.same_str(&["LLEN", key]);
        pair.same_str(&["LRANGE", key, "0", "-1"]);
        pair.same_str(&["LINDEX", key, "7777"]);
    }
    // Each server restores its own dump, and the other's (the payload
    // bytes may differ; the values may not).
    for key in ["moved", "copied"] {
        let from_redis = dump(RespReader::new(pair.redis.raw()), key);
        let from_citadel = dump(RespReader::new(pair.citadel.raw()), key);
        for (to, redis_payload, citadel_payload) in [
            ("own", &from_redis, &from_citadel),
            ("other", &from_citadel, &from_redis),
        ] {
            restore(RespReader::new(pair.redis.raw()), to, redis_payload);
            restore(RespReader::new(pair.citadel.raw()), to, citadel_payload);
            pair.same_str(&["LRANGE", to, "0", "-1"]);
            pair.same_str(&["LPOP", to, "3"]);
            pair.same_str(&["DEL", to]);
        }
    }
    pair.same_str(&["SORT", "big1", "BY", "nosort", "STORE", "sorted"]);
    pair.same_str(&["LRANGE", "sorted", "9990", "-1"]);
    pair.same_str(&["SORT", "big1", "ALPHA", "LIMIT", "100", "10"]);
    pair.same_str(&["OBJECT", "ENCODING", "sorted"]);
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("big1")
        .query(&mut pair.citadel.client())
        .unwrap();
    assert!(usage > 50_000, "MEMORY USAGE counts the pages: {usage}");
}

#[test]
fn list_max_listpack_size_is_live() {
    let mut pair = Pair::start();
    pair.both(0, &["CONFIG", "SET", "list-max-listpack-size", "4"]);
    pair.same_str(&["CONFIG", "GET", "list-max-listpack-size"]);
    let mut rng = Rng(5);
    fill(&mut pair, 1000);
    for _ in 0..300 {
        pair.same_strings(&random_command(&mut rng));
    }
    check(&mut pair);
    pair.both(0, &["CONFIG", "SET", "list-max-listpack-size", "-3"]);
    for _ in 0..300 {
        pair.same_strings(&random_command(&mut rng));
    }
    check(&mut pair);
}

/// DUMP `key`'s payload.
fn dump(mut conn: RespReader, key: &str) -> Vec<u8> {
    conn.send(&encode_command(&[b"DUMP", key.as_bytes()]));
    let reply = conn.raw_reply().expect("a reply");
    assert_eq!(reply[0], b'$', "DUMP {key}");
    let body = reply.iter().position(|&b| b == b'\n').expect("a bulk") + 1;
    reply[body..reply.len() - 2].to_vec()
}

/// RESTORE `key` from `payload`.
fn restore(mut conn: RespReader, key: &str, payload: &[u8]) {
    conn.send(&encode_command(&[
        b"RESTORE",
        key.as_bytes(),
        b"0",
        payload,
    ]));
    assert_eq!(
        conn.raw_reply().expect("a reply"),
        b"+OK\r\n",
        "RESTORE {key}"
    );
}

/// Pushers on several connections (the server's threads on different
/// cores) append unique elements to one big list while poppers take from
/// its head: every element is popped or left, exactly once.
#[test]
fn concurrent_pushes_and_pops_on_a_big_list_lose_and_duplicate_nothing() {
    const PUSHERS: usize = 3;
    const BATCHES: usize = 200;
    const BATCH: usize = 25;
    let server = citadel_tests::Server::start(&[]);
    let pushers: Vec<_> = (0..PUSHERS)
        .map(|p| {
            let mut con = server.client();
            std::thread::spawn(move || {
                for b in 0..BATCHES {
                    let batch: Vec<String> = (0..BATCH).map(|i| format!("{p}:{b}:{i}")).collect();
                    let _: i64 = redis::cmd(if b % 2 == 0 { "RPUSH" } else { "LPUSH" })
                        .arg("shared")
                        .arg(batch)
                        .query(&mut con)
                        .unwrap();
                }
            })
        })
        .collect();
    let poppers: Vec<_> = (0..2)
        .map(|_| {
            let mut con = server.client();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for n in 0..400 {
                    let cmd = if n % 2 == 0 { "LPOP" } else { "RPOP" };
                    let popped: Option<Vec<String>> = redis::cmd(cmd)
                        .arg("shared")
                        .arg(7)
                        .query(&mut con)
                        .unwrap();
                    got.extend(popped.unwrap_or_default());
                }
                got
            })
        })
        .collect();
    pushers.into_iter().for_each(|p| p.join().unwrap());
    let mut all: Vec<String> = poppers
        .into_iter()
        .flat_map(|p| p.join().unwrap())
        .collect();
    let left: Vec<String> = redis::cmd("LRANGE")
        .arg("shared")
        .arg(0)
        .arg(-1)
        .query(&mut server.client())
        .unwrap();
    all.extend(left);
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), total, "an element came out twice");
    assert_eq!(total, PUSHERS * BATCHES * BATCH, "elements lost");
}

/// A list pushed one element at a time keeps little unused room in its
/// root: the room left below each end's front grows with the list (a
/// share of its bytes), so a short paged list is about Redis's size and
/// a long one smaller (MEMORY USAGE, 3-byte elements).
#[test]
fn a_paged_lists_unused_room_grows_with_it() {
    let pair = Pair::start();
    let url = format!("redis://127.0.0.1:{}/", pair.redis.port);
    let mut redis = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut citadel = pair.citadel.client();
    for n in [300, 1_000, 10_000] {
        let key = format!("grown{n}");
        let mut usage = [0i64; 2];
        for (i, conn) in [&mut redis, &mut citadel].into_iter().enumerate() {
            let mut pipe = redis::pipe();
            for _ in 0..n {
                pipe.cmd("RPUSH").arg(&key).arg("abc").ignore();
            }
            pipe.query::<()>(conn).unwrap();
            usage[i] = redis::cmd("MEMORY")
                .arg("USAGE")
                .arg(&key)
                .query(conn)
                .unwrap();
        }
        let [redis_bytes, citadel_bytes] = usage;
        assert!(
            citadel_bytes * 4 <= redis_bytes * 5,
            "{n} elements: {citadel_bytes} bytes, Redis {redis_bytes}"
        );
    }
}
