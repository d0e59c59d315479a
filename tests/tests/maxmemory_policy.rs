//! `maxmemory-policy`: noeviction refuses writes with Redis's -OOM reply
//! and loses nothing, volatile-* evicts only keys with a TTL, the policy
//! changes live, and OBJECT FREQ / IDLETIME answer per policy as Redis's.

use citadel_tests::clients::info_field;
use citadel_tests::reference::{encode_command, RedisServer};
use citadel_tests::{RespReader, Server};

const OOM: &[u8] = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn send(r: &mut RespReader, args: &[&str]) -> Vec<u8> {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    r.raw_reply().expect("server closed the connection")
}

fn text(r: &mut RespReader, args: &[&str]) -> String {
    String::from_utf8_lossy(&send(r, args)).into_owned()
}

fn small_server(policy: &str) -> (Server, RespReader) {
    let server = Server::start(&["--maxmemory", "8mb", "--maxmemory-policy", policy]);
    let r = RespReader::new(server.raw());
    (server, r)
}

/// Pipelines `SET prefix:i <200 bytes> [EX ttl]` for i in 0..limit, 500 at
/// a time, until a batch gets an error; returns the keys that got +OK
/// and the first error reply.
fn fill(
    r: &mut RespReader,
    prefix: &str,
    ex: Option<&str>,
    limit: u64,
) -> (Vec<u64>, Option<Vec<u8>>) {
    let value = "v".repeat(200);
    let (mut ok, mut error) = (Vec::new(), None);
    let mut i = 0;
    while i < limit && error.is_none() {
        let batch: Vec<u64> = (i..(i + 500).min(limit)).collect();
        let mut bytes = Vec::new();
        for n in &batch {
            let key = format!("{prefix}:{n}");
            let mut args: Vec<&[u8]> = vec![b"SET", key.as_bytes(), value.as_bytes()];
            if let Some(ttl) = ex {
                args.extend([b"EX".as_slice(), ttl.as_bytes()]);
            }
            bytes.extend(encode_command(&args));
        }
        r.send(&bytes);
        for n in &batch {
            let reply = r.raw_reply().expect("server closed the connection");
            if reply == b"+OK\r\n" {
                ok.push(*n);
            } else {
                error.get_or_insert(reply);
            }
        }
        i += batch.len() as u64;
    }
    (ok, error)
}

/// How many of `keys` (as prefix:i) exist, asked 500 at a time.
fn existing(r: &mut RespReader, prefix: &str, keys: &[u64]) -> u64 {
    let mut found = 0;
    for chunk in keys.chunks(500) {
        let names: Vec<String> = chunk.iter().map(|n| format!("{prefix}:{n}")).collect();
        let mut args = vec!["EXISTS"];
        args.extend(names.iter().map(String::as_str));
        let reply = text(r, &args);
        found += reply
            .trim_start_matches(':')
            .trim()
            .parse::<u64>()
            .expect(&reply);
    }
    found
}

fn info_u64(r: &mut RespReader, section: &str, field: &str) -> u64 {
    info_field(&text(r, &["INFO", section]), field)
}

#[test]
fn noeviction_refuses_writes_with_oom_and_loses_nothing() {
    let (_server, mut r) = small_server("noeviction");
    send(&mut r, &["RPUSH", "queue", "a", "b", "c"]);
    let (written, error) = fill(&mut r, "k", None, 1_000_000);
    assert_eq!(error.as_deref(), Some(OOM), "the first refusal");
    assert!(
        written.len() > 10_000,
        "only {} keys in 8 MiB",
        written.len()
    );
    assert_eq!(existing(&mut r, "k", &written), written.len() as u64);
    assert_eq!(info_u64(&mut r, "stats", "evicted_keys"), 0);
    // Writes are refused (a value that would fit the bytes left at the end
    // of a segment is still taken: room is what decides), reads and
    // deletes still run.
    let big = "w".repeat(300);
    assert_eq!(send(&mut r, &["SET", "one-more", &big]), OOM);
    assert_eq!(send(&mut r, &["LPUSH", "queue", &big]), OOM);
    assert_eq!(send(&mut r, &["LPUSH", "new-list", &big]), OOM);
    assert_eq!(
        text(&mut r, &["LRANGE", "queue", "0", "-1"]),
        "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n"
    );
    assert_eq!(text(&mut r, &["EXISTS", "new-list"]), ":0\r\n");
    assert_eq!(
        text(&mut r, &["GET", "k:0"]),
        format!("$200\r\n{}\r\n", "v".repeat(200))
    );
    // A queue's consumer still pops (LPOP is not denyoom: it may use the reserve).
    assert_eq!(text(&mut r, &["LPOP", "queue"]), "$1\r\na\r\n");
    // After deletes, writes succeed again.
    for chunk in written[..written.len() / 4].chunks(500) {
        let names: Vec<String> = chunk.iter().map(|n| format!("k:{n}")).collect();
        let mut args = vec!["DEL"];
        args.extend(names.iter().map(String::as_str));
        assert_eq!(text(&mut r, &args), format!(":{}\r\n", chunk.len()));
    }
    let (again, error) = fill(&mut r, "after", None, 1_000);
    assert_eq!(
        (again.len(), error),
        (1_000, None),
        "writes refused after DEL"
    );
    assert_eq!(text(&mut r, &["LPUSH", "queue", "d"]), ":3\r\n");
    let kept = &written[written.len() / 4..];
    assert_eq!(existing(&mut r, "k", kept), kept.len() as u64);
    assert_eq!(info_u64(&mut r, "stats", "evicted_keys"), 0);
}

