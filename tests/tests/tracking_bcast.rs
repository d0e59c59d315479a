//! Client-side caching against a real redis-server, byte for byte: BCAST
//! mode's batches (the keys one MULTI/EXEC, MSET or script changed arrive
//! in one message per prefix, in byte order; NOLOOP leaves out the
//! client's own), prefixes that add up or overlap, default mode's one
//! message per key and per tracking client, scripts that track their
//! declared keys once they read, `tracking-redir-broken`, and INFO's
//! tracking figures.

use citadel_tests::differential::Pair;

#[test]
fn resp3_bcast_batches_prefixes_and_noloop_match_redis() {
    let mut pair = Pair::start();
    let writer = pair.connect();
    pair.both(0, &["HELLO", "3"]);
    let steps: &[(usize, &[&str])] = &[
        (
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "b:", "PREFIX", "a:",
            ],
        ),
        // One transaction: one message per prefix, keys sorted, once each.
        (writer, &["MULTI"]),
        (writer, &["INCR", "a:2"]),
        (writer, &["INCR", "b:2"]),
        (writer, &["INCR", "a:1"]),
        (writer, &["INCR", "c:1"]),
        (writer, &["INCR", "b:1"]),
        (writer, &["INCR", "a:2"]),
        (writer, &["EXEC"]),
        (writer, &["MSET", "a:3", "x", "c:3", "z", "b:3", "y"]),
        (writer, &["DEL", "a:1", "a:2", "a:3", "c:3"]),
        (
            writer,
            &[
                "EVAL",
                "redis.call('set', KEYS[1], 1); redis.call('set', KEYS[2], 2)",
                "2",
                "b:9",
                "a:9",
            ],
        ),
        (writer, &["SET", "c:1", "unwatched"]),
        // Prefixes add up; overlapping ones are refused.
        (0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "c:"]),
        (0, &["CLIENT", "TRACKINGINFO"]),
        (writer, &["MSET", "a:1", "1", "c:1", "1", "d:1", "1"]),
        (0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "c:x"]),
        (0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "a"]),
        (
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x", "PREFIX", "xy",
            ],
        ),
        (
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "yz", "PREFIX", "y",
            ],
        ),
        (0, &["CLIENT", "TRACKINGINFO"]),
        // NOLOOP: its own changes are left out, others' come in one batch.
        (0, &["CLIENT", "TRACKING", "OFF"]),
        (0, &["CLIENT", "TRACKING", "ON", "BCAST", "NOLOOP"]),
        (0, &["CLIENT", "TRACKINGINFO"]),
        (0, &["MSET", "n:1", "1", "n:2", "2"]),
        (writer, &["MSET", "n:2", "1", "n:1", "2"]),
        (0, &["MULTI"]),
        (0, &["SET", "n:3", "1"]),
        (0, &["DEL", "n:1"]),
        (0, &["EXEC"]),
        (writer, &["MULTI"]),
        (writer, &["SET", "n:3", "2"]),
        (writer, &["SET", "m", "2"]),
        (writer, &["EXEC"]),
        (0, &["CLIENT", "TRACKING", "OFF"]),
        // No PREFIX: every key, in one message.
        (0, &["CLIENT", "TRACKING", "ON", "BCAST"]),
        (0, &["CLIENT", "TRACKINGINFO"]),
        (writer, &["MSET", "z", "1", "y", "2", "x", "3"]),
        (0, &["CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p"]),
        (writer, &["FLUSHALL"]),
    ];
    pair.same_steps_watching(0, steps);
}

