//! MIGRATE sent to Citadel, against MIGRATE sent to a real redis-server:
//! the same commands on the same data, each source moving keys into a
//! fresh redis-server target of its own. Replies are compared byte for
//! byte; the targets must end with the same keys, values and TTLs, the
//! sources with the same keys left. Then Citadel into Citadel, targets
//! that refuse or stop answering (the server keeps serving meanwhile), a
//! key written while its MIGRATE was in flight (kept, not lost), and
//! WATCH seeing a migrated key go. A client that leaves while its MIGRATE
//! waits: `migrate_outbound_leaving.rs`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use citadel_tests::cluster::Cluster;
use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{free_port, redis, RespReader, Server};
use redis::{Connection, Value};

fn run(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    args[1..].iter().for_each(|a| {
        cmd.arg(*a);
    });
    cmd.query(con)
}

fn connect(port: u16, db: u8) -> Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/{db}"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// A key's type, value (read in an order independent of the layout) and
/// whether it has a TTL.
fn read(con: &mut Connection, key: &str) -> Vec<String> {
    let kind = match run(con, &["TYPE", key]).unwrap() {
        Value::SimpleString(kind) => kind,
        other => panic!("TYPE {key}: {other:?}"),
    };
    let words: &[&str] = match kind.as_str() {
        "string" => &["GET"],
        "list" => &["LRANGE", "0", "-1"],
        "zset" => &["ZRANGE", "0", "-1", "WITHSCORES"],
        "stream" => &["XRANGE", "-", "+"],
        "hash" => &["HGETALL"],
        "set" => &["SMEMBERS"],
        _ => &[],
    };
    let mut out = vec![kind];
    if let Some((name, rest)) = words.split_first() {
        let mut args = vec![*name, key];
        args.extend(rest);
        let value = match run(con, &args).unwrap() {
            Value::Array(items) if matches!(*name, "HGETALL" | "SMEMBERS") => {
                let mut items: Vec<String> = items.iter().map(|v| format!("{v:?}")).collect();
                items.sort();
                format!("{items:?}")
            }
            other => format!("{other:?}"),
        };
        out.push(value);
    }
    if out[0] == "stream" {
        out.push(format!("{:?}", run(con, &["XINFO", "GROUPS", key])));
    }
    let Ok(Value::Int(pttl)) = run(con, &["PTTL", key]) else {
        panic!("PTTL {key}");
    };
    out.push(if pttl > 0 {
        "ttl".into()
    } else {
        pttl.to_string()
    });
    out
}

/// One source (redis-server or Citadel) and its own target.
struct Side {
    name: &'static str,
    raw: RespReader,
    target: RedisServer,
    /// A target with `requirepass tpw` and an ACL user `mover`/`mpw`.
    locked: RedisServer,
}

impl Side {
    fn new(name: &'static str, source: TcpStream) -> Side {
        let locked = RedisServer::start();
        let mut admin = connect(locked.port, 0);
        run(&mut admin, &["CONFIG", "SET", "requirepass", "tpw"]).unwrap();
        let acl = ["ACL", "SETUSER", "mover", "on", ">mpw", "~*", "+@all"];
        run(&mut admin, &acl).unwrap();
        Side {
            name,
            raw: RespReader::new(source),
            target: RedisServer::start(),
            locked,
        }
    }

    /// `args` with `{port}` / `{locked}` as this side's targets' ports.
    fn send(&mut self, args: &[&str]) -> Vec<u8> {
        let (port, locked) = (self.target.port.to_string(), self.locked.port.to_string());
        let args: Vec<String> = args
            .iter()
            .map(|a| a.replace("{port}", &port).replace("{locked}", &locked))
            .collect();
        let words: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.raw.send(&encode_command(&words));
        self.raw
            .raw_reply()
            .unwrap_or_else(|| panic!("{} closed", self.name))
    }
}

