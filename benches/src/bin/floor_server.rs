//! The floor for `benches/server-cpu.sh`: a server that does the least a RESP server
//! can do per request. It reads, counts the commands naively (every `*` byte starts
//! one: true of redis-benchmark's and the loadgen's GET/SET, whose keys and values
//! hold no `*`), and answers `$-1\r\n` to each. No parsing, no cache: what it costs
//! per request is the kernel's and the event loop's share, the part of Citadel's CPU
//! that command work cannot explain.
//!
//! Usage: floor-server --port PORT [--uring]
//! Without `--uring` it runs one epoll loop (level-triggered, one 64 KiB read per
//! ready socket and turn, like redis-server's loop); with it, one io_uring loop (one
//! recv and at most one send in flight per connection, all submitted together once
//! per turn, DEFER_TASKRUN + SINGLE_ISSUER where the kernel has them).
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

/// Reply bytes repeated: a send of N replies that starts at any offset of the
/// period is a slice of this buffer.
const REPLY: &[u8] = b"$-1\r\n";
const REPLIES: usize = 4096;
const READ_BUF: usize = 64 * 1024;

/// One connection's bookkeeping, shared by both loops.
struct Conn {
    fd: RawFd,
    buf: Vec<u8>,
    /// Reply bytes counted but not yet sent.
    owed: usize,
    /// Reply bytes sent so far (its remainder mod 5 is where the next send starts).
    sent: usize,
}

impl Conn {
    fn new(fd: RawFd) -> Self {
        Conn {
            fd,
            buf: vec![0; READ_BUF],
            owed: 0,
            sent: 0,
        }
    }

    fn count(&mut self, n: usize) {
        let commands = self.buf[..n].iter().filter(|&&b| b == b'*').count();
        self.owed += commands * REPLY.len();
    }

    /// The next bytes to send: up to one whole reply buffer's worth.
    fn pending<'a>(&self, replies: &'a [u8]) -> &'a [u8] {
        let start = self.sent % REPLY.len();
        &replies[start..start + self.owed.min(replies.len() - REPLY.len())]
    }

    fn advance(&mut self, n: usize) {
        self.owed -= n;
        self.sent += n;
    }
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let port = args
        .iter()
        .position(|a| a == "--port")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "usage: floor-server --port PORT [--uring]",
            )
        })?;
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    let replies = REPLY.repeat(REPLIES);
    if args.iter().any(|a| a == "--uring") {
        uring::serve(listener, &replies)
    } else {
        epoll::serve(listener, &replies)
    }
}

fn check(ret: isize) -> io::Result<usize> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

fn set_nodelay(fd: RawFd) {
    let one: libc::c_int = 1;
    // SAFETY: setsockopt reads `one` (a live c_int) for the given length.
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

mod epoll {
    use super::*;
    use std::collections::HashMap;

    pub fn serve(listener: TcpListener, replies: &[u8]) -> io::Result<()> {
        listener.set_nonblocking(true)?;
        let lfd = listener.as_raw_fd();
        // SAFETY: plain syscall, no pointers.
        let ep = check(unsafe { libc::epoll_create1(0) } as isize)? as RawFd;
        add(ep, lfd)?;
        let mut conns: HashMap<RawFd, Conn> = HashMap::new();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            // SAFETY: `events` is a live buffer of `events.len()` entries.
            let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
            let Ok(n) = check(n as isize) else { continue };
            for e in &events[..n] {
                let fd = e.u64 as RawFd;
                if fd == lfd {
                    while let Ok((s, _)) = listener.accept() {
                        s.set_nonblocking(true)?;
                        let fd = s.into_raw_fd();
                        set_nodelay(fd);
                        add(ep, fd)?;
                        conns.insert(fd, Conn::new(fd));
                    }
                } else if let Some(c) = conns.get_mut(&fd) {
                    if !serve_one(c, replies) {
                        // SAFETY: `fd` is this connection's socket, closed once here.
                        unsafe { libc::close(fd) };
                        conns.remove(&fd);
                    }
                }
            }
        }
    }

    /// One read, then write every owed reply. False when the connection is done.
    fn serve_one(c: &mut Conn, replies: &[u8]) -> bool {
        // SAFETY: reads into `c.buf`, a live buffer of its length.
        let n = unsafe { libc::read(c.fd, c.buf.as_mut_ptr().cast(), c.buf.len()) };
        match check(n) {
            Ok(0) => return false,
            Ok(n) => c.count(n),
            Err(e) => return e.kind() == io::ErrorKind::WouldBlock,
        }
        while c.owed > 0 {
            let out = c.pending(replies);
            // SAFETY: writes from `out`, a live slice of its length.
            let n = unsafe { libc::write(c.fd, out.as_ptr().cast(), out.len()) };
            match check(n) {
                Ok(n) => c.advance(n),
                // A floor for request/response clients: a full socket buffer just spins.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(_) => return false,
            }
        }
        true
    }

    fn add(ep: RawFd, fd: RawFd) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `ev` is a live epoll_event for the duration of the call.
        check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut ev) } as isize).map(drop)
    }
}

