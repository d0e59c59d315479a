//! Client-side caching (CLIENT TRACKING): which client cached which key,
//! process-wide, and where each client's invalidations go.
//!
//! Default mode: a read by a tracking client remembers (key -> client) in
//! one of 16 key-hashed shards; the first change of the key afterwards, by
//! anyone on any core (write, expiry, eviction, a loader's invalidation),
//! takes the entry out and invalidates the key for each of those clients
//! once (they read again to track again). BCAST mode: every change of a key
//! under one of the client's prefixes (all keys without one) invalidates.
//! A client's invalidations go to itself (a RESP3 push) or to the client it
//! named with REDIRECT (a push, or a `__redis__:invalidate` message for a
//! RESP2 subscriber). Nothing here is touched while no client tracks
//! (`active()` is one Relaxed load); the table holds at most
//! `tracking-table-max-keys` keys, and keys dropped to stay under it are
//! invalidated, as in Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use citadel_net::Waiter;

use crate::wait::{Inboxes, Mail};

const SHARDS: usize = 16;

/// One shard of the table: key -> the clients that cached it.
type Remembered = HashMap<Box<[u8]>, Vec<u64>>;

/// One tracking client's options (CLIENT TRACKING ON ...).
#[derive(Debug, Clone, Default)]
pub struct Options {
    pub redirect: Option<u64>,
    pub bcast: bool,
    pub prefixes: Vec<Box<[u8]>>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
}

/// Where a client's pushes go: its thread and connection.
#[derive(Debug, Clone, Copy)]
pub struct Delivery {
    pub thread: usize,
    pub waiter: Waiter,
}

struct Tracker {
    options: Options,
}

#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on.
    active: AtomicUsize,
    /// Keys remembered in all shards.
    keys: AtomicUsize,
    clients: RwLock<HashMap<u64, Tracker>>,
    /// Where each client that may receive invalidations is (tracking
    /// clients, and subscribers that REDIRECT may name).
    receivers: RwLock<HashMap<u64, Delivery>>,
    /// BCAST clients and their prefixes (empty: every key), kept apart so a
    /// change scans only them, not every tracking client.
    bcast: RwLock<HashMap<u64, Vec<Box<[u8]>>>>,
    shards: [Mutex<Remembered>; SHARDS],
}

fn shard_of(key: &[u8]) -> usize {
    (xxhash_rust::xxh3::xxh3_64(key) as usize) % SHARDS
}

