//! Blocking pops (BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP): replies and
//! errors byte for byte against a real redis-server, Redis's order of
//! service across cores, wake-ups by pushes from EXEC and scripts, a
//! waiter that disconnects, a key that changes type under a blocked
//! client, and a queue of producers and consumers that loses and
//! duplicates nothing.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use citadel_tests::differential::Pair;
use citadel_tests::redis::{self, Commands};
use citadel_tests::reference::encode_command;
use citadel_tests::{RespReader, Server};

fn send(conn: &mut RespReader, args: &[&str]) {
    let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
    conn.send(&encode_command(&args));
}

fn reply(conn: &mut RespReader) -> String {
    String::from_utf8_lossy(&conn.raw_reply().expect("server closed")).into_owned()
}

/// Waits until the server counts `n` blocked clients.
fn wait_blocked(c: &mut redis::Connection, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(c).unwrap();
        if info.contains(&format!("blocked_clients:{n}\r\n")) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} blocked: {info}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Runs `cases` over a RESP2 and a RESP3 connection to each server,
/// comparing every reply byte for byte.
fn compare_in_both_protocols(p: &mut Pair, cases: &[&[&str]]) {
    let r3 = p.connect();
    p.both(r3, &["HELLO", "3"]);
    for conn in [0, r3] {
        for case in cases {
            p.same_str_on(conn, case);
        }
    }
}

#[test]
fn replies_timeouts_and_errors_match_redis() {
    let mut p = Pair::start();
    compare_in_both_protocols(
        &mut p,
        &[
            // Timeouts: nil replies of each shape.
            &["BLPOP", "none", "other", "0.05"],
            &["BRPOP", "none", "0.01"],
            &["BLMOVE", "none", "dst", "LEFT", "RIGHT", "0.01"],
            &["BRPOPLPUSH", "none", "dst", "0.01"],
            &["BLMPOP", "0.01", "2", "none", "other", "LEFT", "COUNT", "3"],
            // Served at once.
            &["RPUSH", "l", "a", "b", "c", "d"],
            &["BLPOP", "none", "l", "0"],
            &["BRPOP", "l", "0"],
            &["BLMOVE", "l", "m", "RIGHT", "LEFT", "0"],
            &["BRPOPLPUSH", "m", "l", "0"],
            &["BLMPOP", "0", "2", "none", "l", "RIGHT", "COUNT", "5"],
            &["EXISTS", "l", "m"],
            // Errors.
            &["SET", "str", "v"],
            &["BLPOP", "str", "0"],
            &["BLPOP", "l", "-1"],
            &["BLPOP", "l", "abc"],
            &["BLMPOP", "0", "0", "l", "LEFT"],
            &["BLMPOP", "0", "1", "l", "UP"],
            &["BLMOVE", "l", "m", "UP", "LEFT", "0"],
            &["BLPOP", "l"],
            // Inside MULTI nothing blocks.
            &["MULTI"],
            &["BLPOP", "empty", "0"],
            &["BLMOVE", "empty", "x", "LEFT", "LEFT", "0"],
            &["EXEC"],
            &["DEL", "str"],
        ],
    );
}

#[test]
fn blocked_clients_are_served_in_arrival_order_across_cores() {
    let server = Server::start(&[]);
    let mut admin = server.client();
    // Connections land on either core; each blocks in turn.
    let mut waiters: Vec<RespReader> = Vec::new();
    for i in 0..4 {
        let mut conn = RespReader::new(server.raw());
        send(&mut conn, &["BLPOP", "q", "other", "0"]);
        wait_blocked(&mut admin, i + 1);
        waiters.push(conn);
    }
    let _: () = admin.rpush("q", &["a", "b", "c", "d"]).unwrap();
    for (conn, want) in waiters.iter_mut().zip(["a", "b", "c", "d"]) {
        assert_eq!(reply(conn), format!("*2\r\n$1\r\nq\r\n$1\r\n{want}\r\n"));
    }
    wait_blocked(&mut admin, 0);
    // BLMOVE pushes onto a key another client blocks on.
    let mut first = RespReader::new(server.raw());
    send(&mut first, &["BLMOVE", "src", "mid", "LEFT", "RIGHT", "0"]);
    wait_blocked(&mut admin, 1);
    let mut second = RespReader::new(server.raw());
    send(&mut second, &["BRPOP", "mid", "5"]);
    wait_blocked(&mut admin, 2);
    let _: () = admin.lpush("src", "x").unwrap();
    assert_eq!(reply(&mut first), "$1\r\nx\r\n");
    assert_eq!(reply(&mut second), "*2\r\n$3\r\nmid\r\n$1\r\nx\r\n");
}