/// Sends `args` to both sources; the replies must be the same bytes.
fn same(sides: &mut [Side; 2], args: &[&str]) -> String {
    let redis = sides[0].send(args);
    let citadel = sides[1].send(args);
    let (redis, citadel) = (
        String::from_utf8_lossy(&redis).into_owned(),
        String::from_utf8_lossy(&citadel).into_owned(),
    );
    assert_eq!(citadel, redis, "reply to {args:?}");
    redis
}

/// Both targets' `db` hold the same `keys` (or miss the same ones).
fn same_targets(sides: &[Side; 2], db: u8, keys: &[&str]) {
    let mut redis = connect(sides[0].target.port, db);
    let mut citadel = connect(sides[1].target.port, db);
    for key in keys {
        assert_eq!(
            read(&mut citadel, key),
            read(&mut redis, key),
            "{key} in db {db}"
        );
    }
}

const FILL: &[&[&str]] = &[
    &["SET", "str", "hello"],
    &["SET", "ttl", "soon", "PX", "600000"],
    &["HSET", "hash", "f1", "v1", "f2", "22"],
    &["RPUSH", "list", "a", "b", "c", "1", "2"],
    &["SADD", "set", "1", "2", "-70000", "x"],
    &["ZADD", "zset", "1.5", "a", "-2", "b", "inf", "c"],
    &["XADD", "stream", "1-1", "f", "v"],
    &["XADD", "stream", "2-1", "f", "w", "g", "x"],
    &["XGROUP", "CREATE", "stream", "workers", "0"],
    &["SET", "busy", "here"],
];

/// MIGRATE to this side's target, database 0: `options`, then KEYS `keys`.
fn keys_form<'a>(options: &[&'a str], keys: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["MIGRATE", "127.0.0.1", "{port}", "", "0", "5000"];
    args.extend(options);
    args.push("KEYS");
    args.extend(keys);
    args
}

const MOVED: [&str; 7] = ["ttl", "hash", "list", "set", "zset", "stream", "busy"];

