//! The Rust RPC client over the shared-memory transport against the real
//! server: every method, many requests in flight from several threads,
//! out-of-order replies, frames too large for the ring, a discovered
//! client that prefers `shm=`, falls back when the server dies and comes
//! back when it returns, and a `kill -9` that fails the calls in flight
//! with a typed error instead of hanging them.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_client::{Client, Command, Discovered, DiscoveryConfig, Endpoint, Error};
use citadel_tests::clients::wait_until;
use citadel_tests::rpc_client::{every_method, plugins_config};
use citadel_tests::{redis, Server};

/// A server with the shm handshake socket (and the plugins of
/// `plugins_config` when `plugins`), and that socket's endpoint.
fn start(plugins: bool) -> (Server, Endpoint, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("shm.sock").display().to_string();
    let config = plugins_config(dir.path()).display().to_string();
    let mut args = vec!["--shm-socket", sock.as_str()];
    if plugins {
        args.extend(["--config", config.as_str()]);
    }
    let server = Server::start(&args);
    (server, Endpoint::shm(&sock), dir)
}

fn shm_clients(server: &Server) -> usize {
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query(&mut server.client())
        .unwrap();
    list.lines().filter(|l| l.contains("addr=shm")).count()
}

#[test]
fn every_method_over_shared_memory() {
    let (server, shm, _dir) = start(false);
    let client = Client::connect(shm.clone()).unwrap();
    every_method(&client);
    // Values near the default ring's record limit travel both ways.
    let big = vec![7u8; 400 << 10];
    client.set("big", &big).unwrap();
    assert_eq!(client.get("big").unwrap().map(|v| v.len()), Some(big.len()));
    // A request larger than a record is refused before it is sent; the
    // connection goes on.
    let huge = vec![1u8; 1 << 20];
    let err = client.set("huge", &huge).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    assert!(!client.is_closed());
    // A bigger ring carries it.
    let wide = citadel_client::ClientOptions::new().shm_ring(4 << 20);
    let roomy = Client::connect_with(shm, wide).unwrap();
    assert!(roomy.set("huge", &huge).unwrap());
    assert_eq!(client.exists(["huge"]).unwrap(), 1);
    // Dropping a client hands its rings back to the server.
    assert_eq!(shm_clients(&server), 2);
    drop((client, roomy));
    wait_until("rings reclaimed", Duration::from_secs(10), || {
        shm_clients(&server) == 0
    });
}

#[test]
fn many_requests_in_flight_from_several_threads() {
    let (_server, shm, _dir) = start(false);
    let client = Arc::new(Client::connect(shm).unwrap());
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || {
                for round in 0..20 {
                    let keys: Vec<String> = (0..50).map(|i| format!("t{t}:r{round}:{i}")).collect();
                    let sets = keys
                        .iter()
                        .map(|k| {
                            client.send(&Command::set(
                                k.as_bytes(),
                                k.as_bytes(),
                                Default::default(),
                            ))
                        })
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap();
                    for s in sets {
                        s.wait().unwrap();
                    }
                    let gets = keys
                        .iter()
                        .map(|k| client.send(&Command::get(k.as_bytes())))
                        .collect::<Result<Vec<_>, _>>()
                        .unwrap();
                    for (k, g) in keys.iter().zip(gets) {
                        let v = g.wait().unwrap().into_value().unwrap();
                        assert_eq!(v.as_deref(), Some(k.as_bytes()));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.in_flight(), 0);
    assert_eq!(client.exists(["t5:r19:49", "t0:r0:0"]).unwrap(), 2);
}

#[test]
fn a_slow_call_does_not_hold_back_a_get() {
    let (_server, shm, _dir) = start(true);
    let client = Client::connect(shm).unwrap();
    assert_eq!(client.call("echo", "hello").unwrap(), b"HELLO");
    client.set("k", "v").unwrap();
    let started = Instant::now();
    let slow = client
        .send(&Command::Call {
            name: "echo",
            payload: b"SLEEP 1500",
            options: "",
        })
        .unwrap();
    let fast = client.send(&Command::get(b"k")).unwrap();
    let value = fast.wait().unwrap().into_value().unwrap();
    assert_eq!(value.as_deref(), Some(&b"v"[..]));
    assert!(started.elapsed() < Duration::from_millis(1000));
    let reply = slow.wait().unwrap().into_call_reply().unwrap();
    assert_eq!(reply, b"SLEPT 1500");
}

#[test]
fn discovery_prefers_shm_falls_back_and_returns() {
    let (mut local, shm, _dir) = start(false);
    let remote = Server::start(&[]);
    let fallback = Endpoint::tcp(format!("127.0.0.1:{}", remote.rpc_port));
    let name = format!("citadel-{}", local.port);
    // The record is written just after the server starts answering.
    let record = local.discovery_dir().join(format!("{name}.server"));
    wait_until("discovery record", Duration::from_secs(10), || {
        record.exists()
    });
    let config = DiscoveryConfig::new(name)
        .dir(local.discovery_dir())
        .fallback(fallback.clone())
        .recheck(Duration::from_millis(50));
    let client = Discovered::connect(config).unwrap();
    let stats = client.transport_stats();
    assert_eq!((stats.endpoint, stats.local), (Some(shm.clone()), true));
    client.set("where", "local").unwrap();
    local.kill9();
    // Retried on the fallback if it was already on its way to the dead server.
    assert_eq!(client.get("where").unwrap(), None);
    let stats = client.transport_stats();
    assert_eq!((stats.endpoint, stats.fallbacks), (Some(fallback), 1));
    local.restart(false);
    wait_until("switched back", Duration::from_secs(10), || {
        client.transport_stats().local
    });
    let stats = client.transport_stats();
    assert_eq!((stats.endpoint, stats.switch_backs), (Some(shm), 1));
    assert!(client.set("where", "local again").unwrap());
}

#[test]
fn kill_9_fails_the_calls_in_flight_with_closed() {
    let (mut server, shm, _dir) = start(true);
    let client = Arc::new(Client::connect(shm).unwrap());
    client.set("k", "v").unwrap();
    let (tx, rx) = mpsc::channel();
    for _ in 0..4 {
        let (client, tx) = (Arc::clone(&client), tx.clone());
        std::thread::spawn(move || {
            let _ = tx.send(client.call("echo", "SLEEP 20000"));
        });
    }
    wait_until("calls in flight", Duration::from_secs(10), || {
        client.in_flight() == 4
    });
    let killed = Instant::now();
    server.kill9();
    for _ in 0..4 {
        let result = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a call hung");
        assert!(matches!(result, Err(Error::Closed)), "{result:?}");
    }
    assert!(killed.elapsed() < Duration::from_secs(5));
    assert!(client.is_closed());
    assert!(matches!(client.get("k"), Err(Error::Closed)));
}
