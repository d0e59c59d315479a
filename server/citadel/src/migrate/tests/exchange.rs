//! One job's exchange: AUTH, SELECT once per connection, each key's
//! reply, a closed connection replaced, refusals and timeouts.

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

#[test]
fn authenticates_selects_once_per_connection_and_reports_each_key() {
    let t = target(redis_like());
    let (m, rx) = migrator();
    let auth = Some(Auth {
        user: Some(b"u".to_vec()),
        password: b"p".to_vec(),
    });
    let first = run(&m, &rx, job(t.port, 3, &["a", "b"], auth));
    assert_eq!(first.result, Ok(()));
    assert_eq!(first.restored, vec![true, true]);
    // Same database on the cached connection: no SELECT.
    let second = run(&m, &rx, job(t.port, 3, &["c", "busy1", "d", "busy2"], None));
    let busy = "BUSYKEY Target key name already exists.".to_string();
    assert_eq!(second.result, Err(MigrateError::Target(busy)));
    assert_eq!(second.restored, vec![true, false, true, false]);
    // After an error the database is unknown: SELECT again.
    let third = run(&m, &rx, job(t.port, 3, &["e"], None));
    assert_eq!(third.result, Ok(()));
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one cached connection");
    let expect = [
        "AUTH", "SELECT", "RESTORE", "RESTORE", "RESTORE", "RESTORE", "RESTORE", "RESTORE",
        "SELECT", "RESTORE",
    ];
    assert_eq!(names(&seen[0].commands), expect);
    assert_eq!(seen[0].commands[0], [&b"AUTH"[..], b"u", b"p"]);
    assert_eq!(seen[0].commands[1], [&b"SELECT"[..], b"3"]);
}

#[test]
fn a_refused_auth_fails_every_key() {
    let script: Arc<Script> = Arc::new(|words: &[Vec<u8>]| match &words[0][..] {
        b"AUTH" => (
            b"-WRONGPASS invalid username-password pair\r\n".to_vec(),
            false,
        ),
        _ => (b"-NOAUTH Authentication required.\r\n".to_vec(), false),
    });
    let port = target(script).port;
    let (m, rx) = migrator();
    let auth = Some(Auth {
        user: None,
        password: b"bad".to_vec(),
    });
    let outcome = run(&m, &rx, job(port, 0, &["a", "b"], auth));
    let text = "WRONGPASS invalid username-password pair".to_string();
    assert_eq!(outcome.result, Err(MigrateError::Target(text)));
    assert_eq!(outcome.restored, vec![false, false]);
}

#[test]
fn a_connection_the_target_closed_is_replaced_once() {
    // The first connection is closed right after its first RESTORE.
    let closes = Arc::new(Mutex::new(1));
    let script: Arc<Script> = Arc::new(move |words: &[Vec<u8>]| {
        let mut left = closes.lock().unwrap();
        if words[0] == b"RESTORE" && *left > 0 {
            *left -= 1;
            return (b"+OK\r\n".to_vec(), true);
        }
        (b"+OK\r\n".to_vec(), false)
    });
    let t = target(script);
    let (m, rx) = migrator();
    assert_eq!(run(&m, &rx, job(t.port, 0, &["a"], None)).result, Ok(()));
    let again = run(&m, &rx, job(t.port, 0, &["b"], None));
    assert_eq!(again.result, Ok(()));
    assert_eq!(again.restored, vec![true]);
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "a fresh connection for the retry");
    assert_eq!(names(&seen[1].commands), ["SELECT", "RESTORE"]);
}

#[test]
fn a_refused_connection_is_a_write_error_and_silence_a_read_timeout() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (m, rx) = migrator();
    let refused = run(&m, &rx, job(port, 0, &["a"], None));
    assert_eq!(refused.result, Err(MigrateError::Write));
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut j = job(silent.local_addr().unwrap().port(), 0, &["a"], None);
    j.timeout = Duration::from_millis(100);
    let outcome = run(&m, &rx, j);
    assert_eq!(outcome.result, Err(MigrateError::Read));
    assert_eq!(outcome.restored, vec![false]);
    let mut bad = job(1, 0, &["a"], None);
    bad.host = "no-such-host.invalid".into();
    assert_eq!(run(&m, &rx, bad).result, Err(MigrateError::Connect));
}