#[test]
fn citadel_migrates_as_redis_does() {
    let redis_source = RedisServer::start();
    let citadel = Server::start(&[]);
    let mut sides = [
        Side::new("redis", redis_source.raw()),
        Side::new("citadel", citadel.raw()),
    ];
    for args in FILL {
        same(&mut sides, args);
    }
    // `busy` exists on both targets already: RESTORE without REPLACE fails.
    for side in &sides {
        run(&mut connect(side.target.port, 0), &["SET", "busy", "there"]).unwrap();
    }

    // One key; a missing one; the KEYS form with COPY.
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", "{port}", "str", "0", "5000"],
    );
    same(&mut sides, &["EXISTS", "str"]);
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", "{port}", "nokey", "0", "5000"],
    );
    // A key named twice: restored once, then BUSYKEY; it moved.
    same(&mut sides, &["SET", "dup", "v"]);
    same(&mut sides, &keys_form(&[], &["dup", "dup"]));
    same(&mut sides, &["EXISTS", "dup"]);
    // An expired key is missing.
    same(&mut sides, &["SET", "exp", "v", "PX", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", "{port}", "exp", "0", "5000"],
    );
    // Timeouts of any size (<= 0: 1000 ms).
    same(&mut sides, &["SET", "big", "1"]);
    let huge = i64::MAX.to_string();
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", "{port}", "big", "0", &huge],
    );
    same(&mut sides, &["EXISTS", "big"]);
    same(&mut sides, &keys_form(&["COPY"], &MOVED[..6]));
    let mut exists = vec!["EXISTS"];
    exists.extend(MOVED);
    same(&mut sides, &exists);
    same_targets(
        &sides,
        0,
        &["str", "ttl", "hash", "list", "set", "zset", "stream"],
    );

    // BUSYKEY without REPLACE: the first error, the other keys moved.
    let busy = same(&mut sides, &keys_form(&[], &["hash", "busy", "list"]));
    assert!(
        busy.contains("Target instance replied with error: BUSYKEY"),
        "{busy}"
    );
    same(&mut sides, &exists);
    // REPLACE, no COPY: everything moves.
    let replace = keys_form(&["REPLACE"], &MOVED);
    assert_eq!(same(&mut sides, &replace), "+OK\r\n");
    same(&mut sides, &exists);
    same(&mut sides, &["DBSIZE"]);
    same_targets(&sides, 0, &MOVED);
    let mut on_target = connect(sides[0].target.port, 0);
    let mut exists_there = vec!["EXISTS"];
    exists_there.extend(MOVED);
    let there = run(&mut on_target, &exists_there).unwrap();
    assert_eq!(there, Value::Int(MOVED.len() as i64), "the keys arrived");

    // Other databases, and the cached connection's SELECT across calls.
    same(&mut sides, &["SELECT", "2"]);
    for (key, db) in [("d4", "4"), ("d0", "0"), ("d4b", "4"), ("d1", "1")] {
        same(&mut sides, &["SET", key, "v", "EX", "1000"]);
        same(
            &mut sides,
            &["MIGRATE", "127.0.0.1", "{port}", key, db, "0"],
        );
    }
    same_targets(&sides, 4, &["d4", "d4b", "d0"]);
    same_targets(&sides, 0, &["d0", "d4"]);
    same_targets(&sides, 1, &["d1"]);

    // AUTH, AUTH2 and a wrong password.
    for (key, auth) in [
        ("a1", &["AUTH", "tpw"][..]),
        ("a2", &["AUTH2", "mover", "mpw"][..]),
        ("a3", &["AUTH", "wrong"][..]),
        ("a4", &[][..]),
    ] {
        same(&mut sides, &["SET", key, "v"]);
        let mut args = vec!["MIGRATE", "127.0.0.1", "{locked}", key, "0", "5000"];
        args.extend(auth);
        same(&mut sides, &args);
        same(&mut sides, &["EXISTS", key]);
    }

    // Refusals before anything is sent.
    for bad in [
        &["MIGRATE", "h", "1", "k", "0", "10", "BOGUS"][..],
        &["MIGRATE", "h", "1", "k", "0", "10", "KEYS", "a"],
        &["MIGRATE", "h", "1", "", "x", "10", "KEYS", "a"],
        &["MIGRATE", "h", "1", "", "0", "ten", "KEYS", "a"],
        &["MIGRATE", "h", "1", "k", "0", "10", "AUTH"],
        &["MIGRATE", "h", "1", "k", "0", "10", "AUTH2", "u"],
        &["MIGRATE", "h", "1", "k", "0"],
        &["MIGRATE", "h", "1", "", "0", "10", "COPY", "KEYS"],
        &[
            "COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "10", "KEYS", "a", "b",
        ],
        &[
            "COMMAND", "GETKEYS", "MIGRATE", "h", "1", "", "0", "10", "AUTH", "keys", "x",
        ],
        &[
            "COMMAND",
            "GETKEYSANDFLAGS",
            "MIGRATE",
            "h",
            "1",
            "k",
            "0",
            "10",
        ],
        &["COMMAND", "INFO", "MIGRATE"],
    ] {
        same(&mut sides, bad);
    }

    // A dead target: refused, answered as Redis does.
    let dead = free_port().to_string();
    same(&mut sides, &["SET", "k", "v"]);
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", &dead, "k", "0", "1000"],
    );
    same(&mut sides, &["EXISTS", "k"]);

    // ACL: every key MIGRATE names is checked (read and write).
    let acl = ["ACL", "SETUSER", "lim", "on", "nopass", "~a*", "+@all"];
    same(&mut sides, &acl);
    same(&mut sides, &["SET", "a5", "v"]);
    same(&mut sides, &["AUTH", "lim", "x"]);
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", "{port}", "k", "0", "1000"],
    );
    let both = [
        "MIGRATE",
        "127.0.0.1",
        "{port}",
        "",
        "0",
        "1000",
        "KEYS",
        "a5",
        "k",
    ];
    same(&mut sides, &both);
    same(
        &mut sides,
        &["MIGRATE", "127.0.0.1", "{port}", "a5", "0", "1000"],
    );
    same(&mut sides, &["EXISTS", "a5"]);
}

