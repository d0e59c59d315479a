//! SAVE / BGSAVE / BGREWRITEAOF / LASTSAVE and INFO persistence, ROLE,
//! REPLICAOF / SLAVEOF, LOLWUT, COMMAND GETKEYSANDFLAGS, RESTORE-ASKING,
//! SCRIPT DEBUG and PFSELFTEST: replies compared byte for byte with a real
//! redis-server where they are comparable, the rest checked on Citadel.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use citadel_tests::differential::Pair;
use citadel_tests::Server;

fn persistence(con: &mut redis::Connection) -> std::collections::HashMap<String, String> {
    let text: String = redis::cmd("INFO").arg("persistence").query(con).unwrap();
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits until no background save runs; returns INFO persistence then.
fn settled(con: &mut redis::Connection) -> std::collections::HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = persistence(con);
        if info["rdb_bgsave_in_progress"] == "0" && info["aof_rewrite_in_progress"] == "0" {
            return info;
        }
        assert!(Instant::now() < deadline, "background save never ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn save_commands_and_roles_answer_as_redis() {
    let mut pair = Pair::start();
    let cases: &[&[&str]] = &[
        &["SAVE"],
        &["SAVE", "x"],
        &["BGSAVE", "FOO"],
        &["BGSAVE", "SCHEDULE", "x"],
        &["ROLE"],
        &["ROLE", "x"],
        &["REPLICAOF", "NO", "ONE"],
        &["replicaof", "no", "one"],
        &["SLAVEOF", "NO", "ONE"],
        &["REPLICAOF", "127.0.0.1", "notaport"],
        &["REPLICAOF", "127.0.0.1", "70000"],
        &["REPLICAOF", "NO"],
        &["SCRIPT", "DEBUG", "NO"],
        &["SCRIPT", "DEBUG", "maybe"],
        &["SCRIPT", "DEBUG"],
        &["PFSELFTEST"],
        &["PFSELFTEST", "x"],
    ];
    for case in cases {
        pair.same_str(case);
    }
    // LASTSAVE: an integer, the start (or SAVE just now) on both.
    let (redis, citadel) = pair.each_on(0, &["LASTSAVE"]);
    for reply in [&redis, &citadel] {
        let t: i64 = reply.trim_start_matches(':').trim().parse().unwrap();
        assert!((t - unix_now()).abs() < 60, "{reply}");
    }
}

#[test]
fn getkeysandflags_and_restore_asking_match_redis() {
    let mut pair = Pair::start();
    // Each asked about as COMMAND GETKEYSANDFLAGS <line>.
    let lines = [
        "SET a b",
        "SET a b EX 1 get",
        "BITFIELD k GET u8 0",
        "BITFIELD k GET u8 0 INCRBY u8 0 1",
        "GET a",
        "BITOP AND d s1 s2",
        "MSET a 1 b 2",
        "LMOVE a b LEFT RIGHT",
        "EVAL return 2 k1 k2 a",
        "EVAL return 0",
        "ZUNIONSTORE d 2 a b",
        "XREAD STREAMS s1 s2 0 0",
        "SORT k1 STORE k2",
        "SORT k1 BY w GET x LIMIT 0 1 STORE k2",
        "SORT k1",
        "SORT_RO k1 BY w",
        "DEL a b c",
        "PING",
        "GET",
        "NOSUCH a",
        "SET a",
    ];
    let resp3 = pair.connect();
    pair.both(resp3, &["HELLO", "3"]);
    for line in lines {
        let mut case = vec!["COMMAND", "GETKEYSANDFLAGS"];
        case.extend(line.split(' '));
        pair.same_str(&case);
        pair.same_str_on(resp3, &case);
    }
    // RESTORE-ASKING takes Redis's DUMP payload as RESTORE does.
    pair.same_str(&["RPUSH", "list", "a", "b", "c"]);
    let mut redis_con = redis::Client::open(format!("redis://127.0.0.1:{}/", pair.redis.port))
        .unwrap()
        .get_connection()
        .unwrap();
    let payload: Vec<u8> = redis::cmd("DUMP")
        .arg("list")
        .query(&mut redis_con)
        .unwrap();
    let payload = &payload[..];
    pair.same(&[b"RESTORE-ASKING", b"copy", b"0", payload]);
    pair.same(&[b"RESTORE-ASKING", b"copy", b"0", payload]);
    pair.same(&[b"RESTORE-ASKING", b"copy", b"0", payload, b"REPLACE"]);
    pair.same_str(&["LRANGE", "copy", "0", "-1"]);
    pair.same_str(&["RESTORE-ASKING", "x", "0", "garbage"]);
}

#[test]
fn lolwut_draws_as_redis() {
    let mut pair = Pair::start();
    // Up to two rows of squares nothing is random: the same drawing.
    for case in [
        &["LOLWUT", "VERSION", "5", "40", "4", "2"][..],
        &["LOLWUT", "VERSION", "5", "1", "1", "1"],
        &["LOLWUT", "VERSION", "5", "66", "8", "1"],
    ] {
        let (redis, citadel) = pair.each_on(0, case);
        // The bulk length differs by the version's (7.0.15, 7.4.0).
        let drawing = |reply: &str| {
            let body = reply.split_once("\r\n").unwrap().1;
            body.split("Redis ver.").next().unwrap().to_string()
        };
        assert_eq!(drawing(&citadel), drawing(&redis), "{case:?}");
        assert!(citadel.contains("Georg Nees - schotter"), "{citadel}");
    }
    pair.same_str(&["LOLWUT", "VERSION", "x"]);
    let mut con = pair.citadel.client();
    let version: String = redis::cmd("LOLWUT").query(&mut con).unwrap();
    assert!(version.starts_with("Redis ver. 7."), "{version}");
    // The skyline: one line per row, each pixel a coloured space.
    let sky: String = redis::cmd("LOLWUT")
        .arg("VERSION")
        .arg(6)
        .arg(30)
        .arg(10)
        .query(&mut con)
        .unwrap();
    let lines: Vec<&str> = sky.lines().collect();
    assert_eq!(lines.len(), 10 + 2, "{sky}");
    assert_eq!(lines[0].matches(" \x1b[0m").count(), 30);
    assert!(lines[11].starts_with("Original 8 bit image from Plaguemon"));
    // Schotter's default: 66 columns of braille, 12 rows of squares.
    let art: String = redis::cmd("LOLWUT")
        .arg("VERSION")
        .arg(5)
        .query(&mut con)
        .unwrap();
    assert_eq!(art.lines().next().unwrap().chars().count(), 66);
}

#[test]
fn saves_are_counted_and_reported_in_info() {
    let server = Server::start(&["--enable-debug-command", "local"]);
    let mut con = server.client();
    let before = unix_now();
    for i in 0..5 {
        let _: () = redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query(&mut con)
            .unwrap();
    }
    // A failed write and a read change nothing.
    let _: redis::RedisResult<()> = redis::cmd("INCRBY").arg("k0").arg("x").query(&mut con);
    let _: Option<String> = redis::cmd("GET").arg("k1").query(&mut con).unwrap();
    let info = persistence(&mut con);
    assert_eq!(info["rdb_changes_since_last_save"], "5", "{info:?}");
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    assert_eq!(info["rdb_saves"], "0");
    assert_eq!(info["aof_enabled"], "0");

    let started: String = redis::cmd("BGSAVE").query(&mut con).unwrap();
    assert_eq!(started, "Background saving started");
    let info = settled(&mut con);
    assert_eq!(info["rdb_changes_since_last_save"], "0", "{info:?}");
    assert_eq!(info["rdb_saves"], "1");
    assert_eq!(info["rdb_last_bgsave_status"], "ok");
    assert_ne!(info["rdb_last_bgsave_time_sec"], "-1");
    let last: i64 = redis::cmd("LASTSAVE").query(&mut con).unwrap();
    assert!(last >= before && last <= unix_now(), "{last}");

    let _: () = redis::cmd("DEL").arg("k0").query(&mut con).unwrap();
    let rewrite: String = redis::cmd("BGREWRITEAOF").query(&mut con).unwrap();
    assert_eq!(rewrite, "Background append only file rewriting started");
    let info = settled(&mut con);
    assert_eq!(info["aof_rewrites"], "1", "{info:?}");
    assert_eq!(info["aof_last_bgrewrite_status"], "ok");
    assert_eq!(info["rdb_changes_since_last_save"], "0");

    let _: () = redis::cmd("SET")
        .arg("after")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let ok: String = redis::cmd("SAVE").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(persistence(&mut con)["rdb_changes_since_last_save"], "0");
    let _: () = redis::cmd("SET")
        .arg("again")
        .arg("1")
        .query(&mut con)
        .unwrap();
    let ok: String = redis::cmd("DEBUG").arg("RELOAD").query(&mut con).unwrap();
    assert_eq!(ok, "OK");
    assert_eq!(persistence(&mut con)["rdb_changes_since_last_save"], "0");
    // Saved or not, the data is what it was.
    let v: String = redis::cmd("GET").arg("again").query(&mut con).unwrap();
    assert_eq!(v, "1");
    // SAVE is refused inside MULTI, as Redis's no_multi.
    let mut raw = server.raw();
    use std::io::{Read, Write};
    raw.write_all(b"MULTI\r\nSAVE\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut buf = [0u8; 256];
    let n = raw.read(&mut buf).unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(
        text.contains("+OK\r\n-ERR Command not allowed inside a transaction"),
        "{text}"
    );
}

#[test]
fn replicaof_a_master_is_refused_clearly() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let err = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(6379)
        .query::<String>(&mut con)
        .unwrap_err();
    assert!(
        err.to_string().contains("replication is not supported"),
        "{err}"
    );
    let role: redis::Value = redis::cmd("ROLE").query(&mut con).unwrap();
    assert_eq!(
        role,
        redis::Value::Array(vec![
            redis::Value::BulkString(b"master".to_vec()),
            redis::Value::Int(0),
            redis::Value::Array(vec![]),
        ])
    );
}
