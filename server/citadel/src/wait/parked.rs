//! One thread's parked connections: which connection (the loop's
//! `Waiter`) waits for which operation, and the hand-over of finished
//! operations to the loop.

use std::collections::HashMap;

use citadel_net::Waiter;

use super::{Completion, WaitKey};

#[derive(Default)]
pub struct ThreadWaits {
    parked: HashMap<WaitKey, Waiter>,
    /// Finished before their connection was parked (kept until it is).
    early: HashMap<WaitKey, Completion>,
    /// Finished, with their connection: for the loop's next poll.
    ready: Vec<(Waiter, Completion)>,
}

impl ThreadWaits {
    /// The connection `waiter` parked on `key`.
    pub fn park(&mut self, key: WaitKey, waiter: Waiter) {
        match self.early.remove(&key) {
            Some(done) => self.ready.push((waiter, done)),
            None => {
                self.parked.insert(key, waiter);
            }
        }
    }

    /// An operation finished: it goes to the connection parked on it.
    pub fn finish(&mut self, done: Completion) {
        let key = done.key();
        match self.parked.remove(&key) {
            Some(waiter) => self.ready.push((waiter, done)),
            None => {
                self.early.insert(key, done);
            }
        }
    }

    /// Hands every finished operation to the loop.
    pub fn drain_into(&mut self, ready: &mut Vec<(Waiter, Completion)>) {
        ready.append(&mut self.ready);
    }

    /// Connections parked right now.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }
}
