//! One thread's parked waits: who waits for which operation (a
//! connection of the event loop, named by its `Waiter`, or a session this
//! thread serves itself, such as a shared-memory RPC client), and the
//! hand-over of finished operations to them.

use std::collections::HashMap;

use citadel_net::Waiter;

use super::{Completion, WaitKey};

/// Who a finished operation goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A connection of the event loop (resumed by the loop).
    Conn(Waiter),
    /// A session the thread serves off the loop (a shared-memory RPC
    /// client, by its id), resumed by whoever serves it.
    Local(u64),
}

#[derive(Default)]
pub struct ThreadWaits {
    parked: HashMap<WaitKey, Target>,
    /// Finished before their waiter was parked (kept until it is).
    early: HashMap<WaitKey, Completion>,
    /// Finished, with their connection: for the loop's next poll.
    ready: Vec<(Waiter, Completion)>,
    /// Finished, for sessions served off the loop.
    local: Vec<(u64, Completion)>,
    /// Waits whose waiter takes partial results (an RPC call streams a
    /// pipeline's frames; a RESP connection never does).
    streaming: std::collections::HashSet<WaitKey>,
}

impl ThreadWaits {
    /// `target` waits for `key`.
    pub fn park(&mut self, key: WaitKey, target: Target) {
        match self.early.remove(&key) {
            Some(done) => self.deliver(target, done),
            None => {
                self.parked.insert(key, target);
            }
        }
    }

    /// The waiter of `key` takes partial results (see `progress`).
    pub fn stream(&mut self, key: WaitKey) {
        self.streaming.insert(key);
    }

    /// Progress of an operation still running: delivered only to a parked
    /// waiter that streams; the wait stays.
    pub fn progress(&mut self, partial: Completion) {
        let key = partial.key();
        if !self.streaming.contains(&key) {
            return;
        }
        if let Some(&target) = self.parked.get(&key) {
            self.deliver(target, partial);
        }
    }

    /// An operation finished: it goes to whoever waits for it.
    pub fn finish(&mut self, done: Completion) {
        let key = done.key();
        self.streaming.remove(&key);
        match self.parked.remove(&key) {
            Some(target) => self.deliver(target, done),
            None => {
                self.early.insert(key, done);
            }
        }
    }

    /// Like `finish`, for a signal that means nothing to a waiter not
    /// parked on it now (a blocked client woken twice, or already gone).
    pub fn wake(&mut self, done: Completion) {
        let key = done.key();
        if let Some(target) = self.parked.remove(&key) {
            self.deliver(target, done);
        }
    }

    /// A completion for a connection that is not parked on it (a
    /// subscriber's message): straight to the loop.
    pub fn push(&mut self, waiter: Waiter, done: Completion) {
        self.ready.push((waiter, done));
    }

    fn deliver(&mut self, target: Target, done: Completion) {
        match target {
            Target::Conn(waiter) => self.ready.push((waiter, done)),
            Target::Local(id) => self.local.push((id, done)),
        }
    }

    /// Hands every finished operation of the loop's connections to the loop.
    pub fn drain_into(&mut self, ready: &mut Vec<(Waiter, Completion)>) {
        ready.append(&mut self.ready);
    }

    /// Takes every finished operation of sessions served off the loop.
    pub fn take_local(&mut self, into: &mut Vec<(u64, Completion)>) {
        into.append(&mut self.local);
    }

    /// Waits parked right now.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }
}
