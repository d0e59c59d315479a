//! `CONFIG SET maxmemory` below the cache file's size caps `used_memory`
//! live: the server evicts down to it and writes stay under it; under
//! noeviction writes past it get Redis's -OOM; 0 lifts it; above the
//! file's size is refused; a restart with a smaller maxmemory keeps the
//! file's keys under the same cap.

use std::time::{Duration, Instant};

use citadel_tests::clients::info_field;
use citadel_tests::reference::encode_command;
use citadel_tests::{run_to_exit, RespReader, Server};

const MIB: u64 = 1 << 20;
const OOM: &str = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";

fn text(r: &mut RespReader, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    r.send(&encode_command(&args));
    String::from_utf8_lossy(&r.raw_reply().expect("server closed the connection")).into_owned()
}

fn info(r: &mut RespReader, key: &str) -> u64 {
    let reply = text(r, &["INFO", "all"]);
    info_field(&reply, key)
}

fn value(i: u64) -> String {
    format!("{i:08}:{}", "v".repeat(1000))
}

/// Pipelines `SET k:i value(i)` for `range`, 500 at a time; the replies
/// that were not +OK (first of each kind kept) and how many.
fn fill(r: &mut RespReader, range: std::ops::Range<u64>) -> (u64, Option<String>) {
    let (mut failed, mut first) = (0, None);
    let keys: Vec<u64> = range.collect();
    for batch in keys.chunks(500) {
        let mut bytes = Vec::new();
        for i in batch {
            let (k, v) = (format!("k:{i}"), value(*i));
            bytes.extend(encode_command(&[b"SET", k.as_bytes(), v.as_bytes()]));
        }
        r.send(&bytes);
        for _ in batch {
            let reply = r.raw_reply().expect("server closed the connection");
            if reply != b"+OK\r\n" {
                failed += 1;
                first.get_or_insert_with(|| String::from_utf8_lossy(&reply).into_owned());
            }
        }
    }
    (failed, first)
}

fn config_get(r: &mut RespReader, name: &str) -> String {
    let reply = text(r, &["CONFIG", "GET", name]);
    reply.lines().nth(4).unwrap_or_default().to_string()
}

