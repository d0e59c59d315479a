//! The worker's exchange against a scripted target on loopback.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam::channel::Receiver;

use super::*;
use crate::forward::reply::{elements, reply_len};

/// What the scripted target answers a command (its words), and whether
/// it then closes the connection.
type Script = dyn Fn(&[Vec<u8>]) -> (Vec<u8>, bool) + Send + Sync;
/// A command's words.
type Words = Vec<Vec<u8>>;
/// The commands the target read, per connection.
type Seen = Arc<Mutex<Vec<Vec<Words>>>>;

/// A target answering by `script`; returns its port and the commands it
/// read, per connection.
fn target(script: Arc<Script>) -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let (script, log) = (script.clone(), log.clone());
            std::thread::spawn(move || serve(conn.unwrap(), &*script, &log));
        }
    });
    (port, seen)
}

fn serve(mut conn: TcpStream, script: &Script, log: &Mutex<Vec<Vec<Words>>>) {
    let at = {
        let mut log = log.lock().unwrap();
        log.push(Vec::new());
        log.len() - 1
    };
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        while let Ok(Some(len)) = reply_len(&buf) {
            let command: Vec<u8> = buf.drain(..len).collect();
            let words: Words = elements(&command)
                .unwrap()
                .into_iter()
                .map(|w| crate::forward::reply::bulk(w).unwrap().to_vec())
                .collect();
            let (answer, close) = script(&words);
            log.lock().unwrap()[at].push(words);
            conn.write_all(&answer).unwrap();
            if close {
                return;
            }
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn migrator() -> (Migrator, Receiver<Done>) {
    let (tx, rx) = crossbeam::channel::unbounded();
    let deliver = Box::new(move |done| tx.send(done).unwrap());
    (Migrator::new(deliver), rx)
}

fn job(port: u16, db: i64, keys: &[&str], auth: Option<Auth>) -> Job {
    let mut restores = Vec::new();
    for k in keys {
        let words = [&b"RESTORE"[..], k.as_bytes(), b"0", b"payload"];
        crate::forward::encode_command(&mut restores, words.len(), words);
    }
    Job {
        thread: 0,
        id: MigrateId(1),
        host: "127.0.0.1".into(),
        port: port.to_string(),
        db,
        timeout: Duration::from_millis(2000),
        auth,
        restores,
        keys: keys.len(),
    }
}

fn run(m: &Migrator, rx: &Receiver<Done>, job: Job) -> MigrateOutcome {
    m.submit(job);
    rx.recv_timeout(Duration::from_secs(10)).unwrap().outcome
}

fn names(commands: &[Words]) -> Vec<String> {
    let name = |c: &Words| String::from_utf8_lossy(&c[0]).into_owned();
    commands.iter().map(name).collect()
}

/// RESTOREs of keys named `busy*` are refused, everything else is OK.
fn redis_like() -> Arc<Script> {
    Arc::new(|words: &[Vec<u8>]| {
        let busy = words.len() > 1 && words[0] == b"RESTORE" && words[1].starts_with(b"busy");
        let answer = match busy {
            true => b"-BUSYKEY Target key name already exists.\r\n".to_vec(),
            false => b"+OK\r\n".to_vec(),
        };
        (answer, false)
    })
}

#[test]
fn authenticates_selects_once_per_connection_and_reports_each_key() {
    let (port, seen) = target(redis_like());
    let (m, rx) = migrator();
    let auth = Some(Auth {
        user: Some(b"u".to_vec()),
        password: b"p".to_vec(),
    });
    let first = run(&m, &rx, job(port, 3, &["a", "b"], auth));
    assert_eq!(first.result, Ok(()));
    assert_eq!(first.restored, vec![true, true]);
    // Same database on the cached connection: no SELECT.
    let second = run(&m, &rx, job(port, 3, &["c", "busy1", "d", "busy2"], None));
    let busy = "BUSYKEY Target key name already exists.".to_string();
    assert_eq!(second.result, Err(MigrateError::Target(busy)));
    assert_eq!(second.restored, vec![true, false, true, false]);
    // After an error the database is unknown: SELECT again.
    let third = run(&m, &rx, job(port, 3, &["e"], None));
    assert_eq!(third.result, Ok(()));
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one cached connection");
    let expect = [
        "AUTH", "SELECT", "RESTORE", "RESTORE", "RESTORE", "RESTORE", "RESTORE", "RESTORE",
        "SELECT", "RESTORE",
    ];
    assert_eq!(names(&seen[0]), expect);
    assert_eq!(seen[0][0], [&b"AUTH"[..], b"u", b"p"]);
    assert_eq!(seen[0][1], [&b"SELECT"[..], b"3"]);
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
    let (port, _) = target(script);
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
    let (port, seen) = target(script);
    let (m, rx) = migrator();
    assert_eq!(run(&m, &rx, job(port, 0, &["a"], None)).result, Ok(()));
    let again = run(&m, &rx, job(port, 0, &["b"], None));
    assert_eq!(again.result, Ok(()));
    assert_eq!(again.restored, vec![true]);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2, "a fresh connection for the retry");
    assert_eq!(names(&seen[1]), ["SELECT", "RESTORE"]);
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
