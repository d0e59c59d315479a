//! COMMAND DOCS `arguments` lists and COMMAND INFO entries, compared with a
//! real redis-server's (RESP2 and RESP3). Needs redis-server (tests/run.sh
//! installs it).

use citadel_tests::redis::{self, Value};
use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::Server;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;

/// The `arguments` field of the one entry of `COMMAND DOCS <name...>`.
fn doc_arguments(port: u16, resp3: bool, name: &[&str]) -> Value {
    let proto = if resp3 { "?protocol=resp3" } else { "" };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/{proto}")).unwrap();
    let mut con = client.get_connection().unwrap();
    let reply: Value = redis::cmd("COMMAND")
        .arg("DOCS")
        .arg(name.join("|"))
        .query(&mut con)
        .unwrap();
    // RESP2: [name, [field, value, ...]]; RESP3: {name: {field: value}}.
    let fields: Vec<(Value, Value)> = match reply {
        Value::Array(top) => match &top[..] {
            [_, Value::Array(flat)] => flat
                .chunks(2)
                .map(|kv| (kv[0].clone(), kv[1].clone()))
                .collect(),
            other => panic!("unexpected RESP2 reply {other:?}"),
        },
        Value::Map(top) => match &top[..] {
            [(_, Value::Map(m))] => m.clone(),
            other => panic!("unexpected RESP3 reply {other:?}"),
        },
        other => panic!("unexpected reply {other:?}"),
    };
    fields
        .into_iter()
        .find(|(k, _)| *k == Value::BulkString(b"arguments".to_vec()))
        .unwrap_or_else(|| panic!("no arguments for {name:?}"))
        .1
}

#[test]
fn command_docs_arguments_match_redis() {
    let redis_server = RedisServer::start();
    let citadel = Server::start(&[]);
    for resp3 in [false, true] {
        for name in [
            &["get"][..],
            &["set"],
            &["expire"],
            &["scan"],
            &["client", "kill"],
            &["bitfield"],
            &["bitcount"],
            &["pfmerge"],
            &["spublish"],
            &["pubsub", "numsub"],
            &["slowlog", "get"],
            &["latency", "reset"],
            &["object", "encoding"],
            &["memory", "usage"],
            &["client", "pause"],
            &["client", "reply"],
            &["wait"],
        ] {
            let want = doc_arguments(redis_server.port, resp3, name);
            let got = doc_arguments(citadel.port, resp3, name);
            assert_eq!(got, want, "{name:?} resp3={resp3}");
        }
    }
}

/// The end of the RESP value starting at `at` (RESP2 and RESP3 types);
/// None while `buf` holds only part of it. The tests' reference decoder
/// (redis-protocol) rejects Redis's RESP3 COMMAND INFO, hence this one.
fn value_end(buf: &[u8], at: usize) -> Option<usize> {
    let eol = at + buf.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let n: i64 = std::str::from_utf8(&buf[at + 1..eol])
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let children = match buf[at] {
        b'$' | b'=' | b'!' if n >= 0 => {
            let end = eol + 2 + n as usize + 2;
            return (end <= buf.len()).then_some(end);
        }
        b'*' | b'~' | b'>' => n.max(0),
        b'%' => 2 * n,
        _ => 0,
    };
    (0..children).try_fold(eol + 2, |pos, _| value_end(buf, pos))
}

/// The raw elements of the aggregate `buf` (one whole reply).
fn elements(buf: &[u8]) -> Vec<&[u8]> {
    let mut pos = buf.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut out = Vec::new();
    while pos < buf.len() {
        let end = value_end(buf, pos).unwrap();
        out.push(&buf[pos..end]);
        pos = end;
    }
    out
}

/// `args`' reply, raw (one reply at a time on `con`, so no leftovers).
fn call(con: &mut TcpStream, args: &[&[u8]]) -> Vec<u8> {
    con.write_all(&encode_command(args)).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 << 10];
    while value_end(&buf, 0).is_none() {
        let n = con.read(&mut chunk).unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
    assert_eq!(value_end(&buf, 0), Some(buf.len()), "one reply at a time");
    buf
}

/// The COMMAND INFO entry of `name`, raw; None where the server lacks it.
fn info_entry(con: &mut TcpStream, name: &str) -> Option<Vec<u8>> {
    let reply = call(con, &[b"COMMAND", b"INFO", name.as_bytes()]);
    let entry = elements(&reply)[0].to_vec();
    (!matches!(&entry[..], b"$-1\r\n" | b"*-1\r\n" | b"_\r\n")).then_some(entry)
}

