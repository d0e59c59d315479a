//! A bug while serving one connection must cost that connection only:
//! the request that once panicked a server thread, and a deliberate panic
//! (DEBUG PANIC), with bystanders on every thread still served.

use citadel_tests::redis::{self, Commands};
use citadel_tests::{Frame, RespReader, Server};

/// An empty line where a bulk header belongs (13 bytes, before any AUTH)
/// once stopped a server thread, and two stopped the server.
#[test]
fn empty_bulk_header_is_a_protocol_error() {
    let server = Server::start(&[]);
    for _ in 0..4 {
        let mut r = RespReader::new(server.raw());
        r.send(b"*2\r\n$3\r\nGET\r\n\r\nxx\r\n");
        assert_eq!(
            r.reply(),
            Some(Frame::Error(
                "ERR Protocol error: expected '$', got ' '".into()
            ))
        );
        assert_eq!(r.reply(), None, "closed after a protocol error");
    }
    let mut c = server.client();
    let _: () = c.set("alive", "yes").unwrap();
    assert_eq!(c.get::<_, String>("alive").unwrap(), "yes");
}

fn info_field(c: &mut redis::Connection, field: &str) -> String {
    let info: String = redis::cmd("INFO").arg("stats").query(c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("{field} missing in INFO: {info}"))
        .to_string()
}

#[test]
fn a_panic_closes_only_its_connection() {
    let server = Server::start(&["--enable-debug-command", "local"]);
    // Connections spread over both threads (SO_REUSEPORT).
    let mut bystanders: Vec<_> = (0..8).map(|_| server.client()).collect();
    for (i, c) in bystanders.iter_mut().enumerate() {
        let _: () = c.set(format!("k{i}"), i).unwrap();
    }
    for _ in 0..3 {
        let mut r = RespReader::new(server.raw());
        r.send(b"*1\r\n$4\r\nPING\r\n*2\r\n$5\r\nDEBUG\r\n$5\r\nPANIC\r\n*1\r\n$4\r\nPING\r\n");
        assert_eq!(r.reply(), None, "the panicking connection is closed");
    }
    for (i, c) in bystanders.iter_mut().enumerate() {
        assert_eq!(c.get::<_, usize>(format!("k{i}")).unwrap(), i);
    }
    assert_eq!(info_field(&mut bystanders[0], "connection_panics"), "3");
    assert!(
        server.log().contains("panicked the server"),
        "{}",
        server.log()
    );
}

#[test]
fn debug_is_refused_unless_enabled() {
    let server = Server::start(&[]);
    let mut c = server.client();
    let err = redis::cmd("DEBUG")
        .arg("PANIC")
        .query::<()>(&mut c)
        .unwrap_err();
    assert!(
        err.to_string().contains("DEBUG command not allowed"),
        "{err}"
    );
    assert_eq!(info_field(&mut c, "connection_panics"), "0");
}
