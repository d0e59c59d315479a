//! Keyspace notifications against a real redis-server: a subscriber to
//! every keyspace and keyevent channel on each server, commands from
//! another connection (plain and inside MULTI/EXEC), and the messages each
//! subscriber receives must be the same bytes in the same order. Then the
//! events the cache makes itself (expired, on a read and with nobody
//! reading; evicted) and CONFIG SET turning them off.

use std::net::TcpStream;
use std::time::Duration;

use citadel_tests::differential::Pair;
use citadel_tests::reference::encode_command;
use citadel_tests::{RespReader, Server};

fn subscriber(stream: TcpStream) -> RespReader {
    let mut r = RespReader::new(stream);
    r.send(&encode_command(&[b"PSUBSCRIBE", b"__key*__:*"]));
    r.raw_reply().expect("psubscribe reply");
    r
}

/// A read of one new entry by consumer ivy (twice in one MULTI below).
const IVY_READS_ONE: &[&str] = &[
    "XREADGROUP",
    "GROUP",
    "g",
    "ivy",
    "COUNT",
    "1",
    "STREAMS",
    "st",
    ">",
];

#[test]
fn notifications_match_redis() {
    notifications_match_redis_with("KEA");
}

/// Class `n` (which `A` leaves out): `new` before the event of each write
/// that adds a key, and of RENAME/COPY/MOVE/RESTORE's destination.
#[test]
fn new_key_notifications_match_redis() {
    notifications_match_redis_with("KEAn");
}