#[test]
fn exec_scripts_and_a_departed_waiter_hand_elements_on() {
    let server = Server::start(&[]);
    let mut admin = server.client();
    let mut gone = RespReader::new(server.raw());
    send(&mut gone, &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut admin, 1);
    let mut stays = RespReader::new(server.raw());
    send(&mut stays, &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut admin, 2);
    drop(gone);
    wait_blocked(&mut admin, 1);
    let _: () = redis::pipe()
        .atomic()
        .rpush("jobs", "from-exec")
        .query(&mut admin)
        .unwrap();
    assert_eq!(reply(&mut stays), "*2\r\n$4\r\njobs\r\n$9\r\nfrom-exec\r\n");
    send(&mut stays, &["BLPOP", "jobs", "0"]);
    wait_blocked(&mut admin, 1);
    let _: () = redis::cmd("EVAL")
        .arg("redis.call('rpush', KEYS[1], 'from-script')")
        .arg(1)
        .arg("jobs")
        .query(&mut admin)
        .unwrap();
    assert_eq!(
        reply(&mut stays),
        "*2\r\n$4\r\njobs\r\n$11\r\nfrom-script\r\n"
    );
    // A timeout answers nil and leaves nothing registered.
    send(&mut stays, &["BLPOP", "jobs", "0.2"]);
    assert_eq!(reply(&mut stays), "*-1\r\n");
    wait_blocked(&mut admin, 0);
}