#[test]
fn citadel_migrates_into_citadel_with_auth() {
    let source = Server::start(&[]);
    let target = Server::start(&["--requirepass", "pw"]);
    let mut src = source.client();
    for args in FILL {
        run(&mut src, args).unwrap();
    }
    let want: Vec<Vec<String>> = MOVED.iter().map(|k| read(&mut src, k)).collect();
    let port = target.port.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "3", "5000", "AUTH", "pw"];
    args.push("KEYS");
    args.extend(MOVED);
    assert_eq!(run(&mut src, &args).unwrap(), Value::Okay);
    assert_eq!(
        run(&mut src, &["DBSIZE"]).unwrap(),
        Value::Int(1),
        "str stays"
    );
    let url = format!("redis://:pw@127.0.0.1:{port}/3");
    let mut dst = redis::Client::open(url).unwrap().get_connection().unwrap();
    for (key, want) in MOVED.iter().zip(&want) {
        assert_eq!(&read(&mut dst, key), want, "{key}");
    }
}

/// A target that accepts and never answers: MIGRATE fails with Redis's
/// read timeout, and the source's other clients, on the same core, are
/// served while it waits.
#[test]
fn a_stopped_target_times_out_without_stopping_the_server() {
    let source = Server::start(&["--threads", "1"]);
    let target = Server::start(&[]);
    let mut src = source.client();
    run(&mut src, &["SET", "k", "v"]).unwrap();
    target.signal("STOP");
    let port = target.port.to_string();
    let mut waiting = RespReader::new(source.raw());
    let migrate: &[&[u8]] = &[
        b"MIGRATE",
        b"127.0.0.1",
        port.as_bytes(),
        b"k",
        b"0",
        b"1500",
    ];
    let started = Instant::now();
    waiting.send(&encode_command(migrate));
    // Served meanwhile (one core: the same one).
    assert_eq!(
        run(&mut src, &["PING"]).unwrap(),
        Value::SimpleString("PONG".into())
    );
    assert_eq!(
        run(&mut src, &["GET", "k"]).unwrap(),
        Value::BulkString(b"v".to_vec())
    );
    waiting.set_read_timeout(Some(Duration::from_millis(100)));
    assert_eq!(
        waiting.raw_reply(),
        None,
        "MIGRATE answered before its timeout"
    );
    waiting.set_read_timeout(Some(Duration::from_secs(30)));
    let reply = waiting.raw_reply().expect("MIGRATE's reply");
    assert_eq!(
        reply,
        b"-IOERR error or timeout reading to target instance\r\n"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "no hang");
    target.signal("CONT");
    // The key stayed; the target, running again, takes it now.
    // (The RESTORE it had taken before stopping ran then: REPLACE.)
    let again = ["MIGRATE", "127.0.0.1", &port, "k", "0", "5000", "REPLACE"];
    assert_eq!(run(&mut src, &again).unwrap(), Value::Okay);
    assert_eq!(
        run(&mut target.client(), &["GET", "k"]).unwrap(),
        Value::BulkString(b"v".to_vec())
    );
}

