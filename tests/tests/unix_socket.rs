//! RESP over a Unix domain socket (`--unixsocket`, `--unixsocketperm`), as
//! Redis serves it: redis-cli `-s`, a raw client, the same data as TCP,
//! the socket's mode, a stale socket file replaced, a live one refused,
//! the file removed at a clean exit.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Command;
use std::time::Duration;

use citadel_tests::redis::Commands;
use citadel_tests::{run_to_exit, Server};

fn cli(path: &str, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .arg("-s")
        .arg(path)
        .args(args)
        .output()
        .expect("redis-cli");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn resp_over_a_unix_socket_shares_the_data_with_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("citadel.sock");
    // A stale socket file (its server is gone) is replaced.
    drop(UnixListener::bind(&sock).unwrap());
    let path = sock.to_str().unwrap();
    let mut server = Server::start(&["--unixsocket", path, "--unixsocketperm", "700"]);
    let meta = std::fs::metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);

    assert_eq!(cli(path, &["ping"]), "PONG");
    assert_eq!(cli(path, &["set", "via", "unix"]), "OK");
    let mut tcp = server.client();
    let got: String = tcp.get("via").unwrap();
    assert_eq!(got, "unix");
    let _: () = tcp.set("back", "tcp").unwrap();
    assert_eq!(cli(path, &["get", "back"]), "tcp");
    // Many clients on the socket, spread over both server threads.
    let clients: Vec<_> = (0..16)
        .map(|i| {
            let path = path.to_string();
            std::thread::spawn(move || {
                let mut s = UnixStream::connect(&path).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let cmd = format!("*3\r\n$3\r\nSET\r\n$2\r\nk{}\r\n$1\r\nv\r\n", i % 10);
                s.write_all(cmd.repeat(100).as_bytes()).unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                while got.len() < 500 {
                    let n = s.read(&mut buf).unwrap();
                    assert!(n > 0, "closed early");
                    got.extend_from_slice(&buf[..n]);
                }
                assert_eq!(got, b"+OK\r\n".repeat(100));
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    // CLIENT LIST names the socket as Redis does (path:0).
    let list = cli(path, &["client", "list"]);
    assert!(list.contains(&format!("laddr={path}:0")), "{list}");
    // A second server cannot take a live socket.
    let port = citadel_tests::free_port().to_string();
    let cache = dir.path().join("second.cache");
    let cache = cache.to_str().unwrap();
    let args = ["--port", &port, "--cache-file", cache, "--unixsocket", path];
    let (status, out) = run_to_exit(&args);
    assert!(!status.success());
    assert!(
        out.contains("Unix socket") && out.contains("another server"),
        "{out}"
    );
    // A clean exit removes the socket file.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    assert!(!sock.exists(), "the socket file is removed at exit");
}

#[test]
fn the_server_publishes_a_discovery_record_and_removes_it_at_exit() {
    use citadel_proto::discovery;
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let path = sock.to_str().unwrap();
    let mut server = Server::start(&["--unixsocket", path, "--server-name", "cache-a"]);
    let records = wait_for_records(&server.discovery_dir());
    assert_eq!(records.len(), 1, "{records:?}");
    let (r, alive) = &records[0];
    assert!(alive);
    assert_eq!(r.name, "cache-a");
    assert_eq!(r.pid, server.pid());
    assert_eq!(r.tcp, format!("127.0.0.1:{}", server.port));
    assert_eq!(r.unix.as_deref(), Some(path));
    // A clean exit removes it.
    server.signal("TERM");
    assert!(server.wait_exit(Duration::from_secs(10)).success());
    assert!(discovery::list(&server.discovery_dir()).is_empty());
    // A crash leaves it, and it reads as dead.
    server.restart(false);
    wait_for_records(&server.discovery_dir());
    server.kill9();
    let records = discovery::list(&server.discovery_dir());
    assert_eq!(records.len(), 1);
    assert!(!records[0].1, "the record of a killed server is dead");
}

/// The record is written by the ready hook, which may run a moment after the
/// first PING is answered (the listening socket is bound before the loops
/// start): poll for it.
fn wait_for_records(dir: &std::path::Path) -> Vec<(citadel_proto::discovery::Record, bool)> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let records = citadel_proto::discovery::list(dir);
        if !records.is_empty() || std::time::Instant::now() > deadline {
            return records;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
