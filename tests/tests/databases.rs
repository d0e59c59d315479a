//! Redis's numbered databases (SELECT, MOVE, SWAPDB, FLUSHDB, COPY ... DB,
//! DBSIZE, KEYS, SCAN) byte for byte against a real redis-server on seeded
//! random streams, blocking pops and keyspace events per database, and a
//! restart (clean and kill -9) that keeps every database and the SWAPDB
//! table.

use citadel_tests::differential::{Pair, Rng};
use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

const DBS: u64 = 4;
const KEYS: [&str; 4] = ["k0", "k1", "k2", "k3"];

fn db(rng: &mut Rng) -> String {
    rng.below(DBS).to_string()
}

fn random_command(rng: &mut Rng) -> Vec<String> {
    let key = rng.pick(&KEYS).to_string();
    let other = rng.pick(&KEYS).to_string();
    let words: Vec<String> = match rng.below(16) {
        0 | 1 => vec!["SELECT".into(), db(rng)],
        2 => vec!["SET".into(), key, format!("v{}", rng.below(100))],
        3 => vec!["GET".into(), key],
        4 => vec!["RPUSH".into(), key, format!("e{}", rng.below(10))],
        5 => vec!["LRANGE".into(), key, "0".into(), "-1".into()],
        6 | 7 => vec!["MOVE".into(), key, db(rng)],
        8 => vec!["SWAPDB".into(), db(rng), db(rng)],
        9 => vec!["COPY".into(), key, other, "DB".into(), db(rng)],
        10 => {
            let mut c = vec!["COPY".into(), key, other, "DB".into(), db(rng)];
            c.push("REPLACE".into());
            c
        }
        11 => vec!["DBSIZE".into()],
        12 => vec!["TYPE".into(), key],
        13 => vec!["DEL".into(), key],
        14 if rng.below(4) == 0 => vec!["FLUSHDB".into()],
        14 => vec!["EXISTS".into(), key, other],
        _ => vec!["HSET".into(), key, "f".into(), format!("{}", rng.below(9))],
    };
    words
}

/// A multi-bulk reply's elements, sorted (KEYS and SCAN orders differ).
fn sorted_elements(reply: &str) -> Vec<String> {
    let mut keys: Vec<String> = reply
        .split("\r\n")
        .skip(1)
        .filter(|line| !line.is_empty() && !line.starts_with('$') && !line.starts_with('*'))
        .map(str::to_string)
        .collect();
    keys.sort();
    keys
}

/// Every database's keys (KEYS and a whole SCAN) and size agree.
fn compare_databases(p: &mut Pair) {
    for n in 0..DBS {
        p.same_str(&["SELECT", &n.to_string()]);
        p.same_str(&["DBSIZE"]);
        let (redis, citadel) = p.each_on(0, &["KEYS", "*"]);
        assert_eq!(
            sorted_elements(&citadel),
            sorted_elements(&redis),
            "KEYS of db {n}"
        );
        let (_, scanned) = p.each_on(0, &["SCAN", "0", "COUNT", "1000"]);
        let scanned = scanned.split_once("\r\n0\r\n").map_or("", |(_, rest)| rest);
        assert_eq!(
            sorted_elements(scanned),
            sorted_elements(&redis),
            "SCAN of db {n}"
        );
        for key in KEYS {
            p.same_str(&["TYPE", key]);
        }
    }
    p.same_str(&["SELECT", "0"]);
}

#[test]
fn random_streams_across_databases_match_redis() {
    let mut p = Pair::start();
    p.random_streams(&[1, 2, 3, 4, 5, 6], 400, random_command, compare_databases);
}

#[test]
fn errors_and_edges_match_redis() {
    let mut p = Pair::start();
    for case in [
        &["SELECT", "16"][..],
        &["SELECT", "-1"],
        &["SELECT", "x"],
        &["SELECT", "99999999999"],
        &["SELECT", "99999999999999999999"],
        &["MOVE", "k", "99999999999"],
        &["COPY", "a", "b", "DB", "99999999999"],
        &["SWAPDB", "0"],
        &["SWAPDB", "x", "1"],
        &["SWAPDB", "1", "x"],
        &["SWAPDB", "0", "16"],
        &["SWAPDB", "3", "3"],
        &["MOVE", "k", "x"],
        &["MOVE", "k", "16"],
        &["MOVE", "k", "0"],
        &["SET", "k", "v"],
        &["EXPIRE", "k", "1000"],
        &["MOVE", "k", "2"],
        &["COPY", "k", "k", "DB", "0"],
        &["SELECT", "2"],
        &["PERSIST", "k"],
        &["COPY", "k", "k", "DB", "3"],
        &["COPY", "k", "k", "DB", "3"],
        &["COPY", "k", "k", "DB", "3", "REPLACE"],
        &["COPY", "k", "k", "DB", "99"],
        &["FLUSHDB", "ASYNC"],
        &["FLUSHDB", "SYNC"],
        &["FLUSHDB", "NOW"],
        &["EXISTS", "k"],
        &["SELECT", "3"],
        &["GET", "k"],
        &["MULTI"],
        &["SELECT", "1"],
        &["SET", "t", "in-1"],
        &["EXEC"],
        &["GET", "t"],
        &["MULTI"],
        &["SWAPDB", "1", "3"],
        &["GET", "t"],
        &["SELECT", "3"],
        &["GET", "t"],
        &["EXEC"],
        &["GET", "t"],
        &["SELECT", "3"],
        &[
            "EVAL",
            "redis.call('SELECT', 0); return redis.call('GET', 't')",
            "0",
        ],
        &["GET", "k"],
        &["RESET"],
        &["GET", "k"],
        &["FLUSHALL"],
        &["SELECT", "3"],
        &["DBSIZE"],
    ] {
        p.same_str(case);
    }
}

