//! One server thread's side of read-through: the *waits* of its parked
//! clients (one per command; an MGET waits for several keys), the loads it
//! sent (request id → key), and finishing a load: store, then hand the
//! result to every waiter, on this thread directly and on others through
//! their [`Inbox`](super::inbox::Inbox).
//!
//! A wait completes like a plugin call: a [`Completion`] whose `request` is
//! the wait id, addressed to the waker the event loop parked the
//! connection with; the command's continuation then takes the results.

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_cache::CacheHandle;
use citadel_proto::Format;
use flatbuffers::FlatBufferBuilder;

use super::flights::{Flight, Waiter};
use super::inbox::Delivery;
use super::stats::Stats;
use super::wire::{self, Fetched};
use super::{store, LoadError, LoadResult, ReadThrough};
use crate::plugin::{Completion, Outcome, PluginClient, NO_WAKER};

/// The waker of this thread's own load requests (their completions are
/// taken by [`ThreadLoads::on_load_done`], never by a connection).
pub const LOAD_WAKER: u64 = u64::MAX - 1;
/// Wait ids have the top bit set; plugin request ids never do.
const WAIT_BIT: u64 = 1 << 63;
/// Loads redone for the same waiters after invalidations, at most.
const MAX_RESTARTS: u32 = 3;
/// A finished wait nobody took (its client disconnected) is dropped after this.
const ORPHAN_AFTER: Duration = Duration::from_secs(30);

struct Wait {
    waker: u64,
    remaining: usize,
    results: Vec<Option<LoadResult>>,
    done_at: Option<Instant>,
}

struct Load {
    key: Box<[u8]>,
    keyspace: usize,
}

pub struct ThreadLoads {
    thread: usize,
    rt: Option<Arc<ReadThrough>>,
    waits: HashMap<u64, Wait>,
    next_wait: u64,
    loads: HashMap<u64, Load>,
    ready: VecDeque<Completion>,
    mail: Vec<Delivery>,
    fbb: FlatBufferBuilder<'static>,
    rng: u64,
}

impl Default for ThreadLoads {
    fn default() -> Self {
        ThreadLoads::new(0, None)
    }
}