/// A scripted target that answers only when told: a key written while
/// its MIGRATE was in flight keeps its new value at the source; one left
/// alone is deleted; a client that WATCHed it sees the deletion.
#[test]
fn a_key_written_during_its_migrate_is_kept() {
    let source = Server::start(&[]);
    let mut src = source.client();
    run(&mut src, &["SET", "changed", "v1"]).unwrap();
    run(&mut src, &["SET", "alone", "v1"]).unwrap();
    let mut watcher = source.client();
    run(&mut watcher, &["WATCH", "alone"]).unwrap();
    // Redis 7.0 publishes `del` for each key MIGRATE deletes.
    run(
        &mut src,
        &["CONFIG", "SET", "notify-keyspace-events", "KEA"],
    )
    .unwrap();
    let mut events = RespReader::new(source.raw());
    events.send(&encode_command(&[b"SUBSCRIBE", b"__keyevent@0__:del"]));
    events.raw_reply().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut waiting = RespReader::new(source.raw());
    let migrate: &[&[u8]] = &[
        b"MIGRATE",
        b"127.0.0.1",
        port.as_bytes(),
        b"",
        b"0",
        b"10000",
        b"KEYS",
        b"changed",
        b"alone",
    ];
    waiting.send(&encode_command(migrate));
    let (mut conn, _) = listener.accept().unwrap();
    // SELECT and both RESTOREs arrive before anything is answered.
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while got.windows(7).filter(|w| w == b"RESTORE").count() < 2 || !got.ends_with(b"\r\n") {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "the source closed");
        got.extend_from_slice(&chunk[..n]);
    }
    assert!(got.starts_with(b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"));
    run(&mut src, &["SET", "changed", "v2"]).unwrap();
    conn.write_all(b"+OK\r\n+OK\r\n+OK\r\n").unwrap();
    waiting.set_read_timeout(Some(Duration::from_secs(30)));
    assert_eq!(waiting.raw_reply().unwrap(), b"+OK\r\n");
    let changed = run(&mut src, &["GET", "changed"]).unwrap();
    assert_eq!(
        changed,
        Value::BulkString(b"v2".to_vec()),
        "a write is never lost"
    );
    assert_eq!(run(&mut src, &["EXISTS", "alone"]).unwrap(), Value::Int(0));
    let deleted = events.pending(Duration::from_millis(300));
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    assert!(deleted[0].contains("alone"), "{deleted:?}");
    run(&mut watcher, &["MULTI"]).unwrap();
    run(&mut watcher, &["SET", "alone", "back"]).unwrap();
    assert_eq!(
        run(&mut watcher, &["EXEC"]).unwrap(),
        Value::Nil,
        "WATCH saw it go"
    );
    // Inside MULTI it is refused, and the transaction does the rest.
    let mut tx = RespReader::new(source.raw());
    for args in [
        &[&b"MULTI"[..]][..],
        &[b"SET", b"after", b"1"],
        &[
            b"MIGRATE",
            b"127.0.0.1",
            port.as_bytes(),
            b"after",
            b"0",
            b"1000",
        ],
        &[b"EXEC"],
    ] {
        tx.send(&encode_command(args));
    }
    let replies: Vec<Vec<u8>> = (0..4).map(|_| tx.raw_reply().unwrap()).collect();
    let exec = String::from_utf8_lossy(&replies[3]).into_owned();
    assert!(
        exec.starts_with("*2\r\n+OK\r\n-ERR MIGRATE is not allowed inside MULTI"),
        "{exec}"
    );
    assert_eq!(
        run(&mut src, &["GET", "after"]).unwrap(),
        Value::BulkString(b"1".to_vec())
    );
}

/// Cluster mode: MIGRATE's keys are routed like any key (-MOVED from a
/// node that does not serve them), and travel as RESTORE-ASKING (the
/// target may be importing their slot).
#[test]
fn in_cluster_mode_keys_route_and_travel_as_restore_asking() {
    let cluster = Cluster::start(2);
    let target = RedisServer::start();
    let key = (0..)
        .map(|i| format!("k{i}"))
        .find(|k| cluster.owner_of(k) == 0)
        .unwrap();
    let port = target.port.to_string();
    let migrate = ["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS", &key];
    let mut other = cluster.nodes[1].client();
    let moved = run(&mut other, &migrate)
        .unwrap_err()
        .to_string()
        .to_lowercase();
    assert!(moved.contains("moved"), "{moved}");
    let mut owner = cluster.nodes[0].client();
    run(&mut owner, &["SET", &key, "v"]).unwrap();
    assert_eq!(run(&mut owner, &migrate).unwrap(), Value::Okay);
    let mut dst = connect(target.port, 0);
    assert_eq!(
        run(&mut dst, &["GET", &key]).unwrap(),
        Value::BulkString(b"v".to_vec())
    );
    let Value::BulkString(stats) = run(&mut dst, &["INFO", "commandstats"]).unwrap() else {
        panic!("INFO");
    };
    let stats = String::from_utf8_lossy(&stats).into_owned();
    assert!(stats.contains("cmdstat_restore-asking:calls=1"), "{stats}");
}

/// A MIGRATE onto the server itself restores the key over itself (Redis
/// would wait for itself and time out): the key must not then be deleted
/// as moved.
#[test]
fn a_migrate_onto_the_server_itself_keeps_the_key() {
    let server = Server::start(&[]);
    let mut con = connect(server.port, 0);
    run(&mut con, &["SET", "k", "v"]).unwrap();
    let port = server.port.to_string();
    let migrated = run(
        &mut con,
        &["MIGRATE", "127.0.0.1", &port, "k", "0", "1000", "REPLACE"],
    );
    assert_eq!(migrated.unwrap(), Value::Okay);
    let value: Option<String> = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    assert_eq!(
        value.as_deref(),
        Some("v"),
        "the key restored onto itself stays"
    );
}

/// One MIGRATE ... KEYS of thousands of keys: many share a bucket of the
/// index, and deleting one must not make its neighbours look written
/// meanwhile (they were left on both sides). Every key moves, in the
/// forms a Redis target keeps compact.
#[test]
fn every_key_of_a_large_migrate_keys_moves() {
    const KEYS: usize = 5000;
    let source = Server::start(&[]);
    let target = RedisServer::start();
    let mut src = connect(source.port, 0);
    let mut fill = redis::pipe();
    for i in 0..KEYS {
        match i % 3 {
            0 => fill.cmd("SET").arg(format!("k:{i}")).arg(i),
            1 => fill
                .cmd("HSET")
                .arg(format!("k:{i}"))
                .arg("f")
                .arg(i)
                .arg("g")
                .arg("x"),
            _ => fill
                .cmd("ZADD")
                .arg(format!("k:{i}"))
                .arg(i as f64 + 0.25)
                .arg("m"),
        };
    }
    let _: Value = fill.query(&mut src).unwrap();
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k:{i}")).collect();
    let port = target.port.to_string();
    let mut migrate = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "60000", "KEYS"];
    migrate.extend(keys.iter().map(String::as_str));
    assert_eq!(run(&mut src, &migrate).unwrap(), Value::Okay);
    assert_eq!(run(&mut src, &["DBSIZE"]).unwrap(), Value::Int(0));
    let mut dst = connect(target.port, 0);
    assert_eq!(run(&mut dst, &["DBSIZE"]).unwrap(), Value::Int(KEYS as i64));
    for (i, key) in keys.iter().enumerate() {
        let (value, encoding) = match i % 3 {
            0 => (format!("{:?}", run(&mut dst, &["GET", key])), "int"),
            1 => (
                format!("{:?}", run(&mut dst, &["HGET", key, "f"])),
                "listpack",
            ),
            _ => (
                format!("{:?}", run(&mut dst, &["ZSCORE", key, "m"])),
                "listpack",
            ),
        };
        let want = match i % 3 {
            2 => format!("{}", i as f64 + 0.25),
            _ => i.to_string(),
        };
        assert!(
            value.contains(&format!("\"{want}\"")) || value.contains(&format!("({want})")),
            "{key}: {value}"
        );
        let got = run(&mut dst, &["OBJECT", "ENCODING", key]).unwrap();
        assert_eq!(got, Value::BulkString(encoding.into()), "{key}");
    }
}