#[test]
fn a_lowered_maxmemory_evicts_down_to_it_and_holds() {
    let server = Server::start(&[]);
    let mut r = RespReader::new(server.raw());
    // 80 MiB of values into the 64 MiB file.
    assert_eq!(fill(&mut r, 0..80_000), (0, None));
    let full = info(&mut r, "used_memory");
    assert!(full > 40 * MIB, "used {full}");

    assert_eq!(
        text(&mut r, &["CONFIG", "SET", "maxmemory", "32mb"]),
        "+OK\r\n"
    );
    assert_eq!(config_get(&mut r, "maxmemory"), (32 * MIB).to_string());
    assert_eq!(info(&mut r, "maxmemory"), 32 * MIB);
    // Each thread's upkeep evicts toward the cap every ~100 ms.
    let deadline = Instant::now() + Duration::from_secs(10);
    while info(&mut r, "used_memory") > 32 * MIB {
        assert!(
            Instant::now() < deadline,
            "used_memory never came under the cap"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let evicted = info(&mut r, "evicted_keys");

    // Writes go on, evicting instead of growing, and what they wrote reads back.
    assert_eq!(fill(&mut r, 80_000..120_000), (0, None));
    assert!(info(&mut r, "used_memory") <= 32 * MIB);
    assert!(info(&mut r, "evicted_keys") > evicted);
    for i in 119_000..120_000 {
        let got = text(&mut r, &["GET", &format!("k:{i}")]);
        assert!(got.ends_with(&format!("{}\r\n", value(i))), "k:{i}: {got}");
    }

    // Above the file's size: refused, the cap unchanged.
    let too_big = text(&mut r, &["CONFIG", "SET", "maxmemory", "1gb"]);
    assert!(
        too_big.starts_with(
            "-ERR CONFIG SET failed (possibly related to argument 'maxmemory') - the cache file was made for 67108864 bytes"
        ),
        "{too_big}"
    );
    assert!(
        text(&mut r, &["CONFIG", "SET", "maxmemory", "lots"]).starts_with("-ERR CONFIG SET failed")
    );
    assert_eq!(config_get(&mut r, "maxmemory"), (32 * MIB).to_string());

    // 0 lifts it, as Redis's 0 means no limit: the file fills again.
    assert_eq!(
        text(&mut r, &["CONFIG", "SET", "maxmemory", "0"]),
        "+OK\r\n"
    );
    assert_eq!(config_get(&mut r, "maxmemory"), (64 * MIB).to_string());
    assert_eq!(fill(&mut r, 120_000..160_000), (0, None));
    assert!(info(&mut r, "used_memory") > 40 * MIB);
}

#[test]
fn noeviction_past_the_cap_answers_oom_and_loses_nothing() {
    let server = Server::start(&["--maxmemory-policy", "noeviction"]);
    let mut r = RespReader::new(server.raw());
    assert_eq!(fill(&mut r, 0..4_000), (0, None));
    assert_eq!(text(&mut r, &["RPUSH", "queue", "a", "b"]), ":2\r\n");
    let used = info(&mut r, "used_memory");
    assert_eq!(
        text(&mut r, &["CONFIG", "SET", "maxmemory", &used.to_string()]),
        "+OK\r\n"
    );
    let (failed, first) = fill(&mut r, 4_000..40_000);
    assert!(failed > 0);
    assert_eq!(first.as_deref(), Some(OOM));
    assert!(info(&mut r, "used_memory") <= used);
    // Every key written before is there; DEL and a pop still run.
    assert_eq!(info(&mut r, "evicted_keys"), 0);
    for i in (0..4_000).step_by(97) {
        let got = text(&mut r, &["GET", &format!("k:{i}")]);
        assert!(got.ends_with(&format!("{}\r\n", value(i))), "k:{i}: {got}");
    }
    assert_eq!(text(&mut r, &["LPOP", "queue"]), "$1\r\na\r\n");
    assert_eq!(text(&mut r, &["DEL", "k:0"]), ":1\r\n");
    assert_eq!(
        text(&mut r, &["CONFIG", "SET", "maxmemory", "0"]),
        "+OK\r\n"
    );
    assert_eq!(text(&mut r, &["SET", "after", "1"]), "+OK\r\n");
}

#[test]
fn a_restart_with_a_smaller_maxmemory_keeps_the_keys_under_a_cap() {
    let mut server = Server::start(&[]);
    {
        let mut r = RespReader::new(server.raw());
        assert_eq!(fill(&mut r, 0..2_000), (0, None));
        // CONFIG REWRITE would write the lowered value: the next start
        // must take the same file.
        assert_eq!(
            text(&mut r, &["CONFIG", "SET", "maxmemory", "48mb"]),
            "+OK\r\n"
        );
    }
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    let at = server.args.iter().position(|a| a == "--maxmemory").unwrap();
    server.args[at + 1] = "48mb".into();
    server.restart(false);
    let mut r = RespReader::new(server.raw());
    assert_eq!(text(&mut r, &["DBSIZE"]), ":2000\r\n");
    assert_eq!(info(&mut r, "maxmemory"), 48 * MIB);
    assert_eq!(fill(&mut r, 2_000..80_000), (0, None));
    assert!(info(&mut r, "used_memory") <= 48 * MIB);
    drop(r);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // A larger one than the file was made for is refused, saying how.
    let mut args: Vec<&str> = server.args.iter().map(String::as_str).collect();
    args[at + 1] = "128mb";
    let (status, out) = run_to_exit(&args);
    assert!(!status.success(), "{out}");
    assert!(
        out.contains("cannot grow") && out.contains("--fresh"),
        "{out}"
    );
}
