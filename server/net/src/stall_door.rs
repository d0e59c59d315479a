//! A thread's own front door while its loop is stalled and no peer can
//! relieve it (a server of one thread; relief.rs needs a peer). A command
//! that runs long (a Lua script past busy-script-time) calls
//! [`serve_stalled`] from inside: the connections waiting on the thread's
//! listeners are accepted and the service answers what they send (Redis
//! answers `-BUSY` while a script runs, and serves SCRIPT KILL and SHUTDOWN
//! NOSAVE), so an operator's `redis-cli SCRIPT KILL` reaches the script it
//! is meant to stop. Once the loop turns again it adopts them as ordinary
//! connections (`Worker::adopt_stalled`).
//!
//! A socket's input is peeked, and only the complete commands the service
//! answered are taken from it; the rest stays in the socket for the session
//! the connection gets when adopted. Connections already on the thread are
//! left alone: their input may sit in completions the loop has not run yet,
//! and answering later input first would reorder their replies.

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use socket2::Socket;

use super::peer_watch::Duplicate;
use super::Door;

/// The most connections taken while stalled (more wait in the backlog).
const MOST_HELD: usize = 64;
/// The most input looked at per connection and call: a longer command
/// is left to the session.
const PEEK: usize = 16 << 10;
/// Reply bytes a held connection may leave unsent before it is closed
/// (a client that pipelines commands without reading them).
const MOST_UNSENT: usize = 1 << 20;

thread_local! {
    static DOOR: RefCell<Option<StallDoor>> = const { RefCell::new(None) };
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

struct Held {
    door: Door,
    stream: Socket,
    path: Option<Arc<str>>,
    unsent: Vec<u8>,
    leave: bool,
}

struct StallDoor {
    listeners: Vec<Duplicate>,
    held: Vec<Held>,
}

/// This thread has no peer: it serves its own door while stalled.
pub(super) fn install(listeners: Vec<Duplicate>) {
    DOOR.set(Some(StallDoor {
        listeners,
        held: Vec::new(),
    }));
}

/// Shutdown: the listeners' duplicates and any held connection go.
pub(super) fn uninstall() {
    DOOR.set(None);
}

/// The connections taken while the loop was stalled, to adopt (their
/// replies sent: one that does not take them all now is closed, as the
/// session it gets could not send them first). Empty on nearly every turn.
pub(super) fn take_held() -> Vec<(Door, Socket, Option<Arc<str>>)> {
    DOOR.with_borrow_mut(|door| {
        let Some(door) = door.as_mut().filter(|d| !d.held.is_empty()) else {
            return Vec::new();
        };
        std::mem::take(&mut door.held)
            .into_iter()
            .filter_map(|mut held| {
                let sent = flush(&mut held) && held.unsent.is_empty();
                sent.then_some((held.door, held.stream, held.path))
            })
            .collect()
    })
}

/// What a service answers with: given a held connection's door and input,
/// it appends replies and says what it took.
pub type Answer<'a> = dyn FnMut(Door, &[u8], &mut Vec<u8>) -> Answered + 'a;

/// From inside a long-running command: accepts the connections waiting on
/// this thread's listeners and answers their complete commands with
/// `answer`. False when the thread has peers to relieve it (nothing is
/// done).
pub fn serve_stalled(answer: &mut Answer<'_>) -> bool {
    DOOR.with_borrow_mut(|door| {
        let Some(door) = door.as_mut() else {
            return false;
        };
        door.accept();
        if !door.held.is_empty() {
            let mut input = vec![0u8; PEEK];
            door.held.retain_mut(|held| serve(held, &mut input, answer));
        }
        true
    })
}

impl StallDoor {
    fn accept(&mut self) {
        for (door, listener, path) in &self.listeners {
            while self.held.len() < MOST_HELD {
                let Ok((stream, _)) = listener.accept() else {
                    break;
                };
                self.held.push(Held {
                    door: *door,
                    stream,
                    path: path.clone(),
                    unsent: Vec::new(),
                    leave: false,
                });
            }
        }
    }
}

/// One held connection's turn; false when it is closed.
fn serve(held: &mut Held, input: &mut [u8], answer: &mut Answer<'_>) -> bool {
    if !flush(held) {
        return false;
    }
    if held.leave || !held.unsent.is_empty() {
        return true;
    }
    let fd = held.stream.as_raw_fd();
    let n = match recv(fd, input, libc::MSG_PEEK) {
        Ok(0) => return false,
        Ok(n) => n,
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
        Err(_) => return false,
    };
    let mut out = Vec::new();
    let done = answer(held.door, &input[..n], &mut out);
    let consumed = done.consumed.min(n);
    // The answered commands leave the socket; they were peeked, so they
    // are there to take.
    if consumed > 0 && recv(fd, &mut input[..consumed], 0).ok() != Some(consumed) {
        return false;
    }
    held.unsent = out;
    held.leave = done.leave;
    if !flush(held) {
        return false;
    }
    if done.close {
        let _ = held.stream.shutdown(std::net::Shutdown::Write);
        return false;
    }
    true
}

/// Sends what it can of `held`'s replies; false when the connection is
/// gone or owes more than it may.
fn flush(held: &mut Held) -> bool {
    while !held.unsent.is_empty() {
        match send(held.stream.as_raw_fd(), &held.unsent) {
            Ok(n) => drop(held.unsent.drain(..n)),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => return false,
        }
    }
    held.unsent.len() <= MOST_UNSENT
}

/// recv(2) that never waits.
fn recv(fd: i32, buf: &mut [u8], flags: i32) -> std::io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes of writes; `fd` is an
    // open socket this thread owns (a held connection).
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
    // open socket this thread owns (a held connection).
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
