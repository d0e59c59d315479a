//! Loads against a real PostgreSQL: found, not found, one query per request
//! (counted on the database side), value types and TTL, clear errors.

mod support;

use std::time::Duration;

use citadel_tests::postgres::Postgres;
use support::{Loader, Outcome};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn found_and_not_found_with_one_query_per_request() {
    let pg = Postgres::start();
    let value = b"v\x00\xff binary".to_vec();
    pg.put("user:1", &value);
    let mut loader = Loader::start(&pg, &[]);
    assert_eq!(loader.load(1, b"user:1", WAIT).0, Outcome::found(&value));
    assert_eq!(loader.load(2, b"user:2", WAIT).0, Outcome::NotFound);
    assert_eq!(pg.load_count(), 2);

    // 500 requests in one burst, present and missing keys interleaved.
    for i in 0..100 {
        pg.put(&format!("k{i}"), format!("value-{i}").as_bytes());
    }
    const N: u64 = 500;
    for id in 100..100 + N {
        loader.request(id, format!("k{}", id % 200).as_bytes());
    }
    assert!(
        loader.pump(|l| l.got.len() as u64 == N + 2, WAIT),
        "{}",
        loader.log()
    );
    for id in 100..100 + N {
        let i = id % 200;
        let want = if i < 100 {
            Outcome::found(format!("value-{i}").as_bytes())
        } else {
            Outcome::NotFound
        };
        assert_eq!(loader.got[&id].len(), 1, "request {id} answered once");
        assert_eq!(loader.got[&id][0].outcome, want, "request {id}");
    }
    assert_eq!(
        pg.load_count(),
        N + 2,
        "one query per request reached PostgreSQL"
    );
}

#[test]
fn text_value_column_and_ttl() {
    let pg = Postgres::start();
    pg.put("greeting", "héllo".as_bytes());
    let query = "SELECT convert_from(v, 'UTF8') FROM kv WHERE k = $1";
    let mut loader = Loader::start(&pg, &["--query", query, "--ttl-ms", "60000"]);
    let want = Outcome::Found {
        value: "héllo".as_bytes().to_vec(),
        ttl_ms: 60_000,
    };
    assert_eq!(loader.load(1, b"greeting", WAIT).0, want);
    assert_eq!(loader.load(2, b"nobody", WAIT).0, Outcome::NotFound);
    // A text key parameter cannot take bytes that are not UTF-8.
    let (got, _) = loader.load(3, b"\xff\xfe", WAIT);
    assert!(
        matches!(&got, Outcome::Failed { code: 19, message } if message.contains("UTF-8")),
        "{got:?}"
    );
}

#[test]
fn a_broken_query_fails_each_load_with_the_database_message() {
    let pg = Postgres::start();
    let mut loader = Loader::start(&pg, &["--query", "SELECT nope FROM kv WHERE k = $1"]);
    let (got, took) = loader.load(1, b"x", WAIT);
    match got {
        Outcome::Failed { code, message } => {
            assert_eq!(code, 16, "{message}");
            assert!(
                message.starts_with("origin unavailable:")
                    && message.contains("column \"nope\" does not exist"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn slow_queries_time_out_and_are_cancelled() {
    let pg = Postgres::start();
    pg.put("slow", b"v");
    let query = "SELECT v FROM kv, pg_sleep(5) WHERE k = $1";
    let mut loader = Loader::start(&pg, &["--query", query, "--query-timeout-ms", "300"]);
    let (got, took) = loader.load(1, b"slow", WAIT);
    assert_eq!(
        got,
        Outcome::Failed {
            code: 17,
            message: "origin timeout: no answer within 300 ms".into()
        }
    );
    assert!(took < Duration::from_millis(1500), "{took:?}");
    // The query was cancelled on the server, not left running.
    let running = || {
        pg.sql("SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(5)%' AND state = 'active' AND pid <> pg_backend_pid();")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while running() != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow query still runs"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