#[test]
fn a_blocked_pop_is_fed_by_its_own_database_only() {
    let mut p = Pair::start();
    let waiter = p.connect();
    let pusher = p.connect();
    p.same_str_on(waiter, &["SELECT", "1"]);
    p.send_on(waiter, &["BLPOP", "q", "0"]);
    // A push in db 0 first: it must not feed the waiter in db 1.
    p.same_str_on(pusher, &["RPUSH", "q", "zero"]);
    p.same_str_on(pusher, &["SELECT", "1"]);
    p.same_str_on(pusher, &["RPUSH", "q", "one"]);
    let (redis, citadel) = p.replies_on(waiter);
    assert_eq!(citadel, redis);
    assert!(citadel.contains("one"), "{citadel}");
    p.same_str_on(pusher, &["SELECT", "0"]);
    p.same_str_on(pusher, &["LRANGE", "q", "0", "-1"]);
}

#[test]
fn keyspace_events_name_the_database() {
    let mut p = Pair::start();
    let listener = p.connect();
    p.same_str(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    p.same_str_on(listener, &["PSUBSCRIBE", "__key*@*__:*"]);
    p.same_str(&["SELECT", "2"]);
    p.same_str(&["SET", "k", "v"]);
    p.same_str(&["MOVE", "k", "3"]);
    p.same_pending(listener, "SET and MOVE in db 2");
}

fn get(c: &mut redis::Connection, db: i64, key: &str) -> Option<String> {
    redis::cmd("SELECT").arg(db).query::<()>(c).unwrap();
    c.get(key).unwrap()
}

#[test]
fn restarts_keep_every_database_and_the_swap_table() {
    let mut s = Server::start(&[]);
    let mut c = s.client();
    for db in 0..3i64 {
        redis::cmd("SELECT").arg(db).query::<()>(&mut c).unwrap();
        let _: () = c.set("k", format!("in{db}")).unwrap();
    }
    // Database 3's counts (keys, keys with a TTL) come back from the
    // recovery's recount and from a clean restart's counters.
    redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
    for i in 0..50 {
        let _: () = c.set(format!("n{i}"), i).unwrap();
    }
    for i in 0..10 {
        let _: () = c.expire(format!("n{i}"), 3600).unwrap();
    }
    redis::cmd("SWAPDB")
        .arg(1)
        .arg(2)
        .query::<()>(&mut c)
        .unwrap();
    s.kill9();
    s.restart(false);
    let mut c = s.client();
    assert_eq!(get(&mut c, 0, "k").as_deref(), Some("in0"));
    assert_eq!(get(&mut c, 1, "k").as_deref(), Some("in2"));
    assert_eq!(get(&mut c, 2, "k").as_deref(), Some("in1"));
    redis::cmd("SWAPDB")
        .arg(0)
        .arg(1)
        .query::<()>(&mut c)
        .unwrap();
    s.signal("TERM");
    s.wait_exit(std::time::Duration::from_secs(20));
    s.restart(false);
    let mut c = s.client();
    assert_eq!(get(&mut c, 0, "k").as_deref(), Some("in2"));
    assert_eq!(get(&mut c, 1, "k").as_deref(), Some("in0"));
    assert_eq!(get(&mut c, 2, "k").as_deref(), Some("in1"));
    let keyspace: String = redis::cmd("INFO").arg("keyspace").query(&mut c).unwrap();
    assert!(keyspace.contains("db2:keys=1,expires=0"), "{keyspace}");
    assert!(keyspace.contains("db3:keys=50,expires=10"), "{keyspace}");
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 1, "database 0");
    redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut c).unwrap();
    assert_eq!(dbsize, 50, "database 3");
}
