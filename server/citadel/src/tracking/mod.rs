//! Client-side caching (CLIENT TRACKING): which client cached which key,
//! process-wide, and where each client's invalidations go.
//!
//! Default mode: a read by a tracking client remembers (key -> client) in
//! one of 16 key-hashed shards; the first change of the key afterwards, by
//! anyone on any core (write, expiry, eviction, a loader's invalidation),
//! takes the entry out and invalidates the key for each of those clients
//! once (they read again to track again), one message per key. BCAST
//! mode: every change of a key under one of the client's prefixes (all
//! keys without one) invalidates; a thread's loop turn's keys go out
//! together, one message per prefix (`bcast`).
//! A client's invalidations go to itself (a RESP3 push) or to the client it
//! named with REDIRECT (a push, or a `__redis__:invalidate` message for a
//! RESP2 subscriber). Nothing here is touched while no client tracks
//! (`active()` is one Relaxed load); the table holds at most
//! `tracking-table-max-keys` keys, and keys dropped to stay under it are
//! invalidated, as in Redis.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};

use citadel_net::Waiter;

pub use crate::wait::Invalidated;
use crate::wait::{Inboxes, Mail};

mod bcast;

use bcast::PrefixTable;
pub use bcast::{collision, BcastBatch, Overlap};

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

/// Which tracking clients an invalidation is for.
#[derive(Debug, Clone, Copy)]
enum Audience {
    /// Default-mode clients that remembered a key another client (or
    /// nobody) changed: not BCAST clients (Redis skips those, even for
    /// keys they remembered before they switched), not the changing client
    /// in NOLOOP mode.
    Remembered(Option<u64>),
    /// BCAST clients (their keys already chosen).
    Broadcast,
    Everyone,
}

impl Audience {
    fn reaches(self, client: u64, options: &Options) -> bool {
        match self {
            Audience::Remembered(origin) => {
                let own = options.noloop && origin == Some(client);
                !options.bcast && !own
            }
            Audience::Broadcast => options.bcast,
            Audience::Everyone => true,
        }
    }
}

#[derive(Default)]
pub struct Tracking {
    /// Clients with tracking on.
    active: AtomicUsize,
    /// Keys remembered in all shards.
    keys: AtomicUsize,
    /// (key, client) pairs remembered in all shards.
    items: AtomicUsize,
    clients: RwLock<HashMap<u64, Tracker>>,
    /// Where each client that may receive invalidations is (tracking
    /// clients, and subscribers that REDIRECT may name).
    receivers: RwLock<HashMap<u64, Delivery>>,
    /// BCAST clients by prefix, kept apart so a change scans only the
    /// prefixes, not every tracking client. Never locked while `clients`
    /// is.
    prefixes: RwLock<PrefixTable>,
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

    /// Keys remembered (INFO `tracking_total_keys`).
    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// (key, client) pairs remembered (INFO `tracking_total_items`).
    pub fn items(&self) -> usize {
        self.items.load(Ordering::Relaxed)
    }

