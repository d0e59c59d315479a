//! Scripts and MULTI/EXEC that write far more than the cache holds while
//! keeping little: each write of a key drops the key's previous pending
//! item, and the segments those dropped items fill go back to eviction
//! before the commit (they were held until it: a script adding a million
//! members to one set ran out of memory with the cache full of its own
//! dropped items).

use citadel_tests::reference::encode_command;
use citadel_tests::{clients, RespReader, Server};

fn call(r: &mut RespReader, args: &[&[u8]]) -> String {
    r.send(&encode_command(args));
    String::from_utf8_lossy(&r.raw_reply().expect("server closed")).into_owned()
}

/// 64 MiB of cache (the test servers' size) and several times that written.
#[test]
fn a_script_rewriting_keys_far_past_the_cache_size_commits() {
    let server = Server::start(&[]);
    let mut r = RespReader::new(server.raw());
    // ~300k page rewrites of one set.
    let sadds = "for i = 1, tonumber(ARGV[1]) do redis.call('sadd', KEYS[1], i) end \
                 return redis.call('scard', KEYS[1])";
    assert_eq!(
        call(
            &mut r,
            &[b"EVAL", sadds.as_bytes(), b"1", b"big", b"300000"]
        ),
        ":300000\r\n"
    );
    // 256 MiB of 4 KiB strings over 16 keys.
    let sets = "local v = string.rep('x', 4096) \
                for i = 1, tonumber(ARGV[1]) do redis.call('set', 'k' .. (i % 16), v .. i) end \
                return redis.call('strlen', 'k0')";
    assert_eq!(
        call(&mut r, &[b"EVAL", sets.as_bytes(), b"0", b"65536"]),
        ":4101\r\n"
    );
    // The same through MULTI/EXEC: 96 MiB queued as 24k SETs of 4 KiB.
    let value = vec![b'y'; 4096];
    assert_eq!(call(&mut r, &[b"MULTI"]), "+OK\r\n");
    for i in 0..24_576u32 {
        let key = format!("m{}", i % 8);
        assert_eq!(
            call(&mut r, &[b"SET", key.as_bytes(), &value]),
            "+QUEUED\r\n"
        );
    }
    let exec = call(&mut r, &[b"EXEC"]);
    assert!(
        exec.starts_with("*24576\r\n+OK\r\n"),
        "{}",
        &exec[..exec.len().min(200)]
    );
    assert_eq!(call(&mut r, &[b"SCARD", b"big"]), ":300000\r\n");
}

/// A field of INFO's reply.
fn info_field(r: &mut RespReader, name: &str) -> u64 {
    clients::info_field(&call(r, &[b"INFO", b"everything"]), name)
}

/// `ZRANGE key 0 -1 WITHSCORES` as RESP2 sends it, for integer scores.
fn range_reply(members: &[(i64, String)]) -> String {
    let mut out = format!("*{}\r\n", members.len() * 2);
    for (score, member) in members {
        let score = score.to_string();
        out += &format!(
            "${}\r\n{member}\r\n${}\r\n{score}\r\n",
            member.len(),
            score.len()
        );
    }
    out
}

/// Fills sorted set `z` with members `1..=n` at their own score.
const FILL: &str = "for i = 1, tonumber(ARGV[1]) do redis.call('zadd', KEYS[1], i, i) end \
                    return redis.call('zcard', KEYS[1])";
/// ZINCRBYs of members spread over the whole 20,000-member `z`.
const SPREAD: &str = "for i = 1, tonumber(ARGV[1]) do \
                        redis.call('zincrby', KEYS[1], 1, (i * 7919) % 20000) end \
                      return redis.call('zcard', KEYS[1])";

fn eval(r: &mut RespReader, script: &str, n: u64) -> String {
    let n = n.to_string();
    call(r, &[b"EVAL", script.as_bytes(), b"1", b"z", n.as_bytes()])
}

fn whole_z(r: &mut RespReader) -> String {
    call(r, &[b"ZRANGE", b"z", b"0", b"-1", b"WITHSCORES"])
}

/// `whole_z` after `FILL` of 20,000 and `SPREAD` of `spread`.
fn z_after(spread: i64) -> String {
    let mut model: std::collections::HashMap<String, i64> =
        (1..=20_000).map(|i| (i.to_string(), i)).collect();
    for i in 1..=spread {
        *model.entry(((i * 7919) % 20_000).to_string()).or_default() += 1;
    }
    let mut expected: Vec<(i64, String)> = model.into_iter().map(|(m, s)| (s, m)).collect();
    expected.sort();
    range_reply(&expected)
}

/// Small changes all over a big sorted set, in one script each: every
/// write rewrites a leaf and a member-index page, so the latest pending
/// version of some page lands in nearly every segment the script fills.
/// Those segments were held until the commit, the cache filled with the
/// dead versions around them, eviction moved the pages the script had
/// read, and the commit conflicted: the script ran again, forever. Now the
/// pending pages move out of sparse held segments, which go back to the
/// free list: each script commits on its first run, evicting nothing.
#[test]
fn a_script_spreading_writes_over_a_big_collection_commits_on_its_first_run() {
    let server = Server::start(&[]);
    let mut r = RespReader::new(server.raw());
    assert_eq!(eval(&mut r, FILL, 20_000), ":20000\r\n");
    assert_eq!(eval(&mut r, SPREAD, 30_000), ":20001\r\n");
    assert!(
        whole_z(&mut r) == z_after(30_000),
        "the set differs from the model"
    );
    assert_eq!(info_field(&mut r, "script_retries"), 0);
    assert_eq!(info_field(&mut r, "cache_evictions"), 0);
    // A set of ~3 MiB: its pages, and held segments of at most twice
    // the pending bytes while the scripts ran, not the dead versions.
    let segments_used =
        info_field(&mut r, "cache_segments_total") - info_field(&mut r, "cache_segments_free");
    assert!(segments_used <= 24, "{segments_used} segments in use");
}

/// kill -9 while such a script runs (its pending pages moved and the
/// segments it emptied freed as it went): after the restart the set is as
/// it was before the script, and the script then commits.
#[test]
fn kill9_in_a_long_script_leaves_the_set_as_before_it() {
    let mut server = Server::start(&[]);
    let mut r = RespReader::new(server.raw());
    assert_eq!(eval(&mut r, FILL, 20_000), ":20000\r\n");
    // Two million ZINCRBYs: far longer than the wait before the kill.
    let mut long = RespReader::new(server.raw());
    long.send(&encode_command(&[
        b"EVAL",
        SPREAD.as_bytes(),
        b"1",
        b"z",
        b"2000000",
    ]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    server.kill9();
    server.restart(false);
    let mut r = RespReader::new(server.raw());
    assert!(whole_z(&mut r) == z_after(0), "the set is not as before");
    assert_eq!(eval(&mut r, SPREAD, 30_000), ":20001\r\n");
    assert!(
        whole_z(&mut r) == z_after(30_000),
        "the set differs from the model"
    );
}
