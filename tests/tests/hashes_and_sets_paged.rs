//! Hashes and sets well past the paging threshold (thousands of entries:
//! the paged form, `citadel_collections::linear_hash`) against a real
//! redis-server: seeded random streams of every hash and set command, with
//! replies compared exactly (as sets for the commands whose order Redis
//! leaves to its hash table), inside MULTI/EXEC and a Lua script too; full
//! HSCAN/SSCAN walks; random picks checked by their properties; then many
//! clients writing one big hash and one big set at once lose nothing.

use std::collections::HashSet;

use citadel_tests::differential::Rng;
use citadel_tests::redis::{self, Value};
use citadel_tests::reference::RedisServer;
use citadel_tests::Server;

/// Replies to commands whose order is Redis's hash order: compared sorted.
const UNORDERED: &[&str] = &[
    "HGETALL", "HKEYS", "HVALS", "SMEMBERS", "SINTER", "SUNION", "SDIFF", "EXEC",
];

struct Both {
    redis: redis::Connection,
    citadel: redis::Connection,
}

/// `value` with the items of unordered replies sorted (HGETALL's pairs
/// kept together), recursively for EXEC.
fn normal(name: &str, value: Value) -> Value {
    let Value::Array(items) = value else {
        return value;
    };
    if !UNORDERED.contains(&name) {
        return Value::Array(items);
    }
    if name == "EXEC" {
        return Value::Array(items.into_iter().map(|v| normal("SMEMBERS", v)).collect());
    }
    let width = if name == "HGETALL" { 2 } else { 1 };
    let mut chunks: Vec<Vec<Value>> = items.chunks(width).map(<[Value]>::to_vec).collect();
    chunks.sort_by_key(|c| format!("{c:?}"));
    Value::Array(chunks.into_iter().flatten().collect())
}

impl Both {
    fn start(redis: &RedisServer, citadel: &Server) -> Both {
        let url = format!("redis://127.0.0.1:{}", redis.port);
        Both {
            redis: redis::Client::open(url).unwrap().get_connection().unwrap(),
            citadel: citadel.client(),
        }
    }

    /// Runs `args` on both; the replies (normalized) must be equal.
    fn same(&mut self, args: &[String]) -> Value {
        let cmd = || {
            let mut cmd = redis::cmd(&args[0]);
            args[1..].iter().for_each(|a| {
                cmd.arg(a);
            });
            cmd
        };
        let reply = |r: redis::RedisResult<Value>| match r {
            Ok(v) => normal(&args[0].to_uppercase(), v),
            Err(e) => Value::SimpleString(format!("error {e}")),
        };
        let want = reply(cmd().query(&mut self.redis));
        let got = reply(cmd().query(&mut self.citadel));
        assert_eq!(got, want, "reply to {:?}", &args[..args.len().min(6)]);
        want
    }