    /// Clients with tracking on (INFO `tracking_clients`).
    pub fn clients(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    /// BCAST prefixes registered (INFO `tracking_total_prefixes`).
    pub fn prefixes(&self) -> usize {
        self.prefixes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// CLIENT TRACKING ON (again: new options, same client). In BCAST
    /// mode the prefixes add to those the client has (none given: ""), as
    /// in Redis.
    pub fn enable(&self, client: u64, mut options: Options) {
        if options.bcast && options.prefixes.is_empty() {
            options.prefixes.push(Box::default());
        }
        let prefixes = {
            let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
            let had = clients.get(&client).map(|t| t.options.prefixes.clone());
            for prefix in had.unwrap_or_default() {
                if options.bcast && !options.prefixes.contains(&prefix) {
                    options.prefixes.push(prefix);
                }
            }
            let prefixes = options.prefixes.clone();
            match clients.get_mut(&client) {
                Some(t) => t.options = options,
                None => {
                    clients.insert(client, Tracker { options });
                    self.active.fetch_add(1, Ordering::Relaxed);
                }
            }
            prefixes
        };
        let mut table = self.prefixes.write().unwrap_or_else(|e| e.into_inner());
        for prefix in &prefixes {
            table.add(prefix, client);
        }
    }

    /// CLIENT TRACKING OFF, RESET or disconnect: its remembered keys are
    /// dropped lazily (an invalidation skips clients no longer here).
    pub fn disable(&self, client: u64) {
        let removed = {
            let mut clients = self.clients.write().unwrap_or_else(|e| e.into_inner());
            clients.remove(&client)
        };
        if let Some(t) = removed {
            self.active.fetch_sub(1, Ordering::Relaxed);
            let mut table = self.prefixes.write().unwrap_or_else(|e| e.into_inner());
            table.remove(&t.options.prefixes, client);
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
                Some(clients) => {
                    clients.push(client);
                    self.items.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    shard.insert(key.into(), vec![client]);
                    self.keys.fetch_add(1, Ordering::Relaxed);
                    self.items.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if max_keys > 0 && self.keys() > max_keys {
            self.shed(max_keys, inboxes);
        }
    }

    /// Keeps the table within `max_keys` (0: no bound) when no read
    /// grows it: a lowered `tracking-table-max-keys` takes effect while
    /// clients are idle, as Redis's cron sees to.
    pub fn limit(&self, max_keys: usize, inboxes: &Inboxes) {
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
                    self.items.fetch_sub(clients.len(), Ordering::Relaxed);
                    (key, clients)
                };
                let what = Invalidated::keys(&[&taken.0[..]]);
                self.send(&taken.1, &what, Audience::Remembered(None), inboxes);
            }
        }
    }

    /// `key` changed (by client `origin`, if a client did it): invalidates
    /// it at once for every client that remembered it (default mode, one
    /// message per key, as Redis sends), and notes it in `batch` if a BCAST
    /// prefix matches it (sent at the end of the turn: `broadcast`).
    pub fn changed(
        &self,
        key: &[u8],
        origin: Option<u64>,
        inboxes: &Inboxes,
        batch: &mut BcastBatch,
    ) {
        let remembered = {
            let mut shard = self.shards[shard_of(key)]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            shard.remove(key)
        };
        if let Some(clients) = remembered {
            self.keys.fetch_sub(1, Ordering::Relaxed);
            self.items.fetch_sub(clients.len(), Ordering::Relaxed);
            let what = Invalidated::keys(&[key]);
            self.send(&clients, &what, Audience::Remembered(origin), inboxes);
        }
        let prefixes = self.prefixes.read().unwrap_or_else(|e| e.into_inner());
        if prefixes.matches(key) {
            batch.note(key, origin);
        }
    }

    /// Sends the keys `batch` collected (this thread's loop turn): for each
    /// prefix, one message listing its keys to each of its clients.
    pub fn broadcast(&self, batch: &mut BcastBatch, inboxes: &Inboxes) {
        if batch.is_empty() {
            return;
        }
        let prefixes = self.prefixes.read().unwrap_or_else(|e| e.into_inner());
        let noloop: Vec<u64> = {
            let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
            clients
                .iter()
                .filter(|(_, t)| t.options.bcast && t.options.noloop)
                .map(|(&id, _)| id)
                .collect()
        };
        for (prefix, clients) in prefixes.iter() {
            if batch.under(prefix).next().is_none() {
                continue;
            }
            let (looped, plain): (Vec<u64>, Vec<u64>) =
                clients.iter().partition(|c| noloop.contains(c));
            if !plain.is_empty() {
                let keys: Vec<&[u8]> = batch.under(prefix).map(|(k, _)| k).collect();
                let what = Invalidated::keys(&keys);
                self.send(&plain, &what, Audience::Broadcast, inboxes);
            }
            for client in looped {
                let others: Vec<&[u8]> = batch
                    .under(prefix)
                    .filter(|(_, o)| *o != Some(client))
                    .map(|(k, _)| k)
                    .collect();
                if !others.is_empty() {
                    let what = Invalidated::keys(&others);
                    self.send(&[client], &what, Audience::Broadcast, inboxes);
                }
            }
        }
        batch.clear();
    }

    /// FLUSHALL / FLUSHDB: every tracking client drops everything.
    pub fn flushed(&self, inboxes: &Inboxes) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            self.keys.fetch_sub(shard.len(), Ordering::Relaxed);
            let items = shard.values().map(Vec::len).sum();
            self.items.fetch_sub(items, Ordering::Relaxed);
            shard.clear();
        }
        let all: Vec<u64> = {
            let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
            clients.keys().copied().collect()
        };
        self.send(&all, &Invalidated::All, Audience::Everyone, inboxes);
    }

    /// Mails one invalidation per tracking client (to it, or to the client
    /// it redirects to), grouped by thread. A client whose redirect target
    /// is gone hears `tracking-redir-broken` instead, as in Redis.
    fn send(&self, clients: &[u64], what: &Invalidated, audience: Audience, inboxes: &Inboxes) {
        let mut by_thread: Vec<(usize, Vec<(u64, Waiter)>)> = Vec::new();
        let mut broken: Vec<(u64, u64)> = Vec::new();
        {
            let trackers = self.clients.read().unwrap_or_else(|e| e.into_inner());
            let receivers = self.receivers.read().unwrap_or_else(|e| e.into_inner());
            for &id in clients {
                let Some(t) = trackers.get(&id) else {
                    continue;
                };
                if !audience.reaches(id, &t.options) {
                    continue;
                }
                let target = t.options.redirect.unwrap_or(id);
                let Some(d) = receivers.get(&target).copied() else {
                    tracing::debug!(client = id, target, "tracking: no connection to deliver to");
                    broken.push((id, target));
                    continue;
                };
                match by_thread.iter_mut().find(|(th, _)| *th == d.thread) {
                    Some((_, list)) => list.push((target, d.waiter)),
                    None => by_thread.push((d.thread, vec![(target, d.waiter)])),
                }
            }
            for (id, target) in broken {
                if let Some(d) = receivers.get(&id).filter(|_| target != id) {
                    let what = Invalidated::RedirectBroken(target);
                    let receivers = vec![(id, d.waiter)];
                    inboxes.send(d.thread, Mail::Invalidate { receivers, what });
                }
            }
        }
        for (thread, receivers) in by_thread {
            tracing::debug!(thread, ?receivers, "tracking: invalidation mailed");
            let what = what.clone();
            inboxes.send(thread, Mail::Invalidate { receivers, what });
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
