//! The blocking client against the mock server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::mock::Mock;
use super::within;
use crate::{
    CallOptions, Client, ClientOptions, Command, Error, ErrorCode, Hello, Outcome, SetOptions,
    StatValue, Ttl,
};

fn every_method(client: &Client) {
    assert_eq!(client.get("missing").unwrap(), None);
    assert!(client.set("a", "1").unwrap());
    assert!(!client.set_with("a", "2", SetOptions::new().nx()).unwrap());
    assert!(!client.set_with("b", "2", SetOptions::new().xx()).unwrap());
    let ttl = SetOptions::new().ttl(Duration::from_millis(1500));
    assert!(client.set_with("t", "x", ttl).unwrap());
    assert_eq!(
        client.ttl("t").unwrap(),
        Ttl::Expires(Duration::from_millis(1500))
    );
    assert_eq!(client.ttl("a").unwrap(), Ttl::Persistent);
    assert_eq!(client.ttl("nope").unwrap(), Ttl::Missing);
    assert!(client.expire("a", Duration::from_secs(2)).unwrap());
    assert!(!client.expire("nope", Duration::from_secs(2)).unwrap());
    assert_eq!(client.get("a").unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(client.incr("a", 41).unwrap(), 42);
    client.mset([("m1", "x"), ("m2", "y")]).unwrap();
    let got = client.mget(["m1", "none", "m2"]).unwrap();
    assert_eq!(got, vec![Some(b"x".to_vec()), None, Some(b"y".to_vec())]);
    assert_eq!(client.exists(["m1", "m2", "none"]).unwrap(), 2);
    let page = client.scan(0, Some("m*"), 10).unwrap();
    assert_eq!(
        (page.cursor, page.keys),
        (0, vec![b"m1".to_vec(), b"m2".to_vec()])
    );
    assert_eq!(client.delete(["m1", "none"]).unwrap(), 1);
    let stats = client.stats(None).unwrap();
    assert_eq!(
        stats[1],
        ("server".to_string(), StatValue::Text("mock".into()))
    );
    assert_eq!(client.call("echo", b"ping").unwrap(), b"ping");
    let hello = Hello {
        client_name: Some("test".into()),
        features: vec!["ok".into(), "nope".into()],
        ..Hello::default()
    };
    let welcome = client.hello(&hello).unwrap();
    assert_eq!(
        (welcome.version, welcome.features),
        (1, vec!["ok".to_string()])
    );
}

#[test]
fn every_method_over_tcp_and_unix() {
    for mock in [Mock::tcp(), Mock::unix()] {
        let client = Client::connect(mock.endpoint.clone()).unwrap();
        every_method(&client);
        assert_eq!(client.in_flight(), 0);
    }
}

#[test]
fn server_errors_are_typed_and_leave_the_connection_usable() {
    let mock = Mock::tcp();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    client.set("word", "abc").unwrap();
    let err = client.incr("word", 1).unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::NotInteger), "{err}");
    let err = client.call("nonexistent", b"").unwrap_err();
    assert!(
        matches!(err, Error::Server { code: ErrorCode::Plugin, ref message } if message == "plugin failed")
    );
    assert_eq!(client.incr("n", 2).unwrap(), 2);
}

