//! Loop tests over real sockets with a tiny line protocol instead of RESP:
//! `PING` → `+PONG`, `QUIT` → `+BYE` then close, `BIG n` → n bytes of `x`,
//! `LEN n` followed by n raw bytes → `+n` (exercises `need`), `STOP` →
//! shutdown request. Every reply ends with `\r\n`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::{bind, serve, NetConfig, Progress, Service};
use crate::state::ThreadStats;

struct Echo {
    stop: Arc<AtomicBool>,
    maxclients: usize,
}

impl Service for Echo {
    type Session = ();

    fn open(&mut self, _: u64, _: SocketAddr, _: SocketAddr) {}

    fn process(&mut self, _: &mut (), input: &[u8], out: &mut Vec<u8>) -> Progress {
        let mut at = 0;
        while let Some(nl) = input[at..].iter().position(|&b| b == b'\n') {
            let line = std::str::from_utf8(&input[at..at + nl]).unwrap().trim_end();
            let mut words = line.split(' ');
            let end = at + nl + 1;
            match (
                words.next().unwrap(),
                words.next().map(|n| n.parse::<usize>().unwrap()),
            ) {
                ("PING", _) => out.extend_from_slice(b"+PONG\r\n"),
                ("QUIT", _) => {
                    out.extend_from_slice(b"+BYE\r\n");
                    return Progress {
                        consumed: end,
                        close: true,
                        need: 0,
                        parked: false,
                    };
                }
                ("BIG", Some(n)) => {
                    out.resize(out.len() + n, b'x');
                    out.extend_from_slice(b"\r\n");
                }
                ("LEN", Some(n)) => {
                    if input.len() - end < n {
                        return Progress {
                            consumed: at,
                            close: false,
                            need: end - at + n,
                            parked: false,
                        };
                    }
                    out.extend_from_slice(format!("+{n}\r\n").as_bytes());
                    at = end + n;
                    continue;
                }
                ("STOP", _) => self.stop.store(true, Ordering::SeqCst),
                _ => out.extend_from_slice(b"-ERR\r\n"),
            }
            at = end;
        }
        Progress {
            consumed: at,
            close: false,
            need: 0,
            parked: false,
        }
    }

    fn is_killed(&self, _: &()) -> bool {
        false
    }
    fn turn(&mut self, _: u64) {}
    fn tick(&mut self) {}
    fn shutdown_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn maxclients(&self) -> usize {
        self.maxclients
    }
}

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(threads: usize, maxclients: usize, tweak: impl FnOnce(&mut NetConfig)) -> Server {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let mut cfg = NetConfig::new(addr, vec![None; threads]);
        cfg.recv_buffers = 8;
        cfg.recv_buffer_size = 4096;
        tweak(&mut cfg);
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let stats: Vec<_> = (0..threads)
                .map(|_| Arc::new(ThreadStats::default()))
                .collect();
            let listeners = bind(&cfg).unwrap();
            let make = |_| {
                Ok(Echo {
                    stop: stop2.clone(),
                    maxclients,
                })
            };
            serve(&cfg, listeners, &stats, make, || tx.send(()).unwrap()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("server did not start");
        Server {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    fn connect(&self) -> BufReader<TcpStream> {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        BufReader::new(s)
    }

    fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn ping_and_pipeline_across_tiny_buffers() {
    let server = Server::start(2, 10_000, |_| {});
    let mut c = server.connect();
    c.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut c), "+PONG\r\n");
    // 10,000 commands in one write: far more than 8 buffers of 4 KiB (ENOBUFS, re-arm).
    c.get_mut().write_all(&b"PING\n".repeat(10_000)).unwrap();
    for _ in 0..10_000 {
        assert_eq!(line(&mut c), "+PONG\r\n");
    }
    // A command split byte by byte.
    for b in b"PING\n" {
        c.get_mut().write_all(&[*b]).unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(line(&mut c), "+PONG\r\n");
    server.stop();
}

#[test]
fn large_input_and_output() {
    let server = Server::start(1, 10_000, |_| {});
    let mut c = server.connect();
    let n = 50 << 20;
    let mut msg = format!("LEN {n}\n").into_bytes();
    msg.resize(msg.len() + n, b'v');
    msg.extend_from_slice(b"PING\n");
    let mut w = c.get_ref().try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&msg).unwrap());
    assert_eq!(line(&mut c), format!("+{n}\r\n"));
    assert_eq!(line(&mut c), "+PONG\r\n");
    writer.join().unwrap();
    c.get_mut().write_all(b"BIG 30000000\n").unwrap();
    let mut big = vec![0u8; 30_000_002];
    c.read_exact(&mut big).unwrap();
    assert!(big[..30_000_000].iter().all(|&b| b == b'x'));
    server.stop();
}

#[test]
fn many_connections_and_quit() {
    let server = Server::start(2, 10_000, |_| {});
    let mut conns: Vec<_> = (0..1000).map(|_| server.connect()).collect();
    for c in &mut conns {
        c.get_mut().write_all(b"PING\nPING\n").unwrap();
    }
    for c in &mut conns {
        assert_eq!(line(c), "+PONG\r\n");
        assert_eq!(line(c), "+PONG\r\n");
    }
    let c = &mut conns[0];
    c.get_mut().write_all(b"QUIT\nPING\n").unwrap();
    assert_eq!(line(c), "+BYE\r\n");
    assert_eq!(line(c), "", "closed after QUIT");
    server.stop();
}

#[test]
fn maxclients_rejects_extra() {
    let server = Server::start(1, 2, |_| {});
    let mut a = server.connect();
    let mut b = server.connect();
    a.get_mut().write_all(b"PING\n").unwrap();
    b.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut a), "+PONG\r\n");
    assert_eq!(line(&mut b), "+PONG\r\n");
    let mut c = server.connect();
    assert_eq!(line(&mut c), "-ERR max number of clients reached\r\n");
    assert_eq!(line(&mut c), "");
    drop(a);
    std::thread::sleep(Duration::from_millis(200));
    let mut d = server.connect();
    d.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut d), "+PONG\r\n");
    server.stop();
}

#[test]
fn slow_reader_is_dropped_at_output_limit() {
    let server = Server::start(1, 10_000, |cfg| cfg.client_output_limit = 4 << 20);
    let mut c = server.connect();
    // Never read: replies pile up past the 4 MiB limit and the client is dropped.
    let cmds = b"BIG 1000000\n".repeat(64);
    let _ = c.get_mut().write_all(&cmds);
    std::thread::sleep(Duration::from_millis(300));
    let mut total = 0;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match c.get_mut().read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
    assert!(
        total < 64_000_000,
        "connection was not dropped ({total} bytes read)"
    );
    let mut d = server.connect();
    d.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut d), "+PONG\r\n");
    server.stop();
}

#[test]
fn shutdown_flushes_and_disconnect_mid_command_is_harmless() {
    let server = Server::start(2, 10_000, |_| {});
    let mut half = server.connect();
    half.get_mut().write_all(b"LEN 100\nabc").unwrap();
    drop(half);
    let mut c = server.connect();
    c.get_mut().write_all(b"PING\nSTOP\n").unwrap();
    assert_eq!(line(&mut c), "+PONG\r\n");
    assert_eq!(line(&mut c), "", "closed by shutdown");
    server.thread.as_ref().unwrap();
    server.stop();
}
