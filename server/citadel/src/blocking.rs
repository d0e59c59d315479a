//! Clients blocked on keys (BLPOP, BZPOPMIN, BLMOVE ...): who waits for
//! which key, in arrival order, shared by every thread.
//!
//! A blocked command parks its connection with the command unconsumed
//! (`command::Pending::Blocked`); a write to one of its keys on any core
//! mails its thread (`Mail::KeyReady`), which releases the connection, and
//! the command runs again: it is served if the key now has what it wants
//! and the client is first in line for it, else it parks again, keeping
//! its place. Timeouts are the thread's (`ThreadCtx::block_deadlines`).
//!
//! **No lost wake-up.** A writer commits, issues a SeqCst fence, then reads
//! `blocked` (`signal`); a blocking client registers (the count rises,
//! SeqCst), issues a SeqCst fence, then reads its keys once more before it
//! parks. Of two such store-fence-load sequences at least one sees the
//! other's store: the writer sees the registration and wakes the client,
//! or the client sees the write and is served at once.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{fence, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::wait::{Inboxes, Mail};
use citadel_collections::stream::StreamId;

/// A blocked client's registration, kept on its connection while it waits.
#[derive(Debug)]
pub struct BlockState {
    keys: Vec<Box<[u8]>>,
    /// Unix ms; None waits forever.
    deadline_ms: Option<u64>,
    /// XREAD's IDs as its first run resolved them (`$` is the last ID
    /// when it blocked, not when it runs again).
    stream_ids: Option<Box<[StreamId]>>,
}

impl BlockState {
    pub fn new(keys: Vec<Box<[u8]>>, deadline_ms: Option<u64>) -> BlockState {
        BlockState {
            keys,
            deadline_ms,
            stream_ids: None,
        }
    }

    /// The stream IDs a blocked XREAD resolved (see `stream_ids`).
    pub fn stream_ids(&self) -> Option<&[StreamId]> {
        self.stream_ids.as_deref()
    }

    pub fn set_stream_ids(&mut self, ids: Box<[StreamId]>) {
        self.stream_ids = Some(ids);
    }

    /// Whether its timeout has passed at `now_ms`.
    pub fn timed_out(&self, now_ms: u64) -> bool {
        self.deadline_ms.is_some_and(|at| at <= now_ms)
    }

    /// Makes its timeout pass now (CLIENT UNBLOCK ... TIMEOUT).
    pub fn expire_now(&mut self) {
        self.deadline_ms = Some(0);
    }

    /// Leaves every key's line and wakes whoever is next in each: a run
    /// that failed, so what woke it is still there for them.
    pub fn release_passing_on(self, registry: &BlockedKeys, client: u64, inboxes: &Inboxes) {
        registry.unblock(client, self.keys.iter().map(|k| &k[..]));
        registry.signal(self.keys.iter().map(|k| &k[..]), inboxes);
    }

    /// Leaves every key's line (served, timed out, or disconnected).
    pub fn release(self, registry: &BlockedKeys, client: u64) {
        registry.unblock(client, self.keys.iter().map(|k| &k[..]));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Blocked {
    client: u64,
    thread: usize,
}

#[derive(Default)]
pub struct BlockedKeys {
    /// Clients blocked now (zero: writers skip the lock).
    blocked: AtomicUsize,
    queues: Mutex<HashMap<Box<[u8]>, VecDeque<Blocked>>>,
}

impl BlockedKeys {
    /// Whether any client is blocked. Writers call it after their commit
    /// and a SeqCst fence (see `signal`).
    pub fn any(&self) -> bool {
        // ORDERING: pairs with the SeqCst increment in `block` through
        // the SeqCst fences on both sides (module comment).
        self.blocked.load(Ordering::SeqCst) > 0
    }

    /// Whether a client may be blocked on a key written just now, asked
    /// by a writer after its write committed (outside a transaction; a
    /// transaction's writes commit later, so it notes its keys whatever
    /// this says). False: the write needs no wake-up and its keys need
    /// not be noted. The same store-fence-load as `signal` (module
    /// comment): a client that registers after this load reads the key
    /// after its own fence, so it sees the write and is served at once;
    /// one registered before it is counted here, and `signal` (after
    /// another fence) wakes it.
    pub fn any_after_write(&self) -> bool {
        fence(Ordering::SeqCst);
        self.any()
    }

    /// `client` (served by `thread`) waits for `keys`, behind those that
    /// already wait for them. The caller then fences (`fence_after_block`)
    /// and checks its keys once more before it parks.
    pub fn block<'k>(&self, client: u64, thread: usize, keys: impl IntoIterator<Item = &'k [u8]>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            let queue = queues.entry(key.into()).or_default();
            let entry = Blocked { client, thread };
            if !queue.contains(&entry) {
                queue.push_back(entry);
            }
        }
        // ORDERING: see `any`.
        self.blocked.fetch_add(1, Ordering::SeqCst);
    }

