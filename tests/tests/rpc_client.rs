//! The Rust RPC client (`citadel-client`) against the real server: every
//! method over TCP and the Unix socket, plugin calls and a streamed
//! pipeline, out-of-order replies on one connection, a pool, and a
//! discovered client that falls back to a remote server when the local one
//! dies and switches back when it returns.

use std::time::{Duration, Instant};

use citadel_client::{
    AsyncClient, CallOptions, Client, ClientOptions, Command, Discovered, DiscoveryConfig,
    Endpoint, Error, ErrorCode, Hello, Pool,
};
use citadel_tests::rpc_client::{every_method, plugins_config};
use citadel_tests::Server;

fn tcp(server: &Server) -> Endpoint {
    Endpoint::tcp(format!("127.0.0.1:{}", server.rpc_port))
}

#[test]
fn every_method_over_tcp_and_the_unix_socket() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpc.sock");
    let over_tcp = Server::start(&[]);
    every_method(&Client::connect(tcp(&over_tcp)).unwrap());
    let _over_unix = Server::start(&["--rpc-unixsocket", sock.to_str().unwrap()]);
    every_method(&Client::connect(Endpoint::unix(&sock)).unwrap());
}

fn with_plugins() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = plugins_config(dir.path());
    (Server::start(&["--config", config.to_str().unwrap()]), dir)
}

#[test]
fn plugin_calls_streams_and_out_of_order_replies() {
    let (server, _dir) = with_plugins();
    let client = Client::connect(tcp(&server)).unwrap();
    assert_eq!(client.call("echo", "hello").unwrap(), b"HELLO");
    let err = client.call("no-such-plugin", "x").unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Plugin), "{err}");
    // A slow call does not hold back the GET sent after it.
    client.set("k", "v").unwrap();
    let started = Instant::now();
    let slow = client.send(&Command::Call {
        name: "echo",
        payload: b"SLEEP 1500",
        options: "",
    });
    let fast = client.send(&Command::get(b"k")).unwrap();
    assert_eq!(
        fast.wait().unwrap().into_value().unwrap().as_deref(),
        Some(&b"v"[..])
    );
    assert!(started.elapsed() < Duration::from_millis(1000));
    slow.unwrap().wait().unwrap();
    // A pipeline: each frame's result as it is ready, then the whole
    // result; a second, cached, call answers at once with the whole result.
    let mut stream = client.call_stream("text", "alpha\nbeta\n", "").unwrap();
    let partials: Vec<(u32, String)> = stream
        .by_ref()
        .map(|p| (p.index, String::from_utf8_lossy(&p.data).into_owned()))
        .collect();
    assert_eq!(partials.len(), 2, "{partials:?}");
    assert_eq!((partials[0].0, partials[1].0), (0, 1), "{partials:?}");
    assert!(partials[1].1.contains("BETA"), "{partials:?}");
    let last = String::from_utf8(stream.finish().unwrap()).unwrap();
    assert!(
        last.contains("\"frames\":2") && last.contains("BETA"),
        "{last}"
    );
    let mut cached = client.call_stream("text", "alpha\nbeta\n", "").unwrap();
    assert_eq!(
        cached.by_ref().count(),
        0,
        "a cached result is answered whole"
    );
    assert_eq!(cached.finish().unwrap(), last.as_bytes());
}

#[test]
fn a_pool_spreads_calls_over_its_connections() {
    let server = Server::start(&[]);
    let pool = Pool::connect(tcp(&server), 4).unwrap();
    for i in 0..100 {
        pool.set(format!("k{i}"), format!("{i}")).unwrap();
    }
    assert_eq!(pool.exists((0..100).map(|i| format!("k{i}"))).unwrap(), 100);
}

#[test]
fn discovery_falls_back_to_the_remote_server_and_switches_back() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rpc.sock");
    let local_args = ["--rpc-unixsocket", sock.to_str().unwrap()];
    let mut local = Server::start(&local_args);
    let remote = Server::start(&[]);
    local.wait_for_record();
    let config = DiscoveryConfig::new(format!("citadel-{}", local.port))
        .dir(local.discovery_dir())
        .fallback(tcp(&remote))
        .recheck(Duration::from_millis(50));
    let client = Discovered::connect(config).unwrap();
    let stats = client.transport_stats();
    assert_eq!(
        (stats.endpoint, stats.local),
        (Some(Endpoint::unix(&sock)), true)
    );
    client.set("where", "local").unwrap();
    local.kill9();
    // The next call goes to the fallback (retried there if it was already
    // on its way to the dead server), not failed.
    assert_eq!(client.get("where").unwrap(), None);
    let stats = client.transport_stats();
    assert_eq!((stats.local, stats.fallbacks), (false, 1));
    // The same server again (same name, same socket): back to it.
    local.restart(false);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !client.transport_stats().local {
        assert!(Instant::now() < deadline, "never switched back");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(client.transport_stats().switch_backs, 1);
    assert!(client.set("where", "local again").unwrap());
}

#[test]
fn a_password_is_sent_on_every_new_connection() {
    let server = Server::start(&["--requirepass", "s3cret"]);
    let err = Client::connect(tcp(&server)).unwrap().get("k").unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Auth), "{err}");
    let auth = |password: &str| {
        ClientOptions::new().hello(Hello {
            password: Some(password.into()),
            ..Hello::default()
        })
    };
    let err = Client::connect_with(tcp(&server), auth("wrong")).unwrap_err();
    assert_eq!(err.server_code(), Some(ErrorCode::Auth), "{err}");
    let pool = Pool::connect_with(tcp(&server), 2, auth("s3cret")).unwrap();
    assert!(pool.set("k", "v").unwrap());
}

#[test]
fn deadlines_and_the_async_client() {
    let (server, _dir) = with_plugins();
    let client = Client::connect(tcp(&server)).unwrap();
    let quick = CallOptions::new().deadline(Duration::from_millis(100));
    let err = client
        .with_options(quick)
        .call("echo", "SLEEP 1000")
        .unwrap_err();
    assert!(matches!(err, Error::Timeout), "{err}");
    assert_eq!(client.get("k").unwrap(), None, "the connection goes on");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = AsyncClient::connect(tcp(&server)).await.unwrap();
        client.set("k", "v").await.unwrap();
        let started = Instant::now();
        let slow = client.call("echo", "SLEEP 1500");
        let fast = async {
            let v = client.get("k").await;
            (v, started.elapsed())
        };
        let (slow, (fast, took)) = tokio::join!(slow, fast);
        assert_eq!(slow.unwrap(), b"SLEPT 1500");
        assert_eq!(fast.unwrap().as_deref(), Some(&b"v"[..]));
        assert!(took < Duration::from_millis(1000), "{took:?}");
        assert_eq!(client.incr("n", 2).await.unwrap(), 2);
    });
}
