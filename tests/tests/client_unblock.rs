//! CLIENT UNBLOCK against a real redis-server, byte for byte: a client
//! blocked in BLPOP / BLMOVE / BZPOPMIN is released as by its timeout or
//! with the UNBLOCKED error, a client not blocked answers 0, bad arguments
//! give Redis's errors; and a blocked command is counted once in INFO
//! commandstats (when it first runs) however often it was woken, as in Redis.

use std::time::{Duration, Instant};

use citadel_tests::differential::Pair;

fn int_of(reply: &str) -> String {
    reply.trim_start_matches(':').trim_end().to_string()
}

/// Waits until both servers count `n` blocked clients.
fn wait_blocked(p: &mut Pair, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("blocked_clients:{n}\r\n");
    loop {
        let (redis, citadel) = p.each_on(0, &["INFO", "clients"]);
        if redis.contains(&want) && citadel.contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} blocked: {citadel}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `cmdstat_<name>:calls=N` of each server.
fn calls(p: &mut Pair, name: &str) -> (String, String) {
    let (redis, citadel) = p.each_on(0, &["INFO", "commandstats"]);
    let of = |info: &str| {
        let prefix = format!("cmdstat_{name}:calls=");
        info.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|rest| rest.split(',').next().unwrap_or("").to_string())
            .unwrap_or_default()
    };
    (of(&redis), of(&citadel))
}

#[test]
fn client_unblock_releases_a_blocked_client_like_redis() {
    let mut p = Pair::start();
    let waiter = p.connect();
    let (redis_id, citadel_id) = p.each_on(waiter, &["CLIENT", "ID"]);
    let (redis_id, citadel_id) = (int_of(&redis_id), int_of(&citadel_id));
    let unblock = |p: &mut Pair, reason: &[&str]| {
        let mut to_redis = vec!["CLIENT", "UNBLOCK", redis_id.as_str()];
        let mut to_citadel = vec!["CLIENT", "UNBLOCK", citadel_id.as_str()];
        to_redis.extend_from_slice(reason);
        to_citadel.extend_from_slice(reason);
        let (want, got) = p.split_on(0, &to_redis, &to_citadel);
        assert_eq!(got, want, "CLIENT UNBLOCK {reason:?}");
    };
    let blocking: [&[&str]; 3] = [
        &["BLPOP", "none", "0"],
        &["BLMOVE", "none", "dst", "LEFT", "RIGHT", "0"],
        &["BZPOPMIN", "none", "z", "0"],
    ];
    for command in blocking {
        for reason in [&[][..], &["TIMEOUT"], &["error"]] {
            p.send_on(waiter, command);
            wait_blocked(&mut p, 1);
            unblock(&mut p, reason);
            let (want, got) = p.replies_on(waiter);
            assert_eq!(got, want, "{command:?} unblocked with {reason:?}");
            wait_blocked(&mut p, 0);
        }
    }
    // Not blocked now: 0. Bad arguments: Redis's errors.
    unblock(&mut p, &[]);
    p.same_str(&["CLIENT", "UNBLOCK", "999999"]);
    p.same_str(&["CLIENT", "UNBLOCK", "abc"]);
    unblock(&mut p, &["later"]);
    p.same_str(&["CLIENT", "UNBLOCK", "1", "TIMEOUT", "extra"]);
    // The waiter still works, and served a command after the errors.
    p.same_str_on(waiter, &["RPUSH", "l", "x"]);
    p.same_str_on(waiter, &["BLPOP", "l", "0"]);
}

#[test]
fn a_blocked_command_is_counted_once_however_often_it_wakes() {
    let mut p = Pair::start();
    let waiter = p.connect();
    p.same_str(&["CONFIG", "RESETSTAT"]);
    p.send_on(waiter, &["BLPOP", "l", "0"]);
    wait_blocked(&mut p, 1);
    // Writes to its key that leave nothing for it wake it in Citadel: it
    // looks, finds the key empty and parks again.
    for _ in 0..3 {
        p.same_str(&["MULTI"]);
        p.same_str(&["RPUSH", "l", "x"]);
        p.same_str(&["DEL", "l"]);
        p.same_str(&["EXEC"]);
    }
    assert_eq!(calls(&mut p, "blpop"), ("1".to_string(), "1".to_string()));
    p.same_str(&["RPUSH", "l", "served"]);
    let (want, got) = p.replies_on(waiter);
    assert_eq!(got, want);
    let (redis, citadel) = calls(&mut p, "blpop");
    assert_eq!((citadel.as_str(), redis.as_str()), ("1", "1"));
}

/// The lines of INFO `section` of each server that start with one of
/// `prefixes`: (Redis's, Citadel's).
fn info_lines(p: &mut Pair, section: &str, prefixes: &[&str]) -> (Vec<String>, Vec<String>) {
    let (redis, citadel) = p.each_on(0, &["INFO", section]);
    let pick = |info: &str| -> Vec<String> {
        let mut lines: Vec<String> = info
            .lines()
            .filter(|l| prefixes.iter().any(|p| l.starts_with(p)))
            .map(|l| {
                // usec figures differ between servers: calls and outcomes only.
                l.split(',')
                    .filter(|f| !f.contains("usec"))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .collect();
        lines.sort();
        lines
    };
    (pick(&redis), pick(&citadel))
}

/// A blocked command woken to an error (its group destroyed, its key
/// deleted, CLIENT UNBLOCK ERROR) counts as Redis counts it: one call,
/// failed, and the error in errorstats and total_error_replies.
#[test]
fn errors_of_woken_commands_count_in_errorstats_as_in_redis() {
    let mut p = Pair::start();
    let waiter = p.connect();
    let (redis_id, citadel_id) = p.each_on(waiter, &["CLIENT", "ID"]);
    let (redis_id, citadel_id) = (int_of(&redis_id), int_of(&citadel_id));
    p.same_str(&["CONFIG", "RESETSTAT"]);
    let readgroup = [
        "XREADGROUP",
        "GROUP",
        "g",
        "c",
        "BLOCK",
        "0",
        "STREAMS",
        "s",
        ">",
    ];
    let wakers: [&[&str]; 2] = [&["XGROUP", "DESTROY", "s", "g"], &["DEL", "s"]];
    for waker in wakers {
        p.same_str(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        p.send_on(waiter, &readgroup);
        wait_blocked(&mut p, 1);
        p.same_str(waker);
        let (want, got) = p.replies_on(waiter);
        assert_eq!(got, want, "woken by {waker:?}");
    }
    p.send_on(waiter, &["XREAD", "BLOCK", "0", "STREAMS", "none", "$"]);
    wait_blocked(&mut p, 1);
    let (want, got) = p.split_on(
        0,
        &["CLIENT", "UNBLOCK", &redis_id, "ERROR"],
        &["CLIENT", "UNBLOCK", &citadel_id, "ERROR"],
    );
    assert_eq!(got, want);
    let (want, got) = p.replies_on(waiter);
    assert_eq!(got, want, "unblocked with an error");
    let (want, got) = info_lines(&mut p, "errorstats", &["errorstat_"]);
    assert_eq!(got, want);
    assert_eq!(want.len(), 2, "{want:?}");
    let (want, got) = info_lines(
        &mut p,
        "commandstats",
        &["cmdstat_xreadgroup", "cmdstat_xread:"],
    );
    assert_eq!(got, want);
    let (want, got) = info_lines(&mut p, "stats", &["total_error_replies"]);
    assert_eq!(got, want);
}
