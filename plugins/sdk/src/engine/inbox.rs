//! What other threads tell the serve loop: answers to requests, records to
//! push, a stop request. A mutex-protected queue plus an eventfd that the
//! loop polls beside its rings; the eventfd is written only while the loop
//! is parked, so answers that arrive while it is busy cost no system call.
//!
//! ORDERING: the loop sets `parked`, then checks the queue under the lock
//! before it blocks; a sender pushes under the lock, then reads `parked`.
//! If the loop's check took the lock first, its store to `parked` happens
//! before the sender's load (lock release/acquire), so the sender sees it
//! and rings; otherwise the check sees the message and the loop does not
//! block. The loop drains the eventfd before it takes the queue, so a ring
//! is never left for a message already taken, at worst for none (a
//! spurious wake-up).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use citadel_proto::{EventFd, Format, Kind};

use crate::message::Reply;

/// One message to the loop.
#[derive(Debug)]
pub(crate) enum Msg {
    /// The answer to request `seq` of ring pair `pair`; `None`: dropped
    /// without one (a request gets a handler-failed error).
    Answer {
        pair: usize,
        seq: u64,
        reply: Option<Reply>,
    },
    /// A key changed (batched with keys that arrive together).
    Invalidate(Vec<u8>),
    /// Changes may have been missed.
    Resync,
    /// Any other unsolicited record.
    Push {
        kind: Kind,
        format: Format,
        payload: Vec<u8>,
    },
    /// Finish what is in hand, then return.
    Stop,
}

#[derive(Debug)]
pub(crate) struct Inbox {
    queue: Mutex<Vec<Msg>>,
    parked: AtomicBool,
    bell: EventFd,
}

impl Inbox {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            queue: Mutex::new(Vec::new()),
            parked: AtomicBool::new(false),
            bell: EventFd::new()?,
        })
    }

    /// Queues `msg` and wakes the loop if it is parked. After the loop has
    /// returned the message is dropped unread.
    pub(crate) fn send(&self, msg: Msg) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(msg);
        // ORDERING: see the module comment (the lock orders this load).
        if self.parked.load(Ordering::SeqCst) {
            if let Err(e) = self.bell.signal() {
                tracing::error!("waking the serve loop: {e}");
            }
        }
    }

    /// Moves every queued message into `out`.
    pub(crate) fn take(&self, out: &mut Vec<Msg>) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::swap(&mut *queue, out);
    }

    /// Announces that the loop is about to block; false (and not parked)
    /// if messages are already waiting.
    pub(crate) fn park(&self) -> bool {
        // ORDERING: see the module comment.
        self.parked.store(true, Ordering::SeqCst);
        let empty = self
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_empty();
        if !empty {
            self.parked.store(false, Ordering::SeqCst);
        }
        empty
    }

    /// After a wake-up: senders stop ringing; pending rings are cleared.
    pub(crate) fn unpark(&self) -> io::Result<()> {
        self.parked.store(false, Ordering::SeqCst);
        self.bell.drain().map(drop)
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.bell.as_fd()
    }
}
