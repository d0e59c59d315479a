//! OBJECT ENCODING as Redis 7.0 reports it, each step on a real
//! redis-server too and the replies compared: a hash, set or sorted set
//! that grew past the listpack/intset limits stays hashtable/skiplist
//! after it shrinks (Redis never converts back), edits and copies keep
//! that, while a value built whole (RESTORE, the STORE commands) gets the
//! encoding its content calls for; a string is int, embstr or raw by its
//! content when SET, raw once APPEND, SETRANGE, SETBIT, BITFIELD or BITOP
//! wrote it, and INCR makes it int again. Also: SETBIT and BITFIELD that
//! change nothing are not counted as changes (INFO persistence).

use citadel_tests::differential::Pair;
use citadel_tests::redis;

/// Runs each command on both servers; every reply must match.
fn transcript(p: &mut Pair, cases: &[&[&str]]) {
    for case in cases {
        p.same_str(case);
    }
}

#[test]
fn sets_stay_hashtable_once_past_intset() {
    let mut p = Pair::start();
    transcript(
        &mut p,
        &[
            &["SADD", "s", "1", "2", "3", "a"],
            &["OBJECT", "ENCODING", "s"],
            &["SREM", "s", "a"],
            &["OBJECT", "ENCODING", "s"],
            &["SADD", "s", "4"],
            &["OBJECT", "ENCODING", "s"],
            &["SREM", "s", "1", "2"],
            &["OBJECT", "ENCODING", "s"],
            // The converse: integers stay an intset, one more than
            // set-max-intset-entries does not.
            &["SADD", "ints", "1", "2", "3"],
            &["OBJECT", "ENCODING", "ints"],
            &["CONFIG", "SET", "set-max-intset-entries", "3"],
            &["SADD", "ints", "4"],
            &["OBJECT", "ENCODING", "ints"],
            &["SREM", "ints", "4", "3"],
            &["OBJECT", "ENCODING", "ints"],
            &["CONFIG", "SET", "set-max-intset-entries", "512"],
            // SMOVE of a word into an intset converts it; the source keeps
            // its encoding.
            &["SADD", "small", "7", "8"],
            &["SADD", "words", "x", "9"],
            &["SMOVE", "words", "small", "x"],
            &["OBJECT", "ENCODING", "small"],
            &["OBJECT", "ENCODING", "words"],
            // Copies keep it; a STORE builds its result afresh.
            &["COPY", "s", "s2"],
            &["OBJECT", "ENCODING", "s2"],
            &["RENAME", "s2", "s3"],
            &["OBJECT", "ENCODING", "s3"],
            &["EXPIRE", "s3", "100"],
            &["OBJECT", "ENCODING", "s3"],
            &["SINTERSTORE", "both", "s3", "s3"],
            &["OBJECT", "ENCODING", "both"],
            &["SUNIONSTORE", "all", "s3", "words"],
            &["OBJECT", "ENCODING", "all"],
        ],
    );
}

#[test]
fn hashes_stay_hashtable_once_past_listpack() {
    let mut p = Pair::start();
    let long = "v".repeat(65);
    transcript(
        &mut p,
        &[
            &["HSET", "h", "a", "1"],
            &["OBJECT", "ENCODING", "h"],
            &["HSET", "h", "b", &long],
            &["OBJECT", "ENCODING", "h"],
            &["HDEL", "h", "b"],
            &["OBJECT", "ENCODING", "h"],
            &["HINCRBY", "h", "a", "5"],
            &["OBJECT", "ENCODING", "h"],
            &["HSET", "h", "a", "short"],
            &["OBJECT", "ENCODING", "h"],
            &["CONFIG", "SET", "hash-max-listpack-entries", "2"],
            &["HSET", "many", "a", "1", "b", "2"],
            &["OBJECT", "ENCODING", "many"],
            &["HSET", "many", "c", "3"],
            &["OBJECT", "ENCODING", "many"],
            &["HDEL", "many", "c", "b"],
            &["OBJECT", "ENCODING", "many"],
            &["CONFIG", "SET", "hash-max-listpack-entries", "512"],
            &["COPY", "h", "h2"],
            &["OBJECT", "ENCODING", "h2"],
        ],
    );
}

#[test]
fn sorted_sets_stay_skiplist_once_past_listpack() {
    let mut p = Pair::start();
    let long = "m".repeat(65);
    transcript(
        &mut p,
        &[
            &["ZADD", "z", "1", "a"],
            &["OBJECT", "ENCODING", "z"],
            &["ZADD", "z", "2", &long],
            &["OBJECT", "ENCODING", "z"],
            &["ZREM", "z", &long],
            &["OBJECT", "ENCODING", "z"],
            &["ZINCRBY", "z", "3", "a"],
            &["OBJECT", "ENCODING", "z"],
            &["ZADD", "z", "5", "b"],
            &["ZPOPMIN", "z"],
            &["OBJECT", "ENCODING", "z"],
            &["CONFIG", "SET", "zset-max-listpack-entries", "2"],
            &["ZADD", "many", "1", "a", "2", "b", "3", "c"],
            &["OBJECT", "ENCODING", "many"],
            &["ZREMRANGEBYRANK", "many", "0", "1"],
            &["OBJECT", "ENCODING", "many"],
            &["CONFIG", "SET", "zset-max-listpack-entries", "128"],
            // A STORE's result is built afresh from its content.
            &["ZUNIONSTORE", "u", "1", "z"],
            &["OBJECT", "ENCODING", "u"],
            &["ZRANGESTORE", "r", "z", "0", "-1"],
            &["OBJECT", "ENCODING", "r"],
        ],
    );
}

