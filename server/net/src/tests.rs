//! Loop tests over real sockets with a tiny line protocol instead of RESP:
//! `PING` → `+PONG`, `QUIT` → `+BYE` then close, `BIG n` → n bytes of `x`,
//! `LEN n` followed by n raw bytes → `+n` (exercises `need`), `STOP` →
//! shutdown request, `WAIT ms` → parks the connection until another thread
//! completes it through an eventfd-woken inbox (`+WOKE ms`), `PANIC` →
//! panics while serving, `SLEEP ms` → blocks its thread that long (a
//! stalled loop) then `+SLEPT`, `WHO` → `+<thread index>`. Every reply
//! ends with `\r\n`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{bind, serve, Endpoint, LoopStats, NetConfig, Progress, Service, Waiter};

/// Completions delivered by other threads: the waiter and the ms it waited.
struct Inbox {
    done: Mutex<Vec<(Waiter, u64)>>,
    bell: RawFd,
}

impl Inbox {
    fn new() -> Arc<Inbox> {
        // SAFETY: eventfd(2) with valid flags; the descriptor is owned by the inbox.
        let bell = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        assert!(bell >= 0, "eventfd");
        Arc::new(Inbox {
            done: Mutex::new(Vec::new()),
            bell,
        })
    }

    fn ring(&self) {
        let one = 1u64.to_ne_bytes();
        // SAFETY: writes 8 bytes from a live buffer to our eventfd.
        unsafe { libc::write(self.bell, one.as_ptr().cast(), 8) };
    }

    fn drain_bell(&self) {
        let mut buf = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our eventfd.
        unsafe { libc::read(self.bell, buf.as_mut_ptr().cast(), 8) };
    }
}

struct Echo {
    stop: Arc<AtomicBool>,
    maxclients: usize,
    inbox: Arc<Inbox>,
    /// The WAIT a session parked on (set by `process`, taken by `park`).
    waiting: Option<u64>,
    /// This service's thread index.
    thread: usize,
}

impl Service for Echo {
    type Session = ();
    type Completion = u64;

