//! One server thread's side of read-through: the *waits* of its parked
//! clients (one per command; an MGET waits for several keys), the loads it
//! sent (request id → key), and finishing a load: store, then hand the
//! result to every waiter — on this thread directly, on others through the
//! caller (`thread::ThreadCtx`), which mails it to their inboxes.
//!
//! A wait is finished when its last key has a result; the caller takes
//! finished waits with [`ThreadLoads::next_finished`] and completes the
//! parked connection with their results.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use citadel_cache::CacheHandle;
use citadel_proto::Format;

use super::flights::{Role, Settled, Waiter};
use super::stats::Stats;
use super::wire::{self, Fetched};
use super::{store, LoadError, LoadResult, LoadWaitId, ReadThrough};
use crate::plugin::{PluginClient, PluginReply, RequestId};

/// Loads redone for the same waiters after invalidations, at most.
const MAX_RESTARTS: u32 = 3;

struct Wait {
    remaining: usize,
    results: Vec<Option<LoadResult>>,
}

struct Load {
    key: Box<[u8]>,
    keyspace: usize,
}

/// A result for a waiter on another thread (the caller mails it).
#[derive(Debug)]
pub struct Remote {
    pub thread: usize,
    pub wait: LoadWaitId,
    pub slot: u32,
    pub result: LoadResult,
}

/// The plugin client and the caller tag its load requests carry.
pub struct Loader<'a, C> {
    pub plugins: &'a mut PluginClient<C>,
    pub caller: C,
}

pub struct ThreadLoads {
    thread: usize,
    rt: Option<Arc<ReadThrough>>,
    waits: HashMap<LoadWaitId, Wait>,
    next_wait: u64,
    loads: HashMap<RequestId, Load>,
    finished: VecDeque<LoadWaitId>,
    remote: Vec<Remote>,
    rng: u64,
}

impl ThreadLoads {
    pub fn new(thread: usize, rt: Option<Arc<ReadThrough>>) -> ThreadLoads {
        ThreadLoads {
            thread,
            rt,
            waits: HashMap::new(),
            next_wait: 1,
            loads: HashMap::new(),
            finished: VecDeque::new(),
            remote: Vec::new(),
            rng: 0x9E37_79B9_7F4A_7C15 ^ (thread as u64 + 1),
        }
    }

    /// The keyspace `key` belongs to, if any (called on misses only).
    pub fn keyspace(&self, key: &[u8]) -> Option<usize> {
        self.rt.as_ref()?.keyspaces.find(key)
    }

    pub fn stats(&self) -> Option<&Stats> {
        self.rt.as_ref().map(|rt| &rt.stats)
    }

    /// A new wait for up to `slots` keys.
    pub fn new_wait(&mut self, slots: usize) -> LoadWaitId {
        let id = LoadWaitId(self.next_wait);
        self.next_wait += 1;
        self.waits.insert(
            id,
            Wait {
                remaining: 0,
                results: vec![None; slots],
            },
        );
        id
    }

    /// Whether `wait` still expects results (else nothing needs parking).
    pub fn is_pending(&self, wait: LoadWaitId) -> bool {
        self.waits.get(&wait).is_some_and(|w| w.remaining > 0)
    }

    /// The results of `wait` (removing it); a slot never loaded is `None`.
    pub fn take(&mut self, wait: LoadWaitId) -> Vec<Option<LoadResult>> {
        self.waits
            .remove(&wait)
            .map(|w| w.results)
            .unwrap_or_default()
    }

    /// A wait whose last result arrived, with its results (removed): its
    /// connection can be resumed. Skips waits the command already took
    /// (every load failed at once) and waits that expect more since.
    pub fn next_finished(&mut self) -> Option<(LoadWaitId, Vec<Option<LoadResult>>)> {
        while let Some(wait) = self.finished.pop_front() {
            if self.waits.get(&wait).is_some_and(|w| w.remaining == 0) {
                return Some((wait, self.take(wait)));
            }
        }
        None
    }

