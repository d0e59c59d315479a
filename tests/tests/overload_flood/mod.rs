//! Helpers of the overload tests: a list whose scan is costly, an
//! open-loop flood of pipelined scans, and INFO fields.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use citadel_tests::pinger::Pinger;
use citadel_tests::redis::{self, Commands};
use citadel_tests::Server;

/// A list long enough that `LPOS big nosuch` (a full scan, a one-line
/// reply) costs tens of microseconds.
pub fn fill_big_list(c: &mut redis::Connection) {
    for chunk in 0..40 {
        let items: Vec<u32> = (chunk * 500..(chunk + 1) * 500).collect();
        let _: () = c.rpush("big", items).unwrap();
    }
}

/// What one client's replies were.
#[derive(Debug, Default)]
pub struct Tally {
    pub shed: usize,
    pub served: usize,
    pub first_shed: Option<String>,
}

/// Sends `batches` pipelines of `per_batch` `LPOS big nosuch` as fast as the
/// socket takes them (open loop) while a second thread reads the replies;
/// `name` first via CLIENT SETNAME.
pub fn flood(
    port: u16,
    name: &str,
    batches: usize,
    per_batch: usize,
) -> std::thread::JoinHandle<Tally> {
    let name = name.to_string();
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let setname = format!(
            "*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n${}\r\n{name}\r\n",
            name.len()
        );
        s.write_all(setname.as_bytes()).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "+OK\r\n");
        let total = batches * per_batch;
        let counter = std::thread::spawn(move || {
            let mut tally = Tally::default();
            let mut line = String::new();
            for _ in 0..total {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line.starts_with("-OVERLOAD core ") {
                    tally.shed += 1;
                    tally
                        .first_shed
                        .get_or_insert_with(|| line.trim_end().to_string());
                } else {
                    assert_eq!(line, "$-1\r\n", "an LPOS reply or a shed error");
                    tally.served += 1;
                }
            }
            tally
        });
        let batch = b"*3\r\n$4\r\nLPOS\r\n$3\r\nbig\r\n$6\r\nnosuch\r\n".repeat(per_batch);
        for _ in 0..batches {
            s.write_all(&batch).unwrap();
        }
        counter.join().unwrap()
    })
}

/// A one-thread server at a 10 ms delay target, where clients named
/// `batch-*` are low priority, whose core sheds now: an admin client and
/// the open-loop `flood` of a `batch-1` client making it shed.
// Not every test file that includes these helpers starts one.
#[allow(dead_code)]
pub fn shedding_core() -> (
    Server,
    redis::Connection,
    std::thread::JoinHandle<Tally>,
    Pinger,
) {
    let server = Server::start(&[
        "--threads",
        "1",
        "--overload-delay-target-us",
        "10000",
        "--overload-priority",
        "name:batch-*=low",
    ]);
    let mut admin = server.client();
    fill_big_list(&mut admin);
    // An interactive client the flood is shed for (alone, it would not be).
    let pinger = Pinger::start(&server);
    let flooder = flood(server.port, "batch-1", 40, 200);
    while info_field(&mut admin, "overload", "shed_core") == 0 {
        assert!(
            !flooder.is_finished(),
            "the flood ended before the core shed"
        );
    }
    (server, admin, flooder, pinger)
}

pub fn info_field(c: &mut redis::Connection, section: &str, field: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(c).unwrap();
    citadel_tests::clients::info_field(&info, field)
}