fn notifications_match_redis_with(classes: &str) {
    let mut pair = Pair::start();
    pair.same_str(&["CONFIG", "SET", "notify-keyspace-events", classes]);
    let (mut rsub, mut csub) = (subscriber(pair.redis.raw()), subscriber(pair.citadel.raw()));
    let cases: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["SET", "a", "2", "EX", "100"],
        &["SETNX", "a", "3"],
        &["INCR", "a"],
        &["INCRBYFLOAT", "a", "1.5"],
        &["APPEND", "a", "x"],
        &["SETRANGE", "a", "1", "yy"],
        &["EXPIRE", "a", "50"],
        &["PERSIST", "a"],
        &["RENAME", "a", "b"],
        &["COPY", "b", "c"],
        &["SET", "over", "1"],
        &["RENAME", "c", "over"],
        &["COPY", "b", "over", "REPLACE"],
        &["SET", "c", "1"],
        &["SET", "mv", "1"],
        &["MOVE", "mv", "1"],
        &["GETDEL", "c"],
        &["DEL", "b", "nokey"],
        &["DEL", "nokey"],
        &["MSET", "m1", "1", "m2", "2"],
        &["SETEX", "s", "100", "v"],
        &["GETEX", "s", "PERSIST"],
        &["SETBIT", "bits", "7", "1"],
        &["PFADD", "hll", "x", "y"],
        &["MULTI"],
        &["SET", "t1", "1"],
        &["INCRBY", "t1", "5"],
        &["DEL", "m1"],
        &["EXEC"],
        &["EXPIRE", "m2", "-1"],
        // Hashes and lists: an emptied one also publishes `del`.
        &["HSET", "h", "a", "1", "b", "2"],
        // Writes that change no byte publish as any other.
        &["HSET", "h", "a", "1"],
        &["HINCRBY", "h", "b", "0"],
        &["HSETNX", "h", "a", "1"],
        &["HINCRBY", "h", "a", "2"],
        &["HINCRBYFLOAT", "h", "a", "0.5"],
        &["HDEL", "h", "a", "b"],
        &["RPUSH", "l", "a", "b", "c", "d"],
        &["LPUSHX", "l", "z"],
        &["LSET", "l", "0", "y"],
        &["LINSERT", "l", "BEFORE", "b", "x"],
        &["LREM", "l", "0", "x"],
        &["LPOP", "l"],
        &["RPOP", "l", "2"],
        &["LTRIM", "l", "5", "6"],
        // Sorted sets.
        &["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"],
        &["ZINCRBY", "z", "5", "a"],
        &["ZREM", "z", "b", "nomember"],
        &["ZREMRANGEBYSCORE", "z", "3", "3"],
        &["ZADD", "z", "7", "e", "8", "f"],
        &["ZREMRANGEBYRANK", "z", "0", "0"],
        &["ZREMRANGEBYLEX", "z", "-", "+"],
        &["ZADD", "z", "1", "a", "2", "b", "3", "c"],
        &["ZUNIONSTORE", "u", "2", "z", "nokey"],
        &["ZINTERSTORE", "u", "2", "z", "nokey"],
        &["ZRANGESTORE", "r", "z", "0", "-1"],
        &["ZDIFFSTORE", "r", "1", "z"],
        &["ZPOPMIN", "z"],
        &["ZPOPMAX", "z"],
        // Events that depend on the arguments: the ends of a move, the
        // two keys of SMOVE, LMPOP/ZMPOP's direction, ZADD ... INCR.
        &["RPUSH", "src", "a", "b", "c"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["LMOVE", "src", "src", "RIGHT", "LEFT"],
        &["RPOPLPUSH", "src", "dst"],
        &["BLMOVE", "src", "dst", "right", "left", "0"],
        &["LMPOP", "2", "nokey", "dst", "RIGHT", "COUNT", "1"],
        &["BLMPOP", "0", "1", "dst", "LEFT", "COUNT", "5"],
        &["SADD", "s1", "m", "n"],
        &["SMOVE", "s1", "s2", "m"],
        &["SMOVE", "s1", "s2", "n"],
        &["ZADD", "zz", "1", "a", "2", "b", "3", "c"],
        &["ZADD", "zz", "XX", "INCR", "5", "a"],
        &["ZADD", "zz", "CH", "1", "incr"],
        &["ZMPOP", "1", "zz", "MIN"],
        &["BZMPOP", "0", "1", "zz", "MAX", "COUNT", "9"],
        // The same inside MULTI/EXEC and a script: their changes are
        // published after the commit, each command's in order.
        &["RPUSH", "src", "a", "b", "c"],
        &["SADD", "s1", "m", "n"],
        &["MULTI"],
        &["LMOVE", "src", "dst", "LEFT", "RIGHT"],
        &["SET", "between", "1"],
        &["RPOPLPUSH", "src", "dst"],
        &["SMOVE", "s1", "s2", "m"],
        &["ZADD", "zz", "INCR", "2", "q"],
        &["LMPOP", "1", "dst", "RIGHT"],
        &["EXEC"],
        &[
            "EVAL",
            "redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT') \
             redis.call('SMOVE', KEYS[3], KEYS[4], 'n') \
             redis.call('ZADD', KEYS[5], 'INCR', '1', 'q') return 1",
            "5",
            "src",
            "dst",
            "s1",
            "s2",
            "zz",
        ],
        // Streams and their consumer groups.
        &["XADD", "st", "1-1", "f", "v"],
        &["XADD", "st", "2-1", "f", "v"],
        &["XADD", "st", "NOMKSTREAM", "3-1", "f", "v"],
        &["XDEL", "st", "1-1"],
        &["XDEL", "st", "9-9"],
        &["XTRIM", "st", "MAXLEN", "1"],
        &["XSETID", "st", "5-5"],
        &["XGROUP", "CREATE", "st", "g", "0"],
        &["XGROUP", "CREATE", "newst", "g", "$", "MKSTREAM"],
        &["XGROUP", "SETID", "st", "g", "$"],
        &["XGROUP", "CREATECONSUMER", "st", "g", "alice"],
        &["XGROUP", "CREATECONSUMER", "st", "g", "alice"],
        &["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", "0"],
        // Consumers made by reads and claims: `xgroup-createconsumer`
        // when the command makes one (a read with nothing to serve and a
        // claim that claims nothing make none), nothing once it exists.
        &["XADD", "st", "6-1", "f", "v"],
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "st", ">"],
        &["XREADGROUP", "GROUP", "g", "bob", "STREAMS", "st", ">"],
        &["XREADGROUP", "GROUP", "g", "carol", "STREAMS", "st", ">"],
        &["XREADGROUP", "GROUP", "g", "dave", "STREAMS", "st", "0"],
        &["XCLAIM", "st", "g", "erin", "3600000", "6-1"],
        &["XCLAIM", "st", "g", "frank", "0", "6-1"],
        &["XCLAIM", "st", "g", "frank", "0", "6-1"],
        &["XAUTOCLAIM", "st", "g", "gina", "3600000", "0"],
        &["XAUTOCLAIM", "st", "g", "hank", "0", "0"],
        // In a transaction: the first read makes the consumer, the second
        // (same command, same key) does not.
        &["XADD", "st", "7-1", "f", "v"],
        &["XADD", "st", "8-1", "f", "v"],
        &["MULTI"],
        IVY_READS_ONE,
        IVY_READS_ONE,
        &["EXEC"],
        &["XACK", "st", "g", "3-1"],
        &["XGROUP", "DELCONSUMER", "st", "g", "alice"],
        &["XGROUP", "DESTROY", "st", "g"],
        &["DEL", "st"],
        // A flush publishes nothing, key by key or otherwise.
        &["MSET", "f1", "1", "f2", "2"],
        &["FLUSHDB"],
        &["SET", "f3", "3"],
        &["FLUSHALL"],
    ];
    for case in cases {
        pair.same_str(case);
        let want = rsub.pending(Duration::from_millis(100));
        let got = csub.pending_like(
            want.len(),
            Duration::from_secs(2),
            Duration::from_millis(30),
        );
        assert_eq!(got, want, "notifications of {case:?}");
    }
}

