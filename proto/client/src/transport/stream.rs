//! The byte-stream transports, TCP and Unix sockets: frames are written
//! as they are and read back through a buffer, header then body.

use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown as Both, TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::{FrameReceiver, FrameSender, Shutdown, Transport};
use crate::error::Result;
use crate::frame::{read_frame, Frame};

/// Read buffer: many small replies per system call.
const READ_BUFFER: usize = 64 << 10;

/// What the two socket kinds have in common.
trait Socket: Read + Write + Send + Sync + Sized + 'static {
    fn try_clone(&self) -> io::Result<Self>;
    fn shutdown_both(&self) -> io::Result<()>;
}

impl Socket for TcpStream {
    fn try_clone(&self) -> io::Result<Self> {
        TcpStream::try_clone(self)
    }
    fn shutdown_both(&self) -> io::Result<()> {
        self.shutdown(Both::Both)
    }
}

impl Socket for UnixStream {
    fn try_clone(&self) -> io::Result<Self> {
        UnixStream::try_clone(self)
    }
    fn shutdown_both(&self) -> io::Result<()> {
        self.shutdown(Both::Both)
    }
}

struct Sender<S>(S);

impl<S: Socket> FrameSender for Sender<S> {
    fn send(&mut self, frames: &[u8]) -> Result<()> {
        Ok(self.0.write_all(frames)?)
    }
}

struct Receiver<S>(BufReader<S>);

impl<S: Socket> FrameReceiver for Receiver<S> {
    fn recv_into(&mut self, deliver: &mut dyn FnMut(Frame)) -> Result<bool> {
        Ok(read_frame(&mut self.0)?.map(deliver).is_some())
    }
}

/// Shuts a socket down (the shm transport's handshake socket too).
pub(super) struct Closer<S>(pub S);

impl<S: Socket> Shutdown for Closer<S> {
    fn shutdown(&self) {
        // Already closed by the peer: nothing left to do.
        let _ = self.0.shutdown_both();
    }
}

fn split<S: Socket>(socket: S) -> Result<Transport> {
    let reader = BufReader::with_capacity(READ_BUFFER, socket.try_clone()?);
    let closer = socket.try_clone()?;
    Ok(Transport {
        sender: Box::new(Sender(socket)),
        receiver: Box::new(Receiver(reader)),
        shutdown: Box::new(Closer(closer)),
        caller_receive: None,
    })
}

pub(super) fn connect_tcp(addr: &str, timeout: Option<Duration>) -> Result<Transport> {
    let socket = match timeout {
        None => TcpStream::connect(addr)?,
        Some(t) => connect_any(addr, t)?,
    };
    // Requests are whole frames written at once: never wait for more.
    socket.set_nodelay(true)?;
    split(socket)
}

/// The first address of `addr` that accepts within `timeout`.
fn connect_any(addr: &str, timeout: Duration) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

pub(super) fn connect_unix(path: &Path) -> Result<Transport> {
    split(UnixStream::connect(path)?)
}