const FIELDS: [&str; 10] = [
    "name", "arity", "flags", "first", "last", "step", "acl", "tips", "keyspecs", "subs",
];

/// Whether field `i` of two entries differs. Subcommands compare as a
/// set of entries: Redis lists them in its dict's hash order, seeded
/// afresh each run, so their order says nothing.
fn differs(i: usize, got: &[u8], want: &[u8]) -> bool {
    if FIELDS[i] != "subs" || got == want {
        return got != want;
    }
    let sorted = |v: &[u8]| {
        let mut entries: Vec<Vec<u8>> = elements(v).into_iter().map(<[u8]>::to_vec).collect();
        entries.sort();
        entries
    };
    sorted(got) != sorted(want)
}

/// Whole-entry differences that remain, and why. Flags are Citadel's own
/// table (what it really does); subcommand sets differ where Citadel has
/// its own or lacks one of Redis's.
const KNOWN: &[(&str, &[&str])] = &[
    ("client", &["flags", "subs"]), // +sentinel; +CLIENT NO-TOUCH
    ("client|help", &["flags"]),    // +noscript
    ("cluster", &["subs"]),         // its own HANDOFF, NOPROXY...; no slot admin
    ("cluster|info", &["flags"]),   // +loading: served while loading
    ("cluster|myid", &["flags"]),
    ("cluster|nodes", &["flags"]),
    ("cluster|shards", &["flags"]),
    ("cluster|slots", &["flags"]),
];

/// Every command and subcommand Citadel lists that Redis 7.0 also has:
/// acl_categories, tips and key_specifications byte for byte (they are
/// generated from Redis's own replies), and the whole entry except KNOWN.
#[test]
fn command_info_matches_redis() {
    let redis_server = RedisServer::start();
    let citadel = Server::start(&[]);
    let mut names: Vec<String> = redis::cmd("COMMAND")
        .arg("LIST")
        .query(&mut citadel.client())
        .unwrap();
    names.sort();
    for resp3 in [false, true] {
        let mut want_con = redis_server.raw();
        let mut got_con = citadel.raw();
        if resp3 {
            for con in [&mut want_con, &mut got_con] {
                call(con, &[b"HELLO", b"3"]);
            }
        }
        let mut differ: Vec<(&str, Vec<&str>)> = Vec::new();
        let mut compared = 0;
        for name in &names {
            let Some(want) = info_entry(&mut want_con, name) else {
                continue; // Citadel's own (PLUGIN, PIPELINE, HOTKEYS ...)
            };
            let got = info_entry(&mut got_con, name).expect("listed, so known");
            let (want, got) = (elements(&want), elements(&got));
            assert_eq!(got.len(), 10, "{name}");
            for field in [6, 7, 8] {
                assert_eq!(
                    String::from_utf8_lossy(got[field]),
                    String::from_utf8_lossy(want[field]),
                    "{name} {} resp3={resp3}",
                    FIELDS[field]
                );
            }
            let fields: Vec<&str> = (0..10)
                .filter(|&i| differs(i, got[i], want[i]))
                .map(|i| FIELDS[i])
                .collect();
            if !fields.is_empty() {
                differ.push((name, fields));
            }
            compared += 1;
        }
        assert!(compared > 250, "compared only {compared} commands");
        let known: Vec<(&str, Vec<&str>)> = KNOWN.iter().map(|(n, f)| (*n, f.to_vec())).collect();
        assert_eq!(differ, known, "resp3={resp3}");
    }

    // COMMAND LIST FILTERBY ACLCAT reads the same categories.
    let list = |port: u16, filter: &[&str]| -> BTreeSet<String> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let names: Vec<String> = redis::cmd("COMMAND")
            .arg("LIST")
            .arg(filter)
            .query(&mut client.get_connection().unwrap())
            .unwrap();
        names.into_iter().collect()
    };
    let both = &list(redis_server.port, &[]) & &list(citadel.port, &[]);
    for cat in [
        "blocking",
        "transaction",
        "scripting",
        "pubsub",
        "dangerous",
        "keyspace",
    ] {
        let filter = ["FILTERBY", "ACLCAT", cat];
        let want = &list(redis_server.port, &filter) & &both;
        assert!(!want.is_empty(), "{cat}");
        assert_eq!(&list(citadel.port, &filter) & &both, want, "{cat}");
    }
}