#[test]
fn resp2_bcast_redirect_gets_one_message_per_prefix_as_in_redis() {
    let mut pair = Pair::start();
    let receiver = pair.connect();
    let writer = pair.connect();
    let (redis_id, citadel_id) = pair.client_ids(receiver);
    pair.same_str_on(receiver, &["SUBSCRIBE", "__redis__:invalidate"]);
    let ids = (redis_id, citadel_id);
    track_redirected(
        &mut pair,
        0,
        &ids,
        &["BCAST", "PREFIX", "user:", "PREFIX", "cfg:"],
    );
    let steps: &[(usize, &[&str])] = &[
        (writer, &["MULTI"]),
        (writer, &["SET", "user:2", "a"]),
        (writer, &["SET", "cfg:1", "a"]),
        (writer, &["SET", "user:1", "a"]),
        (writer, &["SET", "other", "a"]),
        (writer, &["EXEC"]),
        (writer, &["DEL", "user:1", "user:2", "cfg:1"]),
        (writer, &["SET", "other", "b"]),
        (0, &["SET", "user:3", "own"]),
    ];
    pair.same_steps_watching(receiver, steps);
}

/// Redirect ids differ between the servers: each side's commands name
/// its own receiver.
fn track_redirected(pair: &mut Pair, conn: usize, ids: &(String, String), extra: &[&str]) {
    let on = ["CLIENT", "TRACKING", "ON", "REDIRECT"];
    let with = |id: &str| -> Vec<String> {
        let words = on.iter().chain([&id]).chain(extra);
        words.map(|w| w.to_string()).collect()
    };
    let (to_redis, to_citadel) = (with(&ids.0), with(&ids.1));
    let to_redis: Vec<&str> = to_redis.iter().map(String::as_str).collect();
    let to_citadel: Vec<&str> = to_citadel.iter().map(String::as_str).collect();
    let (want, got) = pair.split_on(conn, &to_redis, &to_citadel);
    assert_eq!(got, want, "{to_redis:?}");
}

#[test]
fn default_mode_sends_one_message_per_key_and_tracking_client_as_redis() {
    let mut pair = Pair::start();
    let receiver = pair.connect();
    let writer = pair.connect();
    let other = pair.connect();
    let ids = pair.client_ids(receiver);
    pair.same_str_on(receiver, &["SUBSCRIBE", "__redis__:invalidate"]);
    track_redirected(&mut pair, 0, &ids, &[]);
    track_redirected(&mut pair, other, &ids, &[]);
    let steps: &[(usize, &[&str])] = &[
        (0, &["MGET", "k1", "k2", "k3"]),
        (writer, &["MSET", "k3", "1", "k1", "1", "k2", "1"]),
        // Two clients that cached one key, redirected to one receiver:
        // a message for each.
        (0, &["GET", "k1"]),
        (other, &["GET", "k1"]),
        (writer, &["SET", "k1", "2"]),
        // A script tracks its declared keys once it ran a read.
        (0, &["EVAL", "return 1", "1", "s1"]),
        (writer, &["SET", "s1", "1"]),
        (0, &["EVAL", "return redis.call('get', 'zz')", "1", "s2"]),
        (writer, &["SET", "zz", "1"]),
        (writer, &["SET", "s2", "1"]),
        (
            0,
            &["EVAL_RO", "return redis.call('get', KEYS[1])", "1", "s3"],
        ),
        (writer, &["SET", "s3", "1"]),
        (0, &["EVAL_RO", "return redis.call('ping')", "1", "s4"]),
        (writer, &["SET", "s4", "1"]),
        (0, &["MULTI"]),
        (0, &["GET", "t1"]),
        (0, &["SET", "t2", "1"]),
        (0, &["EXEC"]),
        (writer, &["MSET", "t1", "1", "t2", "2"]),
    ];
    pair.same_steps_watching(receiver, steps);
    // Tracking switched off and on again: its old keys are not heard of
    // in BCAST mode, as in Redis.
    pair.same_str(&["GET", "old"]);
    pair.same_str(&["CLIENT", "TRACKING", "OFF"]);
    track_redirected(&mut pair, 0, &ids, &["BCAST", "PREFIX", "new"]);
    pair.same_str_on(writer, &["SET", "old", "1"]);
    pair.same_str_on(writer, &["SET", "new", "1"]);
    pair.same_pending(receiver, "SET old, SET new");
    let twice = ["BCAST", "REDIRECT", "1"];
    track_redirected(&mut pair, 0, &ids, &twice);
    // OPTIN: CLIENT CACHING YES before MULTI covers the queue's reads.
    pair.same_str(&["CLIENT", "TRACKING", "OFF"]);
    track_redirected(&mut pair, 0, &ids, &["OPTIN"]);
    let steps: &[(usize, &[&str])] = &[
        (0, &["CLIENT", "CACHING", "YES"]),
        (0, &["MULTI"]),
        (0, &["GET", "o1"]),
        (0, &["EXEC"]),
        (writer, &["SET", "o1", "1"]),
        (0, &["MULTI"]),
        (0, &["GET", "o2"]),
        (0, &["EXEC"]),
        (writer, &["SET", "o2", "1"]),
    ];
    pair.same_steps_watching(receiver, steps);
}