    /// The fence between a registration and the last look at the keys.
    pub fn fence_after_block(&self) {
        fence(Ordering::SeqCst);
    }

    /// `client` no longer waits (served, timed out, disconnected).
    pub fn unblock<'k>(&self, client: u64, keys: impl IntoIterator<Item = &'k [u8]>) {
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let mut found = false;
        for key in keys {
            if let Some(queue) = queues.get_mut(key) {
                let before = queue.len();
                queue.retain(|b| b.client != client);
                found |= queue.len() != before;
                if queue.is_empty() {
                    queues.remove(key);
                }
            }
        }
        if found {
            self.blocked.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Whether `client` may take from `key` now: nobody waits for it, or
    /// `client` is first in line (Redis serves blocked clients in order).
    pub fn may_serve(&self, client: u64, key: &[u8]) -> bool {
        if !self.any() {
            return true;
        }
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        match queues.get(key).and_then(|q| q.front()) {
            None => true,
            Some(first) => first.client == client,
        }
    }

    /// `keys` were written: every client waiting for one of them is woken
    /// to look again (the first in line takes first). Call after the
    /// writes committed; the fence is here, one for all the keys.
    pub fn signal<'k>(&self, keys: impl IntoIterator<Item = &'k [u8]>, inboxes: &Inboxes) {
        fence(Ordering::SeqCst);
        if !self.any() {
            return;
        }
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for key in keys {
            for b in queues.get(key).into_iter().flatten() {
                inboxes.send(b.thread, Mail::KeyReady { client: b.client });
            }
        }
    }

    /// Keys some client is blocked on (INFO `total_blocking_keys`).
    pub fn keys(&self) -> usize {
        if !self.any() {
            return 0;
        }
        self.queues.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// The thread serving `client` if it is blocked on keys now (CLIENT
    /// UNBLOCK; a scan of the lines: an admin command, never on a hot path).
    pub fn thread_of(&self, client: u64) -> Option<usize> {
        if !self.any() {
            return None;
        }
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        queues
            .values()
            .flatten()
            .find(|b| b.client == client)
            .map(|b| b.thread)
    }

    /// Asks blocked `client` (of `thread`) to look again now: after CLIENT
    /// UNBLOCK set its request, its command runs and answers it.
    pub fn wake(&self, client: u64, thread: usize, inboxes: &Inboxes) {
        inboxes.send(thread, Mail::KeyReady { client });
    }

    /// Wakes every blocked client to look at its keys again (SWAPDB: the
    /// keys of two databases changed at once).
    pub fn wake_all(&self, inboxes: &Inboxes) {
        fence(Ordering::SeqCst);
        if !self.any() {
            return;
        }
        let queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        for b in queues.values().flatten() {
            inboxes.send(b.thread, Mail::KeyReady { client: b.client });
        }
    }

    /// Clients blocked now (INFO `blocked_clients`).
    pub fn count(&self) -> usize {
        self.blocked.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_in_line_is_served_first_and_leaving_passes_the_turn() {
        let keys = BlockedKeys::default();
        assert!(keys.may_serve(1, b"q"));
        keys.block(1, 0, [&b"q"[..], b"other"]);
        keys.block(2, 1, [&b"q"[..]]);
        assert_eq!(keys.count(), 2);
        assert!(keys.may_serve(1, b"q") && !keys.may_serve(2, b"q"));
        assert!(keys.may_serve(3, b"unrelated"));
        keys.unblock(1, [&b"q"[..], b"other"]);
        assert!(keys.may_serve(2, b"q"));
        keys.unblock(2, [&b"q"[..]]);
        keys.unblock(2, [&b"q"[..]]);
        assert_eq!(keys.count(), 0);
        assert!(keys.queues.lock().unwrap().is_empty());
    }
}
