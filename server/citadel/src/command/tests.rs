//! Command tests through `Session::process` against a real cache in a
//! temporary file.

use std::sync::Arc;

use citadel_cache::{unix_millis, Cache, CacheConfig};

use citadel_net::Progress;
use citadel_settings::cli::{self, Invocation};

use super::{ConnInfo, Session};
use crate::plugin::PluginClient;
use crate::readthrough::ThreadLoads;
use crate::state::ServerState;
use crate::stats::ThreadStats;
use crate::thread::ThreadCtx;
use crate::wait::Inboxes;

pub struct Harness {
    _dir: tempfile::TempDir,
    pub state: Arc<ServerState>,
    pub ctx: ThreadCtx,
    pub session: Session,
    next_id: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness::with_password(None)
    }

    pub fn with_password(requirepass: Option<&str>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let (cache, _) = Cache::open(CacheConfig {
            path: dir.path().join("test.cache"),
            max_memory: 64 << 20,
            max_value_size: 1 << 20,
            fresh: true,
        })
        .unwrap();
        let mut args = vec!["citadel", "--maxclients", "100", "--max-value-size", "1mb"];
        if let Some(pass) = requirepass {
            args.extend(["--requirepass", pass]);
        }
        let Ok(Ok(Invocation::Run(loaded))) = cli::parse(args) else {
            panic!("test settings");
        };
        let stats = Arc::new(ThreadStats::default());
        let inboxes = Arc::new(Inboxes::new(1).unwrap());
        let state = ServerState::new(
            cache.clone(),
            loaded.server,
            None,
            vec![stats.clone()],
            inboxes.clone(),
            0,
        );
        let mut handle = cache.handle().unwrap();
        handle.set_clock(unix_millis());
        let ctx = ThreadCtx::new(
            0,
            handle,
            stats,
            PluginClient::new(0, None),
            ThreadLoads::new(0, None),
            crate::pipeline::ThreadPipelines::new(
                0,
                state.pipeline_flights.clone(),
                state.pipeline_spool.clone(),
            ),
            inboxes,
            state.pubsub.clone(),
            state.monitors.clone(),
        );
        let session = Session::new(&state, conn_info(1));
        Harness {
            _dir: dir,
            state,
            ctx,
            session,
            next_id: 2,
        }
    }

    pub fn new_session(&mut self) -> Session {
        self.next_id += 1;
        Session::new(&self.state, conn_info(self.next_id))
    }

    /// Sends raw bytes on the main session.
    pub fn raw(&mut self, input: &[u8]) -> (String, Progress) {
        let mut out = Vec::new();
        let p = self.session.process(&mut self.ctx, input, &mut out);
        (String::from_utf8_lossy(&out).into_owned(), p)
    }

    /// Sends one command as a multibulk request; returns the reply text.
    pub fn cmd(&mut self, args: &[&str]) -> String {
        let req = encode(args);
        let (out, p) = self.raw(&req);
        assert_eq!(p.consumed, req.len());
        out
    }
}

fn conn_info(id: u64) -> ConnInfo {
    ConnInfo {
        id,
        peer: citadel_net::Endpoint::Ip(format!("127.0.0.1:{}", 40000 + id).parse().unwrap()),
        local: citadel_net::Endpoint::Ip("127.0.0.1:6379".parse().unwrap()),
        thread: 0,
    }
}

pub fn encode(args: &[&str]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend(format!("${}\r\n{a}\r\n", a.len()).bytes());
    }
    v
}

pub(crate) fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

pub(crate) const OK: &str = "+OK\r\n";
const NIL: &str = "$-1\r\n";

