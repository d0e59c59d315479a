//! Held refusals: while a core sheds, a connection whose lone request was
//! refused is held (its refusal and what it sends meanwhile wait, up to
//! the hold, so one recv and one send carry several). Held or not, every
//! request gets its reply, in order, the connection stays open, and admin
//! commands on other connections answer. No timed assertions.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use citadel_tests::redis;
use citadel_tests::Server;

mod overload_flood;
use overload_flood::{fill_big_list, flood, info_field};

/// Sends `n` single `LPOS big nosuch` on one connection, `pace` apart,
/// without waiting for replies (open loop), then PING; checks every reply
/// is a served one or the core's refusal, in order, and returns how many
/// were refused.
fn single_requests(port: u16, n: usize, pace: Duration) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut writer = s.try_clone().unwrap();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(s);
            let (mut line, mut refused) = (String::new(), 0);
            for _ in 0..n {
                line.clear();
                reader.read_line(&mut line).unwrap();
                if line.starts_with("-OVERLOAD core queueing delay ") {
                    assert!(line.ends_with("retry later\r\n"), "{line}");
                    refused += 1;
                } else {
                    assert_eq!(line, "$-1\r\n", "an LPOS reply or a refusal");
                }
            }
            line.clear();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "+PONG\r\n", "the connection still answers");
            refused
        });
        for _ in 0..n {
            writer
                .write_all(b"*3\r\n$4\r\nLPOS\r\n$3\r\nbig\r\n$6\r\nnosuch\r\n")
                .unwrap();
            std::thread::sleep(pace);
        }
        writer.write_all(b"*1\r\n$4\r\nPING\r\n").unwrap();
        reader.join().unwrap()
    })
}

#[test]
fn held_refusals_all_arrive_in_order_and_admin_commands_still_answer() {
    let server = Server::start(&["--threads", "1", "--overload-delay-target-us", "1000"]);
    let mut admin = server.client();
    fill_big_list(&mut admin);
    // Rounds until a hold happened: on a busy machine a starved core may
    // read several requests of a connection at once, which it does not hold.
    let mut round = 0;
    while info_field(&mut admin, "overload", "shed_holds") == 0 {
        assert!(round < 30, "no connection was held while the core shed");
        round += 1;
        let flooder = flood(server.port, "batch-1", 40, 200);
        while info_field(&mut admin, "overload", "shed_core") == 0 && !flooder.is_finished() {}
        let singles: Vec<_> = (0..16)
            .map(|_| single_requests(server.port, 100, Duration::from_millis(2)))
            .collect();
        while singles.iter().any(|s| !s.is_finished()) {
            let pong: String = redis::cmd("PING").query(&mut admin).unwrap();
            assert_eq!(pong, "PONG");
        }
        for s in singles {
            s.join().unwrap();
        }
        let tally = flooder.join().unwrap();
        assert_eq!(tally.shed + tally.served, 40 * 200, "{tally:?}");
    }
    assert!(info_field(&mut admin, "overload", "shed_holds") > 0);
}
