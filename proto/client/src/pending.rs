//! The requests in flight on one connection, by id: the reader hands each
//! reply frame to its request's slot, and fails them all when the
//! connection ends. Shared by the blocking and the async clients, which
//! differ only in the channel a slot is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use citadel_proto::rpc::FLAG_FINAL;

use crate::error::{Error, Result};
use crate::frame::Frame;

/// Where the frames of one request go.
pub(crate) trait Slot: Send {
    /// Hands over a frame or the connection's end; false once the waiting
    /// side is gone.
    fn deliver(&self, item: Result<Frame>) -> bool;
}

impl Slot for std::sync::mpsc::Sender<Result<Frame>> {
    fn deliver(&self, item: Result<Frame>) -> bool {
        self.send(item).is_ok()
    }
}

#[cfg(feature = "tokio")]
impl Slot for tokio::sync::mpsc::UnboundedSender<Result<Frame>> {
    fn deliver(&self, item: Result<Frame>) -> bool {
        self.send(item).is_ok()
    }
}

pub(crate) struct Pending<S> {
    next_id: AtomicU64,
    state: Mutex<State<S>>,
}

struct State<S> {
    slots: HashMap<u64, S>,
    /// Set once the connection has ended: nothing more can be registered.
    closed: bool,
}

impl<S: Slot> Pending<S> {
    pub(crate) fn new() -> Self {
        Self {
            next_id: AtomicU64::new(1),
            state: Mutex::new(State {
                slots: HashMap::new(),
                closed: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<S>> {
        // A panic elsewhere cannot leave the map half-updated: recover it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh request id with `slot` waiting for its frames;
    /// `Err(Closed)` once the connection has ended.
    pub(crate) fn register(&self, slot: S) -> Result<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        if state.closed {
            return Err(Error::Closed);
        }
        state.slots.insert(id, slot);
        Ok(id)
    }

    /// Forgets request `id` (its caller gave up): a late reply is dropped.
    pub(crate) fn cancel(&self, id: u64) {
        self.lock().slots.remove(&id);
    }

    /// Routes a frame to its request; the final frame (or a waiter that
    /// has gone) ends the request. Frames of unknown ids (answers to
    /// requests given up on) are dropped.
    pub(crate) fn dispatch(&self, frame: Frame) {
        let id = frame.header.id;
        let last = frame.header.has(FLAG_FINAL);
        let mut state = self.lock();
        let Some(slot) = state.slots.get(&id) else {
            return;
        };
        if !slot.deliver(Ok(frame)) || last {
            state.slots.remove(&id);
        }
    }

    /// Ends the connection: every waiting request gets `Closed`, and later
    /// registrations fail.
    pub(crate) fn close(&self) {
        let slots = {
            let mut state = self.lock();
            state.closed = true;
            std::mem::take(&mut state.slots)
        };
        for (_, slot) in slots {
            slot.deliver(Err(Error::Closed));
        }
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.lock().slots.len()
    }
}
