//! Connection modes as Redis clients see them: CLIENT LIST's `flags`
//! against a real redis-server (MULTI, tracking, NO-EVICT), and CLIENT
//! NO-TOUCH, whose commands leave the keys' access frequency alone.

use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{RespReader, Server};

fn send(r: &mut RespReader, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    String::from_utf8_lossy(&r.raw_reply().expect("server closed the connection")).into_owned()
}

/// The `flags=` field of a CLIENT INFO line (inside EXEC's reply too).
fn flags(info: &str) -> String {
    let at = info.find(" flags=").expect("a flags field") + " flags=".len();
    info[at..].split(' ').next().unwrap_or_default().to_owned()
}

#[test]
fn client_list_flags_are_redis_flags() {
    let redis = RedisServer::start();
    let citadel = Server::start(&[]);
    let mut want = RespReader::new(redis.raw());
    let mut got = RespReader::new(citadel.raw());
    let steps: &[&[&str]] = &[
        &["CLIENT", "INFO"],
        &["CLIENT", "NO-EVICT", "on"],
        &["CLIENT", "INFO"],
        &["CLIENT", "TRACKING", "on"],
        &["CLIENT", "INFO"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKING", "on", "BCAST"],
        &["CLIENT", "INFO"],
        &["MULTI"],
        &["CLIENT", "INFO"],
        &["EXEC"],
        &["CLIENT", "INFO"],
        &["MULTI"],
        &["DISCARD"],
        &["CLIENT", "NO-EVICT", "off"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "INFO"],
    ];
    let mut seen = Vec::new();
    for step in steps {
        let (a, b) = (send(&mut want, step), send(&mut got, step));
        if a.contains(" flags=") {
            assert_eq!(flags(&b), flags(&a), "after {seen:?}");
        } else {
            assert_eq!(b, a, "{step:?}");
        }
        seen.push(step.join(" "));
    }
    assert_eq!(flags(&send(&mut got, &["CLIENT", "INFO"])), "N");
}

/// The cache's own access counter of `k` that eviction reads (DEBUG
/// OBJECT's `lru:` under an LFU policy). OBJECT FREQ shows the larger of
/// it and the hot-key window's count, which counts every request, NO-TOUCH
/// ones too (overload protection watches all traffic).
fn freq(r: &mut RespReader) -> u64 {
    let reply = send(r, &["DEBUG", "OBJECT", "k"]);
    let at = reply.find(" lru:").expect("an lru field") + " lru:".len();
    let digits: String = reply[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("DEBUG OBJECT: {reply:?}"))
}

#[test]
fn no_touch_reads_leave_the_access_frequency_alone() {
    let citadel = Server::start(&[
        "--maxmemory-policy",
        "allkeys-lfu",
        "--enable-debug-command",
        "local",
    ]);
    let mut quiet = RespReader::new(citadel.raw());
    let mut normal = RespReader::new(citadel.raw());
    assert_eq!(send(&mut quiet, &["SET", "k", "v"]), "+OK\r\n");
    assert_eq!(send(&mut quiet, &["CLIENT", "NO-TOUCH", "on"]), "+OK\r\n");
    assert!(flags(&send(&mut quiet, &["CLIENT", "INFO"])).contains('T'));
    let before = freq(&mut quiet);
    // Pipelined (the fast path's reads) and one at a time (dispatch's).
    let burst: Vec<u8> = (0..2000)
        .flat_map(|_| encode_command(&[b"GET", b"k"]))
        .collect();
    quiet.send(&burst);
    for _ in 0..2000 {
        assert_eq!(quiet.raw_reply().unwrap(), b"$1\r\nv\r\n");
    }
    for _ in 0..200 {
        send(&mut quiet, &["STRLEN", "k"]);
        send(&mut quiet, &["APPEND", "k", ""]);
    }
    assert_eq!(
        freq(&mut quiet),
        before,
        "a NO-TOUCH client's reads and writes"
    );
    // TOUCH counts even under NO-TOUCH, as in Redis.
    // (Few: the counter saturates at a handful of levels.)
    for _ in 0..40 {
        send(&mut quiet, &["TOUCH", "k"]);
    }
    let touched = freq(&mut quiet);
    assert!(touched > before, "TOUCH: {before} -> {touched}");
    // Another client's reads count as usual.
    for _ in 0..4000 {
        send(&mut normal, &["GET", "k"]);
    }
    assert!(freq(&mut normal) > touched, "an ordinary client's reads");
}
