//! Process lifecycle: warm restarts, graceful shutdown, --fresh, refusing
//! unsafe or invalid configurations, maxclients.

use std::io::Write;
use std::time::Duration;

use citadel_tests::redis::{self, Commands};
use citadel_tests::{free_port, read_line, run_to_exit, Server};

fn fill(server: &Server, n: usize) {
    let mut c = server.client();
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.set(format!("k{i}"), format!("v{i}")).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
}

fn assert_keys(server: &Server, n: usize) {
    let mut c = server.client();
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap(), n);
    for i in (0..n).step_by(97) {
        assert_eq!(
            c.get::<_, String>(format!("k{i}")).unwrap(),
            format!("v{i}")
        );
    }
}

#[test]
fn kill9_then_restart_keeps_keys() {
    let mut server = Server::start(&[]);
    fill(&server, 1000);
    server.kill9();
    server.restart(false);
    assert!(
        server.log().contains("attached warm cache"),
        "{}",
        server.log()
    );
    assert_keys(&server, 1000);
}

#[test]
fn sigterm_is_graceful_and_next_start_is_warm_and_clean() {
    let mut server = Server::start(&[]);
    fill(&server, 500);
    let mut idle = server.client();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}\n{}", server.log());
    assert!(
        idle.get::<_, Option<String>>("k1").is_err(),
        "connection closed at shutdown"
    );
    server.restart(false);
    let log = server.log();
    assert!(
        log.contains("attached warm cache") && log.contains("clean=true"),
        "{log}"
    );
    assert_keys(&server, 500);
}

#[test]
fn sigint_is_graceful() {
    let mut server = Server::start(&[]);
    fill(&server, 10);
    server.signal("INT");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn shutdown_command_exits_zero() {
    let mut server = Server::start(&[]);
    fill(&server, 200);
    let mut s = server.raw();
    s.write_all(b"SHUTDOWN\r\n").unwrap();
    let _ = read_line(&mut s);
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "exit status {status}\n{}", server.log());
    server.restart(false);
    assert!(server.log().contains("clean=true"), "{}", server.log());
    assert_keys(&server, 200);
}

#[test]
fn fresh_discards_keys() {
    let mut server = Server::start(&[]);
    fill(&server, 100);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    server.restart(true);
    assert!(
        server.log().contains("created new cache file"),
        "{}",
        server.log()
    );
    assert_keys(&server, 0);
}

#[test]
fn non_loopback_bind_without_password_is_refused() {
    let port = free_port().to_string();
    let (status, out) = run_to_exit(&["--bind", "0.0.0.0", "--port", &port]);
    assert!(!status.success());
    assert!(out.contains("requirepass"), "{out}");
}

#[test]
fn invalid_flags_and_values_exit_nonzero() {
    for args in [
        &["--maxmemory", "lots"][..],
        &["--threads", "0"],
        &["--no-such-flag"],
        &["--config", "/nonexistent/citadel.toml"],
    ] {
        let (status, out) = run_to_exit(args);
        assert!(!status.success(), "{args:?} succeeded");
        assert!(!out.trim().is_empty(), "{args:?} printed no reason");
    }
    let (status, out) = run_to_exit(&["--help"]);
    assert!(status.success());
    for flag in [
        "--port",
        "--maxmemory",
        "--cache-file",
        "--fresh",
        "--requirepass",
        "--maxclients",
    ] {
        assert!(out.contains(flag), "--help lacks {flag}");
    }
}

#[test]
fn config_file_is_read_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("citadel.toml");
    std::fs::write(&path, "maxclients = 3\nthreads = 1\nport = 1\n").unwrap();
    let server = Server::start(&["--config", path.to_str().unwrap()]);
    let mut c = server.client();
    let got: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxclients")
        .query(&mut c)
        .unwrap();
    assert_eq!(got, vec!["maxclients", "3"]);
}

#[test]
fn maxclients_is_enforced() {
    let server = Server::start(&["--maxclients", "5"]);
    let held: Vec<_> = (0..5).map(|_| server.client()).collect();
    let mut extra = server.raw();
    assert_eq!(
        read_line(&mut extra),
        "-ERR max number of clients reached\r\n"
    );
    drop(held);
    // The server frees the slots when it sees the closes, which on a loaded
    // machine can take a while: poll until a new client is served.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let pong = loop {
        // (The client's connect handshake itself may meet the refusal.)
        let client = redis::Client::open(server.url()).unwrap();
        let attempt = client
            .get_connection_with_timeout(Duration::from_secs(10))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
        match attempt {
            Ok(pong) => break pong,
            // Refused (the max-clients error, or the close right after it).
            Err(_) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("slots never freed after the clients closed: {e}"),
        }
    };
    assert_eq!(pong, "PONG");
}

#[test]
fn damaged_or_resized_cache_file_needs_fresh() {
    let mut server = Server::start(&[]);
    fill(&server, 10);
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());

    // A larger maxmemory does not silently reuse (or wipe) the file (a
    // smaller one keeps it under a cap: tests/maxmemory_cap.rs).
    let mut resized: Vec<&str> = server.args.iter().map(String::as_str).collect();
    let at = resized.iter().position(|a| *a == "--maxmemory").unwrap();
    resized[at + 1] = "128mb";
    let (status, out) = run_to_exit(&resized);
    assert!(!status.success(), "{out}");
    assert!(out.contains("--fresh"), "{out}");

    // A damaged header is reported, and the file is left alone.
    let mut bytes = std::fs::read(server.cache_file()).unwrap();
    bytes[..4096].fill(0xA5);
    std::fs::write(server.cache_file(), &bytes).unwrap();
    let args: Vec<&str> = server.args.iter().map(String::as_str).collect();
    let (status, out) = run_to_exit(&args);
    assert!(!status.success(), "{out}");
    assert!(out.contains("--fresh"), "{out}");
    assert_eq!(
        std::fs::read(server.cache_file()).unwrap()[..4096],
        bytes[..4096]
    );

    server.restart(true);
    assert_keys(&server, 0);
}

#[test]
fn shutdown_waits_for_a_stalled_reader_only_briefly() {
    let mut server = Server::start(&[]);
    let mut c = server.client();
    let _: () = c.set("v", vec![b'x'; 4 << 20]).unwrap();
    // 32 MiB of replies the client never reads.
    let mut stalled = server.raw();
    stalled
        .write_all(&b"*2\r\n$3\r\nGET\r\n$1\r\nv\r\n".repeat(8))
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let asked = std::time::Instant::now();
    server.signal("TERM");
    let status = server.wait_exit(Duration::from_secs(10));
    assert!(status.success(), "{status}\n{}", server.log());
    assert!(
        asked.elapsed() < Duration::from_secs(6),
        "{:?}",
        asked.elapsed()
    );
    drop(stalled);
    server.restart(false);
    assert!(server.log().contains("clean=true"), "{}", server.log());
}

#[test]
fn a_port_another_server_answers_on_fails_the_start_loudly() {
    // Another process's server on the port (here our first one; in a run,
    // another test binary's, which took the port between `free_port`'s
    // probe and our bind): our child retries the busy port, then exits.
    // The harness must say so, not take the stranger answering PING for
    // its own server.
    let first = Server::start(&[]);
    let port = first.port;
    let second = std::panic::catch_unwind(|| Server::start_on(port, &[]));
    let message = match second {
        Ok(_) => String::from("started: another server was taken for ours"),
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("exited during startup"), "{message}");
    let pong: String = redis::cmd("PING").query(&mut first.client()).unwrap();
    assert_eq!(pong, "PONG");
}