impl Tracking {
    /// Whether any client tracks (checked before any other work).
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed) > 0
    }

    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// CLIENT TRACKING ON (again: new options, same client).
    pub fn enable(&self, client: u64, options: Options) {
        {
            let mut bcast = self.bcast.write().unwrap_or_else(|e| e.into_inner());
            if options.bcast {
                bcast.insert(client, options.prefixes.clone());
            } else {
                bcast.remove(&client);
            }
        }
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        match clients.get_mut(&client) {
            Some(t) => t.options = options,
            None => {
                clients.insert(client, Tracker { options });
                self.active.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// CLIENT TRACKING OFF, RESET or disconnect: its remembered keys are
    /// dropped lazily (an invalidation skips clients no longer here).
    pub fn disable(&self, client: u64) {
        self.bcast
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&client);
        let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
        if clients.remove(&client).is_some() {
            self.active.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The connection of a tracking client, or of a client that may receive
    /// others' invalidations (it subscribed to `__redis__:invalidate`).
    pub fn attach(&self, client: u64, delivery: Delivery) {
        let mut receivers = self.receivers.write().unwrap_or_else(|e| e.into_inner());
        receivers.insert(client, delivery);
    }

    /// A client's connection closed.
    pub fn forget(&self, client: u64) {
        self.disable(client);
        let mut receivers = self.receivers.write().unwrap_or_else(|e| e.into_inner());
        receivers.remove(&client);
    }

    /// Remembers that `client` read `keys` (default mode). Keys past the
    /// table's bound push others out, invalidated.
    pub fn remember<'k>(
        &self,
        client: u64,
        keys: impl Iterator<Item = &'k [u8]>,
        max_keys: usize,
        inboxes: &Inboxes,
    ) {
        for key in keys {
            let mut shard = self.shards[shard_of(key)]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            match shard.get_mut(key) {
                Some(clients) if clients.contains(&client) => {}
                Some(clients) => clients.push(client),
                None => {
                    shard.insert(key.into(), vec![client]);
                    self.keys.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if max_keys > 0 && self.keys() > max_keys {
            self.shed(max_keys, inboxes);
        }
    }

    /// Drops remembered keys until at most `max_keys` are left, invalidating
    /// each for its clients.
    fn shed(&self, max_keys: usize, inboxes: &Inboxes) {
        for shard in &self.shards {
            while self.keys() > max_keys {
                let taken = {
                    let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(key) = shard.keys().next().cloned() else {
                        break;
                    };
                    let clients = shard.remove(&key).unwrap_or_default();
                    self.keys.fetch_sub(1, Ordering::Relaxed);
                    (key, clients)
                };
                self.send(&taken.1, Some(Arc::from(taken.0)), None, inboxes);
            }
        }
    }

    /// `key` changed (by client `origin`, if a client did it): invalidates
    /// it for every client that remembered it and every broadcast client
    /// whose prefixes match.
    pub fn changed(&self, key: &[u8], origin: Option<u64>, inboxes: &Inboxes) {
        let remembered = {
            let mut shard = self.shards[shard_of(key)]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            shard.remove(key)
        };
        if remembered.is_some() {
            self.keys.fetch_sub(1, Ordering::Relaxed);
        }
        let mut to = remembered.unwrap_or_default();
        {
            let bcast = self.bcast.read().unwrap_or_else(|e| e.into_inner());
            for (&id, prefixes) in bcast.iter() {
                let prefixed = prefixes.is_empty() || prefixes.iter().any(|p| key.starts_with(p));
                if prefixed && !to.contains(&id) {
                    to.push(id);
                }
            }
        }
        if !to.is_empty() {
            self.send(&to, Some(Arc::from(key)), origin, inboxes);
        }
    }

    /// FLUSHALL / FLUSHDB: every tracking client drops everything.
    pub fn flushed(&self, inboxes: &Inboxes) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            self.keys.fetch_sub(shard.len(), Ordering::Relaxed);
            shard.clear();
        }
        let all: Vec<u64> = {
            let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
            clients.keys().copied().collect()
        };
        self.send(&all, None, None, inboxes);
    }

    /// Mails one invalidation per receiving connection, grouped by thread.
    fn send(
        &self,
        clients: &[u64],
        key: Option<Arc<[u8]>>,
        origin: Option<u64>,
        inboxes: &Inboxes,
    ) {
        let mut by_thread: Vec<(usize, Vec<(u64, Waiter)>)> = Vec::new();
        {
            let trackers = self.clients.read().unwrap_or_else(|e| e.into_inner());
            let receivers = self.receivers.read().unwrap_or_else(|e| e.into_inner());
            for &id in clients {
                let Some(t) = trackers.get(&id) else {
                    continue;
                };
                if t.options.noloop && origin == Some(id) {
                    continue;
                }
                let target = t.options.redirect.unwrap_or(id);
                let Some(d) = receivers.get(&target).copied() else {
                    tracing::debug!(client = id, target, "tracking: no connection to deliver to");
                    continue;
                };
                match by_thread.iter_mut().find(|(th, _)| *th == d.thread) {
                    Some((_, list)) => list.push((target, d.waiter)),
                    None => by_thread.push((d.thread, vec![(target, d.waiter)])),
                }
            }
        }
        for (thread, mut receivers) in by_thread {
            // Two clients redirecting to one receiver: it gets one message.
            receivers.sort_by_key(|r| r.0);
            receivers.dedup_by_key(|r| r.0);
            let key = key.clone();
            tracing::debug!(thread, ?receivers, "tracking: invalidation mailed");
            inboxes.send(thread, Mail::Invalidate { receivers, key });
        }
    }

    /// A client's options, if it tracks (CLIENT TRACKINGINFO, GETREDIR).
    pub fn options(&self, client: u64) -> Option<Options> {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        clients.get(&client).map(|t| t.options.clone())
    }

    /// Whether a client that redirects to `target` can still reach it.
    pub fn reaches(&self, target: u64) -> bool {
        let receivers = self.receivers.read().unwrap_or_else(|e| e.into_inner());
        receivers.contains_key(&target)
    }
}