#[test]
fn a_redirect_to_a_client_gone_is_reported_as_redis_does() {
    let mut pair = Pair::start();
    let receiver = pair.connect();
    let writer = pair.connect();
    pair.both(0, &["HELLO", "3"]);
    let ids = pair.client_ids(receiver);
    track_redirected(&mut pair, 0, &ids, &[]);
    pair.same_str(&["GET", "k"]);
    pair.same_str_on(receiver, &["QUIT"]);
    pair.same_str_on(writer, &["SET", "k", "1"]);
    let (redis, citadel) = pair.pending_on(0, std::time::Duration::from_millis(50));
    let broken = |id: &str| vec![format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n")];
    assert_eq!(redis, broken(&ids.0));
    assert_eq!(citadel, broken(&ids.1));
    let (redis, citadel) = pair.each_on(0, &["CLIENT", "TRACKINGINFO"]);
    let of = |id: &str| format!(":{id}\r\n");
    let citadel = citadel.replace(&of(&ids.1), &of("ID"));
    assert_eq!(citadel, redis.replace(&of(&ids.0), &of("ID")));
}

/// INFO's tracking figures of each server: (Redis's, Citadel's).
fn tracking_info(pair: &mut Pair) -> (Vec<String>, Vec<String>) {
    let (redis, citadel) = pair.each_on(0, &["INFO"]);
    let pick = |info: &str| -> Vec<String> {
        info.lines()
            .filter(|l| l.starts_with("tracking_"))
            .map(str::to_string)
            .collect()
    };
    (pick(&redis), pick(&citadel))
}

#[test]
fn info_counts_tracked_keys_items_prefixes_and_clients_as_redis() {
    let mut pair = Pair::start();
    let other = pair.connect();
    let bcast = pair.connect();
    pair.same_str(&["CLIENT", "TRACKING", "ON"]);
    pair.same_str_on(other, &["CLIENT", "TRACKING", "ON"]);
    pair.same_str(&["MGET", "a", "b", "c"]);
    pair.same_str_on(other, &["GET", "a"]);
    pair.same_str_on(
        bcast,
        &[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "p", "PREFIX", "q",
        ],
    );
    let (want, got) = tracking_info(&mut pair);
    assert_eq!(got, want);
    assert!(
        want.contains(&"tracking_total_items:4".to_string()),
        "{want:?}"
    );
    pair.same_str_on(bcast, &["SET", "a", "1"]);
    pair.same_str_on(bcast, &["CLIENT", "TRACKING", "OFF"]);
    let (want, got) = tracking_info(&mut pair);
    assert_eq!(got, want);
    // Off: its keys stay (dropped lazily) until FLUSHALL frees them.
    pair.same_str(&["CLIENT", "TRACKING", "OFF"]);
    pair.same_str_on(other, &["CLIENT", "TRACKING", "OFF"]);
    let (want, got) = tracking_info(&mut pair);
    assert_eq!(got, want);
    pair.same_str(&["FLUSHALL"]);
    let (want, got) = tracking_info(&mut pair);
    assert_eq!(got, want);
}
