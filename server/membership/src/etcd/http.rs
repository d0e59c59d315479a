//! The little HTTP/1.1 that etcd's JSON gateway needs: one POST per
//! connection (`Connection: close`) with a JSON body, and a reply body
//! read whole (unary calls) or as it streams (the watch). Every socket
//! operation of a call is bounded by the call's deadline, so no call can
//! outlast the lease it is trying to keep.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// The most a unary reply (or a header section) may hold.
const MAX_BODY: u64 = 64 << 20;
const MAX_HEADER_LINE: u64 = 16 << 10;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("no address for {0}")]
    NoAddress(String),
    #[error("the call ran past its deadline")]
    DeadlinePassed,
    #[error("malformed HTTP reply: {0}")]
    Malformed(&'static str),
    #[error("reply body over {MAX_BODY} bytes")]
    TooLarge,
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("reply is not JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A reply whose body is being read: `Read` yields the body, undone from
/// its chunked or length framing.
pub struct Reply {
    pub status: u16,
    conn: BufReader<Conn>,
    framing: Framing,
    /// A second handle on the socket, to cut a streaming read short.
    socket: TcpStream,
}

enum Framing {
    Length(u64),
    Chunked { left_in_chunk: u64, done: bool },
    UntilClose,
}

/// The socket with the call's deadline applied before every read.
struct Conn {
    stream: TcpStream,
    deadline: Option<Instant>,
}

impl Conn {
    fn arm(&self) -> io::Result<()> {
        match self.deadline {
            None => self.stream.set_read_timeout(None),
            Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => self.stream.set_read_timeout(Some(left)),
                _ => Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed")),
            },
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.arm()?;
        self.stream.read(buf)
    }
}

/// POSTs `body` to `http://{addr}{path}` and returns the reply once its
/// header is read; the body streams from the returned [`Reply`]. With a
/// `deadline`, connecting, sending and every read of the reply end by
/// then; without one, the body may be read for as long as it flows.
pub fn post(
    addr: &str,
    path: &str,
    body: &[u8],
    deadline: Option<Instant>,
) -> Result<Reply, HttpError> {
    let stream = connect(addr, deadline)?;
    stream.set_nodelay(true)?;
    let write_timeout = deadline.map(left_until).transpose()?;
    stream.set_write_timeout(write_timeout)?;
    let host = addr;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    (&stream).write_all(&request)?;
    let socket = stream.try_clone()?;
    let mut conn = BufReader::new(Conn { stream, deadline });
    let (status, framing) = read_head(&mut conn)?;
    Ok(Reply {
        status,
        conn,
        framing,
        socket,
    })
}

/// POSTs a JSON `body` and reads the whole JSON reply; a status other
/// than 200 is an error carrying etcd's message.
pub fn call(
    addr: &str,
    path: &str,
    body: &serde_json::Value,
    deadline: Instant,
) -> Result<serde_json::Value, HttpError> {
    let reply = post(addr, path, body.to_string().as_bytes(), Some(deadline))?;
    let status = reply.status;
    let mut bytes = Vec::new();
    reply.take(MAX_BODY + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_BODY {
        return Err(HttpError::TooLarge);
    }
    if status != 200 {
        return Err(HttpError::Status {
            status,
            body: String::from_utf8_lossy(&bytes).trim().to_string(),
        });
    }
    Ok(serde_json::from_slice(&bytes)?)
}

impl Reply {
    /// Lifts the call's deadline from the rest of the body (a stream that
    /// flows for as long as the server keeps it).
    pub fn without_deadline(mut self) -> Reply {
        self.conn.get_mut().deadline = None;
        self
    }

    /// A handle that ends this reply's reads from another thread.
    pub fn closer(&self) -> io::Result<Closer> {
        Ok(Closer(self.socket.try_clone()?))
    }
}

/// Shuts a streaming reply's socket, so a thread blocked reading it wakes.
pub struct Closer(TcpStream);

impl Closer {
    pub fn close(&self) {
        // An error means the socket is already shut or gone: nothing to wake.
        let _ = self.0.shutdown(Shutdown::Both);
    }
}

impl Read for Reply {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match &mut self.framing {
            Framing::UntilClose => self.conn.read(buf),
            Framing::Length(left) => {
                if *left == 0 {
                    return Ok(0);
                }
                let want = buf.len().min(usize::try_from(*left).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left -= n as u64;
                Ok(n)
            }
            Framing::Chunked {
                left_in_chunk,
                done,
            } => {
                if *done {
                    return Ok(0);
                }
                if *left_in_chunk == 0 {
                    let size = read_chunk_size(&mut self.conn)?;
                    if size == 0 {
                        *done = true;
                        skip_trailers(&mut self.conn)?;
                        return Ok(0);
                    }
                    *left_in_chunk = size;
                }
                let want = buf
                    .len()
                    .min(usize::try_from(*left_in_chunk).unwrap_or(usize::MAX));
                let n = self.conn.read(&mut buf[..want])?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                *left_in_chunk -= n as u64;
                if *left_in_chunk == 0 {
                    expect_crlf(&mut self.conn)?;
                }
                Ok(n)
            }
        }
    }
}

fn left_until(deadline: Instant) -> Result<Duration, HttpError> {
    match deadline.checked_duration_since(Instant::now()) {
        Some(left) if !left.is_zero() => Ok(left),
        _ => Err(HttpError::DeadlinePassed),
    }
}

fn connect(addr: &str, deadline: Option<Instant>) -> Result<TcpStream, HttpError> {
    let mut last = None;
    for sockaddr in addr.to_socket_addrs()? {
        let attempt = match deadline {
            Some(d) => TcpStream::connect_timeout(&sockaddr, left_until(d)?),
            None => TcpStream::connect(sockaddr),
        };
        match attempt {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => e.into(),
        None => HttpError::NoAddress(addr.to_string()),
    })
}

/// One header-section line without its CRLF.
fn read_line(conn: &mut impl BufRead) -> Result<String, HttpError> {
    let mut line = Vec::new();
    conn.take(MAX_HEADER_LINE).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        return Err(HttpError::Malformed("truncated header line"));
    }
    let text = String::from_utf8(line).map_err(|_| HttpError::Malformed("header not UTF-8"))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_string())
}

/// The status and the body's framing, from the status line and headers.
fn read_head(conn: &mut impl BufRead) -> Result<(u16, Framing), HttpError> {
    let status_line = read_line(conn)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or(HttpError::Malformed("bad status line"))?;
    let mut framing = Framing::UntilClose;
    loop {
        let line = read_line(conn)?;
        if line.is_empty() {
            return Ok((status, framing));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(HttpError::Malformed("header without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked {
                left_in_chunk: 0,
                done: false,
            };
        } else if name.eq_ignore_ascii_case("content-length")
            && !matches!(framing, Framing::Chunked { .. })
        {
            let len = value
                .parse()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            framing = Framing::Length(len);
        }
    }
}

fn malformed(what: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

fn read_chunk_size(conn: &mut impl BufRead) -> io::Result<u64> {
    let line = read_line(conn).map_err(|e| match e {
        HttpError::Io(e) => e,
        _ => malformed("bad chunk size line"),
    })?;
    let hex = line.split(';').next().unwrap_or("").trim();
    u64::from_str_radix(hex, 16).map_err(|_| malformed("bad chunk size"))
}

fn expect_crlf(conn: &mut impl BufRead) -> io::Result<()> {
    let mut crlf = [0u8; 2];
    conn.read_exact(&mut crlf)?;
    if &crlf != b"\r\n" {
        return Err(malformed("chunk not followed by CRLF"));
    }
    Ok(())
}

fn skip_trailers(conn: &mut impl BufRead) -> io::Result<()> {
    loop {
        let line = read_line(conn).map_err(|_| malformed("bad trailer"))?;
        if line.is_empty() {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves `reply` verbatim to one connection and returns what the
    /// client sent.
    fn serve_once(reply: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut request = vec![0u8; 4096];
            let n = s.read(&mut request).unwrap();
            s.write_all(reply).unwrap();
            String::from_utf8_lossy(&request[..n]).to_string()
        });
        (addr, server)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn chunked_replies_are_reassembled() {
        let (addr, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5\r\n{\"a\":\r\n3;ext=1\r\n 1}\r\n0\r\n\r\n",
        );
        let v = call(&addr, "/v3/x", &serde_json::json!({"k": 1}), soon()).unwrap();
        assert_eq!(v, serde_json::json!({"a": 1}));
        let request = server.join().unwrap();
        assert!(request.starts_with("POST /v3/x HTTP/1.1\r\n"));
        assert!(request.ends_with("\r\n\r\n{\"k\":1}"));
    }

    #[test]
    fn length_framed_errors_carry_the_status_and_message() {
        let (addr, _server) =
            serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nno leasex");
        match call(&addr, "/", &serde_json::json!({}), soon()) {
            Err(HttpError::Status { status: 404, body }) => assert_eq!(body, "no leasex"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_and_silence_are_errors_not_hangs() {
        let (addr, _server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
        assert!(matches!(
            call(&addr, "/", &serde_json::json!({}), soon()),
            Err(HttpError::Malformed(_))
        ));
        // A listener that accepts but never answers: the deadline ends it.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = silent.local_addr().unwrap().to_string();
        let deadline = Instant::now() + Duration::from_millis(100);
        assert!(call(&addr, "/", &serde_json::json!({}), deadline).is_err());
    }
}