#[test]
fn a_queue_of_producers_and_blocking_consumers_loses_and_duplicates_nothing() {
    const PRODUCERS: usize = 3;
    const JOBS: usize = 600;
    let server = Server::start(&[]);
    let consumers: Vec<_> = (0..3)
        .map(|_| {
            let url = server.url();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                let mut got = Vec::new();
                // Move each job to a processing list, then finish it there.
                while let Some(job) = c
                    .brpoplpush::<_, _, Option<String>>("queue", "processing", 1.0)
                    .unwrap()
                {
                    let removed: i64 = c.lrem("processing", 1, &job).unwrap();
                    assert_eq!(removed, 1, "{job} vanished from processing");
                    got.push(job);
                }
                got
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|p| {
            let url = server.url();
            std::thread::spawn(move || {
                let mut c = redis::Client::open(url).unwrap().get_connection().unwrap();
                for j in 0..JOBS {
                    let _: () = c.lpush("queue", format!("{p}:{j}")).unwrap();
                }
            })
        })
        .collect();
    producers.into_iter().for_each(|p| p.join().unwrap());
    let mut all = Vec::new();
    for c in consumers {
        all.extend(c.join().unwrap());
    }
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a job was delivered twice");
    assert_eq!(all.len(), PRODUCERS * JOBS, "a job was lost");
    let mut admin = server.client();
    let left: i64 = admin.exists(&["queue", "processing"]).unwrap();
    assert_eq!(left, 0);
}

#[test]
fn sorted_set_pops_block_and_match_redis() {
    let mut p = Pair::start();
    compare_in_both_protocols(
        &mut p,
        &[
            &["BZPOPMIN", "none", "0.01"],
            &["BZMPOP", "0.01", "1", "none", "MAX"],
            &["ZADD", "z", "1", "a", "2.5", "b", "3", "c"],
            &["BZPOPMIN", "none", "z", "0"],
            &["BZPOPMAX", "z", "0"],
            &["BZMPOP", "0", "2", "none", "z", "MIN", "COUNT", "9"],
            &["BZPOPMIN", "z", "-1"],
            &["BZMPOP", "0", "0", "z", "MIN"],
            &["EVAL", "return redis.call('bzpopmin', 'z', 0)", "0"],
        ],
    );
    // One client blocks, a ZADD on another core serves it.
    let server = &p.citadel;
    let mut admin = server.client();
    let mut waiter = RespReader::new(server.raw());
    send(&mut waiter, &["BZPOPMAX", "board", "0"]);
    wait_blocked(&mut admin, 1);
    let _: () = admin.zadd_multiple("board", &[(5, "x"), (9, "y")]).unwrap();
    assert_eq!(
        reply(&mut waiter),
        "*3\r\n$5\r\nboard\r\n$1\r\ny\r\n$1\r\n9\r\n"
    );
}

/// What a blocked client sees when its key changes type, on one server:
/// a woken BLPOP / BZPOPMIN / XREAD whose key became a string stays blocked until
/// the key holds its type again; a woken BRPOPLPUSH whose destination is a
/// string answers WRONGTYPE and hands the element to the next in line.
fn type_change_transcript(
    raw: impl Fn() -> std::net::TcpStream,
    admin: &mut redis::Connection,
) -> Vec<String> {
    let mut seen = Vec::new();
    let mut c = RespReader::new(raw());
    let call = |c: &mut RespReader, args: &[&str]| {
        send(c, args);
        reply(c)
    };
    for (pop, push) in [
        (&["BLPOP", "q", "0"][..], &["LPUSH", "q", "x"][..]),
        (&["BZPOPMIN", "q", "0"][..], &["ZADD", "q", "1", "x"][..]),
        (
            &["XREAD", "BLOCK", "0", "STREAMS", "q", "$"][..],
            &["XADD", "q", "1-1", "f", "v"][..],
        ),
    ] {
        let mut waiter = RespReader::new(raw());
        send(&mut waiter, pop);
        wait_blocked(admin, 1);
        for args in [
            &["MULTI"][..],
            push,
            &["DEL", "q"],
            &["SET", "q", "s"],
            &["EXEC"],
        ] {
            seen.push(call(&mut c, args));
        }
        seen.push(call(&mut c, &["DEL", "q"]));
        wait_blocked(admin, 1);
        seen.push(call(&mut c, push));
        seen.push(reply(&mut waiter));
        wait_blocked(admin, 0);
    }
    call(&mut c, &["SET", "target1", "s"]);
    let mut first = RespReader::new(raw());
    send(&mut first, &["BRPOPLPUSH", "src", "target1", "0"]);
    wait_blocked(admin, 1);
    let mut second = RespReader::new(raw());
    send(&mut second, &["BRPOPLPUSH", "src", "target2", "0"]);
    wait_blocked(admin, 2);
    seen.push(call(&mut c, &["LPUSH", "src", "e"]));
    seen.push(reply(&mut first));
    seen.push(reply(&mut second));
    seen.push(call(&mut c, &["LRANGE", "target2", "0", "-1"]));
    wait_blocked(admin, 0);
    seen
}

#[test]
fn a_key_that_changes_type_under_a_blocked_client_matches_redis() {
    let pair = Pair::start();
    let url = format!("redis://127.0.0.1:{}/", pair.redis.port);
    let mut redis_admin = redis::Client::open(url).unwrap().get_connection().unwrap();
    let want = type_change_transcript(|| pair.redis.raw(), &mut redis_admin);
    let mut admin = pair.citadel.client();
    let got = type_change_transcript(|| pair.citadel.raw(), &mut admin);
    assert_eq!(got, want);
    assert!(want.iter().any(|r| r.starts_with("-WRONGTYPE")), "{want:?}");
}

/// The same change of type, many times over, for every blocking pop: a
/// woken client looks at its key's type, then pops in an update, and the
/// key may change type in between (another core's EXEC), so the update
/// itself must pass a key of another type over rather than answer
/// WRONGTYPE (Redis keeps such a client blocked).
#[test]
fn a_blocked_pop_never_answers_wrongtype_for_a_key_that_changed_type() {
    let server = Server::start(&[]);
    let mut admin = server.client();
    let mut c = RespReader::new(server.raw());
    let call = |c: &mut RespReader, args: &[&str]| {
        send(c, args);
        reply(c)
    };
    let pops: [(&[&str], &[&str]); 5] = [
        (&["BLPOP", "q", "0"], &["LPUSH", "q", "x"]),
        (&["BLMPOP", "0", "1", "q", "LEFT"], &["LPUSH", "q", "x"]),
        (
            &["BLMOVE", "q", "d", "LEFT", "LEFT", "0"],
            &["LPUSH", "q", "x"],
        ),
        (&["BZPOPMIN", "q", "0"], &["ZADD", "q", "1", "x"]),
        (&["BZMPOP", "0", "1", "q", "MIN"], &["ZADD", "q", "1", "x"]),
    ];
    for round in 0..40 {
        for (pop, push) in pops {
            // Waiters on both cores over the rounds.
            let mut waiter = RespReader::new(server.raw());
            send(&mut waiter, pop);
            wait_blocked(&mut admin, 1);
            for args in [&["MULTI"][..], push, &["DEL", "q"], &["SET", "q", "s"]] {
                call(&mut c, args);
            }
            assert_eq!(call(&mut c, &["EXEC"]), "*3\r\n:1\r\n:1\r\n+OK\r\n");
            call(&mut c, &["DEL", "q"]);
            call(&mut c, push);
            let got = reply(&mut waiter);
            assert!(got.contains('x'), "round {round}, {pop:?}: {got}");
            wait_blocked(&mut admin, 0);
            call(&mut c, &["DEL", "q", "d"]);
        }
    }
}