#[test]
fn expiry_and_eviction_are_published_and_config_turns_them_off() {
    let server = Server::start(&["--maxmemory", "8mb", "--notify-keyspace-events", "Exe"]);
    let mut sub = subscriber(server.raw());
    let mut c = RespReader::new(server.raw());
    let mut call = |args: &[&[u8]]| {
        c.send(&encode_command(args));
        c.raw_reply().unwrap()
    };
    call(&[b"SET", b"short", b"v", b"PX", b"20"]);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(call(&[b"GET", b"short"]), b"$-1\r\n");
    let got = sub.pending(Duration::from_millis(300));
    assert_eq!(
        got,
        vec!["*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n$22\r\n__keyevent@0__:expired\r\n$5\r\nshort\r\n"]
    );
    let value = vec![b'v'; 4000];
    for i in 0..4000 {
        call(&[b"SET", format!("fill{i}").as_bytes(), &value]);
    }
    let got = sub.pending(Duration::from_millis(500));
    assert!(
        got.iter()
            .filter(|m| m.contains("__keyevent@0__:evicted"))
            .count()
            > 100,
        "{} evicted events",
        got.len()
    );
    call(&[b"CONFIG", b"SET", b"notify-keyspace-events", b""]);
    call(&[b"SET", b"late", b"v", b"PX", b"1"]);
    std::thread::sleep(Duration::from_millis(20));
    call(&[b"GET", b"late"]);
    assert!(sub.pending(Duration::from_millis(200)).is_empty());
}

/// Keys nobody reads expire on their own, as Redis's active expiry takes
/// them: the `expired` events arrive within a couple of seconds, in the
/// database each key was in, and DBSIZE, INFO keyspace and expired_keys
/// follow; keys without a TTL or with a long one stay.
#[test]
fn keys_nobody_reads_expire_and_are_published() {
    let server = Server::start(&["--notify-keyspace-events", "Ex"]);
    let mut sub = subscriber(server.raw());
    let mut c = RespReader::new(server.raw());
    let mut call = |args: &[&[u8]]| {
        c.send(&encode_command(args));
        String::from_utf8_lossy(&c.raw_reply().unwrap()).into_owned()
    };
    call(&[b"SET", b"soon", b"v", b"PX", b"200"]);
    call(&[b"SET", b"second", b"v", b"EX", b"1"]);
    call(&[b"SET", b"stays", b"v"]);
    call(&[b"SET", b"later", b"v", b"EX", b"100"]);
    call(&[b"SELECT", b"1"]);
    call(&[b"SET", b"soon", b"v", b"PX", b"300"]);
    call(&[b"SELECT", b"0"]);
    let got = sub.pending_like(3, Duration::from_secs(4), Duration::from_millis(200));
    let event = |db: u8, key: &str| {
        let channel = format!("__keyevent@{db}__:expired");
        format!(
            "*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n${}\r\n{channel}\r\n${}\r\n{key}\r\n",
            channel.len(),
            key.len()
        )
    };
    let mut want = vec![event(0, "soon"), event(1, "soon"), event(0, "second")];
    let mut got_sorted = got.clone();
    got_sorted.sort();
    want.sort();
    assert_eq!(got_sorted, want, "in arrival order: {got:?}");
    assert_eq!(call(&[b"DBSIZE"]), ":2\r\n");
    let keyspace = call(&[b"INFO", b"keyspace"]);
    assert!(keyspace.contains("db0:keys=2,expires=1,"), "{keyspace}");
    assert!(!keyspace.contains("db1:"), "{keyspace}");
    let stats = call(&[b"INFO", b"stats"]);
    assert!(stats.contains("expired_keys:3\r\n"), "{stats}");
}

