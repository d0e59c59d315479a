//! The async client against the mock server.

use std::time::{Duration, Instant};

use super::mock::Mock;
use crate::{AsyncClient, CallOptions, Command, Error, ErrorCode, Outcome, SetOptions};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_method_over_tcp_and_unix() {
    runtime().block_on(async {
        for mock in [Mock::tcp(), Mock::unix()] {
            let client = AsyncClient::connect(mock.endpoint.clone()).await.unwrap();
            assert!(client.set("a", "1").await.unwrap());
            assert!(!client
                .set_with("a", "2", SetOptions::new().nx())
                .await
                .unwrap());
            assert_eq!(client.incr("a", 1).await.unwrap(), 2);
            client.mset([("x", "1"), ("y", "2")]).await.unwrap();
            let got = client.mget(["x", "z"]).await.unwrap();
            assert_eq!(got, vec![Some(b"1".to_vec()), None]);
            assert_eq!(client.delete(["x", "y"]).await.unwrap(), 2);
            let err = client.call("fail", b"").await.unwrap_err();
            assert_eq!(err.server_code(), Some(ErrorCode::Plugin));
            let out = client
                .batch(&[Command::get(b"a"), Command::incr(b"a", 1)])
                .await
                .unwrap();
            assert!(matches!(&out[0], Ok(Outcome::Value(Some(v))) if v == b"2"));
            let mut stream = client.call_stream("stream", b"", "n=2").await.unwrap();
            assert_eq!(stream.next().await.unwrap().index, 0);
            assert_eq!(stream.finish().await.unwrap(), b"{\"frames\":2}");
            assert_eq!(client.in_flight(), 0);
        }
    });
}

#[test]
fn spawned_tasks_share_one_connection() {
    runtime().block_on(async {
        let mock = Mock::tcp();
        let client =
            std::sync::Arc::new(AsyncClient::connect(mock.endpoint.clone()).await.unwrap());
        let tasks: Vec<_> = (0..8)
            .map(|t| {
                let client = client.clone();
                // `spawn` needs the methods' futures to be `Send`.
                tokio::spawn(async move {
                    for i in 0..100 {
                        let key = format!("t{t}:{i}");
                        client.set(&key, &key).await.unwrap();
                        assert_eq!(client.get(&key).await.unwrap(), Some(key.into_bytes()));
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let big = vec![7u8; 2 << 20];
        assert_eq!(client.call("echo", &big).await.unwrap(), big);
        assert_eq!(mock.accepted(), 1);
    });
}

#[test]
fn concurrent_calls_are_answered_out_of_order() {
    runtime().block_on(async {
        let mock = Mock::unix();
        let client = AsyncClient::connect(mock.endpoint.clone()).await.unwrap();
        let started = Instant::now();
        let slow = client.call("slow", b"1500");
        let fast = async {
            let v = client.call("echo", b"fast").await;
            (v, started.elapsed())
        };
        let (slow, (fast, fast_took)) = tokio::join!(slow, fast);
        assert_eq!(slow.unwrap(), b"1500");
        assert_eq!(fast.unwrap(), b"fast");
        assert!(fast_took < Duration::from_millis(1000), "{fast_took:?}");
    });
}

#[test]
fn deadlines_and_a_dying_server_give_typed_errors() {
    runtime().block_on(async {
        let mock = Mock::tcp();
        let client = AsyncClient::connect(mock.endpoint.clone()).await.unwrap();
        let quick = CallOptions::new().deadline(Duration::from_millis(50));
        let err = client
            .with_options(quick)
            .call("slow", b"1000")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Timeout), "{err}");
        assert_eq!(client.in_flight(), 0);
        let waiting = client.call("slow", b"5000");
        let dying = client.call("die", b"");
        let limit = Duration::from_secs(5);
        let (waiting, dying) = tokio::time::timeout(limit, async { tokio::join!(waiting, dying) })
            .await
            .expect("hung");
        assert!(matches!(waiting, Err(Error::Closed)) && matches!(dying, Err(Error::Closed)));
        assert!(client.is_closed());
        assert!(matches!(client.get("k").await, Err(Error::Closed)));
    });
}