    /// Results for waiters on other threads, to be mailed to them.
    pub fn take_remote(&mut self) -> std::vec::Drain<'_, Remote> {
        self.remote.drain(..)
    }

    /// Asks for `key` of `keyspace` into `wait`'s `slot`: joins the load in
    /// flight or sends one. `Err`: failed at once (breaker open, too many
    /// loads in flight); the slot gets nothing.
    pub fn load<C: Copy>(
        &mut self,
        cache: &mut CacheHandle,
        loader: Loader<'_, C>,
        keyspace: usize,
        key: &[u8],
        (wait, slot): (LoadWaitId, usize),
    ) -> Result<(), LoadError> {
        let Some(rt) = self.rt.clone() else {
            return Err(LoadError::Unavailable("no loader configured".into()));
        };
        let waiter = Waiter {
            thread: self.thread,
            wait,
            slot: slot as u32,
        };
        let breaker = &rt.breakers[rt.keyspaces.get(keyspace).loader].breaker;
        let now = cache.now_ms();
        let role = rt
            .flights
            .join_or_start(key, waiter, || breaker.admit(now))
            .inspect_err(|_| Stats::add(&rt.stats.failed_fast, 1))?;
        self.expect(wait);
        match role {
            Role::Follower => Stats::add(&rt.stats.joined, 1),
            Role::Leader => self.send(cache, loader, &rt, keyspace, key.into()),
        }
        Ok(())
    }

    fn expect(&mut self, wait: LoadWaitId) {
        if let Some(w) = self.waits.get_mut(&wait) {
            w.remaining += 1;
        }
    }

    /// Sends the load of the flight of `key` (an in-flight slot is held).
    fn send<C: Copy>(
        &mut self,
        cache: &mut CacheHandle,
        loader: Loader<'_, C>,
        rt: &Arc<ReadThrough>,
        keyspace: usize,
        key: Box<[u8]>,
    ) {
        let ks = rt.keyspaces.get(keyspace);
        // The LoadRequest is written straight into the request ring.
        let (len, fill) = (wire::request_len(&key), |buf: &mut [u8]| {
            wire::write_request(buf, &key)
        });
        let sent = loader.plugins.call_with(
            loader.caller,
            ks.plugin,
            Format::FlatBuffer,
            Some(&key),
            len,
            fill,
        );
        match sent {
            Ok(id) => {
                self.loads.insert(id, Load { key, keyspace });
                Stats::add(&rt.stats.loads, 1);
            }
            Err(e) => {
                let e = wire::failure(e, &ks.config.loader);
                rt.breakers[ks.loader].breaker.done(Err(&e), cache.now_ms());
                self.settle(cache, loader, rt, Load { key, keyspace }, Err(e));
            }
        }
    }

    /// A load request of this thread was answered (or timed out).
    pub fn on_load_done<C: Copy>(
        &mut self,
        cache: &mut CacheHandle,
        loader: Loader<'_, C>,
        reply: PluginReply<C>,
    ) {
        let (Some(rt), Some(load)) = (self.rt.clone(), self.loads.remove(&reply.request)) else {
            return;
        };
        let ks = rt.keyspaces.get(load.keyspace);
        let fetched = wire::decode(reply.outcome, &ks.config.loader);
        let breaker = &rt.breakers[ks.loader].breaker;
        breaker.done(fetched.as_ref().map(|_| ()), cache.now_ms());
        self.settle(cache, loader, &rt, load, fetched);
    }

    /// Stores what the load fetched and answers the flight's waiters, or
    /// loads again if the key was invalidated meanwhile.
    fn settle<C: Copy>(
        &mut self,
        cache: &mut CacheHandle,
        loader: Loader<'_, C>,
        rt: &Arc<ReadThrough>,
        load: Load,
        fetched: Result<Fetched, LoadError>,
    ) {
        let ks = rt.keyspaces.get(load.keyspace);
        let s = &rt.stats;
        let now = cache.now_ms();
        let jitter = self.jitter();
        let settled = rt.flights.settle(
            &load.key,
            fetched.is_ok(),
            MAX_RESTARTS,
            || match fetched {
                Ok(Fetched::Found { value, ttl_ms }) => {
                    Stats::add(&s.loaded, 1);
                    let opts = ks.value_options(now, ttl_ms, jitter);
                    (
                        Ok(store::put(cache, &load.key, Some(&value), Some(opts))),
                        false,
                    )
                }
                Ok(Fetched::Absent) => {
                    Stats::add(&s.absent, 1);
                    let put = store::put(cache, &load.key, None, ks.negative_options(now));
                    (Ok(put), false)
                }
                Err(e) => {
                    Stats::add(&s.origin_errors, 1);
                    tracing::debug!(key = %String::from_utf8_lossy(&load.key), "load failed: {e}");
                    match store::stale(cache, &load.key) {
                        Some(v) => (Ok(Some(v)), true),
                        None => (Err(e), false),
                    }
                }
            },
        );
        match settled {
            None => tracing::warn!("a load finished with no flight for its key"),
            Some(Settled::Again) => {
                // The origin changed after this load read it: read it again.
                Stats::add(&s.restarted, 1);
                match rt.breakers[ks.loader].breaker.take_slot() {
                    Ok(()) => self.send(cache, loader, rt, load.keyspace, load.key),
                    Err(e) => self.settle(cache, loader, rt, load, Err(e)),
                }
            }
            Some(Settled::Done {
                waiters,
                stored: (result, stale),
            }) => {
                let n = waiters.len() as u64;
                if stale {
                    Stats::add(&s.stale_served, n);
                }
                Stats::add(&s.served, n);
                self.deliver(waiters, result);
            }
        }
    }

    fn deliver(&mut self, waiters: Vec<Waiter>, result: LoadResult) {
        for w in waiters {
            if w.thread == self.thread {
                self.fill(w.wait, w.slot, result.clone());
            } else {
                self.remote.push(Remote {
                    thread: w.thread,
                    wait: w.wait,
                    slot: w.slot,
                    result: result.clone(),
                });
            }
        }
    }

    /// A result for slot `slot` of `wait` (from this thread or mailed by another).
    pub fn fill(&mut self, wait: LoadWaitId, slot: u32, result: LoadResult) {
        // A wait that is gone belongs to a command that already failed.
        let Some(w) = self.waits.get_mut(&wait) else {
            return;
        };
        if let Some(r) = w.results.get_mut(slot as usize) {
            *r = Some(result);
        }
        w.remaining = w.remaining.saturating_sub(1);
        if w.remaining == 0 {
            self.finished.push_back(wait);
        }
    }

    /// Applies an `Invalidation` a plugin pushed: each key's load in flight
    /// is marked (its result will not be stored) and the key is dropped,
    /// negative marker included, under the flight shard's lock.
    pub fn invalidate(&mut self, cache: &mut CacheHandle, plugin: usize, payload: &[u8]) {
        let rt = self.rt.clone();
        let on_resync = || {
            if let Some(rt) = &rt {
                rt.flights.invalidate_all();
                Stats::add(&rt.stats.resyncs, 1);
            }
        };
        let on_key = |key: &[u8]| match &rt {
            Some(rt) => {
                rt.flights.invalidate(key, || store::drop_key(cache, key));
                Stats::add(&rt.stats.invalidations, 1);
            }
            None => store::drop_key(cache, key),
        };
        crate::plugin::for_each_invalidated(plugin, payload, on_resync, on_key);
    }

    /// 0..=1, for TTL jitter (xorshift; statistical quality is plenty).
    fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}
