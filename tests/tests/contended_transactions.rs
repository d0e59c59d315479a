//! A script or EXEC that reads a key clients on other cores keep writing:
//! each commit found the key changed, and the transaction ran again
//! forever, its core busy. After a few conflicting runs it now holds every
//! client's writes (parked, as CLIENT PAUSE WRITE parks them) until it
//! commits: it finishes, and every held write then runs, none lost.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use citadel_tests::{clients, Server};
use redis::Commands;

/// The server thread serving `con` (CLIENT INFO's `io-thread`).
fn io_thread(con: &mut redis::Connection) -> String {
    let info: String = redis::cmd("CLIENT").arg("INFO").query(con).unwrap();
    let field = info
        .split_whitespace()
        .find(|f| f.starts_with("io-thread="));
    field.expect("CLIENT INFO names the thread").to_string()
}

/// Writers INCRementing `hot` until `stop`, on connections another server
/// thread serves than `not_on`'s (so they write while a transaction on
/// `not_on` runs); each returns how many INCRs it saw acknowledged.
fn incr_until(
    server: &Server,
    not_on: &mut redis::Connection,
    stop: &Arc<AtomicBool>,
) -> Vec<JoinHandle<u64>> {
    let busy = io_thread(not_on);
    let others = (0..64)
        .map(|_| server.client())
        .filter_map(|mut con| (io_thread(&mut con) != busy).then_some(con));
    others
        .take(4)
        .map(|con| {
            let (mut con, stop) = (con, stop.clone());
            std::thread::spawn(move || {
                let mut acked = 0;
                while !stop.load(Ordering::Relaxed) {
                    let _: i64 = con.incr("hot", 1).expect("INCR answered");
                    acked += 1;
                }
                acked
            })
        })
        .collect()
}

fn info_field(con: &mut redis::Connection, name: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("everything").query(con).unwrap();
    clients::info_field(&info, name)
}

#[test]
fn a_transaction_reading_a_key_other_cores_keep_writing_commits() {
    let server = Server::start(&[]);
    let mut con = server.client();
    let stop = Arc::new(AtomicBool::new(false));
    let writers = incr_until(&server, &mut con, &stop);
    assert_eq!(writers.len(), 4, "connections on another thread");
    while con.get::<_, Option<i64>>("hot").unwrap().unwrap_or(0) < 1_000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }

    // A script: reads the counter, then writes long enough for the
    // writers to change it before every commit.
    let script = "local seen = redis.call('get', KEYS[1]) \
                  for i = 1, 100000 do redis.call('set', KEYS[2], i) end \
                  return seen";
    let seen: i64 = redis::cmd("EVAL")
        .arg(script)
        .arg(2)
        .arg("hot")
        .arg("x")
        .query(&mut con)
        .expect("the script commits");
    assert!(seen >= 1_000);
    assert_eq!(con.get::<_, i64>("x").unwrap(), 100_000);

    // The same as an EXEC.
    let mut pipe = redis::pipe();
    pipe.atomic().get("hot");
    for i in 0..20_000 {
        pipe.set("y", i).ignore();
    }
    let (seen,): (i64,) = pipe.query(&mut con).expect("the EXEC commits");
    assert!(seen >= 1_000);
    assert_eq!(con.get::<_, i64>("y").unwrap(), 19_999);
    assert!(info_field(&mut con, "txn_write_holds") >= 1);

    // The held writes ran once the transactions were done: the writers
    // go on, and every INCR acknowledged counted once.
    let before: i64 = con.get("hot").unwrap();
    while con.get::<_, i64>("hot").unwrap() < before + 1_000 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let acked: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert_eq!(con.get::<_, u64>("hot").unwrap(), acked);
}