    fn same_str(&mut self, args: &[&str]) -> Value {
        self.same(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }
}

fn words(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Fills `key` with `n` fields (hash) or members (set) in batches.
fn fill(both: &mut Both, command: &str, key: &str, prefix: &str, n: usize) {
    for start in (0..n).step_by(1000) {
        let mut args = words(&[command, key]);
        for i in start..(start + 1000).min(n) {
            args.push(format!("{prefix}{i}"));
            if command == "HSET" {
                args.push(format!("value-{i}"));
            }
        }
        both.same(&args);
    }
}

fn hash_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(&["h", "h", "h2", "small"]).to_string();
    let field = |rng: &mut Rng| format!("f{}", rng.below(15_000));
    let mut args;
    match rng.below(100) {
        0..=19 => {
            args = words(&[rng.pick(&["HSET", "HMSET"]), &key]);
            for _ in 0..rng.below(3) + 1 {
                args.push(field(rng));
                args.push(format!("v{}", rng.below(1000)));
            }
        }
        20..=24 => args = words(&["HSETNX", &key, &field(rng), "nx"]),
        25..=39 => args = words(&["HGET", &key, &field(rng)]),
        40..=44 => {
            args = words(&["HMGET", &key]);
            (0..rng.below(4) + 1).for_each(|_| args.push(field(rng)));
        }
        45..=59 => {
            args = words(&["HDEL", &key]);
            (0..rng.below(3) + 1).for_each(|_| args.push(field(rng)));
        }
        60..=63 => args = words(&["HLEN", &key]),
        64..=67 => args = words(&["HEXISTS", &key, &field(rng)]),
        68..=71 => args = words(&["HSTRLEN", &key, &field(rng)]),
        72..=83 => {
            let counter = format!("c{}", rng.below(40));
            args = words(&["HINCRBY", &key, &counter, &rng.int(1000).to_string()]);
        }
        84..=89 => {
            let counter = format!("g{}", rng.below(4));
            let by = rng.pick(&["1.5", "-0.25", "3", "0.125"]);
            args = words(&["HINCRBYFLOAT", &key, &counter, by]);
        }
        90..=92 => args = words(&["HINCRBY", &key, &field(rng), "1"]),
        93 => args = words(&[rng.pick(&["HGETALL", "HKEYS", "HVALS"]), &key]),
        94..=95 => args = words(&["HRANDFIELD", &key, "0"]),
        _ => args = words(&["EXISTS", &key]),
    }
    args
}

/// Every field an HSCAN walk returns (MATCH `pattern`, COUNT `count`).
fn hscan_all(
    con: &mut redis::Connection,
    key: &str,
    pattern: &str,
    count: usize,
) -> HashSet<String> {
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("HSCAN")
            .arg(key)
            .arg(&cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count)
            .query(con)
            .unwrap();
        seen.extend(items.chunks(2).map(|p| p[0].clone()));
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
}

#[test]
fn big_hashes_match_redis() {
    let (redis, citadel) = (RedisServer::start(), Server::start(&[]));
    let mut both = Both::start(&redis, &citadel);
    fill(&mut both, "HSET", "h", "f", 12_000);
    fill(&mut both, "HSET", "h2", "f", 6_000);
    both.same_str(&["HSET", "small", "a", "1"]);
    let mut rng = Rng(0x5eed_0001);
    for _ in 0..3_000 {
        both.same(&hash_command(&mut rng));
    }
    for key in ["h", "h2", "small"] {
        both.same_str(&["HGETALL", key]);
        both.same_str(&["HLEN", key]);
        let all: HashSet<String> = redis::cmd("HKEYS").arg(key).query(&mut both.redis).unwrap();
        assert_eq!(
            hscan_all(&mut both.citadel, key, "*", 100),
            all,
            "HSCAN {key}"
        );
        let ones: HashSet<String> = all
            .iter()
            .filter(|f| f.starts_with("f1"))
            .cloned()
            .collect();
        assert_eq!(
            hscan_all(&mut both.citadel, key, "f1*", 7),
            ones,
            "HSCAN MATCH {key}"
        );
    }
    // Random picks: distinct, present, as many as asked.
    let picked: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(50)
        .query(&mut both.citadel)
        .unwrap();
    let distinct: HashSet<&String> = picked.iter().collect();
    assert_eq!(distinct.len(), 50);
    for field in &picked {
        both.same_str(&["HEXISTS", "h", field]);
    }
    let repeats: Vec<String> = redis::cmd("HRANDFIELD")
        .arg("h")
        .arg(-300)
        .query(&mut both.citadel)
        .unwrap();
    assert_eq!(repeats.len(), 300);
    // MULTI/EXEC and a script over the paged hash.
    for args in [
        &["MULTI"][..],
        &["HSET", "h", "f1", "multi", "new-field", "x"],
        &["HINCRBY", "h", "c1", "5"],
        &["HDEL", "h", "f2", "f3", "nope"],
        &["HMGET", "h", "f1", "f2", "new-field"],
        &["HLEN", "h"],
        &["EXEC"],
    ] {
        both.same_str(args);
    }
    let script = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) \
                  redis.call('HINCRBY', KEYS[1], 'c2', 7) \
                  redis.call('HDEL', KEYS[1], 'f4') \
                  return {redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HLEN', KEYS[1]), redis.call('HGET', KEYS[1], 'c2')}";
    both.same_str(&["EVAL", script, "1", "h", "f10", "scripted"]);
    // Shrink to nothing: pages merge back, the key goes.
    for start in (0..15_000).step_by(700) {
        let mut args = words(&["HDEL", "h"]);
        args.extend((start..start + 700).map(|i| format!("f{i}")));
        both.same(&args);
        both.same_str(&["HLEN", "h"]);
    }
    both.same_str(&["HGETALL", "h"]);
    let mut args = words(&["HDEL", "h", "new-field"]);
    args.extend((0..40).map(|i| format!("c{i}")));
    args.extend((0..4).map(|i| format!("g{i}")));
    both.same(&args);
    both.same_str(&["EXISTS", "h"]);
}

fn set_command(rng: &mut Rng) -> Vec<String> {
    let keys = ["s", "s", "t", "small"];
    let key = rng.pick(&keys).to_string();
    let member = |rng: &mut Rng| match rng.below(4) {
        0 => rng.below(30_000).to_string(),
        _ => format!("m{}", rng.below(15_000)),
    };
    let mut args;
    match rng.below(100) {
        0..=24 => {
            args = words(&["SADD", &key]);
            (0..rng.below(3) + 1).for_each(|_| args.push(member(rng)));
        }
        25..=44 => {
            args = words(&["SREM", &key]);
            (0..rng.below(3) + 1).for_each(|_| args.push(member(rng)));
        }
        45..=64 => args = words(&["SISMEMBER", &key, &member(rng)]),
        65..=72 => {
            args = words(&["SMISMEMBER", &key]);
            (0..rng.below(5) + 1).for_each(|_| args.push(member(rng)));
        }
        73..=78 => args = words(&["SCARD", &key]),
        79..=90 => {
            let to = rng.pick(&keys).to_string();
            args = words(&["SMOVE", &key, &to, &member(rng)]);
        }
        91 => args = words(&[rng.pick(&["SINTER", "SUNION", "SDIFF"]), "s", "t"]),
        92 => args = words(&["SINTERCARD", "2", "s", "t", "LIMIT", "100"]),
        93 => args = words(&["SRANDMEMBER", &key, "0"]),
        _ => args = words(&["EXISTS", &key]),
    }
    args
}

/// Every member an SSCAN walk returns.
fn sscan_all(con: &mut redis::Connection, key: &str, count: usize) -> HashSet<String> {
    let mut cursor = "0".to_string();
    let mut seen = HashSet::new();
    loop {
        let (next, items): (String, Vec<String>) = redis::cmd("SSCAN")
            .arg(key)
            .arg(&cursor)
            .arg("COUNT")
            .arg(count)
            .query(con)
            .unwrap();
        seen.extend(items);
        if next == "0" {
            return seen;
        }
        cursor = next;
    }
}

#[test]
fn big_sets_match_redis() {
    let (redis, citadel) = (RedisServer::start(), Server::start(&[]));
    let mut both = Both::start(&redis, &citadel);
    fill(&mut both, "SADD", "s", "m", 12_000);
    fill(&mut both, "SADD", "t", "m", 6_000);
    fill(&mut both, "SADD", "t", "", 3_000);
    both.same_str(&["SADD", "small", "1", "2"]);
    let mut rng = Rng(0x5eed_0002);
    for _ in 0..3_000 {
        both.same(&set_command(&mut rng));
    }
    for key in ["s", "t", "small"] {
        both.same_str(&["SMEMBERS", key]);
        both.same_str(&["SCARD", key]);
        let all: HashSet<String> = redis::cmd("SMEMBERS")
            .arg(key)
            .query(&mut both.redis)
            .unwrap();
        assert_eq!(sscan_all(&mut both.citadel, key, 50), all, "SSCAN {key}");
    }
    for op in ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"] {
        both.same_str(&[op, "dest", "s", "t"]);
        both.same_str(&["SMEMBERS", "dest"]);
        both.same_str(&["SADD", "dest", "extra", "m1"]);
        both.same_str(&["SCARD", "dest"]);
    }
    // SPOP: what Citadel pops, Redis removes; the sets stay equal.
    for count in [1, 10, 700] {
        let popped: Vec<String> = redis::cmd("SPOP")
            .arg("s")
            .arg(count)
            .query(&mut both.citadel)
            .unwrap();
        assert_eq!(popped.iter().collect::<HashSet<_>>().len(), count);
        let mut args = words(&["SREM", "s"]);
        args.extend(popped);
        let removed: usize = redis::cmd("SREM")
            .arg(&args[1..])
            .query(&mut both.redis)
            .unwrap();
        assert_eq!(removed, count, "Redis had every popped member");
        let again: usize = redis::cmd("SREM")
            .arg(&args[1..])
            .query(&mut both.citadel)
            .unwrap();
        assert_eq!(again, 0, "popped members are gone");
        both.same_str(&["SCARD", "s"]);
    }
    let picked: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg("s")
        .arg(40)
        .query(&mut both.citadel)
        .unwrap();
    assert_eq!(picked.iter().collect::<HashSet<_>>().len(), 40);
    let mut args = words(&["SMISMEMBER", "s"]);
    args.extend(picked);
    both.same(&args);
    let repeats: Vec<String> = redis::cmd("SRANDMEMBER")
        .arg("s")
        .arg(-500)
        .query(&mut both.citadel)
        .unwrap();
    assert_eq!(repeats.len(), 500);
    for args in [
        &["MULTI"][..],
        &["SADD", "s", "multi-1", "multi-2", "m5"],
        &["SREM", "s", "m6", "m7"],
        &["SMOVE", "s", "t", "multi-1"],
        &["SISMEMBER", "t", "multi-1"],
        &["SCARD", "s"],
        &["EXEC"],
    ] {
        both.same_str(args);
    }
    let script = "redis.call('SADD', KEYS[1], ARGV[1]) redis.call('SREM', KEYS[1], 'm8') \
                  return {redis.call('SISMEMBER', KEYS[1], ARGV[1]), redis.call('SCARD', KEYS[1])}";
    both.same_str(&["EVAL", script, "1", "s", "scripted"]);
    // Popping everything deletes the key, as SREM of everything does.
    let all: Vec<String> = redis::cmd("SPOP")
        .arg("s")
        .arg(100_000)
        .query(&mut both.citadel)
        .unwrap();
    let removed: usize = redis::cmd("SREM")
        .arg("s")
        .arg(&all)
        .query(&mut both.redis)
        .unwrap();
    assert_eq!(removed, all.len());
    both.same_str(&["EXISTS", "s"]);
    for start in (0..30_000).step_by(1_000) {
        let mut args = words(&["SREM", "t"]);
        args.extend((start..start + 1_000).map(|i| i.to_string()));
        args.extend((start..start + 1_000).map(|i| format!("m{i}")));
        both.same(&args);
    }
    both.same_str(&["SMEMBERS", "t"]);
    both.same_str(&["EXISTS", "t"]);
}

