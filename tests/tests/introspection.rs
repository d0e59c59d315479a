//! Introspection commands against Citadel and, where their replies can be
//! the same, a real redis-server: OBJECT, SLOWLOG, INFO commandstats /
//! errorstats / latencystats, LATENCY, MEMORY USAGE, WAIT / WAITAOF,
//! CLIENT REPLY and CLIENT PAUSE.

use std::io::Read;
use std::time::Duration;

use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{Frame, RespReader, Server};

fn send(r: &mut RespReader, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    r.raw_reply().expect("server closed the connection")
}

fn text(r: &mut RespReader, args: &[&str]) -> String {
    String::from_utf8_lossy(&send(r, args)).into_owned()
}

/// `INFO section` as lines.
fn info(r: &mut RespReader, section: &str) -> String {
    text(r, &["INFO", section])
}

fn both() -> (RespReader, RespReader, RedisServer, Server) {
    let redis = RedisServer::start();
    let citadel = Server::start(&["--enable-debug-command", "local"]);
    (
        RespReader::new(redis.raw()),
        RespReader::new(citadel.raw()),
        redis,
        citadel,
    )
}

#[test]
fn object_answers_as_redis_does_for_the_same_values() {
    let (mut redis, mut citadel, _r, _c) = both();
    let long45 = "a".repeat(45);
    let long44 = "b".repeat(44);
    let values = [
        "12345",
        "-1",
        "007",
        "+5",
        "abc",
        "9223372036854775807",
        "9223372036854775808",
        long44.as_str(),
        long45.as_str(),
    ];
    for v in values {
        for r in [&mut redis, &mut citadel] {
            send(r, &["SET", "k", v]);
        }
        let want = send(&mut redis, &["OBJECT", "ENCODING", "k"]);
        assert_eq!(
            send(&mut citadel, &["OBJECT", "ENCODING", "k"]),
            want,
            "{v}"
        );
        assert_eq!(send(&mut citadel, &["OBJECT", "REFCOUNT", "k"]), b":1\r\n");
    }
    for sub in ["ENCODING", "FREQ", "IDLETIME", "REFCOUNT"] {
        let want = send(&mut redis, &["OBJECT", sub, "missing"]);
        assert_eq!(
            send(&mut citadel, &["OBJECT", sub, "missing"]),
            want,
            "{sub}"
        );
    }
    for args in [&["OBJECT", "NOPE", "k"][..], &["OBJECT", "ENCODING"]] {
        assert_eq!(send(&mut citadel, args), send(&mut redis, args), "{args:?}");
    }
    // The policy reported is LFU: FREQ answers, IDLETIME is Redis's LFU error.
    assert_eq!(
        text(&mut citadel, &["CONFIG", "GET", "maxmemory-policy"]),
        "*2\r\n$16\r\nmaxmemory-policy\r\n$11\r\nallkeys-lfu\r\n"
    );
    send(
        &mut redis,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lfu"],
    );
    assert!(text(&mut citadel, &["OBJECT", "FREQ", "k"]).starts_with(':'));
    let want = send(&mut redis, &["OBJECT", "IDLETIME", "k"]);
    assert_eq!(send(&mut citadel, &["OBJECT", "IDLETIME", "k"]), want);
}

