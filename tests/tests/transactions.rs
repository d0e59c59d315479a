//! MULTI / EXEC / DISCARD / WATCH / UNWATCH against a real redis-server
//! (byte-identical replies, RESP2 and RESP3, fixed cases and seeded random
//! streams over two connections, so one connection's writes abort the
//! other's WATCH), then concurrency on Citadel alone: clients on every core
//! move money between accounts with WATCH/MULTI/EXEC and with plain
//! MULTI/EXEC; the total never changes and no update is lost.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use citadel_tests::differential::{Pair, Rng};
use citadel_tests::reference::encode_command;
use citadel_tests::{RespReader, Server};

fn run_cases(pair: &mut Pair, cases: &[&[&str]]) {
    for case in cases {
        pair.same_str(case);
    }
}

#[test]
fn queuing_errors_and_nesting_match_redis() {
    let mut pair = Pair::start();
    for proto in ["2", "3"] {
        pair.both(0, &["HELLO", proto]);
        run_cases(
            &mut pair,
            &[
                &["EXEC"],
                &["DISCARD"],
                &["MULTI"],
                &["MULTI"],
                &["WATCH", "a"],
                &["SET", "a", "1"],
                &["INCR", "a"],
                &["EXEC"],
                // An arity error or unknown command while queuing aborts EXEC.
                &["MULTI"],
                &["SET", "a"],
                &["SET", "a", "2"],
                &["EXEC"],
                &["GET", "a"],
                &["MULTI"],
                &["NOSUCHCOMMAND", "x"],
                &["EXEC"],
                &["MULTI"],
                &["CONFIG", "NOSUCHSUB"],
                &["EXEC"],
                // Run-time errors answer inside the array; the rest applies.
                &["MULTI"],
                &["SET", "s", "text"],
                &["INCR", "s"],
                &["APPEND", "s", "-more"],
                &["SETRANGE", "s", "-1", "x"],
                &["GET", "s"],
                &["EXEC"],
                &["MULTI"],
                &["EXEC"],
                &["MULTI"],
                &["PING"],
                &["ECHO", "hi"],
                &["SET", "k", "v"],
                &["GET", "k"],
                &["DEL", "k"],
                &["EXISTS", "k"],
                &["UNWATCH"],
                &["EXEC"],
                &["MULTI"],
                &["SET", "d", "1"],
                &["DISCARD"],
                &["EXISTS", "d"],
                &["MULTI"],
                &["SET", "a"],
                &["DISCARD"],
                &["MULTI"],
                &["INCR", "n"],
                &["RESET"],
                &["EXEC"],
                &["GET", "n"],
                &["FLUSHALL"],
            ],
        );
    }
}

#[test]
fn watch_aborts_exactly_when_redis_does() {
    let mut pair = Pair::start();
    let other = pair.connect();
    for proto in ["2", "3"] {
        pair.both(0, &["HELLO", proto]);
        run_cases(
            &mut pair,
            &[
                &["SET", "w", "1"],
                &["WATCH", "w"],
                &["MULTI"],
                &["INCR", "w"],
                &["EXEC"],
                // Our own write after WATCH aborts too.
                &["WATCH", "w"],
                &["SET", "w", "5"],
                &["MULTI"],
                &["INCR", "w"],
                &["EXEC"],
                &["GET", "w"],
                // UNWATCH forgets; a missing key watched, then created.
                &["WATCH", "w"],
                &["UNWATCH"],
                &["SET", "w", "6"],
                &["MULTI"],
                &["GET", "w"],
                &["EXEC"],
                &["WATCH", "nokey"],
                &["MULTI"],
                &["GET", "nokey"],
                &["EXEC"],
            ],
        );
        // Another connection's write, deletion or expiry aborts.
        for change in [
            &["SET", "w", "changed"][..],
            &["DEL", "w"],
            &["PEXPIRE", "w", "1"],
            &["GET", "w"],
            &["SET", "unrelated", "1"],
        ] {
            pair.same_str(&["SET", "w", "v"]);
            pair.same_str(&["WATCH", "w"]);
            pair.same_str_on(other, change);
            std::thread::sleep(std::time::Duration::from_millis(5));
            pair.same_str(&["MULTI"]);
            pair.same_str(&["SET", "w", "mine"]);
            pair.same_str(&["EXEC"]);
            pair.same_str(&["GET", "w"]);
        }
        // A write that leaves the hash's bytes as they were (the value a
        // field holds, an increment by 0) aborts as any write; a read not.
        for change in [
            &["HSET", "wh", "f", "v"][..],
            &["HINCRBY", "wh", "n", "0"],
            &["HMSET", "wh", "f", "v", "n", "1"],
            &["HGET", "wh", "f"],
        ] {
            pair.same_str(&["HSET", "wh", "f", "v", "n", "1"]);
            pair.same_str(&["WATCH", "wh"]);
            pair.same_str_on(other, change);
            pair.same_str(&["MULTI"]);
            pair.same_str(&["HSET", "wh", "f", "mine"]);
            pair.same_str(&["EXEC"]);
            pair.same_str(&["HGETALL", "wh"]);
        }
        // A watched key that expires before EXEC aborts it.
        pair.same_str(&["SET", "e", "1", "PX", "30"]);
        pair.same_str(&["WATCH", "e"]);
        std::thread::sleep(std::time::Duration::from_millis(60));
        pair.same_str(&["MULTI"]);
        pair.same_str(&["SET", "e", "2"]);
        pair.same_str(&["EXEC"]);
        pair.same_str(&["FLUSHALL"]);
    }
}

