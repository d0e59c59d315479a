//! Client-side caching (CLIENT TRACKING) against a real redis-server: a
//! tracking connection (RESP3 pushes, or RESP2 with REDIRECT to a
//! subscriber of `__redis__:invalidate`) and a writer connection; after
//! every command, the invalidations each server sent must be the same
//! bytes. Then Citadel alone: invalidations cross cores, expiry and
//! eviction invalidate, and a bounded tracking table invalidates what it
//! drops.

use std::time::Duration;

use citadel_tests::differential::Pair;
use citadel_tests::reference::encode_command;
use citadel_tests::{RespReader, Server};

#[test]
fn resp3_default_optin_optout_noloop_and_bcast_match_redis() {
    let mut pair = Pair::start();
    let writer = pair.connect();
    pair.both(0, &["HELLO", "3"]);
    let steps: &[(usize, &[&str])] = &[
        (0, &["CLIENT", "TRACKING", "ON"]),
        (0, &["CLIENT", "GETREDIR"]),
        (0, &["CLIENT", "TRACKINGINFO"]),
        (0, &["GET", "k"]),
        (writer, &["SET", "k", "1"]),
        // One-shot: no second invalidation until read again.
        (writer, &["SET", "k", "2"]),
        (0, &["MGET", "k", "j"]),
        (writer, &["MSET", "k", "3", "j", "4"]),
        (0, &["GET", "k"]),
        (writer, &["DEL", "k"]),
        (0, &["STRLEN", "j"]),
        (writer, &["INCR", "j"]),
        (0, &["GET", "j"]),
        (0, &["SET", "j", "mine"]),
        (0, &["GET", "j"]),
        (writer, &["FLUSHALL"]),
        (0, &["CLIENT", "TRACKING", "OFF"]),
        (0, &["CLIENT", "TRACKINGINFO"]),
        (0, &["CLIENT", "TRACKING", "ON", "NOLOOP"]),
        (0, &["GET", "n"]),
        (0, &["SET", "n", "1"]),
        (0, &["GET", "n"]),
        (writer, &["SET", "n", "2"]),
        (0, &["CLIENT", "TRACKING", "OFF"]),
        (0, &["CLIENT", "TRACKING", "ON", "OPTIN"]),
        (0, &["GET", "o"]),
        (writer, &["SET", "o", "1"]),
        (0, &["CLIENT", "CACHING", "YES"]),
        (0, &["GET", "o"]),
        (writer, &["SET", "o", "2"]),
        (0, &["CLIENT", "CACHING", "NO"]),
        (0, &["CLIENT", "TRACKING", "OFF"]),
        (0, &["CLIENT", "TRACKING", "ON", "OPTOUT"]),
        (0, &["CLIENT", "CACHING", "NO"]),
        (0, &["GET", "p"]),
        (writer, &["SET", "p", "1"]),
        (0, &["GET", "p"]),
        (writer, &["SET", "p", "2"]),
        (0, &["CLIENT", "TRACKING", "OFF"]),
        (0, &["CLIENT", "TRACKING", "ON", "PREFIX", "user:"]),
        (0, &["CLIENT", "TRACKING", "ON", "OPTIN", "OPTOUT"]),
        (0, &["CLIENT", "TRACKING", "ON", "BCAST", "OPTIN"]),
        (
            0,
            &[
                "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "user:", "PREFIX", "cfg:",
            ],
        ),
        (0, &["CLIENT", "TRACKINGINFO"]),
        (writer, &["SET", "user:1", "a"]),
        (writer, &["SET", "other", "a"]),
        (writer, &["DEL", "cfg:x"]),
        (writer, &["SET", "cfg:x", "1"]),
        (0, &["CLIENT", "TRACKING", "ON"]),
        (0, &["CLIENT", "TRACKING", "OFF"]),
        (0, &["CLIENT", "TRACKING", "ON", "REDIRECT", "999999"]),
        (0, &["CLIENT", "CACHING", "YES"]),
    ];
    pair.same_steps_watching(0, steps);
}

/// Connection 0 tracks, redirecting to the connection whose ids (Redis's,
/// Citadel's: they differ) are `ids`; each server is sent its own.
fn track_redirected_to(pair: &mut Pair, ids: &(String, String)) {
    let replies = pair.split_on(
        0,
        &["CLIENT", "TRACKING", "ON", "REDIRECT", &ids.0],
        &["CLIENT", "TRACKING", "ON", "REDIRECT", &ids.1],
    );
    assert_eq!(replies, ("+OK\r\n".into(), "+OK\r\n".into()));
}

#[test]
fn resp2_redirect_to_an_invalidate_subscriber_matches_redis() {
    let mut pair = Pair::start();
    let receiver = pair.connect();
    let writer = pair.connect();
    // (Its ids first: a RESP2 subscriber may not ask.)
    let ids = pair.client_ids(receiver);
    pair.same_str_on(receiver, &["SUBSCRIBE", "__redis__:invalidate"]);
    track_redirected_to(&mut pair, &ids);
    let steps: &[(usize, &[&str])] = &[
        (0, &["GET", "r"]),
        (writer, &["SET", "r", "1"]),
        (0, &["GET", "r"]),
        (writer, &["FLUSHALL"]),
        (0, &["GET", "r"]),
        (0, &["SET", "r", "own"]),
    ];
    pair.same_steps_watching(receiver, steps);
}

