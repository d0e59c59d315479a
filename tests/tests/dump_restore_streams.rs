//! DUMP and RESTORE of streams between a real redis-server (7.0) and
//! Citadel: entries, deleted entries, consumer groups, their pending
//! entries and consumers move both ways and read back the same in
//! `XINFO STREAM FULL` (delivery and seen times are absolute, so they
//! compare exactly); both sides keep working on the restored stream.

use citadel_tests::differential::Clients as Both;
use redis::{Connection, Value};

fn run(con: &mut Connection, args: &[&str]) -> Value {
    let mut cmd = redis::cmd(args[0]);
    args[1..].iter().for_each(|a| {
        cmd.arg(*a);
    });
    cmd.query(con).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn dump(con: &mut Connection, key: &str) -> Vec<u8> {
    let payload: Option<Vec<u8>> = redis::cmd("DUMP").arg(key).query(con).unwrap();
    payload.unwrap_or_else(|| panic!("{key} is missing"))
}

fn restore(
    con: &mut Connection,
    key: &str,
    ttl_ms: u64,
    payload: &[u8],
) -> redis::RedisResult<String> {
    redis::cmd("RESTORE")
        .arg(key)
        .arg(ttl_ms)
        .arg(payload)
        .query(con)
}

/// `XINFO STREAM key FULL` without the two figures that describe Redis's
/// radix tree rather than the stream (its node layout is its own).
fn full(con: &mut Connection, key: &str) -> Vec<Value> {
    let Value::Array(fields) = run(con, &["XINFO", "STREAM", key, "FULL"]) else {
        panic!("{key}: not an array");
    };
    let mut out = Vec::new();
    for pair in fields.chunks(2) {
        let name = match &pair[0] {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            other => panic!("{other:?}"),
        };
        if !name.starts_with("radix-tree") {
            out.extend_from_slice(pair);
        }
    }
    out
}

/// Builds the same stream at `key` on both servers with `commands`.
fn on_both(both: &mut Both, commands: &[Vec<String>]) {
    for args in commands {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&mut both.redis, &args);
        run(&mut both.citadel, &args);
    }
}

fn cmd(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A stream of several nodes with deleted and trimmed entries, changing
/// field sets, integer and long values, and two groups with pending
/// entries over three consumers (one without any).
fn busy_stream(key: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for i in 0..700u64 {
        let value = "v".repeat((i % 40) as usize);
        let id = format!("{}-{}", 1000 + i / 3, i % 3);
        if i % 50 == 7 {
            out.push(cmd(&[
                "XADD",
                key,
                &id,
                "other",
                &value,
                "n",
                &i.to_string(),
            ]));
        } else {
            out.push(cmd(&[
                "XADD",
                key,
                &id,
                "temp",
                &(i * 7).to_string(),
                "note",
                &value,
            ]));
        }
    }
    for id in ["1000-1", "1100-2", "1200-0", "1233-1"] {
        out.push(cmd(&["XDEL", key, id]));
    }
    out.push(cmd(&["XTRIM", key, "MAXLEN", "~", "600"]));
    out.push(cmd(&["XGROUP", "CREATE", key, "workers", "0"]));
    out.push(cmd(&["XGROUP", "CREATE", key, "late", "$"]));
    out.push(cmd(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "alice",
        "COUNT",
        "150",
        "STREAMS",
        key,
        ">",
    ]));
    out.push(cmd(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "bob",
        "COUNT",
        "5",
        "STREAMS",
        key,
        ">",
    ]));
    out.push(cmd(&["XACK", key, "workers", "1036-1", "1040-0"]));
    out.push(cmd(&["XGROUP", "CREATECONSUMER", key, "workers", "carol"]));
    out
}

/// Redis's stream → Citadel, and Citadel's → back into Redis: the same
/// stream each time; then the same writes on both keep them the same.
fn moves_both_ways(both: &mut Both, key: &str) {
    let want = full(&mut both.redis, key);
    assert_eq!(
        restore(
            &mut both.citadel,
            "restored",
            0,
            &dump(&mut both.redis, key)
        )
        .unwrap(),
        "OK"
    );
    assert_eq!(
        full(&mut both.citadel, "restored"),
        want,
        "{key} in Citadel"
    );
    let back = dump(&mut both.citadel, "restored");
    assert_eq!(
        restore(&mut both.redis, "restored", 0, &back).unwrap(),
        "OK"
    );
    assert_eq!(
        full(&mut both.redis, "restored"),
        want,
        "{key} back in Redis"
    );
    for con in [&mut both.redis, &mut both.citadel] {
        run(con, &["XADD", "restored", "*", "after", "restore"]);
        run(con, &["XGROUP", "CREATE", "restored", "fresh", "0"]);
        run(
            con,
            &[
                "XREADGROUP",
                "GROUP",
                "fresh",
                "dan",
                "COUNT",
                "3",
                "STREAMS",
                "restored",
                ">",
            ],
        );
    }
    let (redis, citadel) = (
        full(&mut both.redis, "restored"),
        full(&mut both.citadel, "restored"),
    );
    // (The new entry's ID is each server's clock: compare all but the
    // fields that show it.)
    assert_eq!(redis.len(), citadel.len(), "{key} after writes");
    assert_eq!(redis[..2], citadel[..2], "{key} length after writes");
    for con in [&mut both.redis, &mut both.citadel] {
        run(con, &["DEL", "restored"]);
    }
}

