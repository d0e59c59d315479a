//! Client-side helpers shared by the read-through tests: waiting for a
//! condition, INFO fields, exact RESP replies on raw sockets, and many
//! concurrent GETs.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::{read_line, Server};

/// `GET key` through the redis crate.
pub fn get(con: &mut redis::Connection, key: &str) -> redis::RedisResult<Option<String>> {
    redis::cmd("GET").arg(key).query(con)
}

/// `GETEX key EX seconds`, then `TTL key`: the value and the TTL it left.
pub fn getex_ex(con: &mut redis::Connection, key: &str, seconds: u64) -> (Option<String>, i64) {
    let v: Option<String> = redis::cmd("GETEX")
        .arg(key)
        .arg("EX")
        .arg(seconds)
        .query(con)
        .unwrap();
    let ttl: i64 = redis::cmd("TTL").arg(key).query(con).unwrap();
    (v, ttl)
}

/// Polls `ok` every 20 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `INFO readthrough`.
pub fn readthrough_info(server: &Server) -> String {
    redis::cmd("INFO")
        .arg("readthrough")
        .query(&mut server.client())
        .unwrap()
}

/// Waits until `GET key` returns a value: the loader is up.
pub fn wait_loaded(server: &Server, key: &str) {
    wait_until("the loader to answer", Duration::from_secs(20), || {
        get(&mut server.client(), key).is_ok_and(|v| v.is_some())
    });
}

/// The number after `key:` in an INFO text.
pub fn info_field(info: &str, key: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} not in {info}"))
        .trim()
        .parse()
        .unwrap()
}

/// Writes `GET key` on `s`.
pub fn send_get(s: &mut TcpStream, key: &str) {
    let cmd = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    s.write_all(cmd.as_bytes()).unwrap();
}

/// One reply, as text: a bulk string's value, `(nil)` for a null bulk,
/// else the reply line without its CRLF (e.g. `-ERR origin timeout: ...`).
pub fn read_reply(s: &mut TcpStream) -> String {
    let head = read_line(s);
    match head.strip_prefix('$') {
        Some(len) if len.starts_with('-') => "(nil)".to_string(),
        Some(_) => read_line(s).trim_end().to_string(),
        None => head.trim_end().to_string(),
    }
}

/// `GET key` on a fresh connection: its reply as [`read_reply`] shows it.
pub fn raw_get(server: &Server, key: &str) -> String {
    let mut s = server.raw();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    send_get(&mut s, key);
    read_reply(&mut s)
}

/// Sends `GET key` on `n` fresh connections at once; returns their replies.
pub fn concurrent_gets(server: &Server, keys: impl Fn(usize) -> String, n: usize) -> Vec<String> {
    let mut conns: Vec<TcpStream> = (0..n).map(|_| server.raw()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        send_get(c, &keys(i));
    }
    conns
        .iter_mut()
        .map(|c| {
            c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            read_reply(c)
        })
        .collect()
}

/// A field of `PLUGIN INFO name` (e.g. `pid`, `restarts`).
pub fn plugin_info(server: &Server, name: &str, field: &str) -> String {
    let flat: Vec<String> = redis::cmd("PLUGIN")
        .arg("INFO")
        .arg(name)
        .query(&mut server.client())
        .unwrap();
    flat.chunks(2)
        .find(|kv| kv[0] == field)
        .unwrap_or_else(|| panic!("{field} not in PLUGIN INFO {name}: {flat:?}"))[1]
        .clone()
}

/// Runs `work` while another thread SIGKILLs plugin `name` `after` it
/// starts; returns what `work` returned once the kill has happened.
pub fn kill_plugin_during<T>(
    server: &Server,
    name: &str,
    after: Duration,
    work: impl FnOnce() -> T,
) -> T {
    let pid = plugin_info(server, name, "pid");
    let killer = std::thread::spawn(move || {
        std::thread::sleep(after);
        std::process::Command::new("kill")
            .args(["-9", &pid])
            .status()
            .unwrap()
    });
    let out = work();
    assert!(killer.join().unwrap().success(), "kill -9 {name}");
    out
}

/// `SET k v`, then `n` times `GET k`, on one connection.
pub fn set_then_gets(server: &Server, n: usize) {
    let mut con = server.client();
    let _: () = redis::cmd("SET").arg("k").arg("v").query(&mut con).unwrap();
    for _ in 0..n {
        let _: String = redis::cmd("GET").arg("k").query(&mut con).unwrap();
    }
}
