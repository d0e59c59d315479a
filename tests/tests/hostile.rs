//! Malformed and hostile input over raw sockets; the server must answer
//! with protocol errors (or drop the client) and keep serving everyone else.

use std::io::{Read, Write};
use std::time::Duration;

use citadel_tests::redis::Commands;
use citadel_tests::{read_line, read_n, Server};

fn assert_still_serving(server: &Server) {
    let mut c = server.client();
    let _: () = c.set("alive", "yes").unwrap();
    assert_eq!(c.get::<_, String>("alive").unwrap(), "yes");
}

#[test]
fn protocol_errors_then_still_serving() {
    let server = Server::start(&[]);

    let mut s = server.raw();
    s.write_all(b"*1\r\n$99999999999\r\n").unwrap();
    let line = read_line(&mut s);
    assert!(
        line.starts_with("-ERR Protocol error"),
        "huge bulk: {line:?}"
    );

    let mut s = server.raw();
    s.write_all(b"*abc\r\n").unwrap();
    let line = read_line(&mut s);
    assert!(
        line.starts_with("-ERR Protocol error"),
        "bad count: {line:?}"
    );

    let mut s = server.raw();
    s.write_all(b"SET \"unbalanced value\r\n").unwrap();
    let line = read_line(&mut s);
    assert!(line.contains("unbalanced quotes"), "quotes: {line:?}");

    assert_still_serving(&server);
}

#[test]
fn garbage_and_binary_noise() {
    let server = Server::start(&[]);
    // A NUL byte in an inline command (Redis ends the line there). Sent on
    // several connections so that every server thread sees one.
    for _ in 0..8 {
        let mut s = server.raw();
        s.write_all(b"ECHO a\0b\r\nPING\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let line = read_line(&mut s);
        assert!(
            line.starts_with('$') || line.starts_with('-'),
            "NUL in inline command: {line:?}"
        );
    }
    let noise: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for chunk in noise.chunks(50_000) {
        let mut s = server.raw();
        let _ = s.write_all(chunk);
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let _ = read_n(&mut s, usize::MAX);
    }
    // A line that never ends grows past the inline limit and is refused.
    let mut s = server.raw();
    let _ = s.write_all(&vec![b'a'; 100_000]);
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let reply = read_n(&mut s, usize::MAX);
    assert!(
        reply.starts_with(b"-ERR Protocol error"),
        "{:?}",
        String::from_utf8_lossy(&reply[..reply.len().min(80)])
    );
    assert_still_serving(&server);
}

#[test]
fn half_a_command_then_disconnect() {
    let server = Server::start(&[]);
    for partial in [
        &b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10\r\nabc"[..],
        b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$52428800\r\nabc",
        b"*2\r\n$3\r\nGE",
        b"PIN",
    ] {
        let mut s = server.raw();
        s.write_all(partial).unwrap();
        drop(s);
    }
    // A client that sends half a command and then waits is not disturbed either.
    let mut waiting = server.raw();
    waiting.write_all(b"*2\r\n$4\r\nECHO\r\n$5\r\nhel").unwrap();
    assert_still_serving(&server);
    waiting.write_all(b"lo\r\n").unwrap();
    assert_eq!(read_line(&mut waiting), "$5\r\n");
    assert_eq!(read_line(&mut waiting), "hello\r\n");
    let mut c = server.client();
    assert_eq!(c.get::<_, Option<String>>("k").unwrap(), None);
}

#[test]
fn slow_reader_is_dropped_at_client_output_limit() {
    let server = Server::start(&["--client-output-limit", "1mb"]);
    let mut c = server.client();
    let _: () = c.set("v", vec![b'x'; 256 << 10]).unwrap();
    // 64 GETs of 256 KiB, never read: 16 MiB of replies against a 1 MiB limit.
    let mut s = server.raw();
    s.write_all(&b"*2\r\n$3\r\nGET\r\n$1\r\nv\r\n".repeat(64))
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let got = read_n(&mut s, usize::MAX);
    assert!(
        got.len() < 16 << 20,
        "slow reader was not dropped ({} bytes)",
        got.len()
    );
    assert_still_serving(&server);
}

#[test]
fn client_kill_closes_the_connection() {
    let server = Server::start(&[]);
    let mut victim = server.raw();
    victim.write_all(b"CLIENT ID\r\n").unwrap();
    let id = read_line(&mut victim);
    let id = id.trim().trim_start_matches(':');
    let mut c = server.client();
    let killed: i64 = citadel_tests::redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .query(&mut c)
        .unwrap();
    assert_eq!(killed, 1);
    // Closed within a maintenance tick, without the victim sending anything.
    victim
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    match victim.read(&mut [0u8; 64]) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("killed client still connected: {other:?}"),
    }
}
