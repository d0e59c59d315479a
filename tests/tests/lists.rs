//! List commands against a real redis-server: seeded random streams of
//! every list command must get byte-identical replies; then edge cases,
//! type checks, RESP3, and a queue of producers, movers and consumers on
//! several threads that must neither lose nor duplicate an element.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use citadel_tests::differential::{push_words as push, Pair, Rng};
use citadel_tests::Server;

const KEYS: &[&str] = &["l0", "l1", "l2", "s"];
const ELEMENTS: &[&str] = &["a", "b", "c", "d", "", "12", "a-longer-element"];

fn index(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => rng.int(100).to_string(),
        1 => rng.pick(&["x", "1.5", "", "-0"]).to_string(),
        _ => (rng.below(16) as i64 - 8).to_string(),
    }
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let other = rng.pick(KEYS).to_string();
    let element = rng.pick(ELEMENTS).to_string();
    let mut args: Vec<String> = Vec::new();
    match rng.below(100) {
        0..=19 => {
            let cmd = rng.pick(&["LPUSH", "RPUSH", "RPUSH", "LPUSH", "LPUSHX", "RPUSHX"]);
            push(&mut args, &[cmd, &key]);
            for _ in 0..rng.below(4) + 1 {
                args.push(rng.pick(ELEMENTS).to_string());
            }
        }
        20..=29 => {
            push(&mut args, &[rng.pick(&["LPOP", "RPOP"]), &key]);
            match rng.below(4) {
                0 => args.push(rng.pick(&["0", "1", "3", "100", "-1", "x"]).to_string()),
                1 => push(&mut args, &["1", "2"]),
                _ => {}
            }
        }
        30..=32 => push(&mut args, &["LLEN", &key]),
        33..=40 => push(&mut args, &["LRANGE", &key, &index(rng), &index(rng)]),
        41..=45 => push(&mut args, &["LINDEX", &key, &index(rng)]),
        46..=49 => push(&mut args, &["LSET", &key, &index(rng), &element]),
        50..=54 => {
            let side = rng.pick(&["BEFORE", "AFTER", "after", "middle"]);
            push(
                &mut args,
                &["LINSERT", &key, side, rng.pick(ELEMENTS), &element],
            );
        }
        55..=59 => push(&mut args, &["LREM", &key, &index(rng), &element]),
        60..=63 => push(&mut args, &["LTRIM", &key, &index(rng), &index(rng)]),
        64..=70 => {
            push(&mut args, &["LPOS", &key, &element]);
            for _ in 0..rng.below(3) {
                let option = rng.pick(&["RANK", "COUNT", "MAXLEN", "rank", "BAD"]);
                let value =
                    rng.pick(&["1", "2", "-1", "-2", "0", "3", "x", "-9223372036854775808"]);
                push(&mut args, &[option, value]);
            }
            if rng.below(15) == 0 {
                args.push("RANK".into());
            }
        }
        71..=77 => {
            let from = rng.pick(&["LEFT", "RIGHT", "left", "UP"]);
            let to = rng.pick(&["LEFT", "RIGHT", "right"]);
            push(&mut args, &["LMOVE", &key, &other, from, to]);
        }
        78..=81 => push(&mut args, &["RPOPLPUSH", &key, &other]),
        82..=87 => {
            let n = rng.below(3) + 1;
            push(&mut args, &["LMPOP", &n.to_string()]);
            for _ in 0..n {
                args.push(rng.pick(KEYS).to_string());
            }
            args.push(rng.pick(&["LEFT", "RIGHT", "MIDDLE"]).to_string());
            match rng.below(4) {
                0 => push(
                    &mut args,
                    &["COUNT", rng.pick(&["1", "2", "10", "0", "-1", "x"])],
                ),
                1 => push(&mut args, &["COUNT", "1", "COUNT", "2"]),
                _ => {}
            }
        }
        88 => push(
            &mut args,
            &["LMPOP", rng.pick(&["0", "-1", "x", "5"]), &key, "LEFT"],
        ),
        89 => push(&mut args, &["SET", "s", &element]),
        90..=91 => push(
            &mut args,
            &[rng.pick(&["GET", "STRLEN", "TYPE", "EXISTS"]), &key],
        ),
        92 => push(&mut args, &["OBJECT", "ENCODING", &key]),
        93 => push(&mut args, &["DEL", &key]),
        94 => push(&mut args, &["EXPIRE", &key, "1000"]),
        95 => push(&mut args, &["TTL", &key]),
        96 => push(&mut args, &["HSET", &key, "f", "v"]),
        _ => push(&mut args, &["LRANGE", &key, "0", "-1"]),
    }
    args
}

