//! Deep pipelines, many connections, and a 50 MB value.

use std::io::Write;
use std::time::Duration;

use citadel_tests::redis::{self, Commands};
use citadel_tests::{read_n, Server};

#[test]
fn ten_thousand_commands_in_one_write() {
    // Without load shedding: on a busy machine the core's queueing delay can
    // pass the 5 ms default while it works through the 10,000 commands, and
    // some would be answered -OVERLOAD (tests/overload.rs covers shedding).
    let server = Server::start(&["--overload-delay-target-us", "0"]);
    let mut s = server.raw();
    let mut batch = Vec::new();
    for i in 0..10_000 {
        let (k, v) = (format!("key:{i}"), format!("value:{i}"));
        write!(
            batch,
            "*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{v}\r\n",
            k.len(),
            v.len()
        )
        .unwrap();
    }
    s.write_all(&batch).unwrap();
    let replies = read_n(&mut s, 10_000 * 5);
    assert_eq!(replies, b"+OK\r\n".repeat(10_000));

    let mut c = server.client();
    let mut pipe = redis::pipe();
    for i in 0..10_000 {
        pipe.get(format!("key:{i}"));
    }
    let values: Vec<String> = pipe.query(&mut c).unwrap();
    assert_eq!(values.len(), 10_000);
    assert!(values
        .iter()
        .enumerate()
        .all(|(i, v)| *v == format!("value:{i}")));
}

#[test]
fn a_thousand_concurrent_connections() {
    let server = Server::start(&[]);
    let port = server.port;
    let workers: Vec<_> = (0..20)
        .map(|w| {
            std::thread::spawn(move || {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
                let mut conns: Vec<_> = (0..50)
                    .map(|_| {
                        client
                            .get_connection_with_timeout(Duration::from_secs(10))
                            .unwrap()
                    })
                    .collect();
                for (i, c) in conns.iter_mut().enumerate() {
                    let key = format!("conn:{w}:{i}");
                    let _: () = c.set(&key, i).unwrap();
                }
                for (i, c) in conns.iter_mut().enumerate() {
                    let key = format!("conn:{w}:{i}");
                    assert_eq!(c.incr::<_, _, usize>(&key, 1).unwrap(), i + 1);
                    assert_eq!(c.get::<_, usize>(&key).unwrap(), i + 1);
                }
                conns
            })
        })
        .collect();
    let conns: Vec<_> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert_eq!(conns.len(), 1000);
    let mut c = server.client();
    assert_eq!(redis::cmd("DBSIZE").query::<usize>(&mut c).unwrap(), 1000);
    drop(conns);
}

#[test]
fn fifty_megabyte_value_round_trip() {
    let server = Server::start(&["--maxmemory", "512mb"]);
    let mut c = server.client();
    let value: Vec<u8> = (0..50 * 1024 * 1024)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let _: () = c.set("big", &value).unwrap();
    assert_eq!(c.strlen::<_, usize>("big").unwrap(), value.len());
    let back: Vec<u8> = c.get("big").unwrap();
    assert!(back == value, "50 MB value came back different");
    let _: () = c.set("after", "ok").unwrap();
    assert_eq!(c.get::<_, String>("after").unwrap(), "ok");
}

/// One write mixing plain GETs and SETs (the batched path) with commands
/// and states that take the normal path: SET with options, a wrong-arity
/// GET, a GET of a list, MULTI/EXEC, CLIENT REPLY SKIP. Every reply, and
/// INFO commandstats / errorstats, must be what running them one by one
/// gives.
#[test]
fn plain_gets_and_sets_batched_with_other_commands_answer_in_order() {
    let server = Server::start(&["--overload-delay-target-us", "0"]);
    let mut c = server.client();
    let _: () = redis::cmd("RPUSH")
        .arg("list")
        .arg("x")
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("CONFIG").arg("RESETSTAT").query(&mut c).unwrap();
    let commands: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["get", "a"],
        &["GeT", "missing"],
        &["SET", "b", "2", "EX", "100"],
        &["GET", "b"],
        &["GET"],
        &["GET", "list"],
        &["MULTI"],
        &["SET", "a", "3"],
        &["GET", "a"],
        &["EXEC"],
        &["GET", "a"],
        &["CLIENT", "REPLY", "SKIP"],
        &["SET", "c", "4"],
        &["sEt", "d", "5"],
        &["GET", "d"],
    ];
    let mut batch = Vec::new();
    for cmd in commands {
        write!(batch, "*{}\r\n", cmd.len()).unwrap();
        for arg in *cmd {
            write!(batch, "${}\r\n{arg}\r\n", arg.len()).unwrap();
        }
    }
    let want: &[u8] = b"+OK\r\n$1\r\n1\r\n$-1\r\n+OK\r\n$1\r\n2\r\n\
        -ERR wrong number of arguments for 'get' command\r\n\
        -WRONGTYPE Operation against a key holding the wrong kind of value\r\n\
        +OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$1\r\n3\r\n$1\r\n3\r\n\
        +OK\r\n$1\r\n5\r\n";
    let mut s = server.raw();
    s.write_all(&batch).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&read_n(&mut s, want.len())),
        String::from_utf8_lossy(want)
    );

    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut c)
        .unwrap();
    let field = |cmd: &str, name: &str| {
        let line = stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:")))
            .unwrap_or_else(|| panic!("no {cmd} in {stats}"));
        line.split(',')
            .find_map(|f| f.strip_prefix(&format!("{name}=")))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    // GETs: a, missing, b, list, a (EXEC's), a, d; the arity error is a
    // rejection. SETs: a, b, a (EXEC's), c, d. Redis counts what EXEC
    // runs too.
    assert_eq!(field("get", "calls"), 7);
    assert_eq!(field("get", "rejected_calls"), 1);
    assert_eq!(field("get", "failed_calls"), 1);
    assert_eq!(field("set", "calls"), 5);
    let errors: String = redis::cmd("INFO").arg("errorstats").query(&mut c).unwrap();
    assert!(errors.contains("errorstat_WRONGTYPE:count=1"), "{errors}");
    assert!(errors.contains("errorstat_ERR:count=1"), "{errors}");
}