#[test]
fn volatile_lru_evicts_only_keys_with_a_ttl() {
    let (_server, mut r) = small_server("volatile-lru");
    let (permanent, error) = fill(&mut r, "keep", None, 5_000);
    assert_eq!((permanent.len(), error), (5_000, None));
    // Four times what the cache holds, all with a TTL: evicted, not refused.
    let (churn, error) = fill(&mut r, "ttl", Some("3600"), 150_000);
    assert_eq!(error, None, "a TTL key was refused");
    assert_eq!(churn.len(), 150_000);
    assert!(info_u64(&mut r, "stats", "evicted_keys") > 50_000);
    assert_eq!(
        existing(&mut r, "keep", &permanent),
        5_000,
        "a key without TTL was evicted"
    );
}

#[test]
fn config_set_switches_the_policy_live() {
    let (_server, mut r) = small_server("allkeys-lfu");
    let get = |r: &mut RespReader| text(r, &["CONFIG", "GET", "maxmemory-policy"]);
    assert!(get(&mut r).ends_with("$11\r\nallkeys-lfu\r\n"));
    assert_eq!(
        text(&mut r, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]),
        "+OK\r\n"
    );
    assert!(get(&mut r).ends_with("$10\r\nnoeviction\r\n"));
    assert!(text(&mut r, &["INFO", "memory"]).contains("maxmemory_policy:noeviction\r\n"));
    let (_, error) = fill(&mut r, "k", None, 1_000_000);
    assert_eq!(error.as_deref(), Some(OOM));
    // Back to an allkeys policy: the same writes evict instead.
    assert_eq!(
        text(
            &mut r,
            &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"]
        ),
        "+OK\r\n"
    );
    let (more, error) = fill(&mut r, "more", None, 20_000);
    assert_eq!((more.len(), error), (20_000, None));
    assert!(info_u64(&mut r, "stats", "evicted_keys") > 0);
    assert!(text(&mut r, &["CONFIG", "SET", "maxmemory-policy", "sometimes"]).starts_with("-ERR"));
    assert!(get(&mut r).ends_with("$11\r\nallkeys-lru\r\n"));
}

/// The same replies as a redis-server under the same policy: -OOM for a
/// write when full (Redis at maxmemory 1 byte; Citadel filled with
/// 200-byte values, written 300 bytes at a time), and OBJECT FREQ/IDLETIME.
#[test]
fn oom_and_object_replies_match_redis() {
    let redis = RedisServer::start_with(&["--maxmemory-policy", "noeviction"]);
    let mut want = RespReader::new(redis.raw());
    let (_server, mut got) = small_server("noeviction");
    for r in [&mut want, &mut got] {
        send(r, &["SET", "k", "v"]);
        send(r, &["RPUSH", "list", "a"]);
    }
    send(&mut want, &["CONFIG", "SET", "maxmemory", "1"]);
    fill(&mut got, "fill", None, 1_000_000);
    let big = "w".repeat(300);
    for args in [
        &["SET", "x", &big][..],
        &["LPUSH", "list", &big],
        &["HSET", "h", "f", &big],
        &["GET", "k"],
        &["OBJECT", "FREQ", "k"],
        &["DEL", "k"],
        &["LPOP", "list"],
    ] {
        assert_eq!(
            text(&mut got, args),
            text(&mut want, args),
            "{args:?} under noeviction"
        );
    }
    // IDLETIME answers a number under every policy but the LFU ones.
    send(&mut want, &["CONFIG", "SET", "maxmemory", "0"]);
    send(&mut got, &["FLUSHALL"]);
    for r in [&mut want, &mut got] {
        assert_eq!(text(r, &["SET", "k", "v"]), "+OK\r\n");
        send(r, &["CONFIG", "SET", "maxmemory-policy", "volatile-lru"]);
    }
    assert!(text(&mut got, &["OBJECT", "IDLETIME", "k"]).starts_with(':'));
    assert!(text(&mut want, &["OBJECT", "IDLETIME", "k"]).starts_with(':'));
    for r in [&mut want, &mut got] {
        send(r, &["CONFIG", "SET", "maxmemory-policy", "volatile-lfu"]);
    }
    for args in [
        &["OBJECT", "IDLETIME", "k"][..],
        &["OBJECT", "FREQ", "nope"],
    ] {
        assert_eq!(text(&mut got, args), text(&mut want, args), "{args:?}");
    }
    assert!(text(&mut got, &["OBJECT", "FREQ", "k"]).starts_with(':'));
    // What eviction leaves out of its count (Redis: AOF and replica
    // buffers; `redis-cli --memkeys`-style tools subtract it): 0 on both.
    let not_counted =
        |r: &mut RespReader| info_field(&text(r, &["INFO", "memory"]), "mem_not_counted_for_evict");
    assert_eq!((not_counted(&mut got), not_counted(&mut want)), (0, 0));
}