/// Clients on both cores race transactions that read with one new
/// consumer name each round: whichever commits made the consumer, and a
/// transaction that conflicted and ran again found it made. Redis
/// publishes one `xgroup-createconsumer` per consumer; so must Citadel,
/// however many attempts the losers made.
#[test]
fn racing_transactions_publish_each_consumer_made_once() {
    const CLIENTS: usize = 4;
    const ROUNDS: usize = 150;
    let server = Server::start(&["--threads", "2", "--notify-keyspace-events", "Et"]);
    let mut setup = RespReader::new(server.raw());
    let mut call = |args: &[&str]| {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        setup.send(&encode_command(&args));
        setup.raw_reply().unwrap()
    };
    call(&["XGROUP", "CREATE", "st", "g", "$", "MKSTREAM"]);
    // One new entry per read: every transaction's read serves the stream.
    for _ in 0..CLIENTS * ROUNDS {
        call(&["XADD", "st", "*", "f", "v"]);
    }
    let mut sub = subscriber(server.raw());
    let barrier = std::sync::Barrier::new(CLIENTS);
    std::thread::scope(|s| {
        for _ in 0..CLIENTS {
            let (server, barrier) = (&server, &barrier);
            s.spawn(move || {
                let mut c = RespReader::new(server.raw());
                for round in 0..ROUNDS {
                    let consumer = format!("c{round}");
                    let read = [
                        "XREADGROUP",
                        "GROUP",
                        "g",
                        &consumer,
                        "COUNT",
                        "1",
                        "STREAMS",
                        "st",
                        ">",
                    ];
                    let mut batch = encode_command(&[b"MULTI"]);
                    let read: Vec<&[u8]> = read.iter().map(|a| a.as_bytes()).collect();
                    batch.extend(encode_command(&read));
                    batch.extend(encode_command(&[b"EXEC"]));
                    barrier.wait();
                    c.send(&batch);
                    for _ in 0..3 {
                        c.raw_reply().expect("a reply");
                    }
                }
            });
        }
    });
    let got = sub.pending(Duration::from_millis(500));
    let mut made = std::collections::HashMap::new();
    for m in got.iter().filter(|m| m.contains("xgroup-createconsumer")) {
        *made.entry(m.clone()).or_insert(0) += 1;
    }
    assert_eq!(made.len(), 1, "every event names the stream st: {made:?}");
    assert_eq!(
        made.values().sum::<usize>(),
        ROUNDS,
        "one event per consumer made"
    );
    let consumers = call(&["XINFO", "CONSUMERS", "st", "g"]);
    assert!(
        String::from_utf8_lossy(&consumers).starts_with(&format!("*{ROUNDS}\r\n")),
        "{ROUNDS} consumers"
    );
}

/// CONFIG GET answers Redis's canonical class letters, whatever order or
/// repetition CONFIG SET was given ("KA" reads back "AK").
#[test]
fn config_get_answers_the_canonical_classes() {
    let mut pair = Pair::start();
    for classes in [
        "gKE",
        "$lshzxeKE",
        "KA",
        "EA",
        "AKEm",
        "xgEK",
        "nE",
        "EKx$",
        "AKEn",
        "gnK",
    ] {
        pair.same_str(&["CONFIG", "SET", "notify-keyspace-events", classes]);
        pair.same_str(&["CONFIG", "GET", "notify-keyspace-events"]);
    }
}