    fn open(&mut self, _: u64, _: Endpoint, _: Endpoint, _: crate::Door) {}

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
                        ..Progress::default()
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
                            ..Progress::default()
                        };
                    }
                    out.extend_from_slice(format!("+{n}\r\n").as_bytes());
                    at = end + n;
                    continue;
                }
                ("ECHO", Some(n)) => {
                    // Replies with the n bytes after the line (all of them
                    // must have arrived, in order).
                    if input.len() - end < n {
                        return Progress {
                            consumed: at,
                            need: end - at + n,
                            ..Progress::default()
                        };
                    }
                    out.extend_from_slice(&input[end..end + n]);
                    at = end + n;
                    continue;
                }
                ("STOP", _) => self.stop.store(true, Ordering::SeqCst),
                ("SLEEP", Some(ms)) => {
                    std::thread::sleep(Duration::from_millis(ms as u64));
                    out.extend_from_slice(b"+SLEPT\r\n");
                }
                ("WHO", _) => out.extend_from_slice(format!("+{}\r\n", self.thread).as_bytes()),
                ("PANIC", _) => panic!("PANIC requested"),
                ("WAIT", Some(ms)) => {
                    self.waiting = Some(ms as u64);
                    return Progress {
                        consumed: end,
                        close: false,
                        need: 0,
                        parked: true,
                        ..Progress::default()
                    };
                }
                _ => out.extend_from_slice(b"-ERR\r\n"),
            }
            at = end;
        }
        Progress {
            consumed: at,
            close: false,
            need: 0,
            parked: false,
            ..Progress::default()
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

    fn wake_fds(&self) -> Vec<RawFd> {
        vec![self.inbox.bell]
    }

    fn on_wake(&mut self, index: usize) {
        assert_eq!(index, 0);
        self.inbox.drain_bell();
    }

    fn park(&mut self, _: &mut (), waiter: Waiter) {
        let ms = self.waiting.take().expect("parked on a WAIT");
        let inbox = self.inbox.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            inbox.done.lock().unwrap().push((waiter, ms));
            inbox.ring();
        });
    }

    fn poll(&mut self, _: Instant, ready: &mut Vec<(Waiter, u64)>) {
        ready.append(&mut self.inbox.done.lock().unwrap());
    }

    fn resume(&mut self, _: &mut (), ms: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(format!("+WOKE {ms}\r\n").as_bytes());
    }
}

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Vec<Arc<LoopStats>>,
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
        let stats: Vec<_> = (0..threads)
            .map(|_| Arc::new(LoopStats::default()))
            .collect();
        let stats2 = stats.clone();
        let thread = std::thread::spawn(move || {
            let stats = stats2;
            let listeners = bind(&cfg).unwrap();
            let make = |thread| {
                Ok(Echo {
                    stop: stop2.clone(),
                    maxclients,
                    inbox: Inbox::new(),
                    waiting: None,
                    thread,
                })
            };
            serve(&cfg, listeners, &stats, make, || tx.send(()).unwrap()).unwrap();
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("server did not start");
        Server {
            addr,
            stop,
            stats,
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

fn line(r: &mut impl BufRead) -> String {
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

/// A payload far bigger than a receive buffer (4 KiB here) arrives over
/// hundreds of reads into a buffer reserved for all of it at once (the
/// session's `need`); every byte arrives in order, and the command after it
/// is served.
#[test]
fn a_big_payload_split_across_many_reads_arrives_intact() {
    let server = Server::start(1, 10_000, |_| {});
    let mut c = server.connect();
    let n = 3 << 20;
    let payload: Vec<u8> = (0..n).map(|i| (i * 7 % 251) as u8).collect();
    let mut msg = format!("ECHO {n}\n").into_bytes();
    msg.extend_from_slice(&payload);
    msg.extend_from_slice(b"PING\n");
    let mut w = c.get_ref().try_clone().unwrap();
    // Small writes: the payload reaches the server in many pieces.
    let writer = std::thread::spawn(move || {
        for piece in msg.chunks(1000) {
            w.write_all(piece).unwrap();
        }
    });
    let mut echoed = vec![0u8; n];
    c.read_exact(&mut echoed).unwrap();
    assert!(echoed == payload, "the payload came back changed");
    assert_eq!(line(&mut c), "+PONG\r\n");
    writer.join().unwrap();
    server.stop();
}

/// A payload past the direct-recv threshold, cut at every kind of place:
/// inside its header line, just after it, early in the payload (the rest
/// then comes by direct recvs), at its last byte, at its end (the next
/// command apart), and at several places at once. Every byte comes back in
/// order and the commands around it are served.
#[test]
fn a_big_payload_cut_anywhere_arrives_intact() {
    let server = Server::start(1, 10_000, |_| {});
    let n = 100_000;
    let payload: Vec<u8> = (0..n).map(|i| (i * 13 % 251) as u8).collect();
    let mut msg = format!("PING\nECHO {n}\n").into_bytes();
    let head = msg.len();
    msg.extend_from_slice(&payload);
    msg.extend_from_slice(b"PING\n");
    let cuts: [&[usize]; 7] = [
        &[head - 3],
        &[head],
        &[head + 1],
        &[head + 20_000],
        &[head + n - 1],
        &[head + n],
        &[
            2,
            head - 1,
            head + 5_000,
            head + 60_000,
            head + n - 1,
            head + n + 2,
        ],
    ];
    for cut in cuts {
        let mut c = server.connect();
        let mut from = 0;
        for &to in cut.iter().chain([msg.len()].iter()) {
            c.get_mut().write_all(&msg[from..to]).unwrap();
            // Apart, so that the pieces arrive in separate reads.
            std::thread::sleep(Duration::from_millis(5));
            from = to;
        }
        assert_eq!(line(&mut c), "+PONG\r\n", "cut at {cut:?}");
        let mut echoed = vec![0u8; n];
        c.read_exact(&mut echoed).unwrap();
        assert!(
            echoed == payload,
            "cut at {cut:?}: the payload came back changed"
        );
        assert_eq!(line(&mut c), "+PONG\r\n", "cut at {cut:?}");
    }
    let direct = server.stats[0].direct_recvs.load(Ordering::Relaxed);
    assert!(direct > 0, "no direct recv was made");
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

#[test]
fn parked_connection_resumes_in_order_while_others_are_served() {
    let server = Server::start(1, 10_000, |_| {});
    let mut waiting = server.connect();
    // The WAIT parks the connection; the PING behind it stays buffered.
    waiting.get_mut().write_all(b"WAIT 300\nPING\n").unwrap();
    let mut other = server.connect();
    let started = Instant::now();
    other.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut other), "+PONG\r\n");
    assert!(
        started.elapsed() < Duration::from_millis(250),
        "the core kept serving while a connection was parked"
    );
    assert_eq!(line(&mut waiting), "+WOKE 300\r\n");
    assert_eq!(line(&mut waiting), "+PONG\r\n");
    // Parked again from buffered input: two waits in one write.
    waiting
        .get_mut()
        .write_all(b"WAIT 10\nWAIT 20\nPING\n")
        .unwrap();
    assert_eq!(line(&mut waiting), "+WOKE 10\r\n");
    assert_eq!(line(&mut waiting), "+WOKE 20\r\n");
    assert_eq!(line(&mut waiting), "+PONG\r\n");
    // A connection that closes while parked: its completion is dropped.
    let mut gone = server.connect();
    gone.get_mut().write_all(b"WAIT 100\n").unwrap();
    drop(gone);
    std::thread::sleep(Duration::from_millis(200));
    other.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut other), "+PONG\r\n");
    server.stop();
}

#[test]
fn a_panic_closes_only_its_connection() {
    let server = Server::start(1, 10_000, |_| {});
    let mut bystander = server.connect();
    bystander.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut bystander), "+PONG\r\n");
    for _ in 0..3 {
        let mut culprit = server.connect();
        culprit.get_mut().write_all(b"PING\nPANIC\nPING\n").unwrap();
        assert_eq!(
            line(&mut culprit),
            "",
            "closed without the replies of its batch"
        );
    }
    bystander.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(&mut bystander), "+PONG\r\n");
    let fresh = &mut server.connect();
    fresh.get_mut().write_all(b"PING\n").unwrap();
    assert_eq!(line(fresh), "+PONG\r\n");
    assert_eq!(server.stats[0].panics.load(Ordering::Relaxed), 3);
    server.stop();
}

