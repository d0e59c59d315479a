//! SCAN on a large, almost empty cache finishes in a few round trips (the
//! occupancy summary lets a call skip empty index), and returns every key.

use std::collections::HashSet;

use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

#[test]
fn scan_of_a_sparse_one_gib_cache_takes_a_few_round_trips() {
    let server = Server::start(&["--maxmemory", "1gb"]);
    let mut c = server.client();
    for i in 0..16 {
        let _: () = c.set(format!("key:{i}"), "value").unwrap();
    }
    let (mut cursor, mut round_trips) = (0u64, 0);
    let mut keys = HashSet::new();
    loop {
        let (next, page): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(10)
            .query(&mut c)
            .unwrap();
        round_trips += 1;
        keys.extend(page);
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    println!("SCAN of 16 keys in a 1 GiB cache: {round_trips} round trips");
    assert_eq!(keys, (0..16).map(|i| format!("key:{i}")).collect());
    assert!(round_trips <= 10, "{round_trips} round trips");
    // The default COUNT too.
    let (mut cursor, mut round_trips) = (0u64, 0);
    loop {
        let (next, _): (u64, Vec<String>) = redis::cmd("SCAN").arg(cursor).query(&mut c).unwrap();
        round_trips += 1;
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    assert!(
        round_trips <= 10,
        "{round_trips} round trips (default COUNT)"
    );
}
