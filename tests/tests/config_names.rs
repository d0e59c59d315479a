//! CONFIG GET and SET under Redis's names: the older `*-ziplist-*` names
//! and Redis's names of settings Citadel calls otherwise answer as Redis
//! answers them, the sorted-set listpack limits are live settings that
//! OBJECT ENCODING follows, and a Redis parameter Citadel has no use for
//! accepts only the value Citadel has; the stream node and sparse
//! HyperLogLog limits are settings that take effect; CONFIG SET refuses a
//! parameter named twice and Redis's immutable ones with Redis's errors,
//! and takes a setting fixed at startup at the value it has. Each step
//! runs on a real redis-server too and must get the same reply.

use citadel_tests::differential::Pair;
use citadel_tests::redis;

#[test]
fn redis_names_of_settings_answer_as_in_redis() {
    let mut p = Pair::start();
    let cases: &[&[&str]] = &[
        &["CONFIG", "SET", "zset-max-ziplist-entries", "2"],
        &["CONFIG", "GET", "zset-max-listpack-entries"],
        &["CONFIG", "GET", "zset-max-ziplist-entries"],
        &["ZADD", "small", "1", "a", "2", "b"],
        &["OBJECT", "ENCODING", "small"],
        &["ZADD", "big", "1", "a", "2", "b", "3", "c"],
        &["OBJECT", "ENCODING", "big"],
        &["CONFIG", "SET", "zset-max-listpack-entries", "128"],
        &["CONFIG", "SET", "zset-max-ziplist-value", "3"],
        &["ZADD", "long", "1", "abcd"],
        &["OBJECT", "ENCODING", "long"],
        &["CONFIG", "SET", "zset-max-listpack-value", "64"],
        &["CONFIG", "SET", "hash-max-ziplist-entries", "1"],
        &["CONFIG", "GET", "hash-max-listpack-entries"],
        &["HSET", "h", "f", "v", "g", "w"],
        &["OBJECT", "ENCODING", "h"],
        &["CONFIG", "SET", "hash-max-ziplist-entries", "512"],
        &["CONFIG", "SET", "hash-max-ziplist-value", "2"],
        &["CONFIG", "GET", "hash-max-listpack-value"],
        &["CONFIG", "SET", "hash-max-listpack-value", "64"],
        &["CONFIG", "SET", "list-max-ziplist-size", "-1"],
        &["CONFIG", "GET", "list-max-listpack-size"],
        &["CONFIG", "SET", "list-max-ziplist-size", "-2"],
        &["CONFIG", "SET", "lua-time-limit", "4000"],
        &["CONFIG", "GET", "busy-reply-threshold"],
        &["CONFIG", "GET", "lua-time-limit"],
        &["CONFIG", "SET", "busy-reply-threshold", "5000"],
        &["CONFIG", "GET", "list-compress-depth"],
        &["CONFIG", "SET", "list-compress-depth", "0"],
        &["CONFIG", "SET", "no-such-setting", "1"],
    ];
    for case in cases {
        p.same_str(case);
    }
    // Citadel compresses no list pages: any other depth is refused, where
    // Redis takes it.
    let mut c = p.citadel.client();
    let refused: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("list-compress-depth")
        .arg("2")
        .query(&mut c);
    let err = refused.unwrap_err().to_string();
    assert!(err.contains("not settable at runtime in Citadel"), "{err}");
}

