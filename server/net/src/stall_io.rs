//! The socket side of answering while a thread is stalled in a long
//! command (`stall_door.rs` for connections accepted meanwhile,
//! `stall_peers.rs` for the thread's own): who sent the input, what the
//! service made of it, and plain non-blocking reads and sends beside the
//! ring (a socket's input peeked, then only what was answered taken).

use super::Door;

/// The most input looked at per connection and call: a longer command
/// is left to the session.
pub(super) const PEEK: usize = 16 << 10;

/// Who sent the input a service answers while stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub door: Door,
    /// The connection's id: the one its session was opened with
    /// (`Service::open`), or for one accepted while stalled, the one its
    /// session will be opened with once the loop adopts it.
    pub id: u64,
    /// False: accepted while stalled, no session yet.
    pub has_session: bool,
}

/// What the service made of the start of a held connection's input.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// Bytes of the complete commands it answered (replies appended).
    pub consumed: usize,
    /// Close the connection after the replies (QUIT, SHUTDOWN).
    pub close: bool,
    /// It left a command to the session: take nothing more until adopted.
    pub leave: bool,
}

/// What a service answers with: given who sent it and the start of a
/// connection's input, it appends replies and says what it took.
pub type Answer<'a> = dyn FnMut(Caller, &[u8], &mut Vec<u8>) -> Answered + 'a;

/// What a look at a socket's input found.
pub(super) enum Peeked {
    /// No input yet.
    Nothing,
    /// Closed by the peer, or an error.
    Gone,
    /// The commands answered at the start of the input (taken from the
    /// socket): their replies, and what the service said of them.
    Taken { replies: Vec<u8>, done: Answered },
}

/// Peeks at `fd`'s input (up to `input`'s length), has `answer` answer its
/// complete commands, and takes those from the socket.
pub(super) fn peek_and_take(
    fd: i32,
    caller: Caller,
    input: &mut [u8],
    answer: &mut Answer<'_>,
) -> Peeked {
    let n = match recv(fd, input, libc::MSG_PEEK) {
        Ok(0) => return Peeked::Gone,
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Peeked::Nothing,
        Err(_) => return Peeked::Gone,
    };
    let mut replies = Vec::new();
    let done = answer(caller, &input[..n], &mut replies);
    let consumed = done.consumed.min(n);
    // The answered commands leave the socket; they were peeked, so they
    // are there to take.
    if consumed > 0 && recv(fd, &mut input[..consumed], 0).ok() != Some(consumed) {
        return Peeked::Gone;
    }
    Peeked::Taken { replies, done }
}

/// Sends what `fd` takes now of `unsent`; false when the connection is gone.
pub(super) fn flush_unsent(fd: i32, unsent: &mut Vec<u8>) -> bool {
    while !unsent.is_empty() {
        match send(fd, unsent) {
            Ok(n) => drop(unsent.drain(..n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    true
}

/// recv(2) that never waits.
fn recv(fd: i32, buf: &mut [u8], flags: i32) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes; `fd` is an
    // open socket this thread owns (a held connection, or one of the
    // thread's own connections, open while the loop is stalled).
    let n = unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}

/// send(2) that never waits nor raises SIGPIPE.
fn send(fd: i32, buf: &[u8]) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of reads; `fd` is an
    // open socket this thread owns (a held connection, or one of the
    // thread's own connections, open while the loop is stalled).
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| std::io::Error::last_os_error())
}
