//! Pub/Sub end to end: the subscribe-mode conversation (RESP2 and RESP3)
//! byte for byte against a real redis-server, delivery across server
//! threads with the `redis` crate, and a stalled subscriber cut off by the
//! output limit while the publisher and other clients go on.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{read_until_quiet, Server};

/// At least `want` bytes from `s` (fewer if it stays silent for 3 s).
fn read_len(s: &mut TcpStream, want: usize) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 16 << 10];
    while got.len() < want {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// Connections `n` to redis-server and to Citadel, side by side.
struct Pair {
    redis: Vec<TcpStream>,
    citadel: Vec<TcpStream>,
    _servers: (RedisServer, Server),
}

impl Pair {
    fn start(connections: usize) -> Pair {
        let (redis, citadel) = (RedisServer::start(), Server::start(&[]));
        Pair {
            redis: (0..connections).map(|_| redis.raw()).collect(),
            citadel: (0..connections).map(|_| citadel.raw()).collect(),
            _servers: (redis, citadel),
        }
    }

    fn send(&mut self, conn: usize, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let cmd = encode_command(&args);
        self.redis[conn].write_all(&cmd).unwrap();
        self.citadel[conn].write_all(&cmd).unwrap();
    }

    /// What connection `conn` received from each server: Redis's bytes
    /// first (until quiet), then as many from Citadel; they must match.
    fn expect_same(&mut self, conn: usize, what: &str) -> Vec<u8> {
        let want = read_until_quiet(&mut self.redis[conn], Duration::from_millis(150));
        let got = read_len(&mut self.citadel[conn], want.len());
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want),
            "{what}: Citadel vs Redis"
        );
        want
    }

    /// Sends `args` on `conn` and compares the reply.
    fn same(&mut self, conn: usize, args: &[&str]) -> Vec<u8> {
        self.send(conn, args);
        self.expect_same(conn, &args.join(" "))
    }

    /// Sends `args` on `conn` and drops the replies (they may differ).
    fn ignore(&mut self, conn: usize, args: &[&str]) {
        self.send(conn, args);
        read_until_quiet(&mut self.redis[conn], Duration::from_millis(150));
        read_until_quiet(&mut self.citadel[conn], Duration::from_millis(300));
    }
}

#[test]
fn resp2_subscribe_mode_matches_redis() {
    let mut p = Pair::start(2);
    let (sub, publ) = (0, 1);
    p.same(sub, &["SUBSCRIBE", "alpha", "beta"]);
    p.same(sub, &["PSUBSCRIBE", "new?"]);
    p.same(sub, &["SUBSCRIBE", "alpha"]);
    p.same(sub, &["GET", "k"]);
    p.same(sub, &["CONFIG", "GET", "maxmemory"]);
    p.same(sub, &["PING"]);
    p.same(sub, &["PING", "hi"]);
    p.same(sub, &["SUBSCRIBE"]);
    p.same(publ, &["PUBLISH", "alpha", "hello"]);
    p.expect_same(sub, "pushed message");
    p.same(publ, &["PUBLISH", "news", "pattern"]);
    p.expect_same(sub, "pushed message");
    p.same(publ, &["PUBLISH", "nobody", "x"]);
    p.same(publ, &["PUBSUB", "NUMSUB", "alpha", "beta", "gamma"]);
    p.same(publ, &["PUBSUB", "NUMPAT"]);
    p.same(publ, &["PUBSUB", "CHANNELS", "al*"]);
    p.same(publ, &["PUBSUB", "CHANNELS", "zzz*"]);
    p.same(sub, &["UNSUBSCRIBE", "alpha", "gamma"]);
    p.same(sub, &["PUNSUBSCRIBE"]);
    p.same(sub, &["UNSUBSCRIBE"]);
    p.same(sub, &["UNSUBSCRIBE"]);
    p.same(sub, &["GET", "k"]);
    p.same(sub, &["SSUBSCRIBE", "shard"]);
    p.same(publ, &["SPUBLISH", "shard", "s-msg"]);
    p.same(publ, &["PUBLISH", "shard", "not-for-shards"]);
    p.expect_same(sub, "pushed message");
    p.same(publ, &["PUBSUB", "SHARDCHANNELS"]);
    p.same(publ, &["PUBSUB", "SHARDNUMSUB", "shard", "other"]);
    p.same(sub, &["SUNSUBSCRIBE", "shard"]);
    p.same(sub, &["PSUBSCRIBE", "x*"]);
    p.same(sub, &["RESET"]);
    p.same(publ, &["PUBLISH", "xy", "after-reset"]);
    p.same(publ, &["PUBSUB", "NUMPAT"]);
    p.same(sub, &["PING"]);
}