/// Redis's stream node and sparse HyperLogLog limits: CONFIG GET and SET
/// answer as Redis's, and they take effect: approximate trimming removes
/// whole pages (Redis's nodes), so with small nodes it removes what Redis
/// removes, and a HyperLogLog turns dense past the sparse limit, byte for
/// byte as Redis's.
#[test]
fn stream_node_and_hll_sparse_limits_are_settings_as_in_redis() {
    let mut p = Pair::start();
    for case in [
        &["CONFIG", "GET", "stream-node-max-entries"][..],
        &["CONFIG", "GET", "stream-node-max-bytes"],
        &["CONFIG", "GET", "hll-sparse-max-bytes"],
        &["CONFIG", "SET", "stream-node-max-bytes", "1kb"],
        &["CONFIG", "GET", "stream-node-max-bytes"],
        &["CONFIG", "SET", "stream-node-max-entries", "3"],
        &["CONFIG", "GET", "stream-node-max-entries"],
    ] {
        p.same_str(case);
    }
    // Nodes of 3 entries: MAXLEN ~ 5 keeps whole nodes.
    for i in 1..=10 {
        let id = format!("{i}-0");
        p.same_str(&["XADD", "s", &id, "f", "v"]);
    }
    p.same_str(&["XTRIM", "s", "MAXLEN", "~", "5"]);
    p.same_str(&["XLEN", "s"]);
    p.same_str(&["XRANGE", "s", "-", "+"]);
    // Nodes under 40 bytes: one or two entries each.
    p.same_str(&["CONFIG", "SET", "stream-node-max-entries", "0"]);
    p.same_str(&["CONFIG", "SET", "stream-node-max-bytes", "40"]);
    for i in 1..=10 {
        let id = format!("{i}-0");
        p.same_str(&["XADD", "t", &id, "field", "value-of-the-entry"]);
    }
    p.same_str(&["XADD", "t", "MAXLEN", "~", "4", "11-0", "f", "v"]);
    p.same_str(&["XLEN", "t"]);
    p.same_str(&["CONFIG", "SET", "stream-node-max-entries", "100"]);
    p.same_str(&["CONFIG", "SET", "stream-node-max-bytes", "4096"]);
    // A small sparse limit: the HyperLogLog turns dense sooner.
    for (key, limit) in [("dense", "100"), ("sparse", "3000")] {
        p.same_str(&["CONFIG", "SET", "hll-sparse-max-bytes", limit]);
        for chunk in 0..4 {
            let elements: Vec<String> = (0..25).map(|i| format!("e{chunk}-{i}")).collect();
            let mut args = vec!["PFADD", key];
            args.extend(elements.iter().map(String::as_str));
            p.same_str(&args);
        }
        p.same_str(&["STRLEN", key]);
        p.same_str(&["GET", key]);
        p.same_str(&["PFCOUNT", key]);
    }
}

/// Redis's CONFIG SET errors: a parameter named twice (not a name and its
/// alias), an immutable one; and a CONFIG GET / CONFIG SET round
/// trip of every parameter passes, as Redis's "CONFIG sanity" test does.
#[test]
fn config_set_refuses_as_redis_and_takes_the_values_in_effect() {
    let mut p = Pair::start();
    for case in [
        &[
            "CONFIG",
            "SET",
            "maxmemory",
            "10000001",
            "maxmemory",
            "10000002",
        ][..],
        &["CONFIG", "SET", "timeout", "0", "TIMEOUT", "0"],
        &[
            "CONFIG",
            "SET",
            "timeout",
            "0",
            "hash-max-ziplist-entries",
            "5",
            "hash-max-listpack-entries",
            "6",
        ],
        &["CONFIG", "SET", "daemonize", "yes"],
        &["CONFIG", "SET", "databases", "16"],
        &["CONFIG", "SET", "unixsocket", "/tmp/x.sock"],
        &["CONFIG", "GET", "hash-max-listpack-entries"],
    ] {
        p.same_str(case);
    }
    // Citadel's settings fixed at startup (port, threads, maxmemory ...)
    // take the value they have, and refuse another.
    let mut con = p.citadel.client();
    let all: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("*")
        .query(&mut con)
        .unwrap();
    let immutable = [
        "unixsocket",
        "unixsocketperm",
        "aclfile",
        "databases",
        "enable-debug-command",
        "cluster-enabled",
    ];
    for pair in all.chunks(2) {
        let (name, value) = (&pair[0], &pair[1]);
        if immutable.contains(&name.as_str()) {
            continue;
        }
        let set: redis::RedisResult<String> = redis::cmd("CONFIG")
            .arg("SET")
            .arg(name)
            .arg(value)
            .query(&mut con);
        assert_eq!(set.as_deref(), Ok("OK"), "CONFIG SET {name} {value}");
    }
    let other_port: redis::RedisResult<String> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("port")
        .arg("1")
        .query(&mut con);
    let err = other_port.unwrap_err().to_string();
    assert!(err.contains("not settable at runtime in Citadel"), "{err}");
}
