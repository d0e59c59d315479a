//! Pushes and pops inside a big list's end slots edit its root in place
//! (issue 14): readers on other connections (other server threads) see
//! every state whole, and poppers on several threads, each planning from
//! the root it last wrote (a hint another thread's edit made stale), take
//! every element once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use citadel_tests::redis::{self, Commands};

const KEY: &str = "edited";
/// Elements the list starts with: well past the packed limit (8 KiB).
const START: u64 = 3000;
const PUSHES: u64 = 4000;

/// Whether `got` is the integers `first..first + len`.
fn is_run(got: &[u64]) -> bool {
    got.windows(2).all(|w| w[1] == w[0] + 1)
}

#[test]
fn edits_in_place_are_whole_to_readers_and_poppers_on_other_threads() {
    let server = citadel_tests::Server::start(&["--threads", "3"]);
    let mut setup = server.client();
    for chunk in (0..START).collect::<Vec<u64>>().chunks(500) {
        let _: u64 = setup.rpush(KEY, chunk).unwrap();
    }
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg(KEY)
        .query(&mut setup)
        .unwrap();
    assert_eq!(encoding, "quicklist");
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let (mut con, done) = (server.client(), done.clone());
            std::thread::spawn(move || {
                let mut reads = 0;
                while !done.load(Ordering::Relaxed) {
                    let got: Vec<u64> = con.lrange(KEY, 0, -1).unwrap();
                    assert!(is_run(&got), "a torn list: {} elements", got.len());
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    let poppers: Vec<_> = (0..2)
        .map(|p| {
            let mut con = server.client();
            std::thread::spawn(move || {
                let mut got = Vec::new();
                for n in 0..PUSHES / 2 {
                    let count = 1 + (n + p) % 2;
                    let popped: Option<Vec<u64>> = redis::cmd("LPOP")
                        .arg(KEY)
                        .arg(count)
                        .query(&mut con)
                        .unwrap();
                    let popped = popped.unwrap_or_default();
                    assert!(is_run(&popped), "a pop out of order: {popped:?}");
                    got.extend(popped);
                }
                got
            })
        })
        .collect();
    let mut pusher = server.client();
    for n in START..START + PUSHES {
        let _: u64 = pusher.rpush(KEY, n).unwrap();
    }
    let mut all: Vec<u64> = poppers
        .into_iter()
        .flat_map(|p| {
            let got = p.join().unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "popped out of order");
            got
        })
        .collect();
    done.store(true, Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    let left: Vec<u64> = setup.lrange(KEY, 0, -1).unwrap();
    assert!(is_run(&left));
    all.extend(left);
    all.sort_unstable();
    assert_eq!(
        all,
        (0..START + PUSHES).collect::<Vec<_>>(),
        "lost or twice"
    );
}