/// Any RESP3 connection may be a REDIRECT target: it hears the tracking
/// client's invalidations as pushes, CLIENT REPLY OFF or not (Redis 7.0's
/// `unit/tracking` "RESP3 based basic redirect invalidation with client
/// reply off"). Before, only a subscriber or a tracking connection could
/// be reached, and the tracking client heard `tracking-redir-broken`.
#[test]
fn resp3_redirect_to_a_plain_connection_matches_redis() {
    let mut pair = Pair::start();
    let receiver = pair.connect();
    let writer = pair.connect();
    pair.both(receiver, &["HELLO", "3"]);
    let ids = pair.client_ids(receiver);
    track_redirected_to(&mut pair, &ids);
    let steps: &[(usize, &[&str])] = &[
        (0, &["GET", "r"]),
        (writer, &["SET", "r", "1"]),
        (0, &["GET", "r"]),
    ];
    pair.same_steps_watching(receiver, steps);
    // Replies off: the invalidation still arrives, nothing else does.
    pair.send_on(receiver, &["CLIENT", "REPLY", "OFF"]);
    pair.same_steps_watching(receiver, &[(writer, &["SET", "r", "2"])]);
    let steps: &[(usize, &[&str])] = &[
        (receiver, &["CLIENT", "REPLY", "ON"]),
        (receiver, &["PING"]),
        (0, &["GET", "r"]),
        (writer, &["DEL", "r"]),
    ];
    pair.same_steps_watching(receiver, steps);
    // (The redirect ids differ between the servers.)
    let (redis, citadel) = pair.each_on(0, &["CLIENT", "TRACKINGINFO"]);
    assert_eq!(
        citadel.replace(&format!(":{}\r\n", ids.1), ":ID\r\n"),
        redis.replace(&format!(":{}\r\n", ids.0), ":ID\r\n")
    );
}

fn call(c: &mut RespReader, args: &[&str]) -> String {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    c.send(&encode_command(&args));
    String::from_utf8_lossy(&c.raw_reply().expect("reply")).into_owned()
}

const INVALIDATE_K: &str = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";

/// Writers on both server threads invalidate a tracking client on either;
/// expiry found by a read and eviction invalidate too.
#[test]
fn changes_from_every_core_and_from_the_cache_itself_invalidate() {
    let server = Server::start(&["--maxmemory", "8mb"]);
    // Connections are spread over the two threads: use several of each.
    let mut trackers: Vec<RespReader> = (0..4).map(|_| RespReader::new(server.raw())).collect();
    for t in &mut trackers {
        call(t, &["HELLO", "3"]);
        assert_eq!(call(t, &["CLIENT", "TRACKING", "ON"]), "+OK\r\n");
    }
    let mut writers: Vec<RespReader> = (0..4).map(|_| RespReader::new(server.raw())).collect();
    for w in &mut writers {
        for t in &mut trackers {
            call(t, &["GET", "k"]);
        }
        call(w, &["SET", "k", "v"]);
        for t in &mut trackers {
            assert_eq!(t.pending(Duration::from_millis(300)), vec![INVALIDATE_K]);
        }
    }
    // Expiry, found by a read of another client.
    let t = &mut trackers[0];
    call(t, &["SET", "k", "v", "PX", "20"]);
    call(t, &["GET", "k"]);
    std::thread::sleep(Duration::from_millis(40));
    call(&mut writers[1], &["GET", "k"]);
    assert_eq!(t.pending(Duration::from_millis(300)), vec![INVALIDATE_K]);
    // Eviction: fill the 8 MB cache well past its size (from the same
    // connection: k's segment is its thread's, evictable once that thread
    // moves on to new segments).
    call(t, &["SET", "k", "v"]);
    call(t, &["GET", "k"]);
    let value = "x".repeat(4000);
    let mut replies = Vec::new();
    for i in 0..6000 {
        // A push may come before a reply: keep every frame, in order.
        replies.push(call(t, &["SET", &format!("fill{i}"), &value]));
    }
    replies.extend(t.pending(Duration::from_millis(300)));
    assert!(
        replies.contains(&INVALIDATE_K.to_string()),
        "eviction of a tracked key invalidates it"
    );
    assert_eq!(replies.iter().filter(|r| *r == "+OK\r\n").count(), 6000);
}

#[test]
fn a_bounded_table_invalidates_what_it_drops() {
    let server = Server::start(&["--tracking-table-max-keys", "10"]);
    let mut t = RespReader::new(server.raw());
    call(&mut t, &["HELLO", "3"]);
    call(&mut t, &["CLIENT", "TRACKING", "ON"]);
    for i in 0..30 {
        call(&mut t, &["GET", &format!("key{i}")]);
    }
    let dropped = t.pending(Duration::from_millis(300));
    assert_eq!(
        dropped.len(),
        20,
        "20 keys past the bound of 10: {dropped:?}"
    );
}