#[test]
fn streams_move_both_ways_with_their_groups() {
    let mut both = Both::start();
    on_both(&mut both, &busy_stream("busy"));
    moves_both_ways(&mut both, "busy");

    // An empty stream that has a group (XGROUP CREATE ... MKSTREAM), and
    // one whose every entry was deleted.
    on_both(
        &mut both,
        &[cmd(&["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"])],
    );
    moves_both_ways(&mut both, "empty");
    on_both(
        &mut both,
        &[
            cmd(&["XADD", "gone", "5-1", "a", "1"]),
            cmd(&["XADD", "gone", "5-2", "a", "2"]),
            cmd(&["XDEL", "gone", "5-1", "5-2"]),
        ],
    );
    moves_both_ways(&mut both, "gone");

    // One entry with a 100 KB value and a 300-field entry.
    let big = "x".repeat(100_000);
    let mut wide = vec!["XADD".to_string(), "wide".into(), "7-7".into()];
    for i in 0..300 {
        wide.push(format!("field{i}"));
        wide.push(i.to_string());
    }
    on_both(
        &mut both,
        &[cmd(&["XADD", "wide", "7-1", "blob", &big]), wide],
    );
    moves_both_ways(&mut both, "wide");
}

#[test]
fn restore_of_a_stream_keeps_ttl_replace_and_busykey_as_redis() {
    let mut both = Both::start();
    on_both(&mut both, &busy_stream("s"));
    let payload = dump(&mut both.redis, "s");
    for con in [&mut both.redis, &mut both.citadel] {
        assert_eq!(restore(con, "t", 60_000, &payload).unwrap(), "OK");
        let ttl: i64 = redis::cmd("PTTL").arg("t").query(con).unwrap();
        assert!((50_000..=60_000).contains(&ttl), "{ttl}");
        let busy = restore(con, "t", 0, &payload).unwrap_err();
        assert_eq!(busy.code(), Some("BUSYKEY"));
        run(con, &["SET", "plain", "v"]);
        let ok: String = redis::cmd("RESTORE")
            .arg("plain")
            .arg(0)
            .arg(&payload)
            .arg("REPLACE")
            .query(con)
            .unwrap();
        assert_eq!(ok, "OK");
        let kind: String = redis::cmd("TYPE").arg("plain").query(con).unwrap();
        assert_eq!(kind, "stream");
    }
    assert_eq!(
        full(&mut both.citadel, "plain"),
        full(&mut both.redis, "plain")
    );
    // A stream over a stream: the old pages go (a restart or XRANGE sees
    // only the new one).
    on_both(&mut both, &[cmd(&["XADD", "small", "1-1", "a", "b"])]);
    let small = dump(&mut both.redis, "small");
    for con in [&mut both.redis, &mut both.citadel] {
        let ok: String = redis::cmd("RESTORE")
            .arg("plain")
            .arg(0)
            .arg(&small)
            .arg("REPLACE")
            .query(con)
            .unwrap();
        assert_eq!(ok, "OK");
    }
    assert_eq!(
        full(&mut both.citadel, "plain"),
        full(&mut both.redis, "plain")
    );
    assert_eq!(
        run(&mut both.citadel, &["XRANGE", "plain", "-", "+"]),
        run(&mut both.redis, &["XRANGE", "plain", "-", "+"])
    );
}

#[test]
fn corrupt_stream_payloads_are_refused_and_change_nothing() {
    let mut both = Both::start();
    on_both(&mut both, &busy_stream("s"));
    let payload = dump(&mut both.redis, "s");
    run(&mut both.citadel, &["SET", "target", "kept"]);
    // Bytes of the first node's listpack zeroed: its header no longer
    // agrees with its length (Redis's shallow check refuses it too).
    let mut broken = payload.clone();
    for b in &mut broken[22..30] {
        *b = 0;
    }
    let body = broken.len() - 8;
    let crc = citadel_collections::rdb::crc64(&broken[..body]);
    broken[body..].copy_from_slice(&crc.to_le_bytes());
    for con in [&mut both.redis, &mut both.citadel] {
        let err = redis::cmd("RESTORE")
            .arg("target")
            .arg(0)
            .arg(&broken)
            .arg("REPLACE")
            .query::<String>(con)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "An error was signalled by the server - ResponseError: Bad data format"
        );
    }
    let kept: String = redis::cmd("GET")
        .arg("target")
        .query(&mut both.citadel)
        .unwrap();
    assert_eq!(kept, "kept");
    // Truncated anywhere: a clear error, never a crash.
    for cut in (1..payload.len()).step_by(97) {
        let err = restore(&mut both.citadel, "cut", 0, &payload[..cut]).unwrap_err();
        assert!(
            err.to_string()
                .contains("DUMP payload version or checksum are wrong"),
            "{err}"
        );
    }
    let pong: String = redis::cmd("PING").query(&mut both.citadel).unwrap();
    assert_eq!(pong, "PONG");
}