const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "n0", "n1"];

fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(KEYS).to_string();
    let other = rng.pick(KEYS).to_string();
    let v = rng.pick(&["x", "12", "-3", "hello", "7"]).to_string();
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    match rng.below(24) {
        0..=3 => s(&["SET", &key, &v]),
        4 => s(&["GET", &key]),
        5 | 6 => s(&["INCR", &key]),
        7 => s(&["INCRBY", &key, &rng.int(100).to_string()]),
        8 => s(&["APPEND", &key, &v]),
        9 => s(&["DEL", &key, &other]),
        10 => s(&["MGET", &key, &other]),
        11 => s(&["MSET", &key, &v, &other, "m"]),
        12 => s(&["RENAME", &key, &other]),
        13 => s(&["GETSET", &key, &v]),
        14 => s(&["EXISTS", &key, &other]),
        15 => s(&["SETNX", &key, &v]),
        16 => s(&["STRLEN", &key]),
        17 => s(&["EXPIRE", &key, "1000"]),
        18 => s(&["TTL", &key]),
        19 => s(&["PERSIST", &key]),
        20 => s(&["PING"]),
        21 => s(&["COPY", &key, &other, "REPLACE"]),
        22 => s(&["GETDEL", &key]),
        _ => s(&["SET", &key]),
    }
}

/// Two connections interleave transactions and plain commands; WATCHed
/// keys are written by the other connection half of the time.
#[test]
fn random_transactions_match_redis() {
    let mut pair = Pair::start();
    let other = pair.connect();
    for seed in 0..12u64 {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (seed * 7919));
        for _ in 0..150 {
            let conn = if rng.below(4) == 0 { other } else { 0 };
            let choice = rng.below(10);
            if choice < 3 {
                let watched = rng.pick(KEYS);
                pair.same_str_on(conn, &["WATCH", watched]);
                if rng.below(2) == 0 {
                    let cmd = random_command(&mut rng);
                    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
                    pair.same_str_on(1 - conn, &cmd);
                }
            }
            if choice < 6 {
                pair.same_str_on(conn, &["MULTI"]);
                for _ in 0..rng.below(5) {
                    let cmd = random_command(&mut rng);
                    let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
                    pair.same_str_on(conn, &cmd);
                }
                let end = if rng.below(8) == 0 { "DISCARD" } else { "EXEC" };
                pair.same_str_on(conn, &[end]);
            } else {
                let cmd = random_command(&mut rng);
                let cmd: Vec<&str> = cmd.iter().map(String::as_str).collect();
                pair.same_str_on(conn, &cmd);
            }
        }
        for key in KEYS {
            pair.same_str(&["GET", key]);
        }
        pair.same_str(&["FLUSHALL"]);
    }
}

/// A blocking connection with a parsed-reply helper.
struct Client(RespReader);

impl Client {
    fn new(server: &Server) -> Client {
        Client(RespReader::new(server.raw()))
    }

    fn call(&mut self, args: &[&str]) -> Vec<u8> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.0.send(&encode_command(&args));
        self.0.raw_reply().expect("server closed")
    }

    fn int(&mut self, args: &[&str]) -> i64 {
        let reply = self.call(args);
        let text = String::from_utf8_lossy(&reply);
        let digits = text
            .trim_start_matches([':', '$'])
            .lines()
            .last()
            .unwrap_or("");
        digits.trim().parse().unwrap_or(0)
    }
}

const ACCOUNTS: usize = 8;
/// The same transfer as a Lua script (atomic over its two KEYS).
const TRANSFER: &str = "local a = tonumber(redis.call('GET', KEYS[1])) \
    local b = tonumber(redis.call('GET', KEYS[2])) \
    redis.call('SET', KEYS[1], a - ARGV[1]) redis.call('SET', KEYS[2], b + ARGV[1]) \
    redis.call('PUBLISH', 'transfers', ARGV[1]) return 1";
const START: i64 = 1000;

