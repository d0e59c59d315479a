//! A client is never refused for the time its own earlier commands of the
//! same read took: on a core with nothing else to do, a slow command (DEBUG
//! SLEEP, a long script, FLUSHALL) followed by more commands in the same
//! write runs them all, as Redis does (ARCHITECTURE.md, "Overload
//! protection", a read's own work). Real overload is in `overload.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use citadel_tests::redis;
use citadel_tests::Server;

/// RESP for one command.
fn command(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n{arg}\r\n", arg.len()).as_bytes());
    }
    out
}

/// Sends `first`, then `sets` SETs and an ECHO that marks the end, in one
/// write; returns every reply byte up to the mark.
fn slow_then_sets(port: u16, first: &[&str], sets: usize) -> Vec<u8> {
    let mut input = command(first);
    for i in 0..sets {
        input.extend_from_slice(&command(&["SET", &format!("k{i}"), "1"]));
    }
    input.extend_from_slice(&command(&["ECHO", "end-of-input"]));
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    // The input from a second thread, so replies are read as they come.
    let mut writer = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || writer.write_all(&input).unwrap());
    let mut replies = Vec::new();
    let mut chunk = vec![0u8; 1 << 16];
    while !replies.ends_with(b"end-of-input\r\n") {
        let n = s.read(&mut chunk).unwrap();
        assert!(n > 0, "the server closed the connection");
        replies.extend_from_slice(&chunk[..n]);
    }
    sender.join().unwrap();
    replies
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn commands_after_a_slow_one_in_the_same_input_are_never_shed() {
    // One core, another connection open (so the rule at work is a read's
    // own work, not a client alone on its core), a 100 ms delay target:
    // the slow commands take longer than 5x the target, so a core that
    // counted them as queueing would shed the SETs behind them at once,
    // while what is left to count (the wake-up before the read) stays far
    // under 3x it (a SET's threshold) on a loaded test machine (at a 20 ms
    // target, a stall there made it flake once).
    let server = Server::start(&[
        "--threads",
        "1",
        "--overload-delay-target-us",
        "100000",
        "--enable-debug-command",
        "local",
    ]);
    let mut admin = server.client();
    let sleep: &[&str] = &["DEBUG", "SLEEP", "0.6"];
    let script = "local i = 0 while i < 60000000 do i = i + 1 end";
    // (FLUSHALL of the tests' 64 MB cache is no slow command: it is in the
    // next test, where the input spans many reads.)
    let slow: [&[&str]; 2] = [sleep, &["EVAL", script, "0"]];
    for first in slow {
        let replies = slow_then_sets(server.port, first, 100);
        assert_eq!(count(&replies, b"-OVERLOAD"), 0, "{first:?}");
        assert!(count(&replies, b"+OK\r\n") >= 100, "{first:?}");
    }
    let info: String = redis::cmd("INFO")
        .arg("overload")
        .query(&mut admin)
        .unwrap();
    assert_eq!(citadel_tests::clients::info_field(&info, "shed_core"), 0);
}

#[test]
fn a_client_alone_on_its_core_is_never_shed_however_long_its_input() {
    // The default target (5 ms). Some 40 reads of 16 KiB: the first holds
    // the slow command; a core that judged the later reads by the whole
    // delay (all of it this client's own work) refused most of them. The
    // client is the only connection on the core.
    let server = Server::start(&[
        "--threads",
        "1",
        "--overload-delay-target-us",
        "5000",
        "--enable-debug-command",
        "local",
    ]);
    let sleep: &[&str] = &["DEBUG", "SLEEP", "0.05"];
    for first in [sleep, &["FLUSHALL"]] {
        let replies = slow_then_sets(server.port, first, 20_000);
        assert_eq!(count(&replies, b"-OVERLOAD"), 0, "{first:?}");
        assert!(count(&replies, b"+OK\r\n") >= 20_000, "{first:?}");
    }
    // Connected only now: an open connection beside it, idle or not, might
    // have been waiting behind its input, and the core would judge it by
    // the whole delay (ARCHITECTURE.md: such input is shed under overload).
    let mut admin = server.client();
    let info: String = redis::cmd("INFO")
        .arg("overload")
        .query(&mut admin)
        .unwrap();
    assert_eq!(citadel_tests::clients::info_field(&info, "shed_core"), 0);
}
