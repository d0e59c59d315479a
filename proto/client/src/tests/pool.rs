//! The pool and the retry policy.

use std::cell::Cell;
use std::time::Duration;

use super::mock::Mock;
use super::within;
use crate::{Error, Pool};

#[test]
fn calls_go_round_robin_over_every_connection() {
    let mock = Mock::tcp();
    let pool = Pool::connect(mock.endpoint.clone(), 3).unwrap();
    assert_eq!((pool.size(), mock.accepted()), (3, 3));
    let clients: Vec<_> = (0..3).map(|_| pool.client().unwrap()).collect();
    assert!(clients[0].in_flight() == 0 && !std::ptr::eq(&*clients[0], &*clients[1]));
    assert!(std::sync::Arc::ptr_eq(&clients[0], &pool.client().unwrap()));
    for i in 0..30 {
        pool.set(format!("k{i}"), "v").unwrap();
    }
    assert_eq!(pool.exists((0..30).map(|i| format!("k{i}"))).unwrap(), 30);
    assert_eq!(pool.reconnects(), 0);
}

#[test]
fn failed_connections_are_replaced() {
    let mock = Mock::tcp();
    let addr = mock.endpoint.to_string();
    let pool = Pool::connect(mock.endpoint.clone(), 2).unwrap();
    pool.set("k", "v").unwrap();
    drop(mock);
    let restarted = Mock::tcp_on(&addr);
    // Let both connections see their end.
    std::thread::sleep(Duration::from_millis(100));
    within(Duration::from_secs(5), move || {
        for _ in 0..4 {
            assert_eq!(pool.get("k").unwrap(), None, "a new server, empty");
        }
        assert_eq!(pool.reconnects(), 2);
        // A non-idempotent call that loses its connection is not retried.
        let retries = pool.retries();
        assert!(matches!(pool.call("die", b""), Err(Error::Closed)));
        assert_eq!(pool.retries(), retries);
    });
    drop(restarted);
}

#[test]
fn only_idempotent_calls_are_retried_and_only_once() {
    let failures = Cell::new(0);
    let attempt = || {
        failures.set(failures.get() + 1);
        Err::<(), _>(Error::Closed)
    };
    let retried = Cell::new(false);
    assert!(crate::retry::once(true, attempt, || retried.set(true)).is_err());
    assert_eq!((failures.get(), retried.get()), (2, true));
    failures.set(0);
    assert!(crate::retry::once(false, attempt, || unreachable!()).is_err());
    assert_eq!(failures.get(), 1);
    let timeout = || Err::<(), _>(Error::Timeout);
    assert!(matches!(
        crate::retry::once(true, timeout, || unreachable!()),
        Err(Error::Timeout)
    ));
}