#[test]
fn random_list_commands_match_redis() {
    let mut pair = Pair::start();
    pair.random_streams(&[5, 13, 77], 3000, random_command, |pair| {
        for key in KEYS {
            pair.same_str(&["TYPE", key]);
            pair.same_str(&["LRANGE", key, "0", "-1"]);
        }
    });
}

/// The same streams with lists paged past two elements (pages of two):
/// every command meets the paged form, its growth and its shrinking.
#[test]
fn random_list_commands_match_redis_on_tiny_pages() {
    let mut pair = Pair::start_with(&["--list-max-listpack-size", "2"]);
    pair.random_streams(&[5, 21], 3000, random_command, |pair| {
        for key in KEYS {
            pair.same_str(&["TYPE", key]);
            pair.same_str(&["LRANGE", key, "0", "-1"]);
        }
    });
}

#[test]
fn list_edge_cases_match_redis() {
    let mut pair = Pair::start();
    let cases: &[&[&str]] = &[
        // Missing keys.
        &["LPOP", "none"],
        &["LPOP", "none", "0"],
        &["LPOP", "none", "2"],
        &["LPOP", "none", "-2"],
        &["RPOP", "none", "x"],
        &["LPOP", "none", "1", "2"],
        &["LLEN", "none"],
        &["LRANGE", "none", "0", "-1"],
        &["LRANGE", "none", "x", "-1"],
        &["LINDEX", "none", "x"],
        &["LSET", "none", "0", "v"],
        &["LSET", "none", "x", "v"],
        &["LINSERT", "none", "BEFORE", "a", "b"],
        &["LINSERT", "none", "NEAR", "a", "b"],
        &["LREM", "none", "0", "a"],
        &["LREM", "none", "x", "a"],
        &["LTRIM", "none", "0", "1"],
        &["LPOS", "none", "a"],
        &["LPOS", "none", "a", "COUNT", "0"],
        &["LPOS", "none", "a", "RANK", "0"],
        &["LMOVE", "none", "dst", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "none", "dst"],
        &["EXISTS", "dst"],
        &["LMPOP", "2", "none", "none2", "LEFT"],
        &["LMPOP", "1", "none", "LEFT", "COUNT"],
        &["LMPOP", "3", "none", "LEFT"],
        &["LPUSHX", "none", "a"],
        &["RPUSHX", "none", "a", "b"],
        &["EXISTS", "none"],
        // One list.
        &["RPUSH", "l", "a", "b", "c", "a", "b", "a"],
        &["LPOP", "l", "0"],
        &["LPOS", "l", "a", "RANK", "-2", "COUNT", "0"],
        &["LPOS", "l", "a", "RANK", "2", "MAXLEN", "3"],
        &["LPOS", "l", "a", "COUNT", "-1"],
        &["LPOS", "l", "a", "MAXLEN", "-1"],
        &["LPOS", "l", "a", "RANK", "-9223372036854775808"],
        &["LPOS", "l", "a", "RANK", "9223372036854775807"],
        &["LSET", "l", "6", "x"],
        &["LSET", "l", "-6", "x"],
        &["LSET", "l", "-7", "x"],
        &["LSET", "l", "x", "x"],
        &["LINDEX", "l", "-6"],
        &["LINDEX", "l", "-9223372036854775808"],
        &["LRANGE", "l", "-9223372036854775808", "9223372036854775807"],
        &["LINSERT", "l", "AFTER", "b", "after-b"],
        &["LINSERT", "l", "BEFORE", "zzz", "x"],
        &["LREM", "l", "-1", "a"],
        &["LRANGE", "l", "0", "-1"],
        &["LTRIM", "l", "2", "1"],
        &["EXISTS", "l"],
        // Moves: rotation, to a new list, onto a non-list.
        &["RPUSH", "r", "1", "2", "3"],
        &["LMOVE", "r", "r", "LEFT", "RIGHT"],
        &["RPOPLPUSH", "r", "r"],
        &["LRANGE", "r", "0", "-1"],
        &["SET", "str", "x"],
        &["LMOVE", "r", "str", "LEFT", "LEFT"],
        &["LMOVE", "str", "r", "LEFT", "LEFT"],
        &["LRANGE", "r", "0", "-1"],
        &["EXPIRE", "r", "1000"],
        &["LMOVE", "r", "new", "RIGHT", "LEFT"],
        &["TTL", "r"],
        &["TTL", "new"],
        &["LMPOP", "3", "none", "str", "r", "LEFT"],
        &["LMPOP", "2", "none", "r", "RIGHT", "COUNT", "10"],
        &["EXISTS", "r"],
        // Type checks both ways.
        &["LPUSH", "str", "a"],
        &["LLEN", "str"],
        &["LRANGE", "str", "0", "1"],
        &["RPUSH", "list", "1"],
        &["GET", "list"],
        &["INCR", "list"],
        &["APPEND", "list", "x"],
        &["HGET", "list", "f"],
        &["TYPE", "list"],
        &["OBJECT", "ENCODING", "list"],
        &["RENAME", "list", "list2"],
        &["COPY", "list2", "list3"],
        &["RPUSH", "list3", "2"],
        &["LRANGE", "list2", "0", "-1"],
        &["LRANGE", "list3", "0", "-1"],
        &["TYPE", "list3"],
        &["SCAN", "0", "TYPE", "list", "MATCH", "list3"],
        // Inside a transaction.
        &["MULTI"],
        &["RPUSH", "t", "a", "b", "c"],
        &["LMOVE", "t", "t2", "LEFT", "RIGHT"],
        &["LPUSH", "str", "x"],
        &["LMPOP", "2", "t", "t2", "RIGHT", "COUNT", "5"],
        &["LRANGE", "t2", "0", "-1"],
        &["EXEC"],
    ];
    for case in cases {
        pair.same_str(case);
    }
}

