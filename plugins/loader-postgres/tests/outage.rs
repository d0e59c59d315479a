//! PostgreSQL stopped: loads fail fast with a clear error; PostgreSQL back:
//! loads (and the LISTEN subscription) resume by themselves.

mod support;

use std::time::{Duration, Instant};

use citadel_tests::postgres::Postgres;
use support::{wait_listening, Loader, Notice, Outcome};

const WAIT: Duration = Duration::from_secs(15);

#[test]
fn fails_fast_while_postgres_is_down_and_recovers_by_itself() {
    let mut pg = Postgres::start();
    pg.put("k", b"before");
    let mut loader = Loader::start(&pg, &[]);
    wait_listening(&mut loader);
    assert_eq!(loader.load(1, b"k", WAIT).0, Outcome::found(b"before"));

    pg.stop();
    // Every load fails, each quickly, naming the cause.
    for id in 2..12 {
        let (got, took) = loader.load(id, b"k", WAIT);
        match &got {
            Outcome::Failed { code: 16, message } if message.starts_with("origin unavailable:") => {
            }
            other => panic!("request {id} while PostgreSQL is down: {other:?}"),
        }
        assert!(
            took < Duration::from_millis(500),
            "request {id} took {took:?}"
        );
    }
    // Once the reconnection attempts have run, the cause is the refusal.
    std::thread::sleep(Duration::from_millis(500));
    let (got, _) = loader.load(12, b"k", WAIT);
    assert!(
        matches!(&got, Outcome::Failed { message, .. } if message.contains("refused")),
        "{got:?}"
    );

    pg.start_again();
    pg.put("k", b"after");
    let back = Instant::now();
    let mut id = 100;
    loop {
        let (got, _) = loader.load(id, b"k", WAIT);
        if got == Outcome::found(b"after") {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "no recovery: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        id += 1;
    }
    // LISTEN is back too: resubscribed (a second resync), then notified.
    assert!(loader.pump(
        |l| l
            .notices
            .iter()
            .filter(|(_, n)| *n == Notice::Resync)
            .count()
            >= 2,
        WAIT
    ));
    pg.sql("UPDATE kv SET v = 'x' WHERE k = 'k';");
    assert!(loader.pump(
        |l| l
            .notices
            .iter()
            .any(|(_, n)| *n == Notice::Keys(vec![b"k".to_vec()])),
        WAIT
    ));
}
