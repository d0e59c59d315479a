//! A client is never refused for the time its own earlier commands of the
//! same read took: on a core with nothing else to do, a slow command (DEBUG
//! SLEEP, a long script, FLUSHALL) followed by more commands in the same
//! write runs them all, as Redis does (ARCHITECTURE.md, "Overload
//! protection", a read's own work). Nor are bulk loads (`redis-cli
//! --pipe`, one or two at once) refused for their own backlog while no
//! interactive client is active on their core (a client alone). Real
//! overload is in `overload.rs`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use citadel_tests::pinger::Pinger;
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
    // One core, another connection sending PINGs all along (so the rule
    // at work is a read's own work, not a client alone on its core: the
    // PINGs wait behind the slow command and are reaped in the turn that
    // reads the SETs), a 100 ms delay target:
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
    let pinger = Pinger::start(&server);
    for first in slow {
        let replies = slow_then_sets(server.port, first, 100);
        assert_eq!(count(&replies, b"-OVERLOAD"), 0, "{first:?}");
        assert!(count(&replies, b"+OK\r\n") >= 100, "{first:?}");
    }
    drop(pinger);
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

/// Runs `redis-cli --pipe` of `pairs` SETs and GETs of keys `prefix:N`
/// (in the background); its report's last line.
fn pipe_load(port: u16, prefix: &str, pairs: usize) -> std::thread::JoinHandle<String> {
    let mut input = Vec::new();
    for i in 0..pairs {
        let key = format!("{prefix}:{i}");
        input.extend_from_slice(&command(&["SET", &key, &format!("v{i}")]));
        input.extend_from_slice(&command(&["GET", &key]));
    }
    std::thread::spawn(move || {
        let mut pipe = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "--pipe"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-cli");
        let mut stdin = pipe.stdin.take().unwrap();
        let writer = std::thread::spawn(move || stdin.write_all(&input).unwrap());
        let out = pipe.wait_with_output().unwrap();
        writer.join().unwrap();
        let report = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{report}");
        report.lines().last().unwrap_or_default().to_string()
    })
}

fn shed_core(admin: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO").arg("overload").query(admin).unwrap();
    citadel_tests::clients::info_field(&info, "shed_core")
}

#[test]
fn a_bulk_load_beside_idle_connections_is_never_shed() {
    // `redis-cli --pipe`, the way Redis documents mass insertion: 600,000
    // commands (21 MB) written as fast as the core takes them, at the
    // default target (5 ms), with two idle connections open on the same
    // core. Its later reads wait behind its own earlier ones only; judged
    // by the whole delay (as when any other connection was open) most of
    // them were refused (1.6M of 2M commands; this test failed 3 runs in 3
    // on that build).
    let server = Server::start(&["--threads", "1", "--overload-delay-target-us", "5000"]);
    let mut admin = server.client();
    let _idle = server.client();
    let _: String = redis::cmd("PING").query(&mut admin).unwrap();
    let report = pipe_load(server.port, "key", 300_000).join().unwrap();
    assert_eq!(report, "errors: 0, replies: 600000", "every command served");
    let keys: u64 = redis::cmd("DBSIZE").query(&mut admin).unwrap();
    assert_eq!(keys, 300_000);
    assert_eq!(shed_core(&mut admin), 0);
}

#[test]
fn bulk_loads_side_by_side_are_never_shed() {
    // Two imports at once on one core: each one's input waits behind the
    // other's, but neither is a client that minds (deep input: the other
    // is no interactive client). Judged as a flood, 77-98% of their
    // commands were refused and a few thousand a second served.
    let server = Server::start(&["--threads", "1", "--overload-delay-target-us", "5000"]);
    let mut admin = server.client();
    let loads = [
        pipe_load(server.port, "a", 200_000),
        pipe_load(server.port, "b", 200_000),
    ];
    for load in loads {
        assert_eq!(load.join().unwrap(), "errors: 0, replies: 400000");
    }
    let keys: u64 = redis::cmd("DBSIZE").query(&mut admin).unwrap();
    assert_eq!(keys, 400_000);
    assert_eq!(shed_core(&mut admin), 0);
}
