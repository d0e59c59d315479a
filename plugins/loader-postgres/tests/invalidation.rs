//! The example trigger's NOTIFY reaches the server as an `Invalidation`
//! record within milliseconds: updates, deletes and inserts.

mod support;

use std::time::{Duration, Instant};

use citadel_tests::postgres::{literal, Postgres};
use support::{wait_listening, Loader, Notice};

/// Keys of the notices from `from` on, with the time each first arrived.
fn keys_since(loader: &Loader, from: usize) -> Vec<(Instant, Vec<u8>)> {
    let mut keys = Vec::new();
    for (at, notice) in &loader.notices[from..] {
        if let Notice::Keys(k) = notice {
            keys.extend(k.iter().map(|k| (*at, k.clone())));
        }
    }
    keys
}

/// Runs `sql` and returns how long after its commit the last of `keys`
/// arrived (in one record or several).
fn invalidated_after(loader: &mut Loader, pg: &Postgres, sql: &str, keys: &[&str]) -> Duration {
    let before = loader.notices.len();
    pg.sql(sql);
    let committed = Instant::now();
    let all_in = |l: &Loader| {
        let got = keys_since(l, before);
        keys.iter()
            .all(|k| got.iter().any(|(_, g)| g == k.as_bytes()))
    };
    assert!(
        loader.pump(all_in, Duration::from_secs(5)),
        "{keys:?} not invalidated after {sql}: {:?}",
        &loader.notices[before..]
    );
    let last = keys_since(loader, before)
        .iter()
        .filter(|(_, k)| keys.iter().any(|w| w.as_bytes() == k))
        .map(|(at, _)| *at)
        .max()
        .unwrap();
    last.saturating_duration_since(committed)
}

#[test]
fn updates_deletes_and_inserts_invalidate_within_milliseconds() {
    let pg = Postgres::start();
    pg.put("user:1", b"v1");
    pg.put("user:2", b"v2");
    let mut loader = Loader::start(&pg, &[]);
    wait_listening(&mut loader);

    let cases = [
        (
            "UPDATE kv SET v = 'new' WHERE k = 'user:1';",
            vec!["user:1"],
        ),
        ("DELETE FROM kv WHERE k = 'user:2';", vec!["user:2"]),
        ("INSERT INTO kv VALUES ('user:3', 'v3');", vec!["user:3"]),
        (
            "UPDATE kv SET k = 'user:4' WHERE k = 'user:3';",
            vec!["user:3", "user:4"],
        ),
    ];
    for (sql, keys) in cases {
        let took = invalidated_after(&mut loader, &pg, sql, &keys);
        assert!(took < Duration::from_millis(100), "{sql}: {took:?}");
    }

    // One transaction touching many rows: every key arrives, batched.
    let mut sql = String::from("BEGIN;");
    for i in 0..300 {
        sql += &format!(
            "INSERT INTO kv VALUES ({}, 'x');",
            literal(&format!("bulk:{i}"))
        );
    }
    sql += "COMMIT;";
    let before = loader.notices.len();
    pg.sql(&sql);
    assert!(loader.pump(
        |l| keys_since(l, before).len() == 300,
        Duration::from_secs(5)
    ));
    assert!(loader.notices.len() - before < 300, "keys are batched");

    // A NOTIFY without a payload: anything may have changed.
    let before = loader.notices.len();
    pg.sql("NOTIFY citadel_invalidate;");
    assert!(loader.pump(
        |l| l.notices[before..]
            .iter()
            .any(|(_, n)| *n == Notice::Resync),
        Duration::from_secs(5)
    ));
}
