//! The worker against scripted targets on loopback: one job's exchange
//! (`exchange.rs`), the connection cache's idle close and its cap
//! (`cache.rs`).

mod cache;
mod exchange;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use super::*;
use crate::forward::reply::{elements, reply_len};

/// What the scripted target answers a command (its words), and whether
/// it then closes the connection.
type Script = dyn Fn(&[Vec<u8>]) -> (Vec<u8>, bool) + Send + Sync;
/// A command's words.
type Words = Vec<Vec<u8>>;

/// One connection to a scripted target: the commands it read, and
/// whether its peer (the worker) closed it.
#[derive(Default)]
struct Seen {
    commands: Vec<Words>,
    closed: bool,
}

/// A target answering by its script.
struct Scripted {
    port: u16,
    /// Per connection, in the order they came.
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Scripted {
    /// Its connection number `conn` was closed by the worker.
    fn closed(&self, conn: usize) -> bool {
        let seen = self.seen.lock().unwrap();
        seen.get(conn).is_some_and(|c| c.closed)
    }

    fn connections(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Its key in the worker map.
    fn name(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// A target answering by `script`.
fn target(script: Arc<Script>) -> Scripted {
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
    Scripted { port, seen }
}

fn serve(mut conn: TcpStream, script: &Script, log: &Mutex<Vec<Seen>>) {
    let at = {
        let mut log = log.lock().unwrap();
        log.push(Seen::default());
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
            // Logged before it is answered (a gated script answers late).
            log.lock().unwrap()[at].commands.push(words.clone());
            let (answer, close) = script(&words);
            conn.write_all(&answer).unwrap();
            if close {
                return;
            }
        }
        match conn.read(&mut chunk) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            // EOF (or a reset): the worker closed its connection.
            _ => {
                log.lock().unwrap()[at].closed = true;
                return;
            }
        }
    }
}

fn migrator() -> (Migrator, Receiver<Done>) {
    migrator_idling(IDLE)
}

/// A migrator whose workers idle out after `idle`.
fn migrator_idling(idle: Duration) -> (Migrator, Receiver<Done>) {
    let (tx, rx) = crossbeam::channel::unbounded();
    let deliver = Box::new(move |done| tx.send(done).unwrap());
    (Migrator::with_idle(deliver, idle), rx)
}

/// The targets that have a worker (and a cached connection) now.
fn cached(m: &Migrator) -> std::collections::BTreeSet<String> {
    m.shared.lock_workers().keys().cloned().collect()
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

/// Polls `done` until it holds; fails after 10 s (something never came).
fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
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

/// Opened by the test; a gated target answers RESTOREs only once open.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gate {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }

    fn wait(&self) {
        let open = self.open.lock().unwrap();
        drop(self.opened.wait_while(open, |open| !*open).unwrap());
    }
}

/// A target that holds its RESTOREs' replies until its gate opens (its
/// worker stays busy meanwhile, so it never idles out).
fn gated() -> (Scripted, Arc<Gate>) {
    let gate = Arc::new(Gate::default());
    let held = gate.clone();
    let script: Arc<Script> = Arc::new(move |words: &[Vec<u8>]| {
        if words[0] == b"RESTORE" {
            held.wait();
        }
        (b"+OK\r\n".to_vec(), false)
    });
    (target(script), gate)
}