#[test]
fn resp3_replies_match_redis() {
    let mut pair = Pair::start();
    pair.both(0, &["HELLO", "3"]);
    for case in [
        &["LPOP", "none"][..],
        &["LPOP", "none", "2"],
        &["LMPOP", "1", "none", "LEFT"],
        &["LINDEX", "none", "0"],
        &["LPOS", "none", "a"],
        &["RPUSH", "l", "a", "b"],
        &["LPOP", "l", "0"],
        &["LPOP", "l", "5"],
        &["LMOVE", "none", "l", "LEFT", "LEFT"],
    ] {
        pair.same_str(case);
    }
}

/// Producers push unique elements onto q1, movers RPOPLPUSH them to q2,
/// consumers pop q2: every element arrives exactly once.
#[test]
fn queue_moves_lose_and_duplicate_nothing() {
    const PRODUCERS: usize = 3;
    const PER_PRODUCER: usize = 400;
    let server = Server::start(&[]);
    let done_producing = Arc::new(AtomicBool::new(false));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let mut con = server.client();
        producers.push(std::thread::spawn(move || {
            for i in 0..PER_PRODUCER {
                let _: i64 = redis::cmd("LPUSH")
                    .arg("q1")
                    .arg(format!("{p}:{i}"))
                    .query(&mut con)
                    .unwrap();
            }
        }));
    }
    let mut movers = Vec::new();
    for _ in 0..2 {
        let mut con = server.client();
        let done = done_producing.clone();
        movers.push(std::thread::spawn(move || {
            for n in 0u64.. {
                // Alternate the two spellings of the same move.
                let mut cmd = redis::cmd(if n % 2 == 0 { "LMOVE" } else { "RPOPLPUSH" });
                cmd.arg("q1").arg("q2");
                if n % 2 == 0 {
                    cmd.arg("RIGHT").arg("LEFT");
                }
                let moved: Option<String> = cmd.query(&mut con).unwrap();
                // Producers finished before this empty read: q1 stays empty.
                if moved.is_none() && done.load(Ordering::SeqCst) {
                    let left: i64 = redis::cmd("LLEN").arg("q1").query(&mut con).unwrap();
                    if left == 0 {
                        return;
                    }
                }
            }
        }));
    }
    let mut consumers = Vec::new();
    let done_moving = Arc::new(AtomicBool::new(false));
    for _ in 0..2 {
        let mut con = server.client();
        let done = done_moving.clone();
        consumers.push(std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let finished = done.load(Ordering::SeqCst);
                let popped: Option<Vec<String>> =
                    redis::cmd("RPOP").arg("q2").arg(3).query(&mut con).unwrap();
                match popped {
                    Some(elements) => got.extend(elements),
                    None if finished => return got,
                    None => std::thread::yield_now(),
                }
            }
        }));
    }
    for p in producers {
        p.join().unwrap();
    }
    done_producing.store(true, Ordering::SeqCst);
    for m in movers {
        m.join().unwrap();
    }
    done_moving.store(true, Ordering::SeqCst);
    let mut seen = HashSet::new();
    let mut total = 0;
    for c in consumers {
        for element in c.join().unwrap() {
            assert!(seen.insert(element.clone()), "{element} delivered twice");
            total += 1;
        }
    }
    assert_eq!(total, PRODUCERS * PER_PRODUCER, "elements lost");
    let mut con = server.client();
    let exists: i64 = redis::cmd("EXISTS")
        .arg("q1")
        .arg("q2")
        .query(&mut con)
        .unwrap();
    assert_eq!(exists, 0, "emptied lists are deleted");
}
