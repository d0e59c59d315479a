//! The collection operations (`--ops`, redis-benchmark's tests) against a real
//! redis-server and a real Citadel: each short run is answered without an error, and the
//! server's collections afterwards hold what the report says was pushed, added and popped.

mod common;

use common::{run_loadgen, u, Server};

/// Runs `ops` for exactly `n` requests with `extra` flags; returns the JSON report.
fn run(server: &Server, ops: &str, n: u64, extra: &[&str]) -> serde_json::Value {
    let n = n.to_string();
    let addr = server.addr();
    let mut args = vec![
        "-s", &addr, "-c", "4", "-p", "8", "-d", "3", "-n", &n, "--ops", ops,
    ];
    args.extend_from_slice(extra);
    let (status, report, out) = run_loadgen(&args);
    assert!(
        status.success(),
        "--ops {ops} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        u(&report, "requests"),
        n.parse::<u64>().unwrap(),
        "--ops {ops}"
    );
    assert_eq!(u(&report, "errors"), 0, "--ops {ops}");
    report
}

/// 2000 adds over 500 elements leave 1..=500 members (`card` counts them); then as many
/// pops as members, plus 100, hit exactly that many and leave nothing.
fn add_then_pop(server: &Server, (add, pop): (&str, &str), card: [&str; 2]) {
    run(server, add, 2000, &["--elements", "500"]);
    let members = server.int(&card);
    assert!((1..=500).contains(&members), "{card:?} {members}");
    let r = run(server, pop, members as u64 + 100, &[]);
    let counts = (
        u(&r, &format!("ops.{pop}.hits")),
        u(&r, &format!("ops.{pop}.misses")),
    );
    assert_eq!(counts, (members as u64, 100), "{pop}");
    assert_eq!(server.int(&card), 0);
}

/// Every collection operation, in an order that leaves each something to pop or read.
fn exercise(server: &Server) {
    let len = |key: &str| server.int(&["LLEN", key]);
    // Lists: pushes grow the list by what the report counts; ranges read full ranges.
    let r = run(server, "lpush", 2000, &[]);
    assert_eq!(u(&r, "ops.lpush.ok"), 2000);
    assert_eq!(len("mylist"), 2000);
    run(server, "rpush", 1000, &[]);
    assert_eq!(len("mylist"), 3000);
    let r = run(server, "lrange_100", 300, &[]);
    assert_eq!(
        (u(&r, "ops.lrange_100.hits"), u(&r, "ops.lrange_100.misses")),
        (300 * 100, 0)
    );
    let r = run(server, "lrange_600", 100, &[]);
    assert_eq!(u(&r, "ops.lrange_600.hits"), 100 * 600);
    let r = run(server, "lpop:1,rpop:1", 2000, &[]);
    assert_eq!(u(&r, "ops.lpop.hits") + u(&r, "ops.rpop.hits"), 2000);
    assert!(u(&r, "ops.lpop.requests") > 0 && u(&r, "ops.rpop.requests") > 0);
    assert_eq!(len("mylist"), 1000);
    // A short list: LRANGE counts the elements it did not get as misses.
    run(server, "rpop", 950, &[]);
    let r = run(server, "lrange_100", 10, &[]);
    assert_eq!(
        (u(&r, "ops.lrange_100.hits"), u(&r, "ops.lrange_100.misses")),
        (10 * 50, 10 * 50)
    );

    // Sets: SPOP pops every element SADD left, then misses.
    add_then_pop(server, ("sadd", "spop"), ["SCARD", "myset"]);
    // Without --elements, one fixed element (like redis-benchmark without -r).
    run(server, "sadd", 100, &[]);
    assert_eq!(server.int(&["SCARD", "myset"]), 1);
    assert_eq!(
        server.int(&["SISMEMBER", "myset", "element:000000000000"]),
        1
    );

    // Hashes.
    run(server, "hset", 2000, &["--elements", "500"]);
    let fields = server.int(&["HLEN", "myhash"]);
    assert!((1..=500).contains(&fields), "HLEN {fields}");

    // Sorted sets: ZPOPMIN pops every member ZADD left, then misses.
    add_then_pop(server, ("zadd", "zpopmin"), ["ZCARD", "myzset"]);

    // Spread over collection keys: every key gets some, and they add up.
    run(server, "lpush", 400, &["--collection-keys", "4"]);
    let lens: Vec<i64> = (0..4).map(|i| len(&format!("mylist:{i}"))).collect();
    assert!(lens.iter().all(|&n| n > 0), "{lens:?}");
    assert_eq!(lens.iter().sum::<i64>(), 400);

    // BITCOUNT reads the prefilled strings of the key space: a value of
    // -d 3 bytes ('x' fill or random) answers an integer, counted as done.
    let r = run(server, "bitcount", 500, &["-k", "50", "--prefill"]);
    assert_eq!(u(&r, "ops.bitcount.ok"), 500);

    // A wrong type is a server error, counted as such.
    server.command(&["SET", "myzset", "string"]);
    let (status, report, _) =
        run_loadgen(&["-s", &server.addr(), "-c", "1", "-n", "5", "--ops", "zadd"]);
    assert!(!status.success(), "errors fail the run");
    assert_eq!(u(&report, "ops.zadd.errors"), 5);
    assert_eq!(u(&report, "errors_by_kind.server_error"), 5);
}

#[test]
fn collection_operations_against_redis() {
    exercise(&Server::redis());
}

#[test]
fn collection_operations_against_citadel() {
    exercise(&Server::citadel());
}

#[test]
fn collection_operations_need_resp() {
    for op in ["lpush", "bitcount"] {
        let (mut cmd, _json) = common::loadgen(&["-P", "memcache", "--ops", op, "-n", "1"]);
        let out = cmd.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{op}: refused before any request"
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("collection operations and bitcount need --protocol resp"),
            "{stderr}"
        );
    }
}