#[test]
fn many_clients_on_one_big_hash_and_set_lose_nothing() {
    const CLIENTS: usize = 8;
    const EACH: usize = 600;
    let citadel = Server::start(&[]);
    let mut con = citadel.client();
    for start in (0..5_000).step_by(1_000) {
        let mut hset = redis::cmd("HSET");
        let mut sadd = redis::cmd("SADD");
        hset.arg("bigh");
        sadd.arg("bigs");
        for i in start..start + 1_000 {
            hset.arg(format!("f{i}")).arg(0);
            sadd.arg(format!("base{i}"));
        }
        let _: usize = hset.query(&mut con).unwrap();
        let _: usize = sadd.query(&mut con).unwrap();
    }
    std::thread::scope(|scope| {
        for client in 0..CLIENTS {
            let mut con = citadel.client();
            scope.spawn(move || {
                let mut rng = Rng(client as u64 + 1);
                for i in 0..EACH {
                    let field = format!("f{}", rng.below(6_000));
                    let _: i64 = redis::cmd("HINCRBY")
                        .arg("bigh")
                        .arg(&field)
                        .arg(1)
                        .query(&mut con)
                        .unwrap();
                    let member = format!("c{client}-{i}");
                    let added: usize = redis::cmd("SADD")
                        .arg("bigs")
                        .arg(&member)
                        .query(&mut con)
                        .unwrap();
                    assert_eq!(added, 1);
                }
            });
        }
    });
    let values: Vec<i64> = redis::cmd("HVALS").arg("bigh").query(&mut con).unwrap();
    assert_eq!(
        values.iter().sum::<i64>(),
        (CLIENTS * EACH) as i64,
        "an increment was lost"
    );
    let count: usize = redis::cmd("SCARD").arg("bigs").query(&mut con).unwrap();
    assert_eq!(count, 5_000 + CLIENTS * EACH, "an SADD was lost");
    let members: HashSet<String> = redis::cmd("SMEMBERS").arg("bigs").query(&mut con).unwrap();
    assert_eq!(members.len(), count);
}

