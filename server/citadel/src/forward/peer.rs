//! One blocking connection to a peer node, as a forwarding worker holds
//! it: connected and greeted once (protocol, password, no forwarding on
//! its side), then requests written and replies read in order, each read
//! bounded by the request's deadline.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use super::reply::reply_len;
use super::{ForwardError, LinkKey};

pub struct PeerConn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes of `buf` already handed out as replies.
    start: usize,
}

/// RESP multibulk of the `count` `words`, appended to `out`.
pub fn encode_command<'a>(
    out: &mut Vec<u8>,
    count: usize,
    words: impl IntoIterator<Item = &'a [u8]>,
) {
    out.extend_from_slice(format!("*{count}\r\n").as_bytes());
    for w in words {
        out.extend_from_slice(format!("${}\r\n", w.len()).as_bytes());
        out.extend_from_slice(w);
        out.extend_from_slice(b"\r\n");
    }
}

/// Whether the peer has closed `stream` (EOF or a reset waiting to be
/// read), looked at without blocking and without taking any byte: an idle
/// pooled connection to a peer that restarted is replaced before a request
/// is written into it, even when its reader thread has not run since.
pub fn closed_by_peer(stream: &TcpStream) -> bool {
    let mut byte = 0u8;
    // SAFETY: `recv` writes at most one byte into `byte`, which lives for
    // the call; MSG_PEEK leaves the byte queued for the reader thread and
    // MSG_DONTWAIT keeps the shared file description blocking for it.
    let got = unsafe {
        libc::recv(
            stream.as_raw_fd(),
            (&mut byte as *mut u8).cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match got {
        0 => true,
        n if n > 0 => false,
        _ => {
            let e = std::io::Error::last_os_error();
            !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
            )
        }
    }
}

fn remaining(deadline: Instant) -> Result<Duration, ForwardError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ForwardError::Timeout)
    } else {
        Ok(left)
    }
}

impl PeerConn {
    /// Connects to the peer of `link` and greets it: `HELLO 3` for a
    /// RESP3 client's requests, AUTH with `password`, CLUSTER NOPROXY so
    /// the peer answers -MOVED rather than forwarding again (no loops),
    /// and on a tracking link `CLIENT TRACKING on` (default mode: the
    /// peer pushes an invalidation for each key read here once it changes).
    pub(super) fn open(
        link: &LinkKey,
        password: Option<&str>,
        deadline: Instant,
    ) -> Result<PeerConn, ForwardError> {
        let (addr, resp3) = (link.addr.as_str(), link.resp3);
        let target = addr
            .to_socket_addrs()
            .map_err(ForwardError::Io)?
            .next()
            .ok_or_else(|| ForwardError::Handshake(format!("{addr} resolves to nothing")))?;
        let stream =
            TcpStream::connect_timeout(&target, remaining(deadline)?).map_err(ForwardError::Io)?;
        let mut conn = PeerConn::over(stream).map_err(ForwardError::Io)?;
        let mut greet = Vec::new();
        let mut replies = 1;
        match (resp3, password) {
            (true, Some(p)) => {
                let hello = [&b"HELLO"[..], b"3", b"AUTH", b"default", p.as_bytes()];
                encode_command(&mut greet, hello.len(), hello)
            }
            (true, None) => encode_command(&mut greet, 2, [&b"HELLO"[..], b"3"]),
            (false, Some(p)) => encode_command(&mut greet, 2, [&b"AUTH"[..], p.as_bytes()]),
            (false, None) => replies = 0,
        }
        encode_command(&mut greet, 2, [&b"CLUSTER"[..], b"NOPROXY"]);
        if link.tracking {
            encode_command(&mut greet, 3, [&b"CLIENT"[..], b"TRACKING", b"on"]);
            replies += 1;
        }
        conn.send(&greet)?;
        for _ in 0..=replies {
            let reply = conn.read_reply(deadline)?;
            if reply.starts_with(b"-") {
                let text = String::from_utf8_lossy(&reply);
                return Err(ForwardError::Handshake(text.trim_end().to_string()));
            }
        }
        Ok(conn)
    }

    /// A connection over `stream`, connected and not greeted (outbound
    /// MIGRATE talks to any Redis, which gets no greeting).
    pub fn over(stream: TcpStream) -> std::io::Result<PeerConn> {
        stream.set_nodelay(true)?;
        Ok(PeerConn {
            stream,
            buf: Vec::with_capacity(16 * 1024),
            start: 0,
        })
    }

    /// Bounds each write of `send` (None: unbounded, as forward links,
    /// whose reader closes a stuck connection, write).
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> std::io::Result<()> {
        self.stream.set_write_timeout(timeout)
    }

    pub fn send(&mut self, request: &[u8]) -> Result<(), ForwardError> {
        self.stream.write_all(request).map_err(ForwardError::Io)
    }

    /// Closes both directions (a writer blocked on the other handle wakes).
    pub fn shutdown(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }

    /// A second handle on the socket (the writer's, while this one reads).
    pub fn writer(&self) -> std::io::Result<TcpStream> {
        self.stream.try_clone()
    }

    /// The next reply, whole, as the peer wrote it; `Timeout` once
    /// `deadline` passed (a reply begun stays buffered for the next call).
    pub fn read_reply(&mut self, deadline: Instant) -> Result<Vec<u8>, ForwardError> {
        loop {
            let pending = &self.buf[self.start..];
            if let Some(len) = reply_len(pending).map_err(|_| ForwardError::Malformed)? {
                let reply = pending[..len].to_vec();
                self.start += len;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                return Ok(reply);
            }
            self.stream
                .set_read_timeout(Some(remaining(deadline)?))
                .map_err(ForwardError::Io)?;
            let old = self.buf.len();
            self.buf.resize(old + 16 * 1024, 0);
            let got = self.stream.read(&mut self.buf[old..]);
            match got {
                Ok(0) => {
                    self.buf.truncate(old);
                    return Err(ForwardError::Closed);
                }
                Ok(n) => self.buf.truncate(old + n),
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(match e.kind() {
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
                            ForwardError::Timeout
                        }
                        _ => ForwardError::Io(e),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    use super::closed_by_peer;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (theirs, _) = listener.accept().unwrap();
        (ours, theirs)
    }

    #[test]
    fn an_open_idle_connection_is_not_closed() {
        let (ours, _theirs) = pair();
        assert!(!closed_by_peer(&ours));
    }

    #[test]
    fn unread_bytes_stay_for_the_reader() {
        let (mut ours, mut theirs) = pair();
        theirs.write_all(b"+OK\r\n").unwrap();
        // Wait until the bytes are queued, then look twice: nothing taken.
        let mut buf = [0u8; 5];
        while ours.peek(&mut buf).unwrap() < 5 {}
        assert!(!closed_by_peer(&ours));
        assert!(!closed_by_peer(&ours));
        std::io::Read::read_exact(&mut ours, &mut buf).unwrap();
        assert_eq!(&buf, b"+OK\r\n");
    }

    #[test]
    fn a_connection_the_peer_closed_is_closed_before_anything_is_read() {
        let (ours, theirs) = pair();
        drop(theirs);
        // The FIN crosses loopback at once; allow the scheduler a moment.
        let closed = (0..1000).any(|_| {
            std::thread::sleep(std::time::Duration::from_millis(1));
            closed_by_peer(&ours)
        });
        assert!(closed);
    }
}
