//! Scripts and MULTI/EXEC that write far more than the cache holds while
//! keeping little: each write of a key drops the key's previous pending
//! item, and the segments those dropped items fill go back to eviction
//! before the commit (they were held until it: a script adding a million
//! members to one set ran out of memory with the cache full of its own
//! dropped items).

use citadel_tests::reference::encode_command;
use citadel_tests::{RespReader, Server};

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
