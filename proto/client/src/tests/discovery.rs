//! The discovered client: local transports, fallback, switch-back, retry.

use std::path::Path;
use std::time::{Duration, Instant};

use citadel_proto::discovery::Record;

use super::mock::{Mock, TempDir};
use crate::{Discovered, DiscoveryConfig, Endpoint, Error};

fn publish(dir: &Path, pid: u32, rpc: Option<&Endpoint>, rpc_unix: Option<&Endpoint>) {
    let text = |e: Option<&Endpoint>| {
        e.map(|e| match e {
            Endpoint::Tcp(a) => a.clone(),
            Endpoint::Unix(p) | Endpoint::Shm(p) => p.display().to_string(),
        })
    };
    let record = Record {
        name: "local".into(),
        pid,
        version: "0.1.0".into(),
        tcp: "127.0.0.1:1".into(),
        unix: None,
        rpc: text(rpc),
        rpc_unix: text(rpc_unix),
        shm: None,
        started_at_ms: 1,
        cluster_id: None,
        weight: None,
    };
    record.publish(dir).unwrap();
}

fn unpublish(dir: &Path) {
    std::fs::remove_file(dir.join("local.server")).unwrap();
}

fn config(dir: &Path, fallback: &Mock) -> DiscoveryConfig {
    DiscoveryConfig::new("local")
        .dir(dir)
        .fallback(fallback.endpoint.clone())
        .recheck(Duration::from_millis(50))
}

/// Waits (up to 5 s) for `cond`.
fn eventually(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < Duration::from_secs(5), "never: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_unix_socket_of_a_live_local_server_comes_first() {
    let dir = TempDir::new("disc");
    let (unix, tcp, remote) = (Mock::unix(), Mock::tcp(), Mock::tcp());
    publish(
        &dir.0,
        std::process::id(),
        Some(&tcp.endpoint),
        Some(&unix.endpoint),
    );
    let client = Discovered::connect(config(&dir.0, &remote)).unwrap();
    let stats = client.transport_stats();
    assert_eq!(
        (stats.endpoint.as_ref(), stats.local),
        (Some(&unix.endpoint), true)
    );
    assert!(client.set("k", "v").unwrap());
    assert_eq!(
        (unix.accepted(), tcp.accepted(), remote.accepted()),
        (1, 0, 0)
    );
}

#[test]
fn falls_back_when_the_record_goes_and_switches_back_when_it_returns() {
    let dir = TempDir::new("disc");
    let (local, remote) = (Mock::unix(), Mock::tcp());
    publish(&dir.0, std::process::id(), None, Some(&local.endpoint));
    let client = Discovered::connect(config(&dir.0, &remote)).unwrap();
    client.set("where", "local").unwrap();

    unpublish(&dir.0);
    eventually("fallback", || !client.transport_stats().local);
    assert_eq!(
        client.get("where").unwrap(),
        None,
        "the remote server's store"
    );
    let stats = client.transport_stats();
    assert_eq!((stats.fallbacks, stats.switch_backs), (1, 0));
    assert_eq!(stats.endpoint, Some(remote.endpoint.clone()));

    publish(&dir.0, std::process::id(), None, Some(&local.endpoint));
    eventually("switch-back", || client.transport_stats().local);
    assert_eq!(client.get("where").unwrap().as_deref(), Some(&b"local"[..]));
    let stats = client.transport_stats();
    assert_eq!(
        (stats.fallbacks, stats.switch_backs, stats.retries),
        (1, 1, 0)
    );
}

#[test]
fn a_record_of_a_dead_process_is_ignored() {
    let dir = TempDir::new("disc");
    let (local, remote) = (Mock::unix(), Mock::tcp());
    // A pid far above pid_max: no such process.
    publish(&dir.0, u32::MAX - 1, None, Some(&local.endpoint));
    let client = Discovered::connect(config(&dir.0, &remote)).unwrap();
    let stats = client.transport_stats();
    assert_eq!((stats.local, stats.fallbacks), (false, 0));
    client.set("k", "v").unwrap();
    assert_eq!((local.accepted(), remote.accepted()), (0, 1));
}

#[test]
fn an_idempotent_call_is_retried_when_the_local_server_dies_under_it() {
    let dir = TempDir::new("disc");
    let (local, remote) = (Mock::unix(), Mock::tcp());
    publish(&dir.0, std::process::id(), None, Some(&local.endpoint));
    // A long recheck: the retry, not the watcher, must find the fallback.
    let client =
        Discovered::connect(config(&dir.0, &remote).recheck(Duration::from_secs(60))).unwrap();
    local.arm_crash();
    assert_eq!(
        client.get("!crash").unwrap(),
        None,
        "answered by the fallback"
    );
    let stats = client.transport_stats();
    assert_eq!((stats.local, stats.fallbacks, stats.retries), (false, 1, 1));
    // Not idempotent: the error comes back.
    assert!(matches!(client.call("die", b""), Err(Error::Closed)));
    assert_eq!(client.transport_stats().retries, 1);
}

#[test]
fn no_server_and_no_fallback_is_a_typed_error() {
    let dir = TempDir::new("disc");
    let err = Discovered::connect(DiscoveryConfig::new("local").dir(&dir.0)).unwrap_err();
    assert!(matches!(err, Error::NoServer(_)), "{err}");
}