#[test]
fn replies_out_of_order_reach_their_callers() {
    let mock = Mock::unix();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    client.set("k", "v").unwrap();
    let started = Instant::now();
    let slow = client
        .send(&Command::Call {
            name: "slow",
            payload: b"1500",
            options: "",
        })
        .unwrap();
    let fast = client.send(&Command::get(b"k")).unwrap();
    assert!(fast.id() > slow.id());
    assert_eq!(
        fast.wait().unwrap().into_value().unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(
        started.elapsed() < Duration::from_millis(1000),
        "the GET waited for the CALL"
    );
    assert_eq!(slow.wait().unwrap().into_call_reply().unwrap(), b"1500");
}

#[test]
fn threads_share_one_connection() {
    let mock = Mock::tcp();
    let client = Arc::new(Client::connect(mock.endpoint.clone()).unwrap());
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let client = client.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let key = format!("t{t}:{i}");
                    client.set(&key, &key).unwrap();
                    assert_eq!(client.get(&key).unwrap(), Some(key.into_bytes()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(mock.accepted(), 1);
}

#[test]
fn streamed_calls_yield_partials_then_the_final_reply() {
    let mock = Mock::tcp();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    let mut stream = client.call_stream("stream", b"", "n=3").unwrap();
    let partials: Vec<_> = stream.by_ref().collect();
    assert_eq!(partials.len(), 3);
    assert_eq!(
        (partials[2].index, &partials[2].data[..]),
        (2, &b"{\"frame\":2}"[..])
    );
    assert_eq!(stream.finish().unwrap(), b"{\"frames\":3}");
    let mut seen = 0;
    let last = client
        .call_stream("stream", b"", "n=5")
        .unwrap()
        .for_each_partial(|_| seen += 1)
        .unwrap();
    assert_eq!((seen, &last[..]), (5, &b"{\"frames\":5}"[..]));
    // A failing stream ends early with the server's error.
    let err = client
        .call_stream("fail", b"", "")
        .unwrap()
        .finish()
        .unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Plugin));
    // A server dying mid-stream ends it with `Closed`, after the partials
    // that made it through.
    let mut stream = client.call_stream("stream", b"", "n=2 die").unwrap();
    let partials = within(Duration::from_secs(5), move || {
        let n = stream.by_ref().count();
        (n, stream.finish())
    });
    assert!(matches!(partials, (2, Err(Error::Closed))), "{partials:?}");
}

#[test]
fn large_values_round_trip() {
    let mock = Mock::unix();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    let big: Vec<u8> = (0..3 << 20).map(|i| (i % 251) as u8).collect();
    client.set("big", &big).unwrap();
    client.set("small", "s").unwrap();
    assert_eq!(client.get("big").unwrap(), Some(big.clone()));
    assert_eq!(
        client.mget(["small", "big"]).unwrap()[1].as_ref(),
        Some(&big)
    );
    assert_eq!(client.call("echo", &big).unwrap(), big);
}

#[test]
fn batches_answer_each_operation_in_order() {
    let mock = Mock::tcp();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    let out = client
        .batch(&[
            Command::set(b"w", b"text", SetOptions::new()),
            Command::get(b"w"),
            Command::incr(b"w", 1),
            Command::incr(b"n", 5),
        ])
        .unwrap();
    assert!(matches!(out[0], Ok(Outcome::Done(true))));
    assert!(matches!(&out[1], Ok(Outcome::Value(Some(v))) if v == b"text"));
    assert_eq!(
        out[2].as_ref().unwrap_err().server_code(),
        Some(ErrorCode::NotInteger)
    );
    assert!(matches!(out[3], Ok(Outcome::Int(5))));
    let call = Command::Call {
        name: "echo",
        payload: b"",
        options: "",
    };
    assert!(matches!(
        client.batch(&[call]),
        Err(Error::InvalidRequest(_))
    ));
    assert_eq!(client.in_flight(), 0);
}

#[test]
fn a_deadline_bounds_the_wait_and_the_late_reply_is_dropped() {
    let mock = Mock::tcp();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    let quick = CallOptions::new().deadline(Duration::from_millis(50));
    let started = Instant::now();
    let err = client
        .with_options(quick)
        .call("slow", b"1000")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert!(started.elapsed() < Duration::from_millis(700));
    assert_eq!(client.in_flight(), 0);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(client.call("echo", b"after").unwrap(), b"after");
}

#[test]
fn a_server_dying_mid_call_fails_the_call_without_hanging() {
    for mock in [Mock::tcp(), Mock::unix()] {
        let client = Arc::new(Client::connect(mock.endpoint.clone()).unwrap());
        let waiting = client.send(&Command::Call {
            name: "slow",
            payload: b"5000",
            options: "",
        });
        let err = within(Duration::from_secs(5), {
            let client = client.clone();
            move || client.call("die", b"").unwrap_err()
        });
        assert!(matches!(err, Error::Closed), "{err}");
        assert!(matches!(waiting.unwrap().wait(), Err(Error::Closed)));
        assert!(client.is_closed());
        assert!(matches!(client.get("k"), Err(Error::Closed)));
    }
}

#[test]
fn a_stopped_server_fails_streams_and_pending_calls() {
    let mock = Mock::tcp();
    let client = Client::connect(mock.endpoint.clone()).unwrap();
    let pending = client
        .send(&Command::Call {
            name: "slow",
            payload: b"5000",
            options: "",
        })
        .unwrap();
    mock.stop();
    let err = within(Duration::from_secs(5), move || pending.wait().unwrap_err());
    assert!(matches!(err, Error::Closed), "{err}");
}

#[test]
fn hello_on_connect_authenticates() {
    let mock = Mock::unix();
    let hello = |password: &str| {
        ClientOptions::new().hello(Hello {
            password: Some(password.into()),
            ..Hello::default()
        })
    };
    let client = Client::connect_with(mock.endpoint.clone(), hello("good")).unwrap();
    assert!(client.set("x", "y").unwrap());
    let err = Client::connect_with(mock.endpoint.clone(), hello("bad")).unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Auth));
}

#[test]
fn connecting_to_nothing_is_an_io_error() {
    let err = Client::connect("unix:/nonexistent/citadel.sock").unwrap_err();
    assert!(matches!(err, Error::Io(_)) && err.is_transport());
}
