//! MONITOR end to end: the lines a monitor gets (RESP2 and RESP3) byte for
//! byte against a real redis-server once timestamps and client addresses
//! are masked (quoting of binary arguments, redacted passwords, hidden
//! admin commands, MULTI/EXEC order), what a monitor may still run, RESET;
//! monitors on each server thread seeing clients of both; a monitor that
//! stops reading cut off while the server goes on; a Unix socket client;
//! `redis-cli monitor`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{read_until_quiet, Server};

fn quiet(s: &mut TcpStream, ms: u64) -> Vec<u8> {
    read_until_quiet(s, Duration::from_millis(ms))
}

fn cmd(args: &[&[u8]]) -> Vec<u8> {
    encode_command(args)
}

/// Masks what differs between two runs in a monitor's stream: each line's
/// timestamp and client address (`+<secs>.<micros> [0 <addr>]`).
fn mask(stream: &[u8]) -> String {
    let text = String::from_utf8_lossy(stream);
    let mut out = String::new();
    for line in text.split_inclusive("\r\n") {
        match (line.strip_prefix('+'), line.find(" ["), line.find("] ")) {
            (Some(rest), Some(open), Some(close))
                if open < close && rest.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                // The database stays: lines name the one the command ran in.
                let db = line[open + 2..close].split(' ').next().unwrap_or("");
                out.push_str(&format!("+<time> [{db} <addr>"));
                out.push_str(&line[close..]);
            }
            _ => out.push_str(line),
        }
    }
    out
}

/// The same conversation with a redis-server and with Citadel: one client
/// runs `script`, two monitors (RESP2, RESP3) watch; then each monitor's
/// stream, masked, must be the same on both.
struct Side {
    client: TcpStream,
    monitors: Vec<TcpStream>,
}

impl Side {
    fn open(connect: impl Fn() -> TcpStream) -> Side {
        let mut monitors = Vec::new();
        for resp3 in [false, true] {
            let mut m = connect();
            if resp3 {
                m.write_all(&cmd(&[b"HELLO", b"3"])).unwrap();
                quiet(&mut m, 200);
            }
            m.write_all(&cmd(&[b"MONITOR"])).unwrap();
            assert_eq!(quiet(&mut m, 200), b"+OK\r\n");
            monitors.push(m);
        }
        Side {
            client: connect(),
            monitors,
        }
    }
}

fn compare(redis: &mut Side, citadel: &mut Side, what: &str) {
    for (i, (r, c)) in redis
        .monitors
        .iter_mut()
        .zip(&mut citadel.monitors)
        .enumerate()
    {
        let want = mask(&quiet(r, 400));
        let got = mask(&quiet(c, 400));
        assert!(
            !want.is_empty(),
            "{what}: redis-server's monitor {i} got nothing"
        );
        assert_eq!(got, want, "{what}: monitor {i}, Citadel vs Redis");
    }
}

