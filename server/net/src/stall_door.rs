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
//! answered the same way when nothing of theirs is pending in the loop
//! (`stall_peers.rs`, on a thread of any count).

use std::cell::RefCell;
use std::os::fd::AsRawFd;
use std::sync::Arc;

use socket2::Socket;

use super::peer_watch::Duplicate;
use super::stall_io::{flush_unsent, peek_and_take, Answer, Caller, Peeked, PEEK};
use super::Door;

/// The most connections taken while stalled (more wait in the backlog).
const MOST_HELD: usize = 64;
/// Reply bytes a held connection may leave unsent before it is closed
/// (a client that pipelines commands without reading them).
const MOST_UNSENT: usize = 1 << 20;

thread_local! {
    static DOOR: RefCell<Option<StallDoor>> = const { RefCell::new(None) };
}

struct Held {
    door: Door,
    /// The id its session will be opened with.
    id: u64,
    stream: Socket,
    path: Option<Arc<str>>,
    unsent: Vec<u8>,
    leave: bool,
}

struct StallDoor {
    listeners: Vec<Duplicate>,
    thread: usize,
    held: Vec<Held>,
}

/// This thread has no peer: it serves its own door while stalled.
pub(super) fn install(listeners: Vec<Duplicate>, thread: usize) {
    DOOR.set(Some(StallDoor {
        listeners,
        thread,
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
pub(super) fn take_held() -> Vec<(Door, Socket, Option<Arc<str>>, u64)> {
    DOOR.with_borrow_mut(|door| {
        let Some(door) = door.as_mut().filter(|d| !d.held.is_empty()) else {
            return Vec::new();
        };
        std::mem::take(&mut door.held)
            .into_iter()
            .filter_map(|mut held| {
                let sent = flush(&mut held) && held.unsent.is_empty();
                sent.then_some((held.door, held.stream, held.path, held.id))
            })
            .collect()
    })
}

/// From inside a long-running command: accepts the connections waiting on
/// this thread's listeners when it has no peer to relieve it, and answers
/// their complete commands with `answer`, and those of the quiet
/// connections already on the thread (`stall_peers.rs`).
pub fn serve_stalled(answer: &mut Answer<'_>) {
    let mut input = Vec::new();
    DOOR.with_borrow_mut(|door| {
        let Some(door) = door.as_mut() else {
            return;
        };
        door.accept();
        if !door.held.is_empty() {
            input.resize(PEEK, 0);
            door.held.retain_mut(|held| serve(held, &mut input, answer));
        }
    });
    super::stall_peers::serve(answer, &mut input);
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
                    id: super::connection_id::connection_id(self.thread),
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
    let caller = Caller {
        door: held.door,
        id: held.id,
        has_session: false,
    };
    let (replies, done) = match peek_and_take(fd, caller, input, answer) {
        Peeked::Nothing => return true,
        Peeked::Gone => return false,
        Peeked::Taken { replies, done } => (replies, done),
    };
    held.unsent = replies;
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
    flush_unsent(held.stream.as_raw_fd(), &mut held.unsent) && held.unsent.len() <= MOST_UNSENT
}