#[test]
fn get_set_and_options() {
    let mut h = Harness::new();
    assert_eq!(h.cmd(&["GET", "k"]), NIL);
    assert_eq!(h.cmd(&["SET", "k", "v"]), OK);
    assert_eq!(h.cmd(&["get", "k"]), bulk("v"));
    assert_eq!(h.cmd(&["SET", "k", "w", "NX"]), NIL);
    assert_eq!(h.cmd(&["SET", "k", "w", "XX", "GET"]), bulk("v"));
    assert_eq!(h.cmd(&["SET", "n", "w", "XX"]), NIL);
    assert_eq!(h.cmd(&["SET", "n", "1", "NX", "GET"]), NIL);
    assert_eq!(h.cmd(&["GET", "n"]), bulk("1"));
    assert_eq!(
        h.cmd(&["SET", "k", "v", "NX", "XX"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(h.cmd(&["SET", "k", "v", "EX"]), "-ERR syntax error\r\n");
    assert_eq!(
        h.cmd(&["SET", "k", "v", "EX", "1", "PX", "1"]),
        "-ERR syntax error\r\n"
    );
    assert_eq!(
        h.cmd(&["SET", "k", "v", "EX", "0"]),
        "-ERR invalid expire time in 'set' command\r\n"
    );
    assert_eq!(
        h.cmd(&["SET", "k", "v", "EX", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(h.cmd(&["SET", "t", "v", "EX", "100"]), OK);
    assert_eq!(h.cmd(&["TTL", "t"]), ":100\r\n");
    assert_eq!(h.cmd(&["SET", "t", "w", "KEEPTTL"]), OK);
    assert_eq!(h.cmd(&["TTL", "t"]), ":100\r\n");
    assert_eq!(h.cmd(&["SET", "t", "w"]), OK);
    assert_eq!(h.cmd(&["TTL", "t"]), ":-1\r\n");
    assert_eq!(h.cmd(&["SET", "t", "v", "PXAT", "1"]), OK);
    assert_eq!(h.cmd(&["EXISTS", "t"]), ":0\r\n");
    assert_eq!(
        h.cmd(&["GET"]),
        "-ERR wrong number of arguments for 'get' command\r\n"
    );
}

#[test]
fn string_family() {
    let mut h = Harness::new();
    assert_eq!(h.cmd(&["SETNX", "a", "1"]), ":1\r\n");
    assert_eq!(h.cmd(&["SETNX", "a", "2"]), ":0\r\n");
    assert_eq!(h.cmd(&["SETEX", "b", "10", "x"]), OK);
    assert!(h.cmd(&["PTTL", "b"]).starts_with(':'));
    assert_eq!(
        h.cmd(&["SETEX", "b", "-1", "x"]),
        "-ERR invalid expire time in 'setex' command\r\n"
    );
    assert_eq!(h.cmd(&["PSETEX", "b", "5000", "y"]), OK);
    assert_eq!(h.cmd(&["TTL", "b"]), ":5\r\n");
    assert_eq!(h.cmd(&["GETSET", "b", "z"]), bulk("y"));
    assert_eq!(h.cmd(&["TTL", "b"]), ":-1\r\n");
    assert_eq!(h.cmd(&["GETDEL", "b"]), bulk("z"));
    assert_eq!(h.cmd(&["GETDEL", "b"]), NIL);
    assert_eq!(h.cmd(&["GETEX", "a", "EX", "50"]), bulk("1"));
    assert_eq!(h.cmd(&["TTL", "a"]), ":50\r\n");
    assert_eq!(h.cmd(&["GETEX", "a", "PERSIST"]), bulk("1"));
    assert_eq!(h.cmd(&["TTL", "a"]), ":-1\r\n");
    assert_eq!(h.cmd(&["GETEX", "a", "NX"]), "-ERR syntax error\r\n");
    assert_eq!(h.cmd(&["GETEX", "a", "PXAT", "1"]), bulk("1"));
    assert_eq!(h.cmd(&["GET", "a"]), NIL);
    assert_eq!(h.cmd(&["MSET", "x", "1", "y", "2"]), OK);
    assert_eq!(
        h.cmd(&["MSET", "x", "1", "y"]),
        "-ERR wrong number of arguments for 'mset' command\r\n"
    );
    assert_eq!(
        h.cmd(&["MGET", "x", "nope", "y"]),
        format!("*3\r\n{}{NIL}{}", bulk("1"), bulk("2"))
    );
    assert_eq!(h.cmd(&["MSETNX", "x", "3", "z", "4"]), ":0\r\n");
    assert_eq!(h.cmd(&["MSETNX", "z", "3", "w", "4"]), ":1\r\n");
    assert_eq!(
        h.cmd(&["MGET", "z", "w"]),
        format!("*2\r\n{}{}", bulk("3"), bulk("4"))
    );
}

#[test]
fn counters() {
    let mut h = Harness::new();
    assert_eq!(h.cmd(&["INCR", "c"]), ":1\r\n");
    assert_eq!(h.cmd(&["INCRBY", "c", "10"]), ":11\r\n");
    assert_eq!(h.cmd(&["DECR", "c"]), ":10\r\n");
    assert_eq!(h.cmd(&["DECRBY", "c", "20"]), ":-10\r\n");
    assert_eq!(
        h.cmd(&["DECRBY", "c", "-9223372036854775808"]),
        "-ERR decrement would overflow\r\n"
    );
    assert_eq!(h.cmd(&["SET", "c", "9223372036854775807"]), OK);
    assert_eq!(
        h.cmd(&["INCR", "c"]),
        "-ERR increment or decrement would overflow\r\n"
    );
    assert_eq!(h.cmd(&["SET", "c", " 1"]), OK);
    assert_eq!(
        h.cmd(&["INCR", "c"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(
        h.cmd(&["INCRBY", "c", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(h.cmd(&["SET", "f", "10.50", "EX", "100"]), OK);
    assert_eq!(h.cmd(&["INCRBYFLOAT", "f", "0.1"]), bulk("10.6"));
    assert_eq!(h.cmd(&["INCRBYFLOAT", "f", "-5"]), bulk("5.6"));
    assert_eq!(h.cmd(&["TTL", "f"]), ":100\r\n");
    assert_eq!(h.cmd(&["SET", "f", "5.0e3"]), OK);
    assert_eq!(h.cmd(&["INCRBYFLOAT", "f", "2.0e2"]), bulk("5200"));
    assert_eq!(
        h.cmd(&["INCRBYFLOAT", "f", "abc"]),
        "-ERR value is not a valid float\r\n"
    );
    assert_eq!(
        h.cmd(&["INCRBYFLOAT", "f", "inf"]),
        "-ERR increment would produce NaN or Infinity\r\n"
    );
    assert_eq!(h.cmd(&["GET", "f"]), bulk("5200"));
}

#[test]
fn ranges() {
    let mut h = Harness::new();
    assert_eq!(h.cmd(&["APPEND", "s", "Hello"]), ":5\r\n");
    assert_eq!(h.cmd(&["APPEND", "s", " World"]), ":11\r\n");
    assert_eq!(h.cmd(&["STRLEN", "s"]), ":11\r\n");
    assert_eq!(h.cmd(&["STRLEN", "nope"]), ":0\r\n");
    assert_eq!(h.cmd(&["GETRANGE", "s", "0", "4"]), bulk("Hello"));
    assert_eq!(h.cmd(&["GETRANGE", "s", "-5", "-1"]), bulk("World"));
    assert_eq!(h.cmd(&["GETRANGE", "s", "5", "2"]), bulk(""));
    assert_eq!(h.cmd(&["GETRANGE", "nope", "0", "-1"]), bulk(""));
    assert_eq!(h.cmd(&["SETRANGE", "s", "6", "Redis"]), ":11\r\n");
    assert_eq!(h.cmd(&["GET", "s"]), bulk("Hello Redis"));
    assert_eq!(h.cmd(&["SETRANGE", "p", "3", "ab"]), ":5\r\n");
    assert_eq!(h.cmd(&["GET", "p"]), bulk("\0\0\0ab"));
    assert_eq!(h.cmd(&["SETRANGE", "q", "3", ""]), ":0\r\n");
    assert_eq!(h.cmd(&["EXISTS", "q"]), ":0\r\n");
    assert_eq!(
        h.cmd(&["SETRANGE", "s", "-1", "x"]),
        "-ERR offset is out of range\r\n"
    );
    let too_long = "-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n";
    assert_eq!(h.cmd(&["SETRANGE", "s", "2000000", "x"]), too_long);
    let big = "x".repeat(600_000);
    assert_eq!(h.cmd(&["SET", "big", &big]), OK);
    assert_eq!(h.cmd(&["APPEND", "big", &big]), too_long);
}

#[test]
fn keyspace() {
    let mut h = Harness::new();
    h.cmd(&["MSET", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(h.cmd(&["EXISTS", "a", "a", "nope"]), ":2\r\n");
    assert_eq!(h.cmd(&["TYPE", "a"]), "+string\r\n");
    assert_eq!(h.cmd(&["TYPE", "nope"]), "+none\r\n");
    assert_eq!(h.cmd(&["TOUCH", "a", "nope"]), ":1\r\n");
    assert_eq!(h.cmd(&["DEL", "a", "nope"]), ":1\r\n");
    assert_eq!(h.cmd(&["UNLINK", "b"]), ":1\r\n");
    assert_eq!(h.cmd(&["RENAME", "nope", "x"]), "-ERR no such key\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "c", "100"]), ":1\r\n");
    assert_eq!(h.cmd(&["RENAME", "c", "d"]), OK);
    assert_eq!(h.cmd(&["TTL", "d"]), ":100\r\n");
    assert_eq!(h.cmd(&["EXISTS", "c"]), ":0\r\n");
    assert_eq!(h.cmd(&["RENAME", "d", "d"]), OK);
    h.cmd(&["SET", "e", "5"]);
    assert_eq!(h.cmd(&["RENAMENX", "d", "e"]), ":0\r\n");
    assert_eq!(h.cmd(&["RENAMENX", "d", "f"]), ":1\r\n");
    assert_eq!(h.cmd(&["COPY", "f", "e"]), ":0\r\n");
    assert_eq!(h.cmd(&["COPY", "f", "e", "REPLACE"]), ":1\r\n");
    assert_eq!(h.cmd(&["GET", "e"]), bulk("3"));
    assert_eq!(h.cmd(&["COPY", "f", "g", "DB", "1"]), ":1\r\n");
    assert_eq!(h.cmd(&["EXISTS", "g"]), ":0\r\n");
    assert_eq!(
        h.cmd(&["COPY", "f", "g", "DB", "16"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        h.cmd(&["COPY", "f", "f"]),
        "-ERR source and destination objects are the same\r\n"
    );
    assert_eq!(h.cmd(&["COPY", "f", "g", "BOGUS"]), "-ERR syntax error\r\n");
    assert_eq!(h.cmd(&["DBSIZE"]), ":2\r\n");
    assert_eq!(h.cmd(&["FLUSHALL", "ASYNC"]), OK);
    assert_eq!(h.cmd(&["DBSIZE"]), ":0\r\n");
    assert_eq!(h.cmd(&["FLUSHDB", "NOW"]), "-ERR syntax error\r\n");
    assert_eq!(h.cmd(&["RANDOMKEY"]), NIL);
}

#[test]
fn expiry() {
    let mut h = Harness::new();
    h.cmd(&["SET", "k", "v"]);
    assert_eq!(h.cmd(&["TTL", "k"]), ":-1\r\n");
    assert_eq!(h.cmd(&["TTL", "nope"]), ":-2\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "nope", "10"]), ":0\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "10", "XX"]), ":0\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "10", "GT"]), ":0\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "10", "NX"]), ":1\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "20", "NX"]), ":0\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "5", "GT"]), ":0\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "20", "GT"]), ":1\r\n");
    assert_eq!(h.cmd(&["EXPIRE", "k", "30", "LT"]), ":0\r\n");
    assert_eq!(h.cmd(&["PEXPIRE", "k", "15000", "LT"]), ":1\r\n");
    assert_eq!(h.cmd(&["TTL", "k"]), ":15\r\n");
    let at = unix_millis() / 1000 + 100;
    assert_eq!(h.cmd(&["EXPIREAT", "k", &at.to_string()]), ":1\r\n");
    assert_eq!(h.cmd(&["EXPIRETIME", "k"]), format!(":{at}\r\n"));
    assert_eq!(h.cmd(&["PEXPIRETIME", "k"]), format!(":{}\r\n", at * 1000));
    assert_eq!(h.cmd(&["PERSIST", "k"]), ":1\r\n");
    assert_eq!(h.cmd(&["PERSIST", "k"]), ":0\r\n");
    assert_eq!(h.cmd(&["EXPIRETIME", "k"]), ":-1\r\n");
    assert_eq!(
        h.cmd(&["EXPIRE", "k", "1", "NX", "XX"]),
        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        h.cmd(&["EXPIRE", "k", "1", "GT", "LT"]),
        "-ERR GT and LT options at the same time are not compatible\r\n"
    );
    assert_eq!(
        h.cmd(&["EXPIRE", "k", "1", "FOO"]),
        "-ERR Unsupported option FOO\r\n"
    );
    assert_eq!(
        h.cmd(&["EXPIRE", "k", "9223372036854775807"]),
        "-ERR invalid expire time in 'expire' command\r\n"
    );
    assert_eq!(h.cmd(&["EXPIRE", "k", "-1"]), ":1\r\n");
    assert_eq!(h.cmd(&["EXISTS", "k"]), ":0\r\n");
}

#[test]
fn scan_and_keys() {
    let mut h = Harness::new();
    for i in 0..50 {
        h.cmd(&["SET", &format!("user:{i}"), "x"]);
    }
    h.cmd(&["SET", "other", "x"]);
    let (mut cursor, mut seen) = ("0".to_string(), std::collections::HashSet::new());
    loop {
        let out = h.cmd(&["SCAN", &cursor, "MATCH", "user:*", "COUNT", "7"]);
        let lines: Vec<&str> = out.split("\r\n").collect();
        cursor = lines[2].to_string();
        for key in lines[4..].iter().skip(1).step_by(2) {
            assert!(key.starts_with("user:"), "{key}");
            seen.insert(key.to_string());
        }
        if cursor == "0" {
            break;
        }
    }
    assert_eq!(seen.len(), 50);
    assert!(h.cmd(&["KEYS", "user:1?"]).starts_with("*10\r\n"));
    assert!(h.cmd(&["KEYS", "*"]).starts_with("*51\r\n"));
    assert!(h.cmd(&["SCAN", "0", "TYPE", "hash"]).ends_with("*0\r\n"));
    assert_eq!(h.cmd(&["SCAN", "x"]), "-ERR invalid cursor\r\n");
    assert_eq!(h.cmd(&["SCAN", "0", "COUNT", "0"]), "-ERR syntax error\r\n");
    assert!(h.cmd(&["RANDOMKEY"]).starts_with('$'));
}

#[test]
fn connection_commands() {
    let mut h = Harness::new();
    assert_eq!(h.cmd(&["PING"]), "+PONG\r\n");
    assert_eq!(h.cmd(&["PING", "hi"]), bulk("hi"));
    assert_eq!(
        h.cmd(&["PING", "a", "b"]),
        "-ERR wrong number of arguments for 'ping' command\r\n"
    );
    assert_eq!(h.cmd(&["ECHO", "x"]), bulk("x"));
    assert_eq!(h.cmd(&["SELECT", "0"]), OK);
    assert_eq!(h.cmd(&["SELECT", "1"]), OK);
    assert_eq!(
        h.cmd(&["SELECT", "16"]),
        "-ERR DB index is out of range\r\n"
    );
    assert_eq!(
        h.cmd(&["SELECT", "x"]),
        "-ERR value is not an integer or out of range\r\n"
    );
    assert_eq!(h.cmd(&["SELECT", "0"]), OK);
    assert_eq!(
        h.cmd(&["AUTH", "pw"]),
        "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n"
    );
    assert_eq!(h.cmd(&["AUTH", "default", "any"]), OK);
    assert_eq!(
        h.cmd(&["AUTH", "bob", "any"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    let hello = h.cmd(&["HELLO", "3"]);
    assert!(
        hello.starts_with("%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n"),
        "{hello}"
    );
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"));
    assert_eq!(h.cmd(&["GET", "nope"]), "_\r\n");
    assert_eq!(
        h.cmd(&["HELLO", "4"]),
        "-NOPROTO unsupported protocol version\r\n"
    );
    assert_eq!(
        h.cmd(&["HELLO", "x"]),
        "-ERR Protocol version is not an integer or out of range\r\n"
    );
    assert_eq!(
        h.cmd(&["HELLO", "3", "FOO"]),
        "-ERR Syntax error in HELLO option 'FOO'\r\n"
    );
    assert!(h
        .cmd(&["HELLO", "2", "SETNAME", "app"])
        .starts_with("*14\r\n"));
    assert_eq!(h.cmd(&["CLIENT", "GETNAME"]), bulk("app"));
    assert_eq!(h.cmd(&["RESET"]), "+RESET\r\n");
    assert_eq!(h.cmd(&["CLIENT", "GETNAME"]), NIL);
    let (out, p) = h.raw(&encode(&["QUIT"]));
    assert_eq!(out, OK);
    assert!(p.close);
}

#[test]
fn authentication() {
    let mut h = Harness::with_password(Some("secret"));
    assert_eq!(h.cmd(&["GET", "k"]), "-NOAUTH Authentication required.\r\n");
    assert_eq!(
        h.cmd(&["FOO"]),
        "-ERR unknown command 'FOO', with args beginning with: \r\n"
    );
    assert_eq!(
        h.cmd(&["AUTH", "wrong"]),
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"
    );
    assert!(h
        .cmd(&["HELLO", "3"])
        .starts_with("-NOAUTH HELLO must be called"));
    assert!(h
        .cmd(&["HELLO", "3", "AUTH", "default", "secret"])
        .starts_with("%7\r\n"));
    assert_eq!(h.cmd(&["GET", "k"]), "_\r\n");
    let mut other = h.new_session();
    let mut out = Vec::new();
    other.process(&mut h.ctx, &encode(&["AUTH", "secret"]), &mut out);
    other.process(&mut h.ctx, &encode(&["PING"]), &mut out);
    assert_eq!(String::from_utf8_lossy(&out), "+OK\r\n+PONG\r\n");
    // Unauthenticated clients get Redis 7.2's small request limits.
    let mut stranger = h.new_session();
    out.clear();
    let p = stranger.process(&mut h.ctx, b"*20\r\n", &mut out);
    assert!(p.close);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-ERR Protocol error: unauthenticated multibulk length\r\n"
    );
}

#[test]
fn error_replies() {
    let mut h = Harness::new();
    assert_eq!(
        h.cmd(&["foo", "a", "b"]),
        "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n"
    );
    assert_eq!(
        h.cmd(&["CLIENT", "nope"]),
        "-ERR unknown subcommand 'nope'. Try CLIENT HELP.\r\n"
    );
    assert_eq!(
        h.cmd(&["CLIENT"]),
        "-ERR wrong number of arguments for 'client' command\r\n"
    );
    assert_eq!(
        h.cmd(&["CLIENT", "KILL"]),
        "-ERR wrong number of arguments for 'client|kill' command\r\n"
    );
    let (out, p) = h.raw(b"*1\r\nx3\r\n");
    assert_eq!(out, "-ERR Protocol error: expected '$', got 'x'\r\n");
    assert!(p.close);
}

#[test]
fn inline_and_pipelines() {
    let mut h = Harness::new();
    let (out, p) = h.raw(b"SET k \"a b\"\r\nGET k\nPING\r\n\r\nGET");
    assert_eq!(out, format!("{OK}{}+PONG\r\n", bulk("a b")));
    assert_eq!(p.consumed, 27);
    assert!(!p.close);
    let (out, p) = h.raw(b"SET k \"abc\r\n");
    assert_eq!(out, "-ERR Protocol error: unbalanced quotes in request\r\n");
    assert!(p.close);
}

#[test]
fn split_reads_give_identical_output() {
    let mut whole = Harness::new();
    let mut pipeline = Vec::new();
    for cmd in [
        &["SET", "a", "1"][..],
        &["INCR", "a"],
        &["MGET", "a", "b"],
        &["APPEND", "b", "xyz"],
        &["GETRANGE", "b", "0", "1"],
        &["SET", "big", &"v".repeat(3000)],
        &["STRLEN", "big"],
        &["PING"],
    ] {
        pipeline.extend(encode(cmd));
    }
    let (expected, p) = whole.raw(&pipeline);
    assert_eq!(p.consumed, pipeline.len());
    let mut h = Harness::new();
    let (mut buf, mut out) = (Vec::new(), Vec::new());
    for &b in &pipeline {
        buf.push(b);
        let p = h.session.process(&mut h.ctx, &buf, &mut out);
        buf.drain(..p.consumed);
        if p.need > 0 {
            assert!(p.need > buf.len());
        }
    }
    assert!(buf.is_empty());
    assert_eq!(String::from_utf8_lossy(&out), expected);
}

#[test]
fn clients_and_server_info() {
    let mut h = Harness::new();
    assert_eq!(h.cmd(&["CLIENT", "ID"]), ":1\r\n");
    assert_eq!(
        h.cmd(&["CLIENT", "SETNAME", "has space"]),
        "-ERR Client names cannot contain spaces, newlines or special characters.\r\n"
    );
    assert_eq!(h.cmd(&["CLIENT", "SETNAME", "main"]), OK);
    assert_eq!(h.cmd(&["CLIENT", "SETINFO", "LIB-NAME", "redis-py"]), OK);
    assert_eq!(
        h.cmd(&["CLIENT", "SETINFO", "FOO", "x"]),
        "-ERR Unrecognized option 'FOO'\r\n"
    );
    assert!(h.cmd(&["CLIENT", "INFO"]).contains(" flags=N "));
    assert_eq!(h.cmd(&["CLIENT", "NO-EVICT", "on"]), OK);
    assert_eq!(h.cmd(&["CLIENT", "NO-TOUCH", "on"]), OK);
    assert_eq!(
        h.cmd(&["CLIENT", "NO-TOUCH", "maybe"]),
        "-ERR syntax error\r\n"
    );
    assert!(h.cmd(&["CLIENT", "INFO"]).contains(" flags=eT "));
    assert_eq!(h.cmd(&["CLIENT", "NO-TOUCH", "off"]), OK);
    let other = h.new_session();
    let list = h.cmd(&["CLIENT", "LIST"]);
    assert!(
        list.contains("id=1 addr=127.0.0.1:40001 laddr=127.0.0.1:6379 fd=-1 name=main"),
        "{list}"
    );
    assert!(list.contains("lib-name=redis-py"));
    assert!(list.contains(&format!("id={} ", other.id())));
    assert!(h.cmd(&["CLIENT", "INFO"]).contains("cmd=client|info"));
    let kill = format!("127.0.0.1:{}", 40000 + other.id());
    assert_eq!(h.cmd(&["CLIENT", "KILL", &kill]), OK);
    assert!(other.is_killed());
    assert_eq!(
        h.cmd(&["CLIENT", "KILL", "1.2.3.4:5"]),
        "-ERR No such client\r\n"
    );
    assert_eq!(h.cmd(&["CLIENT", "KILL", "ID", "1"]), ":0\r\n");
    let (out, p) = h.raw(&encode(&["CLIENT", "KILL", "ID", "1", "SKIPME", "no"]));
    assert_eq!(out, ":1\r\n");
    assert!(p.close);
    drop(other);
    assert_eq!(h.state.clients.len(), 1);

    let mut h = Harness::new();
    h.cmd(&["SET", "k", "v"]);
    h.cmd(&["GET", "k"]);
    let info = h.cmd(&["INFO"]);
    for needle in [
        "# Server\r\n",
        "redis_version:7.4.0",
        "# Clients\r\nconnected_clients:1",
        "# Keyspace\r\ndb0:keys=1",
        "keyspace_hits:1",
        "# Citadel\r\n",
        "cache_index_level0:",
    ] {
        assert!(info.contains(needle), "{needle} missing in {info}");
    }
    let stats = h.cmd(&["INFO", "stats", "CPU"]);
    assert!(stats.contains("# Stats") && stats.contains("# CPU") && !stats.contains("# Server"));
    assert!(h.cmd(&["INFO", "server"]).contains("tcp_port:6379"));

    let cfg = h.cmd(&["CONFIG", "GET", "max*"]);
    // maxmemory, maxmemory-policy, maxclients, maxclients-per-address,
    // max-value-size (settings).
    assert!(cfg.starts_with("*10\r\n"), "{cfg}");
    assert!(cfg.contains("maxclients\r\n$3\r\n100\r\n"));
    assert_eq!(h.cmd(&["CONFIG", "SET", "maxclients", "7"]), OK);
    assert_eq!(h.state.maxclients(), 7);
    // A Redis parameter set to what Citadel does is accepted; another
    // value is refused, and so is the whole call (nothing applied).
    assert_eq!(
        h.cmd(&["CONFIG", "SET", "save", "", "appendonly", "no"]),
        OK
    );
    assert_eq!(
        h.cmd(&["CONFIG", "SET", "maxclients", "9", "appendonly", "yes"]),
        "-ERR CONFIG SET failed (possibly related to argument 'appendonly') - not settable at runtime in Citadel; change the configuration and restart\r\n"
    );
    assert_eq!(h.state.maxclients(), 7);
    assert_eq!(
        h.cmd(&["CONFIG", "SET", "nope", "1"]),
        "-ERR Unknown option or number of arguments for CONFIG SET - 'nope'\r\n"
    );
    assert_eq!(h.cmd(&["CONFIG", "SET", "requirepass", "pw"]), OK);
    let mut fresh = h.new_session();
    let mut out = Vec::new();
    fresh.process(&mut h.ctx, &encode(&["GET", "k"]), &mut out);
    assert_eq!(
        String::from_utf8_lossy(&out),
        "-NOAUTH Authentication required.\r\n"
    );
    assert_eq!(h.cmd(&["GET", "k"]), bulk("v"));
    assert_eq!(h.cmd(&["CONFIG", "RESETSTAT"]), OK);
    assert!(h.cmd(&["INFO", "stats"]).contains("keyspace_hits:0"));
    let t = h.cmd(&["TIME"]);
    assert!(t.starts_with("*2\r\n$10\r\n"), "{t}");
}

#[test]
fn command_introspection() {
    let mut h = Harness::new();
    let count = h.cmd(&["COMMAND", "COUNT"]);
    let n: usize = count[1..count.len() - 2].parse().unwrap();
    assert!(n > 50);
    assert!(h.cmd(&["COMMAND"]).starts_with(&format!("*{n}\r\n")));
    let get = h.cmd(&["COMMAND", "INFO", "get", "nope"]);
    assert!(
        get.starts_with(
            "*2\r\n*10\r\n$3\r\nget\r\n:2\r\n*2\r\n+readonly\r\n+fast\r\n:1\r\n:1\r\n:1\r\n"
        ),
        "{get}"
    );
    assert!(get.ends_with("$-1\r\n"));
    assert!(h.cmd(&["COMMAND", "DOCS", "set"]).contains("summary"));
    assert_eq!(
        h.cmd(&["COMMAND", "GETKEYS", "MSET", "a", "1", "b", "2"]),
        format!("*2\r\n{}{}", bulk("a"), bulk("b"))
    );
    assert!(h
        .cmd(&["COMMAND", "LIST", "FILTERBY", "PATTERN", "client*"])
        .contains("client|kill"));
}

#[test]
fn shutdown_requests_and_closes_without_reply() {
    let mut h = Harness::new();
    let (out, p) = h.raw(&encode(&["SHUTDOWN", "NOSAVE"]));
    assert_eq!(out, "");
    assert!(p.close);
    assert!(h.state.shutdown.is_requested());
}

#[test]
fn random_input_never_panics() {
    let mut h = Harness::new();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let words = [
        "GET",
        "SET",
        "EX",
        "PX",
        "NX",
        "XX",
        "GETEX",
        "PERSIST",
        "INCRBYFLOAT",
        "SETRANGE",
        "GETRANGE",
        "EXPIRE",
        "GT",
        "SCAN",
        "MATCH",
        "COUNT",
        "CLIENT",
        "KILL",
        "LIST",
        "CONFIG",
        "GET",
        "COMMAND",
        "INFO",
        "HELLO",
        "3",
        "-1",
        "0",
        "99999999999999999999",
        "k",
        "[a-",
        "*",
        "\\",
        "COPY",
        "RENAME",
        "MSETNX",
        "APPEND",
        "DEL",
        "KEYS",
        "TYPE",
        "SETINFO",
        "AUTH",
        "INCR",
        "1e400",
        "nan",
        "DOCS",
    ];
    for round in 0..3000 {
        let mut session = h.new_session();
        let mut out = Vec::new();
        let input: Vec<u8> = if round % 2 == 0 {
            let argc = 1 + next() % 6;
            let args: Vec<&str> = (0..argc)
                .map(|_| words[(next() % words.len() as u64) as usize])
                .collect();
            encode(&args)
        } else {
            let alphabet = b"*$\r\n0123456789-abc \"'\\x";
            (0..next() % 48)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect()
        };
        let p = session.process(&mut h.ctx, &input, &mut out);
        assert!(p.consumed <= input.len());
    }
}