mod uring {
    use super::*;
    use io_uring::{opcode, squeue, types, IoUring};

    const ACCEPT: u64 = u64::MAX;
    const SEND_BIT: u64 = 1 << 32;

    fn ring() -> io::Result<IoUring> {
        IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .build(1024)
            .or_else(|_| IoUring::builder().setup_coop_taskrun().build(1024))
            .or_else(|_| IoUring::new(1024))
    }

    /// Pushes one entry, submitting first when the queue is full.
    fn push(ring: &mut IoUring, sqe: squeue::Entry) -> io::Result<()> {
        // SAFETY: every buffer an entry points at (a connection's `buf`, the shared
        // reply buffer) outlives the loop, and a connection's buffer is only reused
        // after its completion arrived.
        while unsafe { ring.submission().push(&sqe) }.is_err() {
            ring.submit()?;
        }
        Ok(())
    }

    fn recv(ring: &mut IoUring, i: usize, c: &mut Conn) -> io::Result<()> {
        let sqe = opcode::Recv::new(types::Fd(c.fd), c.buf.as_mut_ptr(), c.buf.len() as u32)
            .build()
            .user_data(i as u64);
        push(ring, sqe)
    }

    fn send(ring: &mut IoUring, i: usize, c: &Conn, replies: &[u8]) -> io::Result<()> {
        let out = c.pending(replies);
        let sqe = opcode::Send::new(types::Fd(c.fd), out.as_ptr(), out.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(i as u64 | SEND_BIT);
        push(ring, sqe)
    }

    pub fn serve(listener: TcpListener, replies: &[u8]) -> io::Result<()> {
        let mut ring = ring()?;
        let lfd = listener.as_raw_fd();
        // Boxed so a connection's buffer address never moves while a recv holds it.
        let mut conns: Vec<Option<Box<Conn>>> = Vec::new();
        let accept = || {
            opcode::Accept::new(types::Fd(lfd), std::ptr::null_mut(), std::ptr::null_mut())
                .build()
                .user_data(ACCEPT)
        };
        push(&mut ring, accept())?;
        let mut done = Vec::new();
        loop {
            ring.submit_and_wait(1)?;
            done.extend(ring.completion().map(|cqe| (cqe.user_data(), cqe.result())));
            for (data, res) in done.drain(..) {
                if data == ACCEPT {
                    if res >= 0 {
                        set_nodelay(res);
                        let mut c = Box::new(Conn::new(res));
                        let i = conns
                            .iter()
                            .position(Option::is_none)
                            .unwrap_or(conns.len());
                        recv(&mut ring, i, &mut c)?;
                        if i == conns.len() {
                            conns.push(Some(c));
                        } else {
                            conns[i] = Some(c);
                        }
                    }
                    push(&mut ring, accept())?;
                    continue;
                }
                let i = (data & !SEND_BIT) as usize;
                let Some(c) = conns[i].as_mut() else { continue };
                let sending = data & SEND_BIT != 0;
                match (sending, res) {
                    (_, r) if r < 0 || (!sending && r == 0) => {
                        // SAFETY: this connection's socket, closed once; any other
                        // operation on it completes with an error and finds no slot.
                        unsafe { libc::close(c.fd) };
                        conns[i] = None;
                    }
                    (true, n) => {
                        c.advance(n as usize);
                        if c.owed > 0 {
                            send(&mut ring, i, c, replies)?;
                        } else {
                            recv(&mut ring, i, c)?;
                        }
                    }
                    (false, n) => {
                        c.count(n as usize);
                        if c.owed > 0 {
                            send(&mut ring, i, c, replies)?;
                        } else {
                            recv(&mut ring, i, c)?;
                        }
                    }
                }
            }
        }
    }
}
