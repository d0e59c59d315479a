//! The example trigger's NOTIFY reaches the server as an `Invalidation`
//! record within milliseconds: updates, deletes and inserts.

mod support;

use std::time::{Duration, Instant};

use citadel_tests::postgres::{literal, Postgres};
use support::{wait_listening, Loader, Notice};

fn keys_notice(keys: &[&str]) -> Notice {
    Notice::Keys(keys.iter().map(|k| k.as_bytes().to_vec()).collect())
}

/// Runs `sql` and returns how long after its commit `want` arrived.
fn notice_after(loader: &mut Loader, pg: &Postgres, sql: &str, want: &Notice) -> Duration {
    let before = loader.notices.len();
    pg.sql(sql);
    let committed = Instant::now();
    assert!(
        loader.pump(
            |l| l.notices[before..].iter().any(|(_, n)| n == want),
            Duration::from_secs(5)
        ),
        "no {want:?} after {sql}: {:?}",
        &loader.notices[before..]
    );
    let (at, _) = loader.notices[before..]
        .iter()
        .find(|(_, n)| n == want)
        .unwrap();
    at.saturating_duration_since(committed)
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
        let took = notice_after(&mut loader, &pg, sql, &keys_notice(&keys));
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
    let all_keys = |l: &Loader| {
        l.notices[before..]
            .iter()
            .map(|(_, n)| match n {
                Notice::Keys(k) => k.len(),
                Notice::Resync => 0,
            })
            .sum::<usize>()
    };
    assert!(loader.pump(|l| all_keys(l) == 300, Duration::from_secs(5)));
    assert!(loader.notices.len() - before < 300, "keys are batched");

    // A NOTIFY without a payload: anything may have changed.
    notice_after(
        &mut loader,
        &pg,
        "NOTIFY citadel_invalidate;",
        &Notice::Resync,
    );
}
