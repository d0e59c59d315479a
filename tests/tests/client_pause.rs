//! CLIENT PAUSE WRITE next to redis-server: which commands wait and which
//! are answered at once (Redis 7.0.15 holds its "may replicate" commands:
//! writes, PFCOUNT, PUBLISH, scripts that may write by their flags, an
//! EXEC whose queue holds one), INFO's `blocked_clients` while they wait,
//! and their replies once the pause ends.

use std::time::Duration;

use citadel_tests::differential::Pair;

const LIBRARY: &str = "#!lua name=pauselib
redis.register_function{function_name='reads', callback=function() return 'r' end, flags={'no-writes'}}
redis.register_function('writes', function() return 'w' end)";

/// Each server's INFO `blocked_clients`: (Redis's, Citadel's).
fn blocked_clients(pair: &mut Pair) -> (String, String) {
    let (redis, citadel) = pair.each_on(0, &["INFO", "clients"]);
    let field = |info: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    (field(&redis), field(&citadel))
}

/// Sends `cmd` on a new connection pair; asserts both servers answer it
/// the same at once (`held`: false) or both hold it. Returns the pair.
fn check(pair: &mut Pair, cmd: &[&str], held: bool) -> usize {
    let conn = pair.connect();
    pair.send_on(conn, cmd);
    let (redis, citadel) = pair.pending_on(conn, Duration::from_millis(200));
    assert_eq!(citadel, redis, "{cmd:?} under CLIENT PAUSE WRITE");
    assert_eq!(redis.is_empty(), held, "{cmd:?}: Redis holds it: {held}");
    conn
}

#[test]
fn a_write_pause_holds_what_redis_holds_and_counts_them_blocked() {
    let mut pair = Pair::start();
    pair.same_str(&["SET", "k", "v"]);
    pair.same_str(&["PFADD", "h", "a"]);
    pair.same_str(&["FUNCTION", "LOAD", LIBRARY]);
    let sha = pair.same_str(&["SCRIPT", "LOAD", "return 1"]);
    let sha = sha.lines().nth(1).expect("a sha").to_owned();
    // Transactions queued before the pause: EXEC waits if the queue writes.
    let (tx_write, tx_read) = (pair.connect(), pair.connect());
    let queued: [(usize, &[&str]); 2] = [(tx_write, &["SET", "q", "1"]), (tx_read, &["GET", "k"])];
    for (conn, cmd) in queued {
        pair.same_str_on(conn, &["MULTI"]);
        pair.same_str_on(conn, cmd);
    }
    pair.same_str(&["CLIENT", "PAUSE", "60000", "WRITE"]);

    let answered: &[&[&str]] = &[
        &["GET", "k"],
        &["SET", "k"],
        &["NOSUCHCOMMAND", "x"],
        &["EVAL", "#!lua flags=no-writes\nreturn 1", "0"],
        &["EVAL_RO", "return 1", "0"],
        &["EVALSHA_RO", &sha, "0"],
        &["FCALL", "reads", "0"],
        &["FCALL_RO", "reads", "0"],
    ];
    for cmd in answered {
        check(&mut pair, cmd, false);
    }
    let held_cmds: &[&[&str]] = &[
        &["SET", "k", "w"],
        &["PFCOUNT", "h"],
        &["PUBLISH", "ch", "m"],
        &["EVAL", "return 1", "0"],
        &["EVAL", "#!lua\nreturn 1", "0"],
        &["EVALSHA", &sha, "0"],
        &["FCALL", "writes", "0"],
    ];
    let mut held: Vec<usize> = held_cmds
        .iter()
        .map(|cmd| check(&mut pair, cmd, true))
        .collect();
    pair.send_on(tx_write, &["EXEC"]);
    pair.send_on(tx_read, &["EXEC"]);
    let (redis, citadel) = pair.pending_on(tx_read, Duration::from_millis(200));
    assert_eq!(citadel, redis, "a read-only EXEC runs");
    assert!(!redis.is_empty());
    let (redis, citadel) = pair.pending_on(tx_write, Duration::from_millis(200));
    assert!(
        redis.is_empty() && citadel.is_empty(),
        "an EXEC that writes waits"
    );
    held.push(tx_write);

    let (redis, citadel) = blocked_clients(&mut pair);
    assert_eq!(
        citadel, redis,
        "INFO blocked_clients counts the held clients"
    );
    assert_eq!(redis, held.len().to_string());

    pair.same_str(&["CLIENT", "UNPAUSE"]);
    for conn in held {
        let (redis, citadel) = pair.replies_on(conn);
        assert_eq!(citadel, redis, "a held command's reply once the pause ends");
    }
    assert_eq!(blocked_clients(&mut pair), ("0".into(), "0".into()));
    pair.same_str(&["GET", "k"]);
}