/// A DUMP of a small set in the big encoding loads in redis-server (and
/// back), which builds it afresh: an intset again, as Redis's own DUMP
/// of such a set restores.
#[test]
fn a_dump_of_a_converted_set_restores_in_redis() {
    let p = Pair::start();
    let mut citadel = p.citadel.client();
    let url = format!("redis://127.0.0.1:{}/", p.redis.port);
    let mut redis_conn = redis::Client::open(url).unwrap().get_connection().unwrap();
    for conn in [&mut citadel, &mut redis_conn] {
        let _: () = redis::cmd("SADD")
            .arg("s")
            .arg("1")
            .arg("2")
            .arg("a")
            .query(conn)
            .unwrap();
        let _: () = redis::cmd("SREM").arg("s").arg("a").query(conn).unwrap();
    }
    let dumps: Vec<Vec<u8>> = [&mut citadel, &mut redis_conn]
        .into_iter()
        .map(|conn| redis::cmd("DUMP").arg("s").query(conn).unwrap())
        .collect();
    for (dump, conn) in dumps.iter().zip([&mut redis_conn, &mut citadel]) {
        let _: () = redis::cmd("RESTORE")
            .arg("copy")
            .arg(0)
            .arg(dump)
            .query(conn)
            .unwrap();
        let mut members: Vec<String> = redis::cmd("SMEMBERS").arg("copy").query(conn).unwrap();
        members.sort();
        assert_eq!(members, ["1", "2"]);
        let enc: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg("copy")
            .query(conn)
            .unwrap();
        assert_eq!(enc, "intset");
        let _: () = redis::cmd("DEL").arg("copy").query(conn).unwrap();
    }
}

#[test]
fn strings_are_int_embstr_or_raw_as_in_redis() {
    let mut p = Pair::start();
    let long = "x".repeat(45);
    transcript(
        &mut p,
        &[
            &["SET", "k", "123"],
            &["OBJECT", "ENCODING", "k"],
            &["SET", "k", "abc"],
            &["OBJECT", "ENCODING", "k"],
            &["SET", "k", &long],
            &["OBJECT", "ENCODING", "k"],
            &["SET", "k", "1234"],
            &["SETRANGE", "k", "0", "9"],
            &["OBJECT", "ENCODING", "k"],
            &["INCR", "k"],
            &["OBJECT", "ENCODING", "k"],
            // An empty SETRANGE writes nothing: still int.
            &["SETRANGE", "k", "0", ""],
            &["OBJECT", "ENCODING", "k"],
            &["APPEND", "k", "5"],
            &["OBJECT", "ENCODING", "k"],
            &["APPEND", "fresh", "12"],
            &["OBJECT", "ENCODING", "fresh"],
            &["SETRANGE", "fresh2", "0", "12"],
            &["OBJECT", "ENCODING", "fresh2"],
            &["SET", "k", "1"],
            &["SETBIT", "k", "7", "0"],
            &["OBJECT", "ENCODING", "k"],
            &["SET", "k", "1"],
            &["BITFIELD", "k", "SET", "u8", "0", "50"],
            &["OBJECT", "ENCODING", "k"],
            &["SET", "a", "1"],
            &["BITOP", "OR", "dest", "a", "a"],
            &["OBJECT", "ENCODING", "dest"],
            // Expiry, copies and moves keep raw; SET and GETSET do not.
            &["SETRANGE", "r", "0", "42"],
            &["EXPIRE", "r", "100"],
            &["OBJECT", "ENCODING", "r"],
            &["PERSIST", "r"],
            &["OBJECT", "ENCODING", "r"],
            &["COPY", "r", "r2"],
            &["OBJECT", "ENCODING", "r2"],
            &["RENAME", "r2", "r3"],
            &["OBJECT", "ENCODING", "r3"],
            &["MOVE", "r3", "1"],
            &["SELECT", "1"],
            &["OBJECT", "ENCODING", "r3"],
            &["SELECT", "0"],
            &["GETSET", "r", "42"],
            &["OBJECT", "ENCODING", "r"],
            &["SETRANGE", "r", "0", "4"],
            &["SET", "r", "42", "KEEPTTL"],
            &["OBJECT", "ENCODING", "r"],
        ],
    );
}

/// `rdb_changes_since_last_save` from an INFO persistence reply.
fn changes(info: &str) -> u64 {
    info.lines()
        .find_map(|l| l.strip_prefix("rdb_changes_since_last_save:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("rdb_changes_since_last_save")
}

#[test]
fn setbit_and_bitfield_count_only_real_changes() {
    let mut p = Pair::start();
    let (redis0, citadel0) = p.each_on(0, &["INFO", "persistence"]);
    let steps: &[(&[&str], u64)] = &[
        (&["SETBIT", "b", "0", "0"], 1),
        (&["SETBIT", "b", "0", "0"], 0),
        (&["SETBIT", "b", "0", "1"], 1),
        (&["SETBIT", "b", "0", "1"], 0),
        (&["BITFIELD", "f", "SET", "i5", "0", "0"], 1),
        (&["BITFIELD", "f", "SET", "i5", "0", "0"], 0),
        (&["BITFIELD", "f", "SET", "i5", "0", "1"], 1),
        (&["BITFIELD", "f", "INCRBY", "i5", "0", "1"], 1),
    ];
    let (mut redis_at, mut citadel_at) = (changes(&redis0), changes(&citadel0));
    for (cmd, counted) in steps {
        p.same_str(cmd);
        let (r, c) = p.each_on(0, &["INFO", "persistence"]);
        let (r, c) = (changes(&r), changes(&c));
        assert_eq!(r - redis_at, *counted, "Redis after {cmd:?}");
        assert_eq!(c - citadel_at, *counted, "Citadel after {cmd:?}");
        (redis_at, citadel_at) = (r, c);
    }
}
