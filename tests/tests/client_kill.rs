//! CLIENT KILL's victims are gone at once for the others: INFO's
//! connected_clients and CLIENT LIST no longer count them, though their
//! threads close them at their next turn (Redis frees them at once).

use std::io::Write;

use citadel_tests::redis;
use citadel_tests::{read_line, Server};

fn connected_clients(con: &mut redis::Connection) -> usize {
    let info: String = redis::cmd("INFO").arg("clients").query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("connected_clients:"))
        .expect("connected_clients")
        .trim()
        .parse()
        .unwrap()
}

fn listed(con: &mut redis::Connection) -> usize {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    list.lines().count()
}

#[test]
fn killed_clients_leave_the_counts_at_once() {
    let server = Server::start(&["--threads", "2"]);
    let mut me = server.client();
    // Idle connections on both threads: nothing wakes them after the kill.
    let mut idle: Vec<_> = (0..4).map(|_| server.raw()).collect();
    for con in &mut idle {
        con.write_all(b"PING\r\n").unwrap();
        assert_eq!(read_line(con), "+PONG\r\n");
    }
    assert_eq!(connected_clients(&mut me), 5);
    let kill_others = |me: &mut redis::Connection| -> usize {
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("SKIPME")
            .arg("yes")
            .query(me)
            .unwrap()
    };
    assert_eq!(kill_others(&mut me), 4);
    assert_eq!(connected_clients(&mut me), 1);
    assert_eq!(listed(&mut me), 1);
    assert_eq!(
        kill_others(&mut me),
        0,
        "a killed client is not killed twice"
    );
    drop(idle);
}
