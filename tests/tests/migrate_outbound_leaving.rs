//! A client that leaves while its MIGRATE waits for the target: it is
//! killed (CLIENT KILL) or closes its socket. Either way the server goes
//! on serving the others, and once the target answers the keys it
//! restored are deleted as for a client still there (moved, not copied);
//! the next MIGRATE works.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{redis, Server};
use redis::{Connection, Value};

fn run(con: &mut Connection, args: &[&str]) -> redis::RedisResult<Value> {
    let mut cmd = redis::cmd(args[0]);
    args[1..].iter().for_each(|a| {
        cmd.arg(*a);
    });
    cmd.query(con)
}

fn send(stream: &mut TcpStream, args: &[&str]) {
    let words: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    stream.write_all(&encode_command(&words)).unwrap();
}

/// Polls `done` until it holds; fails after 20 s (it never happened).
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// This connection's client id (CLIENT ID).
fn client_id(stream: &mut TcpStream) -> String {
    send(stream, &["CLIENT", "ID"]);
    let mut reply = Vec::new();
    let mut byte = [0u8; 1];
    while !reply.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        reply.push(byte[0]);
    }
    let text = String::from_utf8(reply).unwrap();
    text.trim_start_matches(':').trim_end().to_string()
}

/// Client `id` is parked on its MIGRATE (CLIENT LIST shows it there).
fn parked_on_migrate(con: &mut Connection, id: &str) -> bool {
    let Ok(Value::BulkString(list)) = run(con, &["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST");
    };
    let list = String::from_utf8_lossy(&list).into_owned();
    let prefix = format!("id={id} ");
    list.lines()
        .any(|l| l.starts_with(&prefix) && l.contains(" cmd=migrate "))
}

/// How the MIGRATE's client leaves.
#[derive(Debug, Clone, Copy)]
enum Leave {
    /// Another client sends CLIENT KILL ID.
    Killed,
    /// It closes its socket.
    Closed,
}

/// A real redis-server target, stopped (SIGSTOP) while the MIGRATE waits.
#[test]
fn a_client_killed_or_gone_while_its_migrate_waits_still_moves_its_keys() {
    let source = Server::start(&["--threads", "1"]);
    let target = RedisServer::start();
    let port = target.port.to_string();
    let mut other = source.client();
    for (n, leave) in [Leave::Killed, Leave::Closed].into_iter().enumerate() {
        let (s, h) = (format!("s{n}"), format!("h{n}"));
        run(&mut other, &["SET", &s, "v", "PX", "600000"]).unwrap();
        run(&mut other, &["HSET", &h, "f", "1", "g", "2"]).unwrap();
        target.signal("STOP");
        let mut leaving = source.raw();
        let id = client_id(&mut leaving);
        let migrate = ["MIGRATE", "127.0.0.1", &port, "", "0", "30000", "KEYS"];
        send(&mut leaving, &[&migrate[..], &[s.as_str(), &h]].concat());
        wait_until("the MIGRATE is parked", || {
            parked_on_migrate(&mut other, &id)
        });
        match leave {
            Leave::Killed => {
                let kill = run(&mut other, &["CLIENT", "KILL", "ID", &id]).unwrap();
                assert_eq!(kill, Value::Int(1), "{leave:?}");
                leaving
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let read = leaving.read(&mut [0u8; 64]);
                let closed = match &read {
                    Ok(n) => *n == 0,
                    Err(e) => e.kind() == ErrorKind::ConnectionReset,
                };
                assert!(closed, "the killed client's socket is closed: {read:?}");
            }
            Leave::Closed => drop(leaving),
        }
        // Served at once while the target is stopped; the keys still here.
        let pong = run(&mut other, &["PING"]).unwrap();
        assert_eq!(pong, Value::SimpleString("PONG".into()));
        let value = run(&mut other, &["GET", &s]).unwrap();
        assert_eq!(value, Value::BulkString(b"v".to_vec()), "{leave:?}");
        target.signal("CONT");
        wait_until(&format!("the keys left the source ({leave:?})"), || {
            run(&mut other, &["EXISTS", &s, &h]).unwrap() == Value::Int(0)
        });
        let mut there = redis::Client::open(format!("redis://127.0.0.1:{port}/0"))
            .unwrap()
            .get_connection()
            .unwrap();
        let value = run(&mut there, &["GET", &s]).unwrap();
        assert_eq!(value, Value::BulkString(b"v".to_vec()), "{leave:?}");
        let Value::Int(pttl) = run(&mut there, &["PTTL", &s]).unwrap() else {
            panic!("PTTL");
        };
        assert!(pttl > 0 && pttl <= 600_000, "its TTL came along: {pttl}");
        let hash: Vec<String> = redis::cmd("HGETALL").arg(&h).query(&mut there).unwrap();
        assert_eq!(hash, ["f", "1", "g", "2"], "{leave:?}");

        // A new client's MIGRATE works (the cached connection too).
        let mut next = source.client();
        let key = format!("next{n}");
        run(&mut next, &["SET", &key, "w"]).unwrap();
        let migrated = run(
            &mut next,
            &["MIGRATE", "127.0.0.1", &port, &key, "0", "5000"],
        );
        assert_eq!(migrated.unwrap(), Value::Okay, "{leave:?}");
        let value = run(&mut there, &["GET", &key]).unwrap();
        assert_eq!(value, Value::BulkString(b"w".to_vec()));
    }
    let log = source.log();
    assert!(!log.contains("panic"), "{log}");
}
/// A client that closes its connection while its MIGRATE waits for the
/// target: the connection is kept until the target answers, and the
/// keys it restored are deleted as for a client still there.
#[test]
fn a_client_that_leaves_still_moves_its_keys() {
    let source = Server::start(&[]);
    let mut src = source.client();
    run(&mut src, &["SET", "gone", "v"]).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let mut leaving = source.raw();
    let migrate: &[&[u8]] = &[
        b"MIGRATE",
        b"127.0.0.1",
        port.as_bytes(),
        b"gone",
        b"0",
        b"10000",
    ];
    leaving.write_all(&encode_command(migrate)).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(7).any(|w| w == b"RESTORE") {
        let n = conn.read(&mut chunk).unwrap();
        assert!(n > 0, "the source closed");
        got.extend_from_slice(&chunk[..n]);
    }
    drop(leaving);
    conn.write_all(b"+OK\r\n+OK\r\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while run(&mut src, &["EXISTS", "gone"]).unwrap() != Value::Int(0) {
        assert!(Instant::now() < deadline, "the key stayed");
        std::thread::sleep(Duration::from_millis(10));
    }
}