/// A writer on one connection sets 40 fields of a paged hash (5,000
/// fields: the 40 lie on different pages) to the same round number in one
/// HSET, round after round, while readers on other connections (other
/// cores) HMGET the 40 and SMISMEMBER a paged set written the same way:
/// a read is never half of one write and half of another. Such reads copy
/// their pages without locks and stand only if the root did not move
/// meanwhile (`linear/unlocked.rs`).
#[test]
fn reads_of_a_big_hash_never_see_half_a_write() {
    const FIELDS: usize = 40;
    const ROUNDS: usize = 400;
    let server = Server::start(&[]);
    let mut con = server.client();
    for start in (0..5_000).step_by(1_000) {
        let mut hset = redis::cmd("HSET");
        let mut sadd = redis::cmd("SADD");
        hset.arg("board");
        sadd.arg("members");
        for i in start..start + 1_000 {
            hset.arg(format!("f{i}")).arg(0);
            sadd.arg(format!("m{i}"));
        }
        let _: i64 = hset.query(&mut con).unwrap();
        let _: i64 = sadd.query(&mut con).unwrap();
    }
    let field = |k: usize| format!("f{}", k * 97);
    let writer = {
        let mut con = server.client();
        std::thread::spawn(move || {
            for round in 1..=ROUNDS {
                let mut hset = redis::cmd("HSET");
                hset.arg("board");
                for k in 0..FIELDS {
                    hset.arg(field(k)).arg(round);
                }
                let _: i64 = hset.query(&mut con).unwrap();
                // Round r: the members x{r}-{k} in, round r-1's out.
                let mut pipe = redis::pipe();
                pipe.atomic();
                let added: Vec<String> = (0..FIELDS).map(|k| format!("x{round}-{k}")).collect();
                let gone: Vec<String> =
                    (0..FIELDS).map(|k| format!("x{}-{k}", round - 1)).collect();
                pipe.cmd("SADD").arg("members").arg(&added).ignore();
                pipe.cmd("SREM").arg("members").arg(&gone).ignore();
                let () = pipe.query(&mut con).unwrap();
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let mut con = server.client();
            std::thread::spawn(move || {
                for _ in 0..ROUNDS {
                    let mut hmget = redis::cmd("HMGET");
                    hmget.arg("board");
                    for k in 0..FIELDS {
                        hmget.arg(field(k));
                    }
                    let values: Vec<u64> = hmget.query(&mut con).unwrap();
                    assert!(
                        values.iter().all(|v| *v == values[0]),
                        "a torn HMGET: {values:?}"
                    );
                    let round = values[0];
                    let probe: Vec<String> = (0..FIELDS).map(|k| format!("x{round}-{k}")).collect();
                    let found: Vec<u8> = redis::cmd("SMISMEMBER")
                        .arg("members")
                        .arg(&probe)
                        .query(&mut con)
                        .unwrap();
                    // (The set may be a round or more ahead: all or none.)
                    assert!(
                        found.iter().all(|f| *f == found[0]),
                        "a torn SMISMEMBER: {found:?}"
                    );
                }
            })
        })
        .collect();
    writer.join().unwrap();
    readers.into_iter().for_each(|r| r.join().unwrap());
}