impl ThreadLoads {
    pub fn new(thread: usize, rt: Option<Arc<ReadThrough>>) -> ThreadLoads {
        ThreadLoads {
            thread,
            rt,
            waits: HashMap::new(),
            next_wait: 1,
            loads: HashMap::new(),
            ready: VecDeque::new(),
            mail: Vec::new(),
            fbb: FlatBufferBuilder::new(),
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

    pub fn is_wait(request: u64) -> bool {
        request & WAIT_BIT != 0
    }

    /// The eventfd other threads ring when they deliver results here.
    pub fn wake_fd(&self) -> Option<RawFd> {
        Some(self.rt.as_ref()?.inboxes.get(self.thread)?.fd())
    }

    pub fn on_wake(&self) {
        if let Some(inbox) = self.rt.as_ref().and_then(|rt| rt.inboxes.get(self.thread)) {
            inbox.on_wake();
        }
    }

    /// A new wait for up to `slots` keys.
    pub fn new_wait(&mut self, slots: usize) -> u64 {
        let id = WAIT_BIT | self.next_wait;
        self.next_wait += 1;
        self.waits.insert(
            id,
            Wait {
                waker: NO_WAKER,
                remaining: 0,
                results: vec![None; slots],
                done_at: None,
            },
        );
        id
    }

    /// Whether `wait` still expects results (else nothing needs parking).
    pub fn is_pending(&self, wait: u64) -> bool {
        self.waits.get(&wait).is_some_and(|w| w.remaining > 0)
    }

    /// The loop parked the waiting connection as `waker`.
    pub fn attach(&mut self, wait: u64, waker: u64) {
        if let Some(w) = self.waits.get_mut(&wait) {
            w.waker = waker;
            if w.remaining == 0 {
                push_done(&mut self.ready, wait, waker);
            }
        }
    }

    /// The results of `wait` (removing it); a slot never loaded is `None`.
    pub fn take(&mut self, wait: u64) -> Vec<Option<LoadResult>> {
        self.waits
            .remove(&wait)
            .map(|w| w.results)
            .unwrap_or_default()
    }

    /// Asks for `key` of `keyspace` into `wait`'s `slot`: joins the load in
    /// flight or sends one. `Err`: failed at once (breaker open, too many
    /// loads in flight); the slot gets nothing.
    pub fn load(
        &mut self,
        cache: &mut CacheHandle,
        plugins: &mut PluginClient,
        keyspace: usize,
        key: &[u8],
        (wait, slot): (u64, usize),
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
        {
            let mut shard = rt.flights.lock(key);
            if let Some(f) = shard.get_mut(key) {
                f.waiters.push(waiter);
                drop(shard);
                Stats::add(&rt.stats.joined, 1);
                self.expect(wait);
                return Ok(());
            }
            if let Err(e) = breaker.admit(cache.now_ms()) {
                Stats::add(&rt.stats.failed_fast, 1);
                return Err(e);
            }
            shard.insert(key.into(), Flight::new(waiter));
        }
        self.expect(wait);
        self.send(cache, plugins, &rt, keyspace, key.into());
        Ok(())
    }

    fn expect(&mut self, wait: u64) {
        if let Some(w) = self.waits.get_mut(&wait) {
            w.remaining += 1;
        }
    }

    /// Sends the load of the flight of `key` (an in-flight slot is held).
    fn send(
        &mut self,
        cache: &mut CacheHandle,
        plugins: &mut PluginClient,
        rt: &Arc<ReadThrough>,
        keyspace: usize,
        key: Box<[u8]>,
    ) {
        let ks = rt.keyspaces.get(keyspace);
        let payload = wire::encode(&mut self.fbb, &key);
        match plugins.call(ks.plugin, Format::FlatBuffer, payload) {
            Ok(id) => {
                plugins.attach(id, LOAD_WAKER);
                self.loads.insert(id, Load { key, keyspace });
                Stats::add(&rt.stats.loads, 1);
            }
            Err(e) => {
                let e = wire::failure(e, &ks.config.loader);
                rt.breakers[ks.loader].breaker.done(Err(&e), cache.now_ms());
                self.settle(cache, plugins, rt, Load { key, keyspace }, Err(e));
            }
        }
    }

    /// A load request of this thread was answered (or timed out).
    pub fn on_load_done(
        &mut self,
        cache: &mut CacheHandle,
        plugins: &mut PluginClient,
        done: Completion,
    ) {
        let (Some(rt), Some(load)) = (self.rt.clone(), self.loads.remove(&done.request)) else {
            return;
        };
        let ks = rt.keyspaces.get(load.keyspace);
        let fetched = wire::decode(done.outcome, &ks.config.loader);
        let breaker = &rt.breakers[ks.loader].breaker;
        breaker.done(fetched.as_ref().map(|_| ()), cache.now_ms());
        self.settle(cache, plugins, &rt, load, fetched);
    }

    /// Stores what the load fetched and answers the flight's waiters, or
    /// loads again if the key was invalidated meanwhile.
    fn settle(
        &mut self,
        cache: &mut CacheHandle,
        plugins: &mut PluginClient,
        rt: &Arc<ReadThrough>,
        load: Load,
        fetched: Result<Fetched, LoadError>,
    ) {
        let ks = rt.keyspaces.get(load.keyspace);
        let s = &rt.stats;
        let mut shard = rt.flights.lock(&load.key);
        let Some(flight) = shard.get_mut(&load.key) else {
            tracing::warn!("a load finished with no flight for its key");
            return;
        };
        let n = flight.waiters.len() as u64;
        if flight.invalidated && fetched.is_ok() && flight.restarts < MAX_RESTARTS {
            // The origin changed after this load read it: read it again.
            flight.invalidated = false;
            flight.restarts += 1;
            drop(shard);
            Stats::add(&s.restarted, 1);
            let slot = rt.breakers[ks.loader].breaker.take_slot();
            return match slot {
                Ok(()) => self.send(cache, plugins, rt, load.keyspace, load.key),
                Err(e) => self.settle(cache, plugins, rt, load, Err(e)),
            };
        }
        let now = cache.now_ms();
        let result: LoadResult = match fetched {
            Ok(Fetched::Found { value, ttl_ms }) => {
                Stats::add(&s.loaded, 1);
                let opts = ks.value_options(now, ttl_ms, self.jitter());
                Ok(store::put(cache, &load.key, Some(&value), Some(opts)))
            }
            Ok(Fetched::Absent) => {
                Stats::add(&s.absent, 1);
                Ok(store::put(cache, &load.key, None, ks.negative_options(now)))
            }
            Err(e) => {
                Stats::add(&s.origin_errors, 1);
                tracing::debug!(key = %String::from_utf8_lossy(&load.key), "load failed: {e}");
                let stale = store::stale(cache, &load.key);
                if stale.is_some() {
                    Stats::add(&s.stale_served, n);
                }
                stale.map(Some).ok_or(e)
            }
        };
        let flight = shard.remove(&load.key).expect("flight present");
        drop(shard);
        Stats::add(&s.served, n);
        self.deliver(rt, flight.waiters, result);
    }

    fn deliver(&mut self, rt: &ReadThrough, waiters: Vec<Waiter>, result: LoadResult) {
        for w in waiters {
            if w.thread == self.thread {
                self.fill(w.wait, w.slot as usize, result.clone());
            } else if let Some(inbox) = rt.inboxes.get(w.thread) {
                inbox.push((w.wait, w.slot, result.clone()));
            }
        }
    }

    fn fill(&mut self, wait: u64, slot: usize, result: LoadResult) {
        // A wait that is gone belongs to a command that already failed.
        let Some(w) = self.waits.get_mut(&wait) else {
            return;
        };
        if let Some(r) = w.results.get_mut(slot) {
            *r = Some(result);
        }
        w.remaining = w.remaining.saturating_sub(1);
        if w.remaining == 0 {
            w.done_at = Some(Instant::now());
            if w.waker != NO_WAKER {
                push_done(&mut self.ready, wait, w.waker);
            }
        }
    }

    /// Takes the results other threads delivered here.
    pub fn poll(&mut self) {
        let Some(rt) = self.rt.clone() else {
            return;
        };
        let Some(inbox) = rt.inboxes.get(self.thread) else {
            return;
        };
        let mut mail = std::mem::take(&mut self.mail);
        inbox.take(&mut mail);
        for (wait, slot, result) in mail.drain(..) {
            self.fill(wait, slot as usize, result);
        }
        self.mail = mail;
    }

    pub fn next_completion(&mut self) -> Option<Completion> {
        self.ready.pop_front()
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
                let mut shard = rt.flights.lock(key);
                if let Some(f) = shard.get_mut(key) {
                    f.invalidated = true;
                }
                store::drop_key(cache, key);
                Stats::add(&rt.stats.invalidations, 1);
            }
            None => store::drop_key(cache, key),
        };
        crate::plugin::for_each_invalidated(plugin, payload, on_resync, on_key);
    }

    /// Every maintenance tick: forget finished waits nobody took.
    pub fn tick(&mut self) {
        if self.waits.is_empty() {
            return;
        }
        let now = Instant::now();
        self.waits
            .retain(|_, w| w.done_at.is_none_or(|t| now - t < ORPHAN_AFTER));
    }

    /// 0..=1, for TTL jitter (xorshift; statistical quality is plenty).
    fn jitter(&mut self) -> f64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn push_done(ready: &mut VecDeque<Completion>, wait: u64, waker: u64) {
    ready.push_back(Completion {
        waker,
        request: wait,
        plugin: 0,
        outcome: Outcome::Reply {
            format: Format::Raw,
            payload: Vec::new(),
        },
    });
}