/// A thread stuck in one request (`SLEEP`) takes no new connections: its
/// peer accepts them from its listener (relief.rs) and serves them while
/// it sleeps, and once it turns again new connections reach it again.
#[test]
fn a_stalled_threads_new_connections_are_served_by_its_peer() {
    let unix = std::env::temp_dir().join(format!("citadel-net-relief-{}.sock", std::process::id()));
    let path = unix.clone();
    let server = Server::start(2, 10_000, |cfg| {
        cfg.unix = Some(super::UnixSocket { path, perm: 0 });
    });
    let who = |c: &mut BufReader<TcpStream>| {
        c.get_mut().write_all(b"WHO\n").unwrap();
        line(c)
    };
    let mut stalled = server.connect();
    let stalled_thread = who(&mut stalled);
    stalled.get_mut().write_all(b"SLEEP 4000\n").unwrap();
    // Past STALL_TICKS of the peer's ticks.
    std::thread::sleep(Duration::from_millis(800));
    for _ in 0..16 {
        let mut c = server.connect();
        c.get_mut().write_all(b"PING\n").unwrap();
        assert_eq!(line(&mut c), "+PONG\r\n");
        assert_ne!(who(&mut c), stalled_thread);
    }
    // Every PING above was answered while the stalled thread still slept.
    stalled.get_mut().set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let still_asleep = stalled.get_mut().peek(&mut byte);
    assert_eq!(
        still_asleep.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock)
    );
    // The Unix socket's connections too (each wakes the first armed
    // accept, which may be the stalled thread's).
    for _ in 0..8 {
        let s = std::os::unix::net::UnixStream::connect(&unix).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = BufReader::new(s);
        c.get_mut().write_all(b"WHO\n").unwrap();
        assert_ne!(line(&mut c), stalled_thread);
    }
    let relieved: u64 = server
        .stats
        .iter()
        .map(|s| s.relieved.load(Ordering::Relaxed))
        .sum();
    assert!(
        relieved > 0,
        "no connection was hashed to the stalled thread"
    );
    stalled.get_mut().set_nonblocking(false).unwrap();
    assert_eq!(line(&mut stalled), "+SLEPT\r\n");
    // It turns again: its listener is its own again.
    std::thread::sleep(Duration::from_millis(300));
    let back = (0..64).any(|_| who(&mut server.connect()) == stalled_thread);
    assert!(
        back,
        "no new connection reached the thread once it turned again"
    );
    server.stop();
}
