//! Overload protection with real clients: a core flooded open-loop sheds
//! with `-OVERLOAD core ...` (low priority first) while PING and INFO still
//! answer; quotas hold their rate; the per-address connection limit
//! refuses and closes. No timed assertions: rates are measured over
//! windows the server itself reports, with generous bounds.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

mod overload_flood;
use overload_flood::{fill_big_list, flood, info_field, shedding_core, Tally};

#[test]
fn a_flooded_core_sheds_low_priority_first_and_still_answers_ping() {
    let server = Server::start(&[
        "--threads",
        "1",
        "--overload-delay-target-us",
        "10000",
        "--overload-priority",
        "name:batch-*=low name:vip-*=high",
    ]);
    let mut admin = server.client();
    fill_big_list(&mut admin);
    let low = flood(server.port, "batch-1", 40, 200);
    // Once the core sheds, a high-priority client sends smaller batches:
    // its reads are shed only past 5x the target, the low client's past 2x.
    // Health and admin commands answer while the core is overloaded.
    let mut pings = 0;
    while info_field(&mut admin, "overload", "shed_core") == 0 {
        assert!(!low.is_finished(), "the flood ended before the core shed");
        let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
        assert_eq!(pong, "PONG");
        pings += 1;
    }
    let high = flood(server.port, "vip-1", 20, 10);
    while !low.is_finished() {
        let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
        assert_eq!(pong, "PONG");
        let info: String = redis::cmd("INFO")
            .arg("overload")
            .query(&mut admin)
            .unwrap();
        assert!(info.contains("# Overload"));
        pings += 1;
    }
    let (low, high) = (low.join().unwrap(), high.join().unwrap());
    assert!(pings > 0);
    assert!(low.shed > 0, "the low-priority flood was shed: {low:?}");
    let first = low.first_shed.as_deref().unwrap();
    assert!(
        first.starts_with("-OVERLOAD core queueing delay ") && first.ends_with("retry later"),
        "{first}"
    );
    let fraction = |t: &Tally| t.shed as f64 / (t.shed + t.served) as f64;
    assert!(
        fraction(&high) < fraction(&low),
        "high priority shed less: low {low:?}, high {high:?}"
    );
    let shed = info_field(&mut admin, "overload", "shed_core_queueing_delay");
    assert_eq!(
        shed as usize,
        low.shed + high.shed,
        "INFO counts every shed reply"
    );
    assert!(info_field(&mut admin, "overload", "shed_rank_low_read") >= low.shed as u64);
}

/// Reads one RESP reply line (and a bulk's body) as text.
fn reply(reader: &mut BufReader<TcpStream>) -> String {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    if line.starts_with('$') && line != "$-1\r\n" {
        reader.read_line(&mut line).unwrap();
    }
    line
}

/// An overloaded core refuses commands from their framing (before parsing
/// them); the replies of a pipeline mixing refused and admitted commands
/// still come in order, each admitted write is applied exactly once, and
/// what is never shed (ECHO, a connection command) always answers.
#[test]
fn a_shed_from_framing_keeps_a_pipeline_in_order_and_loses_no_write() {
    let (server, mut admin, mut flooder, _pinger) = shedding_core();
    let s = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut writer = s.try_clone().unwrap();
    let mut reader = BufReader::new(s);
    writer
        .write_all(b"*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$7\r\nbatch-2\r\n")
        .unwrap();
    assert_eq!(reply(&mut reader), "+OK\r\n");
    let (mut shed, mut incremented, mut round) = (0, 0, 0);
    while shed == 0 {
        // On a busy machine a flood may end first: another keeps the core
        // overloaded until this pipeline is shed from.
        assert!(round < 100, "no command of the pipeline was shed");
        if flooder.is_finished() {
            flooder.join().unwrap();
            flooder = flood(server.port, "batch-1", 40, 200);
        }
        let mut batch = Vec::new();
        for i in 0..100 {
            let tag = format!("{round}-{i}");
            batch.extend_from_slice(b"*3\r\n$4\r\nLPOS\r\n$3\r\nbig\r\n$6\r\nnosuch\r\n");
            batch.extend_from_slice(b"*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n");
            batch.extend_from_slice(
                format!("*2\r\n$4\r\nECHO\r\n${}\r\n{tag}\r\n", tag.len()).as_bytes(),
            );
        }
        writer.write_all(&batch).unwrap();
        for i in 0..100 {
            let lpos = reply(&mut reader);
            let incr = reply(&mut reader);
            for refused in [&lpos, &incr] {
                if refused.starts_with("-OVERLOAD core queueing delay ") {
                    assert!(refused.ends_with("retry later\r\n"), "{refused}");
                    shed += 1;
                }
            }
            if lpos != "$-1\r\n" {
                assert!(lpos.starts_with("-OVERLOAD core "), "{lpos}");
            }
            if !incr.starts_with("-OVERLOAD core ") {
                incremented += 1;
                assert_eq!(
                    incr,
                    format!(":{incremented}\r\n"),
                    "admitted INCRs in order"
                );
            }
            let tag = format!("{round}-{i}");
            let echo = reply(&mut reader);
            assert_eq!(
                echo,
                format!("${}\r\n{tag}\r\n", tag.len()),
                "ECHO is never shed"
            );
        }
        round += 1;
    }
    flooder.join().unwrap();
    let counter: u64 = admin.get("counter").unwrap_or(0);
    assert_eq!(
        counter, incremented,
        "every admitted INCR applied once, no refused one"
    );
    let errors: String = redis::cmd("INFO")
        .arg("errorstats")
        .query(&mut admin)
        .unwrap();
    assert!(errors.contains("errorstat_OVERLOAD:count="), "{errors}");
}