/// Clients on both cores transfer between accounts: with
/// WATCH/GET/MULTI/SET/EXEC (retrying aborted EXECs), with a Lua script
/// (GET, GET, SET, SET) and with plain MULTI/DECRBY/INCRBY/EXEC. A checker reads all accounts in one
/// MULTI/MGET/EXEC: every snapshot sums to the start total. The script
/// also publishes: a script run again after a conflict publishes once, so
/// a subscriber gets exactly one message per script transfer.
#[test]
fn concurrent_transfers_never_lose_an_update() {
    let server = Server::start(&[]);
    let mut subscriber = Client::new(&server);
    subscriber.call(&["SUBSCRIBE", "transfers"]);
    let mut setup = Client::new(&server);
    for i in 0..ACCOUNTS {
        setup.call(&["SET", &format!("acct{i}"), &START.to_string()]);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (committed, aborted) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let scripted = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..6u64)
        .map(|id| {
            let mut c = Client::new(&server);
            let (stop, committed, aborted) = (stop.clone(), committed.clone(), aborted.clone());
            let scripted = scripted.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0x1234_5678 + id * 77);
                let mut moved = 0i64;
                while !stop.load(Ordering::Relaxed) {
                    let (a, b) = (rng.below(ACCOUNTS as u64), rng.below(ACCOUNTS as u64));
                    if a == b {
                        continue;
                    }
                    let (ka, kb) = (format!("acct{a}"), format!("acct{b}"));
                    let amount = 1 + rng.below(5) as i64;
                    if id % 3 == 0 {
                        c.call(&["WATCH", &ka, &kb]);
                        let (va, vb) = (c.int(&["GET", &ka]), c.int(&["GET", &kb]));
                        c.call(&["MULTI"]);
                        c.call(&["SET", &ka, &(va - amount).to_string()]);
                        c.call(&["SET", &kb, &(vb + amount).to_string()]);
                        let reply = c.call(&["EXEC"]);
                        if reply.starts_with(b"*-1") {
                            aborted.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        assert!(reply.starts_with(b"*2\r\n+OK\r\n+OK"), "{reply:?}");
                    } else if id % 3 == 1 {
                        let reply = c.call(&["EVAL", TRANSFER, "2", &ka, &kb, &amount.to_string()]);
                        assert_eq!(reply, b":1\r\n");
                        scripted.fetch_add(1, Ordering::Relaxed);
                    } else {
                        c.call(&["MULTI"]);
                        c.call(&["DECRBY", &ka, &amount.to_string()]);
                        c.call(&["INCRBY", &kb, &amount.to_string()]);
                        let reply = c.call(&["EXEC"]);
                        assert!(reply.starts_with(b"*2\r\n:"), "{reply:?}");
                    }
                    moved += amount;
                    committed.fetch_add(1, Ordering::Relaxed);
                }
                moved
            })
        })
        .collect();
    let checker = {
        let mut c = Client::new(&server);
        let stop = stop.clone();
        std::thread::spawn(move || {
            let keys: Vec<String> = (0..ACCOUNTS).map(|i| format!("acct{i}")).collect();
            let mut mget = vec!["MGET"];
            mget.extend(keys.iter().map(String::as_str));
            let mut snapshots = 0;
            while !stop.load(Ordering::Relaxed) {
                c.call(&["MULTI"]);
                c.call(&mget);
                let reply = String::from_utf8(c.call(&["EXEC"])).unwrap();
                let sum: i64 = reply
                    .lines()
                    .filter(|l| !l.starts_with(['*', '$']))
                    .map(|l| l.parse::<i64>().unwrap())
                    .sum();
                assert_eq!(
                    sum,
                    START * ACCOUNTS as i64,
                    "half a transfer seen: {reply}"
                );
                snapshots += 1;
            }
            snapshots
        })
    };
    std::thread::sleep(std::time::Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let moved: i64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let snapshots = checker.join().unwrap();
    let total: i64 = (0..ACCOUNTS)
        .map(|i| setup.int(&["GET", &format!("acct{i}")]))
        .sum();
    let info = String::from_utf8_lossy(&setup.call(&["INFO", "citadel"])).into_owned();
    let retries = info
        .lines()
        .find_map(|l| l.strip_prefix("txn_retries:"))
        .unwrap_or("?")
        .trim()
        .to_string();
    println!(
        "{} transfers ({moved} moved), {} WATCH aborts, {snapshots} snapshots, {retries} conflict retries",
        committed.load(Ordering::Relaxed),
        aborted.load(Ordering::Relaxed)
    );
    assert_eq!(total, START * ACCOUNTS as i64, "money created or lost");
    let messages = subscriber
        .0
        .pending(std::time::Duration::from_millis(500))
        .len() as u64;
    assert_eq!(
        messages,
        scripted.load(Ordering::Relaxed),
        "one published message per script transfer ({retries} conflict retries)"
    );
    assert!(committed.load(Ordering::Relaxed) > 200);
    assert!(snapshots > 10);
}

