//! kill -9 of the loader with 1,000 loads in flight: the restarted loader
//! answers every unanswered one, correctly. SIGTERM: loads in flight finish,
//! exit 0.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use citadel_tests::postgres::Postgres;
use support::{Loader, Outcome};

/// A load that takes ~5 ms on the database, so many are in flight at once.
const SLOW_QUERY: &str = "SELECT v FROM load_kv($1), pg_sleep(0.005)";
const N: u64 = 1000;

fn expected(id: u64) -> Outcome {
    if id % 10 == 0 {
        Outcome::NotFound
    } else {
        Outcome::found(format!("value-{id}").as_bytes())
    }
}

fn seed(pg: &Postgres) {
    pg.sql(&format!(
        "INSERT INTO kv SELECT 'key-' || i, convert_to('value-' || i, 'UTF8') \
         FROM generate_series(0, {N}) i WHERE i % 10 <> 0;"
    ));
}

#[test]
fn killed_with_1000_loads_in_flight_the_restart_answers_every_one() {
    let pg = Postgres::start();
    seed(&pg);
    let mut loader = Loader::start(&pg, &["--query", SLOW_QUERY, "--pool-size", "4"]);
    for id in 0..N {
        loader.request(id, format!("key-{id}").as_bytes());
    }
    assert!(loader.pump(|l| l.got.len() >= 100, Duration::from_secs(30)));
    loader.kill9();
    let answered_before: BTreeSet<u64> = loader.got.keys().copied().collect();
    assert!(
        (answered_before.len() as u64) < N / 2,
        "most loads were still in flight at the kill: {}",
        answered_before.len()
    );

    loader.spawn();
    assert!(
        loader.pump(|l| l.got.len() as u64 == N, Duration::from_secs(60)),
        "{} of {N} answered\n{}",
        loader.got.len(),
        loader.log()
    );
    for id in 0..N {
        for got in &loader.got[&id] {
            assert_eq!(got.outcome, expected(id), "request {id}");
        }
    }
    // Redelivered: the unanswered ones (and at most the answered ones not
    // yet committed), as attempt 2.
    let again: Vec<u64> = (0..N)
        .filter(|id| loader.got[id].iter().any(|g| g.attempt == 2))
        .collect();
    assert!(again.len() as u64 >= N - answered_before.len() as u64);
    assert!(loader.got.values().flatten().all(|g| g.attempt <= 2));
    // Everything is committed now.
    let committed = |l: &mut Loader| l.uncommitted_bytes() == 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !committed(&mut loader) {
        assert!(
            std::time::Instant::now() < deadline,
            "requests left uncommitted"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigterm_finishes_the_loads_in_flight_and_exits_0() {
    let pg = Postgres::start();
    seed(&pg);
    let mut loader = Loader::start(&pg, &["--query", SLOW_QUERY, "--pool-size", "2"]);
    for id in 0..200 {
        loader.request(id, format!("key-{id}").as_bytes());
    }
    assert!(loader.pump(|l| !l.got.is_empty(), Duration::from_secs(30)));
    let status = loader.terminate(Duration::from_secs(30));
    assert!(status.success(), "{status}\n{}", loader.log());
    loader.pump(|_| false, Duration::from_millis(10));
    // Whatever it had read was answered and committed; the rest is still in
    // the ring for the next instance.
    let answered = loader.got.len() as u64;
    assert!(answered > 0);
    for (id, got) in &loader.got {
        assert_eq!(got[0].outcome, expected(*id));
    }
    let left = loader.uncommitted_bytes();
    loader.spawn();
    assert!(loader.pump(|l| l.got.len() == 200, Duration::from_secs(30)));
    assert!(answered == 200 || left > 0);
}
