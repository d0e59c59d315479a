//! Stream consumer groups beyond single replies: XREADGROUP BLOCK woken
//! by an XADD from another connection (both server threads), and by
//! XGROUP DESTROY and DEL with Redis's errors, byte for byte against a
//! real redis-server; groups, consumers and PELs kept across a restart
//! and a kill -9.

use std::time::{Duration, Instant};

use citadel_tests::differential::Pair;
use citadel_tests::redis;
use citadel_tests::Server;

/// Waits until both servers count `n` blocked clients (checked on `conn`).
fn wait_blocked(pair: &mut Pair, conn: usize, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let want = format!("blocked_clients:{n}\r\n");
    loop {
        let (redis, citadel) = pair.each_on(conn, &["INFO", "clients"]);
        if redis.contains(&want) && citadel.contains(&want) {
            return;
        }
        assert!(Instant::now() < deadline, "never {n} blocked: {citadel}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn blocked_readgroup_is_woken_by_xadd_destroy_and_del_as_in_redis() {
    let mut pair = Pair::start();
    let admin = pair.connect();
    let readers: Vec<usize> = (0..4).map(|_| pair.connect()).collect();
    let r3 = readers[3];
    pair.both(r3, &["HELLO", "3"]);
    pair.same_str(&["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"]);
    // Four consumers block (connections land on both threads); each XADD
    // serves the first in line, which takes the new entry.
    for (i, &r) in readers.iter().enumerate() {
        let consumer = format!("w{i}");
        pair.send_on(
            r,
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                &consumer,
                "BLOCK",
                "0",
                "STREAMS",
                "jobs",
                ">",
            ],
        );
        wait_blocked(&mut pair, admin, i + 1);
    }
    for (i, &r) in readers.iter().enumerate() {
        let id = format!("{}-1", i + 1);
        pair.same_str(&["XADD", "jobs", &id, "task", &format!("t{i}")]);
        let (want, got) = pair.replies_on(r);
        assert_eq!(got, want, "reader {i}");
        assert!(want.contains(&id), "{want}");
    }
    pair.same_str(&["XPENDING", "jobs", "workers"]);
    // A blocked reader whose group goes answers NOGROUP; whose key goes,
    // UNBLOCKED.
    pair.send_on(
        readers[0],
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "w0",
            "BLOCK",
            "0",
            "STREAMS",
            "jobs",
            ">",
        ],
    );
    wait_blocked(&mut pair, admin, 1);
    pair.same_str(&["XGROUP", "DESTROY", "jobs", "workers"]);
    let (want, got) = pair.replies_on(readers[0]);
    assert_eq!(got, want);
    assert!(want.starts_with("-NOGROUP"), "{want}");
    pair.same_str(&["XGROUP", "CREATE", "jobs", "workers", "$"]);
    pair.send_on(
        r3,
        &[
            "XREADGROUP",
            "GROUP",
            "workers",
            "w3",
            "BLOCK",
            "0",
            "STREAMS",
            "jobs",
            ">",
        ],
    );
    wait_blocked(&mut pair, admin, 1);
    pair.same_str(&["DEL", "jobs"]);
    let (want, got) = pair.replies_on(r3);
    assert_eq!(got, want);
    assert!(want.starts_with("-UNBLOCKED"), "{want}");
    // A timeout answers a null array.
    pair.same_str(&["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"]);
    for r in [readers[1], r3] {
        pair.send_on(
            r,
            &[
                "XREADGROUP",
                "GROUP",
                "workers",
                "w1",
                "BLOCK",
                "30",
                "STREAMS",
                "jobs",
                ">",
            ],
        );
        let (want, got) = pair.replies_on(r);
        assert_eq!(got, want);
    }
}

fn query(c: &mut redis::Connection, args: &[&str]) -> redis::Value {
    let mut cmd = redis::cmd(args[0]);
    args[1..].iter().for_each(|a| {
        cmd.arg(*a);
    });
    cmd.query(c).unwrap()
}

/// The group state a restart must keep (no clock values).
fn group_state(c: &mut redis::Connection) -> Vec<redis::Value> {
    vec![
        query(c, &["XINFO", "GROUPS", "q"]),
        query(c, &["XPENDING", "q", "g"]),
        query(c, &["XPENDING", "q", "g", "-", "+", "1000", "a"]).clone(),
        query(c, &["XREADGROUP", "GROUP", "g", "b", "STREAMS", "q", "0"]),
    ]
    .into_iter()
    .map(|v| match v {
        // XPENDING's extended rows carry idle times: keep ID, owner, count.
        redis::Value::Array(rows) => redis::Value::Array(
            rows.into_iter()
                .map(|r| match r {
                    redis::Value::Array(mut f) if f.len() == 4 => {
                        f[2] = redis::Value::Nil;
                        redis::Value::Array(f)
                    }
                    other => other,
                })
                .collect(),
        ),
        other => other,
    })
    .collect()
}

#[test]
fn groups_survive_restart_and_kill9() {
    let mut server = Server::start(&[]);
    let mut c = server.client();
    for i in 1..=500 {
        query(
            &mut c,
            &["XADD", "q", &format!("{i}-0"), "n", &i.to_string()],
        );
    }
    query(&mut c, &["XGROUP", "CREATE", "q", "g", "0"]);
    query(&mut c, &["XGROUP", "CREATE", "q", "other", "$"]);
    query(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "a",
            "COUNT",
            "300",
            "STREAMS",
            "q",
            ">",
        ],
    );
    query(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "b",
            "COUNT",
            "100",
            "STREAMS",
            "q",
            ">",
        ],
    );
    for i in (1..=300).step_by(3) {
        query(&mut c, &["XACK", "q", "g", &format!("{i}-0")]);
    }
    let before = group_state(&mut c);
    drop(c);
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(20));
    server.restart(false);
    let mut c = server.client();
    assert_eq!(group_state(&mut c), before, "after a clean restart");
    // The history read above touched delivery counts only; kill -9 now.
    let before = group_state(&mut c);
    drop(c);
    server.kill9();
    server.restart(false);
    let mut c = server.client();
    let after = group_state(&mut c);
    assert_eq!(after[..3], before[..3], "after kill -9");
}