#[test]
fn a_held_client_that_leaves_is_no_longer_counted() {
    let mut pair = Pair::start();
    pair.same_str(&["CLIENT", "PAUSE", "60000", "WRITE"]);
    let conn = check(&mut pair, &["SET", "k", "v"], true);
    assert_eq!(blocked_clients(&mut pair), ("1".into(), "1".into()));
    pair.disconnect(conn);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(blocked_clients(&mut pair), ("0".into(), "0".into()));
    pair.same_str(&["CLIENT", "UNPAUSE"]);
    pair.same_str(&["EXISTS", "k"]);
}

#[test]
fn read_only_scripts_refuse_may_replicate_commands() {
    let mut pair = Pair::start();
    pair.same_str(&["PFADD", "h", "a"]);
    for (script, how) in [
        ("return redis.call('publish', 'ch', 'm')", "EVAL_RO"),
        ("return redis.call('pfcount', 'h')", "EVAL_RO"),
        (
            "#!lua flags=no-writes\nreturn redis.call('publish', 'ch', 'm')",
            "EVAL",
        ),
    ] {
        let keys = if script.contains("pfcount") { "1" } else { "0" };
        let mut cmd = vec![how, script, keys];
        if keys == "1" {
            cmd.push("h");
        }
        let (redis, citadel) = pair.each_on(0, &cmd);
        let refused = "-ERR Write commands are not allowed from read-only scripts.";
        assert!(redis.starts_with(refused), "Redis: {redis}");
        assert!(citadel.starts_with(refused), "{script} got {citadel}");
    }
    // A script that may write still may.
    pair.same_str(&["EVAL", "return redis.call('publish', 'ch', 'm')", "0"]);
}

/// Each server's INFO `expired_keys`: (Redis's, Citadel's), as numbers.
fn expired_keys(pair: &mut Pair) -> (u64, u64) {
    let (redis, citadel) = pair.each_on(0, &["INFO", "stats"]);
    let field = |info: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix("expired_keys:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("expired_keys in INFO stats")
    };
    (field(&redis), field(&citadel))
}

/// Keys whose TTL runs out while writes are paused read as absent but are
/// not deleted, by reads or by upkeep, until the pause ends (Redis's test
/// "both active and passive expires are skipped during client pause").
#[test]
fn keys_do_not_expire_while_writes_are_paused() {
    let mut pair = Pair::start();
    let before = expired_keys(&mut pair);
    pair.same_str(&["MULTI"]);
    pair.same_str(&["SET", "foo", "bar", "PX", "10"]);
    pair.same_str(&["SET", "bar", "foo", "PX", "10"]);
    pair.same_str(&["CLIENT", "PAUSE", "50000", "WRITE"]);
    pair.same_str(&["EXEC"]);
    // Past several upkeep periods (~100 ms each).
    std::thread::sleep(Duration::from_millis(500));
    pair.same_str(&["GET", "foo"]);
    pair.same_str(&["GET", "bar"]);
    pair.same_str(&["EXISTS", "foo", "bar"]);
    pair.same_str(&["DBSIZE"]);
    // Reads inside a transaction or a read-only script leave them too.
    pair.same_str(&["MULTI"]);
    pair.same_str(&["GET", "foo"]);
    pair.same_str(&["MGET", "foo", "bar"]);
    pair.same_str(&["EXEC"]);
    pair.same_str(&["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "bar"]);
    pair.same_str(&["DBSIZE"]);
    assert_eq!(
        expired_keys(&mut pair),
        before,
        "nothing expired during the pause"
    );
    pair.same_str(&["CLIENT", "UNPAUSE"]);
    pair.same_str(&["GET", "foo"]);
    pair.same_str(&["GET", "bar"]);
    assert_eq!(expired_keys(&mut pair), (before.0 + 2, before.1 + 2));
    // A pause that ends by its timeout ends the hold with it.
    pair.same_str(&["SET", "k", "v", "PX", "10"]);
    pair.same_str(&["CLIENT", "PAUSE", "300", "WRITE"]);
    std::thread::sleep(Duration::from_millis(500));
    pair.same_str(&["GET", "k"]);
    assert_eq!(expired_keys(&mut pair), (before.0 + 3, before.1 + 3));
}