#[test]
fn monitor_lines_match_redis() {
    let redis_server = RedisServer::start();
    let citadel_server = Server::start(&[]);
    let mut redis = Side::open(|| redis_server.raw());
    let mut citadel = Side::open(|| citadel_server.raw());

    let binary: &[u8] = b"v\n\"\\\t\r\x07\x08\x00\x7f\xff \xc3\xa9~";
    let script: Vec<Vec<&[u8]>> = vec![
        vec![b"SET", b"k", binary],
        vec![b"GET", b"k"],
        vec![b"get", b"k"],
        vec![b"SET", b"", b"empty key"],
        vec![b"AUTH", b"secret"],
        vec![b"AUTH", b"user", b"secret"],
        vec![b"AUTH", b"a", b"b", b"c"],
        vec![b"HELLO", b"2", b"AUTH", b"default", b"secret"],
        vec![
            b"HELLO", b"2", b"SETNAME", b"n", b"AUTH", b"u", b"p", b"BAD",
        ],
        vec![b"HELLO", b"3", b"AUTH", b"u"],
        vec![b"HELLO", b"2"],
        // admin: never shown
        vec![b"CONFIG", b"GET", b"maxmemory"],
        vec![b"CLIENT", b"LIST"],
        vec![b"SLOWLOG", b"LEN"],
        vec![b"CONFIG", b"HELP"],
        // refused before running: not shown
        vec![b"NOSUCHCOMMAND", b"x"],
        vec![b"GET"],
        vec![b"CLIENT", b"NOSUCH"],
        // ran and failed: shown
        vec![b"INCR", b"k"],
        vec![b"PING"],
        vec![b"ECHO", b"\x01"],
        vec![b"SELECT", b"0"],
        vec![b"CLIENT", b"SETNAME", b"watched"],
        vec![b"PUBLISH", b"chan", b"msg"],
        // a transaction: MULTI now, its commands at EXEC, in order, then EXEC
        vec![b"MULTI"],
        vec![b"SET", b"a", b"1"],
        vec![b"INCR", b"a"],
        vec![b"PING"],
        vec![b"CONFIG", b"GET", b"port"],
        vec![b"GET", b"a"],
        vec![b"EXEC"],
        vec![b"MULTI"],
        vec![b"SET", b"b", b"1"],
        vec![b"DISCARD"],
        vec![b"MULTI"],
        vec![b"GET"],
        vec![b"EXEC"],
        vec![b"EXEC"],
        vec![b"MULTI"],
        vec![b"SET", b"c", b"1"],
        vec![b"KEYS", b"*"],
        vec![b"EXEC"],
        // a script: its line, then each command it ran, from "lua"
        vec![
            b"EVAL",
            b"redis.call('set', KEYS[1], 'x') return redis.call('get', KEYS[1])",
            b"1",
            b"s",
        ],
        // lines name the database the command ran in, a script's own too
        vec![b"SELECT", b"2"],
        vec![b"SET", b"in2", b"x"],
        vec![
            b"EVAL",
            b"redis.call('select', '3') return redis.call('set', KEYS[1], 'y')",
            b"1",
            b"in3",
        ],
        vec![b"GET", b"in2"],
        vec![b"SELECT", b"0"],
    ];
    let mut batch = Vec::new();
    for args in &script {
        batch.extend(cmd(args));
    }
    for side in [&mut redis, &mut citadel] {
        side.client.write_all(&batch).unwrap();
        quiet(&mut side.client, 300);
    }
    compare(&mut redis, &mut citadel, "a client's commands");

    // A transaction aborted by a watched key: MULTI and EXEC only.
    for side in [&mut redis, &mut citadel] {
        side.client.write_all(&cmd(&[b"WATCH", b"w"])).unwrap();
        quiet(&mut side.client, 100);
    }
    let mut writers = [redis_server.raw(), citadel_server.raw()];
    for (side, w) in [&mut redis, &mut citadel].into_iter().zip(&mut writers) {
        w.write_all(&cmd(&[b"SET", b"w", b"changed"])).unwrap();
        quiet(w, 100);
        let mut tx = cmd(&[b"MULTI"]);
        tx.extend(cmd(&[b"GET", b"w"]));
        tx.extend(cmd(&[b"EXEC"]));
        side.client.write_all(&tx).unwrap();
        quiet(&mut side.client, 200);
    }
    compare(&mut redis, &mut citadel, "a transaction aborted by WATCH");

    // What a monitor may run itself: each reply, then its own line.
    let own: Vec<Vec<&[u8]>> = vec![
        vec![b"PING"],
        vec![b"ECHO", b"hi"],
        vec![b"GET", b"k"],
        vec![b"SET", b"k", b"v"],
        vec![b"DBSIZE"],
        vec![b"PUBLISH", b"c", b"x"],
        vec![b"MONITOR"],
        vec![b"MULTI"],
        vec![b"GET", b"k"],
        vec![b"EXEC"],
        vec![b"CLIENT", b"REPLY", b"SKIP"],
        vec![b"PING", b"skipped"],
        vec![b"PING", b"b"],
        vec![b"CLIENT", b"REPLY", b"OFF"],
        vec![b"PING", b"c"],
        vec![b"CLIENT", b"REPLY", b"ON"],
        vec![b"CLIENT", b"GETNAME"],
    ];
    for side in [&mut redis, &mut citadel] {
        for args in &own {
            side.monitors[0].write_all(&cmd(args)).unwrap();
            // One at a time: the other monitor's lines stay in order.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    compare(&mut redis, &mut citadel, "a monitor's own commands");

    // RESET ends monitoring: the reply, and no more lines.
    for side in [&mut redis, &mut citadel] {
        side.monitors[0].write_all(&cmd(&[b"RESET"])).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        side.client
            .write_all(&cmd(&[b"GET", b"after-reset"]))
            .unwrap();
        quiet(&mut side.client, 200);
    }
    compare(&mut redis, &mut citadel, "RESET");
    for side in [&mut redis, &mut citadel] {
        side.monitors[0].write_all(&cmd(&[b"GET", b"k"])).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        side.monitors[1].write_all(&cmd(&[b"QUIT"])).unwrap();
    }
    compare(&mut redis, &mut citadel, "after RESET, QUIT");
}

/// A client's `io-thread` (CLIENT INFO).
fn io_thread(s: &mut TcpStream) -> usize {
    s.write_all(&cmd(&[b"CLIENT", b"INFO"])).unwrap();
    let info = String::from_utf8(quiet(s, 100)).unwrap();
    let at = info.find("io-thread=").expect("io-thread in CLIENT INFO") + 10;
    info[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Connections until each of the server's 2 threads serves `per_thread`.
fn spread(server: &Server, per_thread: usize) -> [Vec<TcpStream>; 2] {
    let mut by_thread: [Vec<TcpStream>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..200 {
        if by_thread.iter().all(|v| v.len() >= per_thread) {
            return by_thread;
        }
        let mut s = server.raw();
        let t = io_thread(&mut s);
        if by_thread[t].len() < per_thread {
            by_thread[t].push(s);
        }
    }
    panic!("connections did not spread over both threads");
}

#[test]
fn monitors_see_clients_of_every_thread() {
    let server = Server::start(&[]);
    let [mut zero, mut one] = spread(&server, 3);
    // A monitor on each thread; the other connections run commands.
    let mut monitors = vec![zero.remove(0), one.remove(0)];
    for m in &mut monitors {
        m.write_all(&cmd(&[b"MONITOR"])).unwrap();
        assert_eq!(quiet(m, 200), b"+OK\r\n");
    }
    let clients: Vec<TcpStream> = zero.into_iter().chain(one).collect();
    let mut keys = Vec::new();
    for round in 0..5 {
        for (i, c) in clients.iter().enumerate() {
            let key = format!("k{round}-{i}");
            let mut c = c.try_clone().unwrap();
            c.write_all(&cmd(&[b"SET", key.as_bytes(), b"v"])).unwrap();
            keys.push(key);
        }
    }
    for c in &clients {
        let mut c = c.try_clone().unwrap();
        quiet(&mut c, 100);
    }
    for (t, m) in monitors.iter_mut().enumerate() {
        let seen = String::from_utf8(quiet(m, 300)).unwrap();
        for key in &keys {
            let want = format!("\"SET\" \"{key}\" \"v\"\r\n");
            assert!(
                seen.contains(&want),
                "monitor on thread {t} missed {key}: {seen}"
            );
        }
        // Each client's commands in the order it sent them.
        for i in 0..clients.len() {
            let order: Vec<usize> = (0..5)
                .map(|r| seen.find(&format!("\"k{r}-{i}\"")).unwrap())
                .collect();
            assert!(
                order.windows(2).all(|w| w[0] < w[1]),
                "out of order: {seen}"
            );
        }
    }
    // A monitor that disconnects is forgotten: the others go on.
    drop(monitors.remove(1));
    std::thread::sleep(Duration::from_millis(100));
    let mut c = clients[0].try_clone().unwrap();
    c.write_all(&cmd(&[b"GET", b"still"])).unwrap();
    quiet(&mut c, 100);
    let seen = String::from_utf8(quiet(&mut monitors[0], 300)).unwrap();
    assert!(seen.ends_with("\"GET\" \"still\"\r\n"), "{seen}");
}

/// A monitor that never reads is dropped at the output limit; the clients
/// whose commands it would show are never held up.
#[test]
fn a_stalled_monitor_is_cut_off_without_slowing_the_server() {
    let server = Server::start(&["--client-output-limit", "4mb"]);
    let mut stalled = server.raw();
    stalled.write_all(&cmd(&[b"CLIENT", b"ID"])).unwrap();
    let id = String::from_utf8(quiet(&mut stalled, 200)).unwrap();
    let id = id.trim().trim_start_matches(':').to_string();
    stalled.write_all(&cmd(&[b"MONITOR"])).unwrap();
    assert_eq!(quiet(&mut stalled, 200), b"+OK\r\n");
    let mut live: Vec<_> = (0..4).map(|_| server.client()).collect();
    let payload = vec![b'x'; 64 << 10];
    let started = Instant::now();
    for i in 0..1000 {
        let _: () = citadel_tests::redis::cmd("SET")
            .arg(format!("big{}", i % 16))
            .arg(&payload[..])
            .query(&mut live[i % 4])
            .unwrap();
    }
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "clients were held up by the monitor: {:?}",
        started.elapsed()
    );
    // 64 MB of lines were due to it: it is gone by now (or very soon).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let list: String = citadel_tests::redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut live[0])
            .unwrap();
        if !list.lines().any(|l| l.starts_with(&format!("id={id} "))) {
            break;
        }
        assert!(Instant::now() < deadline, "the stalled monitor was kept");
        std::thread::sleep(Duration::from_millis(20));
    }
    let pong: String = citadel_tests::redis::cmd("PING")
        .query(&mut live[1])
        .unwrap();
    assert_eq!(pong, "PONG");
}

/// A Unix socket client is shown as `unix:<the server's socket>`, as Redis
/// does; `redis-cli monitor` prints the lines.
#[test]
fn unix_socket_clients_and_redis_cli_monitor() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("citadel.sock");
    let path = sock.to_str().unwrap().to_string();
    let server = Server::start(&["--unixsocket", &path]);
    let mut cli = Command::new("redis-cli")
        .args(["-p", &server.port.to_string(), "monitor"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-cli (tests/run.sh installs it)");
    let mut lines = BufReader::new(cli.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "OK");
    let mut unix = UnixStream::connect(&sock).unwrap();
    unix.write_all(&cmd(&[b"SET", b"over unix", b"\"q\""]))
        .unwrap();
    let mut reply = [0u8; 5];
    unix.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+OK\r\n");
    let line = lines.next().unwrap().unwrap();
    let want = format!(" [0 unix:{path}] \"SET\" \"over unix\" \"\\\"q\\\"\"");
    assert!(line.ends_with(&want), "{line:?} vs {want:?}");
    let (secs, micros) = line[..line.find(' ').unwrap()].split_once('.').unwrap();
    assert!(secs.parse::<u64>().is_ok() && micros.len() == 6, "{line}");
    cli.kill().unwrap();
    cli.wait().unwrap();
}

/// RPC requests reach monitors too, each operation as the Redis command
/// that does the same, from the RPC client's address.
#[test]
fn monitors_see_rpc_requests_as_redis_commands() {
    use citadel_client::{Client, Endpoint, SetOptions};
    let server = Server::start(&[]);
    let mut m = server.raw();
    m.write_all(&cmd(&[b"MONITOR"])).unwrap();
    assert_eq!(quiet(&mut m, 200), b"+OK\r\n");
    let client = Client::connect(Endpoint::tcp(format!("127.0.0.1:{}", server.rpc_port))).unwrap();
    let ttl = SetOptions::new().ttl(Duration::from_millis(1500)).nx();
    assert!(client.set_with("k", "v", ttl).unwrap());
    assert_eq!(client.get("k").unwrap(), Some(b"v".to_vec()));
    assert_eq!(client.incr("n", -2).unwrap(), -2);
    client.mset([("a", "1"), ("b", "2")]).unwrap();
    let lines = mask(&quiet(&mut m, 300));
    let commands: Vec<&str> = lines
        .lines()
        .map(|l| l.split_once("] ").map_or(l, |(_, c)| c))
        .filter(|c| !c.starts_with("\"HELLO\""))
        .collect();
    assert_eq!(
        commands,
        [
            r#""SET" "k" "v" "PX" "1500" "NX""#,
            r#""GET" "k""#,
            r#""INCRBY" "n" "-2""#,
            r#""MSET" "a" "1" "b" "2""#,
        ],
        "{lines}"
    );
}