#[test]
fn resp3_subscribers_get_pushes_and_run_any_command() {
    let mut p = Pair::start(2);
    let (sub, publ) = (0, 1);
    p.ignore(sub, &["HELLO", "3"]);
    p.same(sub, &["SUBSCRIBE", "ch"]);
    p.same(sub, &["PSUBSCRIBE", "c*"]);
    p.same(sub, &["SET", "k", "v"]);
    p.same(sub, &["GET", "k"]);
    p.same(sub, &["PING"]);
    p.same(publ, &["PUBLISH", "ch", "both"]);
    p.expect_same(sub, "pushed message");
    p.same(sub, &["PUBLISH", "ch", "to-myself"]);
    p.same(sub, &["UNSUBSCRIBE", "ch"]);
    p.same(sub, &["PUNSUBSCRIBE", "c*"]);
    p.same(sub, &["UNSUBSCRIBE"]);
    p.same(sub, &["SSUBSCRIBE", "s"]);
    p.same(publ, &["SPUBLISH", "s", "m"]);
    p.expect_same(sub, "pushed message");
    p.same(sub, &["PUBSUB", "SHARDNUMSUB", "s"]);
}

/// Several subscribers (so both server threads have some) get every
/// message, through channels and patterns; PUBLISH counts them all.
#[test]
fn messages_reach_subscribers_on_every_thread() {
    let server = Server::start(&[]);
    let mut conns: Vec<redis::Connection> = (0..6).map(|_| server.client()).collect();
    let mut subs: Vec<redis::PubSub<'_>> = conns.iter_mut().map(|c| c.as_pubsub()).collect();
    for (i, sub) in subs.iter_mut().enumerate() {
        if i % 2 == 0 {
            sub.subscribe("events").unwrap();
        } else {
            sub.psubscribe("ev*").unwrap();
        }
        sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    }
    let mut publisher = server.client();
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(
        list.matches("flags=P db=0 sub=1 psub=0 ssub=0").count(),
        3,
        "{list}"
    );
    assert_eq!(
        list.matches("flags=P db=0 sub=0 psub=1 ssub=0").count(),
        3,
        "{list}"
    );
    for round in 0..20 {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("events")
            .arg(format!("m{round}"))
            .query(&mut publisher)
            .unwrap();
        assert_eq!(n, 6);
    }
    for (i, sub) in subs.iter_mut().enumerate() {
        for round in 0..20 {
            let msg = sub.get_message().unwrap();
            assert_eq!(msg.get_channel_name(), "events");
            assert_eq!(msg.get_payload::<String>().unwrap(), format!("m{round}"));
            let pattern: Option<String> = msg.get_pattern().unwrap();
            assert_eq!(pattern.is_some(), i % 2 == 1);
        }
    }
    let numsub: (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg("events")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(numsub.1, 3);
    drop(subs);
    drop(conns);
    // Disconnected subscribers are forgotten.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("events")
            .arg("late")
            .query(&mut publisher)
            .unwrap();
        if n == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "subscribers outlive their connections"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A subscriber that never reads is dropped at the output limit; the
/// publisher is never held up and other clients are served meanwhile.
#[test]
fn a_stalled_subscriber_is_cut_off_without_blocking_the_publisher() {
    let server = Server::start(&["--client-output-limit", "4mb"]);
    let mut stalled = server.raw();
    stalled
        .write_all(&encode_command(&[b"SUBSCRIBE", b"flood"]))
        .unwrap();
    let confirmation = read_len(&mut stalled, 1);
    assert!(confirmation.starts_with(b"*3\r\n$9\r\nsubscribe"));
    let mut live: Vec<redis::Connection> = (0..4).map(|_| server.client()).collect();
    let payload = vec![b'x'; 64 << 10];
    let started = Instant::now();
    let mut last = -1;
    for _ in 0..1000 {
        let n: i64 = redis::cmd("PUBLISH")
            .arg("flood")
            .arg(&payload[..])
            .query(&mut live[0])
            .unwrap();
        last = n;
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the publisher was held up: {:?}",
        started.elapsed()
    );
    for con in &mut live[1..] {
        let pong: String = redis::cmd("PING").query(con).unwrap();
        assert_eq!(pong, "PONG");
    }
    // 64 MB were published to it: it is gone by now (or very soon).
    let deadline = Instant::now() + Duration::from_secs(5);
    while last != 0 {
        assert!(Instant::now() < deadline, "the stalled subscriber was kept");
        std::thread::sleep(Duration::from_millis(20));
        last = redis::cmd("PUBLISH")
            .arg("flood")
            .arg("x")
            .query(&mut live[0])
            .unwrap();
    }
}

/// A RESP3 subscriber waiting on a slow plugin call gets messages
/// meanwhile, and stays parked: its next command runs after the reply.
#[test]
fn a_parked_resp3_subscriber_gets_messages_and_stays_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("echo.toml");
    let plugin = citadel_tests::echo_plugin_bin().display().to_string();
    std::fs::write(
        &config,
        format!("[[plugin]]\nname = \"echo\"\nexec = \"{plugin}\"\n"),
    )
    .unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    let mut sub = server.raw();
    sub.write_all(&encode_command(&[b"HELLO", b"3"])).unwrap();
    sub.write_all(&encode_command(&[b"SUBSCRIBE", b"ch"]))
        .unwrap();
    read_until_quiet(&mut sub, Duration::from_millis(300));
    let mut slow = encode_command(&[b"PLUGIN", b"CALL", b"echo", b"SLEEP 600"]);
    slow.extend(encode_command(&[b"PING"]));
    sub.write_all(&slow).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let mut publisher = server.client();
    let n: i64 = redis::cmd("PUBLISH")
        .arg("ch")
        .arg("while-parked")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(n, 1);
    let got = read_until_quiet(&mut sub, Duration::from_millis(1500));
    let text = String::from_utf8_lossy(&got);
    let push = ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$12\r\nwhile-parked\r\n";
    assert_eq!(text, format!("{push}$9\r\nSLEPT 600\r\n+PONG\r\n"));
}

/// CLIENT REPLY OFF and SKIP silence replies, not Pub/Sub: (un)subscription
/// confirmations and messages still arrive, in RESP2 and RESP3, and SKIP
/// still counts the subscription as its command.
#[test]
fn silenced_replies_still_carry_pubsub() {
    for resp in ["2", "3"] {
        let mut p = Pair::start(2);
        let (sub, publ) = (0, 1);
        p.ignore(sub, &["HELLO", resp]);
        p.same(sub, &["CLIENT", "REPLY", "OFF"]);
        p.same(sub, &["SUBSCRIBE", "channel"]);
        p.same(sub, &["PSUBSCRIBE", "ch*"]);
        p.same(publ, &["PUBLISH", "channel", "hello"]);
        p.expect_same(sub, "pushed messages");
        p.same(sub, &["UNSUBSCRIBE", "channel"]);
        p.same(sub, &["PUNSUBSCRIBE", "ch*"]);
        p.same(sub, &["PING"]);
        p.same(sub, &["CLIENT", "REPLY", "ON"]);
        p.same(sub, &["CLIENT", "REPLY", "SKIP"]);
        p.same(sub, &["SUBSCRIBE", "a"]);
        p.same(sub, &["PING"]);
        p.same(sub, &["UNSUBSCRIBE"]);
    }
}