#[test]
fn admission_off_never_sheds() {
    let server = Server::start(&["--threads", "1", "--overload-delay-target-us", "0"]);
    let mut c = server.client();
    fill_big_list(&mut c);
    let tally = flood(server.port, "batch-1", 4, 100).join().unwrap();
    assert_eq!((tally.shed, tally.served), (0, 400));
}

/// A raw connection that sends pipelines of one command and tallies its
/// one-line replies (`$-1` served, `-OVERLOAD quota ...` refused).
struct Pipeliner {
    s: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Pipeliner {
    fn new(server: &Server, name: &str) -> Pipeliner {
        let s = server.raw();
        let reader = BufReader::new(s.try_clone().unwrap());
        let mut p = Pipeliner { s, reader };
        if !name.is_empty() {
            let cmd = format!("CLIENT SETNAME {name}\r\n");
            p.s.write_all(cmd.as_bytes()).unwrap();
            assert_eq!(p.line(), "+OK\r\n");
        }
        p
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        line
    }

    /// Sends `n` GETs of `key`; returns how many a quota refused.
    fn refusals(&mut self, key: &str, n: usize) -> usize {
        self.refusals_then(key, n, "")
    }

    /// As `refusals`, with `after` sent in the same write (its reply is
    /// left unread).
    fn refusals_then(&mut self, key: &str, n: usize, after: &str) -> usize {
        let input = format!("GET {key}\r\n").repeat(n) + after;
        self.s.write_all(input.as_bytes()).unwrap();
        (0..n)
            .filter(|_| {
                let line = self.line();
                assert!(
                    line == "$-1\r\n" || line.starts_with("-OVERLOAD quota "),
                    "{line}"
                );
                line.starts_with('-')
            })
            .count()
    }

    /// Sends `n` GETs of `key` and a TIME in one write: how many GETs
    /// passed, and the server's time (µs) just after it ran them.
    fn timed_batch(&mut self, key: &str, n: usize) -> (usize, u64) {
        let passed = n - self.refusals_then(key, n, "TIME\r\n");
        assert_eq!(self.line(), "*2\r\n");
        let mut field = || {
            self.line();
            self.line().trim_end().parse::<u64>().unwrap()
        };
        let (s, us) = (field(), field());
        (passed, s * 1_000_000 + us)
    }
}

/// Checks that a quota of `rate`/s on `key` lets through what a token
/// bucket of that rate would. The server runs each batch of GETs at once
/// and stamps it (TIME in the same write), so between two batches the
/// bucket earns `rate` tokens a second, up to its burst (`rate / 20`,
/// `overload/quota.rs`): a loaded machine that starves the client between
/// batches only makes fewer tokens expected, never a wrong rate.
fn quota_holds_its_rate(p: &mut Pipeliner, key: &str, rate: f64) {
    let burst = (rate / 20.0).floor().max(1.0);
    // Each batch is larger than the burst: it empties the bucket.
    let (_, mut last) = p.timed_batch(key, 200);
    let (mut passed, mut expected) = (0, 0.0);
    // Two seconds of tokens (more if the client was starved).
    while expected < 2.0 * rate {
        let (n, at) = p.timed_batch(key, 200);
        passed += n;
        expected += (rate * (at - last) as f64 / 1e6).min(burst);
        last = at;
    }
    let passed = passed as f64;
    assert!(
        (0.9 * expected..=1.1 * expected).contains(&passed),
        "a {rate}/s quota let {passed} through where a token bucket lets {expected:.0}"
    );
}

#[test]
fn quotas_hold_their_rate_per_client_group_and_per_key_prefix() {
    let server = Server::start(&["--overload-quotas", "name:metered-*=500"]);
    let mut admin = server.client();
    let mut metered = Pipeliner::new(&server, "metered-1");
    quota_holds_its_rate(&mut metered, "k", 500.0);
    // A prefix quota, set live; the unmetered client is limited only on it.
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("overload-quotas")
        .arg("prefix:session:=300")
        .query(&mut admin)
        .unwrap();
    let mut free = Pipeliner::new(&server, "");
    quota_holds_its_rate(&mut free, "session:1", 300.0);
    assert_eq!(free.refusals("other", 500), 0);
    let refused = info_field(&mut admin, "overload", "shed_quota_prefix_quota");
    assert!(refused > 0);
    let bad: redis::RedisResult<()> = redis::cmd("CONFIG")
        .arg("SET")
        .arg("overload-quotas")
        .arg("prefix:x=fast")
        .query(&mut admin);
    assert!(bad.is_err(), "a malformed rule is refused");
}

#[test]
fn the_per_address_limit_refuses_with_the_overload_error_and_closes() {
    let server = Server::start(&["--maxclients-per-address", "3"]);
    // The readiness probe's connection counts until the server has seen it
    // close, which on a loaded machine can be after the first clients come:
    // retry a refused one.
    let admitted = || loop {
        let client = redis::Client::open(server.url()).unwrap();
        if let Ok(mut c) = client.get_connection_with_timeout(Duration::from_secs(10)) {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                break c;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let held: Vec<redis::Connection> = (0..3).map(|_| admitted()).collect();
    let mut extra = server.raw();
    let mut reply = String::new();
    extra.read_to_string(&mut reply).unwrap();
    assert!(
        reply.starts_with("-OVERLOAD connection "),
        "refused with the error, then closed: {reply:?}"
    );
    drop(held);
    // Closed connections free their places (the server counts them down
    // as it closes them: retry until one is let in).
    let mut c = loop {
        let mut s = server.raw();
        s.write_all(b"PING\r\n").unwrap();
        let mut line = String::new();
        BufReader::new(s.try_clone().unwrap())
            .read_line(&mut line)
            .unwrap();
        if line == "+PONG\r\n" {
            break s;
        }
    };
    c.write_all(b"QUIT\r\n").unwrap();
    // The places of `c` and the dropped ones may still count (a loaded
    // machine): retried like the held ones.
    let mut admin = admitted();
    assert!(info_field(&mut admin, "overload", "shed_connection_per_address") >= 1);
}

#[test]
fn an_rpc_client_gets_the_overloaded_error_code() {
    use citadel_proto::rpc::schema::ErrorCode;
    let server = Server::start(&["--overload-quotas", "prefix:rpc:=1"]);
    let mut rpc = citadel_tests::rpc::RawRpc::tcp(server.rpc_port);
    // 1/s with a burst of one: the first passes, the next is refused.
    assert_eq!(rpc.call(|w| w.get(b"rpc:1")).error(), None);
    let (code, message) = rpc.call(|w| w.get(b"rpc:1")).error().unwrap();
    assert_eq!(code, ErrorCode::Overloaded);
    assert!(
        message.starts_with("OVERLOAD quota key prefix rpc: over 1/s"),
        "{message}"
    );
    // Other keys and health requests are not limited.
    assert_eq!(rpc.call(|w| w.get(b"other")).error(), None);
    assert_eq!(rpc.call(|w| w.stats(None)).error(), None);
}

#[test]
fn a_slow_plugin_sheds_at_the_entry_instead_of_parking_clients() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plugins.toml");
    let plugin = format!(
        "[[plugin]]\nname = \"echo\"\nexec = \"{}\"\nmax-inflight = 4\n",
        citadel_tests::echo_plugin_bin().display()
    );
    std::fs::write(&config, plugin).unwrap();
    let server = Server::start(&["--config", config.to_str().unwrap()]);
    // 40 clients call a plugin that takes 2 s per call: 4 are admitted,
    // the others are answered at once instead of waiting their turn.
    let call = "*4\r\n$6\r\nPLUGIN\r\n$4\r\nCALL\r\n$4\r\necho\r\n$10\r\nSLEEP 2000\r\n";
    let mut clients: Vec<_> = (0..40)
        .map(|_| {
            let mut s = server.raw();
            s.write_all(call.as_bytes()).unwrap();
            BufReader::new(s)
        })
        .collect();
    let mut admin = server.client();
    let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
    assert_eq!(pong, "PONG");
    let mut shed = 0;
    for c in &mut clients {
        let mut line = String::new();
        c.read_line(&mut line).unwrap();
        if line.starts_with("-OVERLOAD downstream plugin 'echo' ") {
            shed += 1;
        } else {
            // Admitted: its reply, or its timeout (the plugin serves the
            // four one after the other).
            let answered = line.starts_with('$') || line.starts_with("-ERR plugin 'echo' did not");
            assert!(answered, "a reply or the shed error: {line}");
        }
    }
    assert!(shed >= 30, "{shed} of 40 shed");
    let counted = info_field(&mut admin, "overload", "shed_downstream_plugin_limit");
    assert_eq!(counted, shed as u64);
}
