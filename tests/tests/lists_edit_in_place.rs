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

/// A push or pop planned from the root as stored (no plan, no hint:
/// `list/end.rs`), byte for byte against Redis on one connection: pushes
/// and pops of 1-3 elements of 1-200 bytes (a pop's first read is 64
/// bytes: longer elements read their end whole) at both ends of a big
/// list with a TTL, between reads that plan from the thread's root hints
/// (stale after a direct edit), MULTI/EXEC (whose pushes and pops take
/// the planned path) and LPUSHX/RPUSHX.
#[test]
fn direct_end_edits_match_redis() {
    use citadel_tests::differential::{Pair, Rng};
    let mut pair = Pair::start();
    let key = "direct";
    for chunk in 0..6 {
        let mut args = vec!["RPUSH".to_string(), key.to_string()];
        args.extend((0..500).map(|i| format!("start-{chunk}-{i}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pair.same_str(&args);
    }
    pair.same_str(&["EXPIRE", key, "100000"]);
    pair.same_str(&["OBJECT", "ENCODING", key]);
    let mut rng = Rng(0x5eed_0014);
    for step in 0..3000 {
        let n = 1 + rng.below(3);
        let elements: Vec<String> = (0..n)
            .map(|i| {
                let len = 1 + rng.below(200) as usize;
                format!("{step}-{i}-{}", "x".repeat(len))
            })
            .collect();
        let count = n.to_string();
        let mut args: Vec<&str> = match rng.below(12) {
            0..=2 => vec!["LPUSH", key],
            3..=5 => vec!["RPUSH", key],
            6 => vec!["LPOP", key],
            7 => vec!["RPOP", key, &count],
            8 => vec!["LPOP", key, &count],
            9 => vec!["RPOP", key],
            10 => vec!["LPUSHX", key],
            _ => vec!["RPUSHX", key],
        };
        if args[0].contains("PUSH") {
            args.extend(elements.iter().map(String::as_str));
        }
        if step % 50 == 0 {
            pair.same_str(&["MULTI"]);
            pair.same_str(&args);
            pair.same_str(&["RPOP", key]);
            pair.same_str(&["EXEC"]);
        } else {
            pair.same_str(&args);
        }
        match step % 7 {
            0 => pair.same_str(&["LRANGE", key, "0", "3"]),
            1 => pair.same_str(&["LINDEX", key, "-1"]),
            2 => pair.same_str(&["LLEN", key]),
            _ => String::new(),
        };
    }
    pair.same_str(&["LRANGE", key, "0", "-1"]);
    // The TTL was kept through every edit (PERSIST answers 1 for a key
    // that had one).
    assert_eq!(pair.same_str(&["PERSIST", key]), ":1\r\n");
}

/// A push or pop edited in place is a write to WATCH: a transaction
/// watching the list, on another connection (another server thread),
/// aborts after it; one that saw no write since its WATCH goes ahead.
#[test]
fn edits_in_place_abort_transactions_watching_the_list() {
    let server = citadel_tests::Server::start(&["--threads", "2"]);
    let (mut watcher, mut writer) = (server.client(), server.client());
    let big: Vec<u64> = (0..START).collect();
    let _: u64 = writer.rpush(KEY, &big).unwrap();
    // (The writer's thread then knows the list is paged: the edits below
    // are made in place.)
    let _: u64 = writer.lpush(KEY, "w").unwrap();
    for edit in [
        ["LPUSH", KEY, "x"],
        ["RPUSH", KEY, "y"],
        ["LPOP", KEY, ""],
        ["RPOP", KEY, ""],
    ] {
        let _: () = redis::cmd("WATCH").arg(KEY).query(&mut watcher).unwrap();
        let args: Vec<&str> = edit.iter().copied().filter(|a| !a.is_empty()).collect();
        let _: redis::Value = redis::cmd(args[0])
            .arg(&args[1..])
            .query(&mut writer)
            .unwrap();
        let aborted: Option<Vec<u64>> = redis::pipe()
            .atomic()
            .cmd("LLEN")
            .arg(KEY)
            .query(&mut watcher)
            .unwrap();
        assert_eq!(aborted, None, "{args:?} did not abort the EXEC");
        let _: () = redis::cmd("WATCH").arg(KEY).query(&mut watcher).unwrap();
        let ran: Option<Vec<u64>> = redis::pipe()
            .atomic()
            .cmd("LLEN")
            .arg(KEY)
            .query(&mut watcher)
            .unwrap();
        assert!(ran.is_some(), "an EXEC with no write since its WATCH");
    }
}