#[test]
fn slowlog_entries_have_redis_shape_and_trimmed_arguments() {
    let (mut redis, mut citadel, _r, _c) = both();
    let big = "x".repeat(200);
    let many: Vec<String> = (0..40).map(|i| format!("k{i}")).collect();
    let mut mget = vec!["MGET"];
    mget.extend(many.iter().map(String::as_str));
    for r in [&mut redis, &mut citadel] {
        send(r, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        send(r, &["SLOWLOG", "RESET"]);
        send(r, &["CLIENT", "SETNAME", "probe"]);
        send(r, &["ECHO", &big]);
        send(r, &mget);
        send(r, &["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
    }
    let entries = |r: &mut RespReader| -> Vec<Frame> {
        r.send(&encode_command(&[b"SLOWLOG", b"GET", b"-1"]));
        match r.reply().unwrap() {
            Frame::Array(entries) => entries,
            other => panic!("SLOWLOG GET: {other:?}"),
        }
    };
    let (want, got) = (entries(&mut redis), entries(&mut citadel));
    assert_eq!(got.len(), want.len(), "{got:?}\n{want:?}");
    for (g, w) in got.iter().zip(&want) {
        let (Frame::Array(g), Frame::Array(w)) = (g, w) else {
            panic!("entry not an array: {g:?}");
        };
        assert_eq!(g.len(), 6);
        assert!(matches!(g[0], Frame::Integer(_)) && matches!(g[1], Frame::Integer(_)));
        assert!(matches!(g[2], Frame::Integer(_)));
        // Arguments (trimmed identically) and client name are the same.
        assert_eq!(g[3], w[3]);
        assert_eq!(g[5], w[5]);
        assert!(matches!(&g[4], Frame::BulkString(a) if a.starts_with(b"127.0.0.1:")));
    }
    // Newest first: MGET (the CONFIG SET that turned the log off is not
    // logged, as in Redis), 32 arguments kept.
    let Frame::Array(mget_entry) = &got[0] else {
        unreachable!()
    };
    let Frame::Array(args) = &mget_entry[3] else {
        panic!("args not an array")
    };
    assert_eq!(args.len(), 32);
    assert_eq!(
        args[31],
        Frame::BulkString(b"... (10 more arguments)".to_vec())
    );
    let len = send(&mut citadel, &["SLOWLOG", "LEN"]);
    assert_eq!(len, send(&mut redis, &["SLOWLOG", "LEN"]));
    assert_eq!(send(&mut citadel, &["SLOWLOG", "RESET"]), b"+OK\r\n");
    assert_eq!(send(&mut citadel, &["SLOWLOG", "LEN"]), b":0\r\n");
    for args in [
        &["SLOWLOG", "GET", "-2"][..],
        &["SLOWLOG", "LEN", "1"],
        &["SLOWLOG", "HELP"],
    ] {
        assert_eq!(send(&mut citadel, args), send(&mut redis, args), "{args:?}");
    }
}

/// A blocked command goes into the slow log when it is served, not when
/// it blocks, as in Redis: a SLOWLOG RESET between the two leaves it there.
#[test]
fn a_blocked_command_is_slow_logged_when_served() {
    let redis = RedisServer::start();
    let citadel = Server::start(&[]);
    let connect = |name: &str| match name {
        "redis" => redis.raw(),
        _ => citadel.raw(),
    };
    for name in ["redis", "citadel"] {
        let (mut r, mut waiter) = (
            RespReader::new(connect(name)),
            RespReader::new(connect(name)),
        );
        send(&mut r, &["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        waiter.send(&encode_command(&[b"BLPOP", b"l", b"0"]));
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !info(&mut r, "clients").contains("blocked_clients:1\r\n") {
            assert!(
                std::time::Instant::now() < deadline,
                "{name}: never blocked"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        send(&mut r, &["MULTI"]);
        send(&mut r, &["LPUSH", "l", "foo"]);
        send(&mut r, &["SLOWLOG", "RESET"]);
        send(&mut r, &["EXEC"]);
        assert_eq!(
            waiter.raw_reply().unwrap(),
            b"*2\r\n$1\r\nl\r\n$3\r\nfoo\r\n"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = text(&mut r, &["SLOWLOG", "GET"]);
            if log.contains("$5\r\nBLPOP\r\n$1\r\nl\r\n$1\r\n0\r\n") {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "{name}: {log}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The `field=value` of an INFO line `key:...`.
fn field(info: &str, key: &str, field: &str) -> Option<String> {
    let line = info.lines().find(|l| l.starts_with(&format!("{key}:")))?;
    let fields = line.split_once(':')?.1;
    if field.is_empty() {
        return Some(fields.to_string());
    }
    fields
        .split(',')
        .find_map(|f| f.strip_prefix(&format!("{field}=")))
        .map(str::to_string)
}

#[test]
fn commandstats_count_calls_rejections_failures_and_errors_as_redis() {
    let (mut redis, mut citadel, _r, _c) = both();
    for r in [&mut redis, &mut citadel] {
        send(r, &["CONFIG", "RESETSTAT"]);
        for i in 0..3 {
            send(r, &["SET", "n", &i.to_string()]);
        }
        send(r, &["GET", "n"]);
        send(r, &["GET", "n"]);
        send(r, &["GET"]); // arity: rejected
        send(r, &["SET", "s", "text"]);
        send(r, &["INCR", "s"]); // not an integer: failed
        send(r, &["NOSUCHCOMMAND"]); // an error, no command
    }
    for r in [&mut redis, &mut citadel] {
        let stats = info(r, "commandstats");
        let calls = |cmd: &str, f: &str| field(&stats, &format!("cmdstat_{cmd}"), f);
        assert_eq!(calls("set", "calls").as_deref(), Some("4"), "{stats}");
        assert_eq!(calls("get", "calls").as_deref(), Some("2"), "{stats}");
        assert_eq!(calls("get", "rejected_calls").as_deref(), Some("1"));
        assert_eq!(calls("incr", "failed_calls").as_deref(), Some("1"));
        assert_eq!(calls("incr", "calls").as_deref(), Some("1"));
        let errors = info(r, "errorstats");
        assert_eq!(
            field(&errors, "errorstat_ERR", "count").as_deref(),
            Some("3")
        );
        let s = info(r, "stats");
        assert_eq!(field(&s, "total_error_replies", "").as_deref(), Some("3"));
        let lat = info(r, "latencystats");
        let set = field(&lat, "latency_percentiles_usec_set", "").expect("set latency");
        assert!(set.starts_with("p50=") && set.contains(",p99=") && set.contains(",p99.9="));
    }
    // RESETSTAT zeroes them.
    send(&mut citadel, &["CONFIG", "RESETSTAT"]);
    let stats = info(&mut citadel, "commandstats");
    assert!(field(&stats, "cmdstat_set", "calls").is_none(), "{stats}");
    let s = info(&mut citadel, "stats");
    assert_eq!(field(&s, "total_error_replies", "").as_deref(), Some("0"));
    // Pages of big collections: reclaimed after their root went, pending.
    assert_eq!(field(&s, "reclaimed_pages", "").as_deref(), Some("0"));
    assert_eq!(field(&s, "reclaim_pending_pages", "").as_deref(), Some("0"));
    assert_eq!(field(&s, "journal_overflows", "").as_deref(), Some("0"));
    // Redis's name for the pages still to reclaim (its lazy free).
    let m = info(&mut citadel, "memory");
    assert_eq!(
        field(&m, "lazyfree_pending_objects", "").as_deref(),
        Some("0")
    );
    assert_eq!(field(&m, "lazyfreed_objects", "").as_deref(), Some("0"));
    // errorstats is in the default set, commandstats is not.
    let default = text(&mut citadel, &["INFO"]);
    assert!(default.contains("# Errorstats") && !default.contains("# Commandstats"));
}

/// Commands that EXEC and scripts run are counted one by one, as Redis
/// counts them (besides the EXEC or EVAL), failures included; an EXEC that
/// WATCH aborted counts none.
#[test]
fn commands_run_by_exec_and_scripts_count_as_in_redis() {
    let (mut redis, mut citadel, _r, _c) = both();
    let script = "redis.call('SET', KEYS[1], '1'); redis.pcall('LPUSH', KEYS[1], 'x'); \
                  return redis.call('INCR', KEYS[1])";
    for r in [&mut redis, &mut citadel] {
        send(r, &["CONFIG", "RESETSTAT"]);
        send(r, &["MULTI"]);
        send(r, &["SET", "a", "1"]);
        send(r, &["INCR", "a"]);
        send(r, &["LPUSH", "a", "x"]); // wrong type: fails inside EXEC
        send(r, &["EVAL", script, "1", "b"]);
        send(r, &["EXEC"]);
        send(r, &["EVAL", script, "1", "c"]);
        // Aborted by WATCH: nothing it queued ran.
        send(r, &["WATCH", "a"]);
        send(r, &["SET", "a", "2"]);
        send(r, &["MULTI"]);
        send(r, &["GET", "a"]);
        send(r, &["EXEC"]);
    }
    let mut seen = Vec::new();
    for r in [&mut redis, &mut citadel] {
        let stats = info(r, "commandstats");
        let mut counts = Vec::new();
        for cmd in ["set", "incr", "lpush", "get", "eval", "exec"] {
            for f in ["calls", "failed_calls", "rejected_calls"] {
                let key = format!("cmdstat_{cmd}");
                counts.push((cmd, f, field(&stats, &key, f)));
            }
        }
        seen.push(counts);
    }
    assert_eq!(seen[1], seen[0], "citadel (right) vs redis (left)");
    assert_eq!(seen[1][0].2.as_deref(), Some("4"), "SETs: a, b's, c's, a=2");
}

#[test]
fn latency_graph_of_an_event_without_samples_is_redis_error() {
    let (mut redis, mut citadel, _r, _c) = both();
    for args in [&["LATENCY", "GRAPH", "nosuch"][..], &["LATENCY", "GRAPH"]] {
        assert_eq!(text(&mut citadel, args), text(&mut redis, args), "{args:?}");
    }
}

#[test]
fn latency_monitor_and_slowlog_record_a_slow_command() {
    let citadel = Server::start(&["--enable-debug-command", "local"]);
    let mut c = RespReader::new(citadel.raw());
    assert_eq!(send(&mut c, &["LATENCY", "LATEST"]), b"*0\r\n");
    send(&mut c, &["CONFIG", "SET", "latency-monitor-threshold", "5"]);
    send(&mut c, &["DEBUG", "SLEEP", "0.02"]);
    send(&mut c, &["GET", "fast"]);
    c.send(&encode_command(&[b"LATENCY", b"LATEST"]));
    let Some(Frame::Array(events)) = c.reply() else {
        panic!("LATENCY LATEST")
    };
    // DEBUG SLEEP's "command" event; on a loaded machine the GET may have
    // been preempted past 5 ms too (a "fast-command" event), as in Redis.
    let command = events.iter().find_map(|event| match event {
        Frame::Array(e) if e[0] == Frame::BulkString(b"command".to_vec()) => Some(e),
        _ => None,
    });
    let Some(e) = command else {
        panic!("{events:?}")
    };
    assert!(matches!(e[2], Frame::Integer(ms) if ms >= 20), "{e:?}");
    let history = text(&mut c, &["LATENCY", "HISTORY", "command"]);
    assert!(history.starts_with("*1\r\n*2\r\n:"), "{history}");
    assert!(text(&mut c, &["LATENCY", "DOCTOR"]).contains("command: 1 latency spikes"));
    // One sample: the graph's header, its rule, the sample's `_` column
    // (high = low), a blank row and the label ("0s" or "1s", one
    // character a row), as Redis draws it.
    let graph = text(&mut c, &["LATENCY", "GRAPH", "command"]);
    let body = graph.split_once("\r\n").unwrap().1;
    let rows: Vec<&str> = body.trim_end_matches("\r\n").lines().collect();
    assert!(
        rows[0].starts_with("command - high ") && rows[0].contains("all time high"),
        "{graph}"
    );
    assert_eq!(rows[1], "-".repeat(80));
    assert_eq!(&rows[2..7], &[" ", " ", " ", "_", " "], "{graph}");
    let seconds_ago = rows[7].len() == 1 && rows[7].as_bytes()[0].is_ascii_digit();
    assert!(seconds_ago && rows[8] == "s", "{graph}");
    assert_eq!(send(&mut c, &["LATENCY", "RESET"]), b":1\r\n");
    // The default slow log threshold (10 ms) caught DEBUG SLEEP (and, on a
    // loaded machine, maybe a preempted neighbour).
    let slow = text(&mut c, &["SLOWLOG", "GET"]);
    assert!(
        slow.starts_with('*') && slow.contains("*6\r\n") && slow.contains("$5\r\nDEBUG\r\n"),
        "{slow}"
    );
}

#[test]
fn memory_usage_wait_and_waitaof() {
    let (mut redis, mut citadel, _r, _c) = both();
    send(&mut citadel, &["SET", "key", &"v".repeat(1000)]);
    let usage = text(&mut citadel, &["MEMORY", "USAGE", "key"]);
    let bytes: usize = usage.trim_start_matches(':').trim().parse().unwrap();
    assert!((1003..1100).contains(&bytes), "{usage}");
    for args in [
        &["MEMORY", "USAGE", "missing"][..],
        &["MEMORY", "USAGE", "key", "SAMPLES", "x"],
        &["MEMORY", "USAGE", "key", "BOGUS", "1"],
        &["MEMORY", "HELP"],
        &["WAIT", "0", "0"],
        &["WAIT", "1", "-1"],
        &["WAIT", "x", "0"],
        &["PUBSUB", "HELP"],
    ] {
        assert_eq!(send(&mut citadel, args), send(&mut redis, args), "{args:?}");
    }
    assert_eq!(
        send(&mut citadel, &["WAITAOF", "0", "0", "0"]),
        b"*2\r\n:0\r\n:0\r\n"
    );
    let debug = text(&mut citadel, &["DEBUG", "OBJECT", "key"]);
    assert!(
        debug.starts_with("+Value at:") && debug.contains(" encoding:raw "),
        "{debug}"
    );
}

#[test]
fn client_reply_off_and_skip_suppress_replies_as_redis() {
    let (mut redis, mut citadel, _r, _c) = both();
    let script: &[&[&str]] = &[
        &["CLIENT", "REPLY", "OFF"],
        &["SET", "a", "1"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "ON"],
        &["CLIENT", "REPLY", "SKIP"],
        &["PING", "one"],
        &["PING", "two"],
    ];
    let mut batch = Vec::new();
    for args in script {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        batch.extend(encode_command(&args));
    }
    for r in [&mut redis, &mut citadel] {
        r.send(&batch);
        assert_eq!(r.raw_reply().unwrap(), b"+OK\r\n", "the ON");
        assert_eq!(r.raw_reply().unwrap(), b"$3\r\ntwo\r\n", "SKIP dropped one");
    }
}

#[test]
fn client_pause_holds_other_clients_writes_until_unpause() {
    let citadel = Server::start(&[]);
    let mut admin = RespReader::new(citadel.raw());
    let mut reader = RespReader::new(citadel.raw());
    // Several writers, so both server threads hold one at least.
    let mut writers: Vec<RespReader> = (0..4).map(|_| RespReader::new(citadel.raw())).collect();
    assert_eq!(
        send(&mut admin, &["CLIENT", "PAUSE", "60000", "WRITE"]),
        b"+OK\r\n"
    );
    for (i, w) in writers.iter_mut().enumerate() {
        let key = format!("w{i}");
        w.send(&encode_command(&[b"SET", key.as_bytes(), b"v"]));
    }
    // Reads go on while writes wait: no SET has run, none answered.
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..4 {
        let got = send(&mut reader, &["EXISTS", &format!("w{i}")]);
        assert_eq!(got, b":0\r\n", "w{i} was written during the pause");
    }
    for w in &mut writers {
        w.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut byte = [0u8; 1];
        assert!(w.stream.read(&mut byte).is_err(), "a held SET was answered");
        w.stream.set_read_timeout(None).unwrap();
    }
    assert_eq!(send(&mut admin, &["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    for w in &mut writers {
        assert_eq!(w.raw_reply().unwrap(), b"+OK\r\n");
    }
    for i in 0..4 {
        assert_eq!(send(&mut reader, &["EXISTS", &format!("w{i}")]), b":1\r\n");
    }
    // A pause ends by itself at its deadline, too.
    assert_eq!(
        send(&mut admin, &["CLIENT", "PAUSE", "200", "ALL"]),
        b"+OK\r\n"
    );
    let started = std::time::Instant::now();
    assert_eq!(send(&mut reader, &["GET", "w0"]), b"$1\r\nv\r\n");
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[test]
fn redis_cli_reads_the_slow_log() {
    let citadel = Server::start(&[]);
    let cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &citadel.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    cli(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
    cli(&["SET", "cli-key", "1"]);
    let log = cli(&["SLOWLOG", "GET", "2"]);
    assert!(log.contains("cli-key"), "{log}");
    assert_eq!(cli(&["OBJECT", "ENCODING", "cli-key"]).trim(), "int");
}
