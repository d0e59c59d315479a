//! The links against a scripted peer: what becomes of requests when the
//! peer resets a connection.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use crossbeam::channel::Receiver;

use super::{Done, ForwardError, ForwardId, Forwarder, Job, Part, PeerTracking};

struct NoTracking;

impl PeerTracking for NoTracking {
    fn invalidate(&self, _key: &[u8]) {}
    fn max_keys(&self) -> usize {
        0
    }
    fn generation(&self) -> u64 {
        0
    }
}

/// What the peer does with the next request on a connection.
#[derive(Clone, Copy)]
enum Step {
    /// Reads it and answers with this reply.
    Answer(&'static str),
    /// Waits until it has arrived, then closes without reading it: the
    /// kernel resets the connection (a killed process's socket).
    ResetUnread,
}

const PING: &[u8] = b"*1\r\n$4\r\nPING\r\n";
const GREETING: &[u8] = b"*2\r\n$7\r\nCLUSTER\r\n$7\r\nNOPROXY\r\n";

/// A peer that serves one connection per script, in order, then stops;
/// it answers how many came (those before 5 s without one).
fn scripted_peer(scripts: Vec<Vec<Step>>) -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let peer = std::thread::spawn(move || {
        let mut served = 0;
        for script in scripts {
            let Some(mut conn) = accept_within(&listener, Duration::from_secs(5)) else {
                break;
            };
            served += 1;
            expect(&mut conn, GREETING);
            conn.write_all(b"+OK\r\n").unwrap();
            for step in script {
                match step {
                    Step::Answer(reply) => {
                        expect(&mut conn, PING);
                        conn.write_all(reply.as_bytes()).unwrap();
                    }
                    Step::ResetUnread => {
                        let mut byte = [0u8; 1];
                        assert_eq!(conn.peek(&mut byte).unwrap(), 1);
                        break;
                    }
                }
            }
        }
        served
    });
    (addr, peer)
}

fn accept_within(listener: &TcpListener, wait: Duration) -> Option<TcpStream> {
    let until = std::time::Instant::now() + wait;
    while std::time::Instant::now() < until {
        match listener.accept() {
            Ok((conn, _)) => {
                conn.set_nonblocking(false).unwrap();
                return Some(conn);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

fn expect(conn: &mut TcpStream, wanted: &[u8]) {
    let mut got = vec![0u8; wanted.len()];
    conn.read_exact(&mut got).unwrap();
    assert_eq!(got, wanted);
}

fn forwarder() -> (Forwarder, Receiver<Done>) {
    let (sender, done) = crossbeam::channel::unbounded();
    let deliver = Box::new(move |d: Done| sender.send(d).unwrap());
    let forwarder = Forwarder::start(
        Duration::from_secs(5),
        Box::new(|| None),
        deliver,
        Box::new(NoTracking),
    );
    (forwarder, done)
}

/// One PING forwarded to `addr`: its reply, or why there is none.
fn ping(forwarder: &Forwarder, done: &Receiver<Done>, addr: &str) -> Result<String, ForwardError> {
    let part = Part {
        addr: addr.to_string(),
        request: PING.to_vec(),
        replies: 1,
        tracked: None,
    };
    forwarder.submit(Job {
        thread: 0,
        id: ForwardId(1),
        resp3: false,
        parts: vec![part],
    });
    let mut done = done.recv_timeout(Duration::from_secs(10)).unwrap();
    let replies = done.results.pop().unwrap()?;
    Ok(String::from_utf8(replies.concat()).unwrap())
}

fn is_reset(e: &ForwardError) -> bool {
    matches!(e, ForwardError::Io(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
}

#[test]
fn a_request_a_pooled_connection_took_unread_is_sent_again_on_a_fresh_one() {
    let (addr, peer) = scripted_peer(vec![
        vec![Step::Answer("+ONE\r\n"), Step::ResetUnread],
        vec![Step::Answer("+TWO\r\n"), Step::Answer("+THREE\r\n")],
    ]);
    let (forwarder, done) = forwarder();
    assert_eq!(ping(&forwarder, &done, &addr).unwrap(), "+ONE\r\n");
    assert_eq!(ping(&forwarder, &done, &addr).unwrap(), "+TWO\r\n");
    // No circuit was opened: the next request goes through too.
    assert_eq!(ping(&forwarder, &done, &addr).unwrap(), "+THREE\r\n");
    assert_eq!(peer.join().unwrap(), 2);
}

#[test]
fn a_request_is_sent_again_once_only() {
    let (addr, peer) = scripted_peer(vec![
        vec![Step::Answer("+ONE\r\n"), Step::ResetUnread],
        vec![Step::ResetUnread],
    ]);
    let (forwarder, done) = forwarder();
    assert_eq!(ping(&forwarder, &done, &addr).unwrap(), "+ONE\r\n");
    let e = ping(&forwarder, &done, &addr).unwrap_err();
    assert!(is_reset(&e), "{e:?}");
    // The peer failed twice: its circuit is open now.
    let e = ping(&forwarder, &done, &addr).unwrap_err();
    assert!(matches!(e, ForwardError::CircuitOpen), "{e:?}");
    assert_eq!(peer.join().unwrap(), 2);
}

#[test]
fn a_reset_of_a_fresh_connection_fails_its_request() {
    // Nothing shows the peer did not read it before it failed.
    let (addr, peer) = scripted_peer(vec![vec![Step::ResetUnread]]);
    let (forwarder, done) = forwarder();
    let e = ping(&forwarder, &done, &addr).unwrap_err();
    assert!(is_reset(&e), "{e:?}");
    assert_eq!(peer.join().unwrap(), 1);
}