/// A client that sends MULTI and a half-written EXEC, then vanishes, leaves
/// nothing behind: the next client's transaction runs normally.
#[test]
fn a_client_dying_mid_transaction_leaves_nothing_open() {
    let server = Server::start(&[]);
    let mut s = server.raw();
    s.write_all(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$1\r\n1\r\n*1\r\n$4\r\nEX")
        .unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("+OK"));
    drop(s);
    let mut c = Client::new(&server);
    assert_eq!(c.call(&["EXISTS", "q"]), b":0\r\n");
    c.call(&["MULTI"]);
    c.call(&["SET", "q", "2"]);
    assert_eq!(c.call(&["EXEC"]), b"*1\r\n+OK\r\n");
    assert_eq!(c.call(&["GET", "q"]), b"$1\r\n2\r\n");
}

/// The `redis` crate's atomic pipeline and its WATCH-retry helper.
#[test]
fn the_redis_crate_runs_transactions() {
    use redis::Commands;
    let server = Server::start(&[]);
    let mut con = server.client();
    let (n, s): (i64, String) = redis::pipe()
        .atomic()
        .incr("rc:n", 5)
        .set("rc:s", "v")
        .ignore()
        .get("rc:s")
        .query(&mut con)
        .unwrap();
    assert_eq!((n, s.as_str()), (5, "v"));
    let (doubled,): (i64,) = redis::transaction(&mut con, &["rc:n"], |con, pipe| {
        let n: i64 = con.get("rc:n")?;
        pipe.set("rc:n", n * 2).ignore().get("rc:n").query(con)
    })
    .unwrap();
    assert_eq!(doubled, 10);
}

/// Scripts inside MULTI/EXEC run in the EXEC's transaction, and a script
/// may touch keys it did not declare (they join its transaction).
#[test]
fn scripts_inside_transactions_match_redis() {
    let mut pair = Pair::start();
    run_cases(
        &mut pair,
        &[
            &["MULTI"],
            &["SET", "a", "1"],
            &["EVAL", "return redis.call('INCR', KEYS[1])", "1", "a"],
            &[
                "EVAL",
                "redis.call('SET', 'undeclared', 'x') return redis.call('GET', 'a')",
                "0",
            ],
            &["GET", "undeclared"],
            &["EXEC"],
            &["EVAL", "return redis.call('GET', 'undeclared')", "0"],
            &[
                "EVAL",
                "return redis.call('MGET', KEYS[1], 'other')",
                "1",
                "a",
            ],
        ],
    );
}

/// A queue with a keyspace-wide command runs alone (the world gate): while
/// clients on every core add and remove key pairs in transactions, a
/// MULTI / KEYS / DBSIZE / EXEC never sees half a pair, and its DBSIZE
/// matches its KEYS.
#[test]
fn keyspace_wide_commands_in_a_transaction_see_no_half_transaction() {
    let server = Server::start(&[]);
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..3u64)
        .map(|id| {
            let mut c = Client::new(&server);
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut rng = Rng(0xfeed + id);
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let pair = rng.below(50);
                    let (a, b) = (format!("pair:{pair}:a"), format!("pair:{pair}:b"));
                    c.call(&["MULTI"]);
                    if rng.below(2) == 0 {
                        c.call(&["SET", &a, "1"]);
                        c.call(&["SET", &b, "1"]);
                    } else {
                        c.call(&["DEL", &a]);
                        c.call(&["DEL", &b]);
                    }
                    let reply = c.call(&["EXEC"]);
                    assert!(reply.starts_with(b"*2\r\n"), "{reply:?}");
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut c = Client::new(&server);
    for _ in 0..100 {
        c.call(&["MULTI"]);
        c.call(&["KEYS", "pair:*"]);
        c.call(&["DBSIZE"]);
        let reply = String::from_utf8(c.call(&["EXEC"])).unwrap();
        let keys: Vec<&str> = reply.lines().filter(|l| l.starts_with("pair:")).collect();
        assert_eq!(keys.len() % 2, 0, "half a pair seen: {reply}");
        for k in &keys {
            let other = match k.strip_suffix(":a") {
                Some(p) => format!("{p}:b"),
                None => format!("{}:a", k.strip_suffix(":b").unwrap()),
            };
            assert!(keys.contains(&other.as_str()), "{k} without {other}");
        }
        let dbsize = reply.lines().last().unwrap().trim_start_matches(':');
        assert_eq!(dbsize.parse::<usize>().unwrap(), keys.len(), "{reply}");
    }
    stop.store(true, Ordering::Relaxed);
    let writes: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(writes > 0);
}
