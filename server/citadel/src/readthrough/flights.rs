//! Single-flight: one load per key at a time, whichever thread misses.
//! A sharded table (key → [`Flight`]) touched only on misses; the first
//! miss starts the flight and sends the load, later misses join it as
//! waiters. Invalidations mark the key's flight under the same shard lock
//! the load's result is stored under, so a load that started before an
//! invalidation never overwrites the newer state: its result is dropped and
//! the key is loaded again for the same waiters.
//!
//! The decisions (start or join, mark, restart or finish) are the methods
//! here, each taken under the key's shard lock; `thread` does the I/O
//! around them. The lock type is a parameter so that `loom_tests` can check
//! the decisions under every interleaving with loom's mutex.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::ops::DerefMut;
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 64;

/// The lock around one shard (std's mutex in the server; loom's in tests).
pub trait ShardLock: Default {
    type Guard<'a>: DerefMut<Target = Shard>
    where
        Self: 'a;
    fn lock_shard(&self) -> Self::Guard<'_>;
}

impl ShardLock for Mutex<Shard> {
    type Guard<'a> = MutexGuard<'a, Shard>;
    fn lock_shard(&self) -> MutexGuard<'_, Shard> {
        // A panic while holding it left the map consistent (every change
        // is one insert, update or remove): keep using it.
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A client waiting for a load: its thread, its wait and the slot (the
/// key's position in an MGET) the result goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub thread: usize,
    pub wait: super::LoadWaitId,
    pub slot: u32,
}

#[derive(Debug)]
pub struct Flight {
    pub waiters: Vec<Waiter>,
    /// Invalidated while loading: the result is stale, load again.
    pub invalidated: bool,
    /// Loads started again after an invalidation.
    pub restarts: u32,
}

/// What a miss became.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// It started the flight: it must send the load.
    Leader,
    /// It joined a load already in flight.
    Follower,
}

/// What a finished load must do next.
#[derive(Debug)]
pub enum Settled<R> {
    /// The key was invalidated while loading: load it again (same flight).
    Again,
    /// Stored (what `store` returned); these waiters get the result.
    Done { waiters: Vec<Waiter>, stored: R },
}

pub type Shard = HashMap<Box<[u8]>, Flight>;

pub struct Flights<L: ShardLock = Mutex<Shard>> {
    shards: Box<[L]>,
    hasher: std::hash::RandomState,
}

impl<L: ShardLock> Default for Flights<L> {
    fn default() -> Self {
        Flights::with_shards(SHARDS)
    }
}

impl<L: ShardLock> Flights<L> {
    pub fn with_shards(n: usize) -> Self {
        Flights {
            shards: (0..n.max(1)).map(|_| L::default()).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }

    fn lock(&self, key: &[u8]) -> L::Guard<'_> {
        let i = self.hasher.hash_one(key) as usize % self.shards.len();
        self.shards[i].lock_shard()
    }

    /// Joins `key`'s load in flight, or starts one if `admit` allows (the
    /// breaker and the load limit); `waiter` is in the flight either way.
    pub fn join_or_start<E>(
        &self,
        key: &[u8],
        waiter: Waiter,
        admit: impl FnOnce() -> Result<(), E>,
    ) -> Result<Role, E> {
        let mut shard = self.lock(key);
        if let Some(f) = shard.get_mut(key) {
            f.waiters.push(waiter);
            return Ok(Role::Follower);
        }
        admit()?;
        shard.insert(
            key.into(),
            Flight {
                waiters: vec![waiter],
                invalidated: false,
                restarts: 0,
            },
        );
        Ok(Role::Leader)
    }

    /// An invalidation of `key`: marks its load in flight (if any) and runs
    /// `drop_key` under the same lock, so no load result is stored between.
    pub fn invalidate(&self, key: &[u8], drop_key: impl FnOnce()) {
        let mut shard = self.lock(key);
        if let Some(f) = shard.get_mut(key) {
            f.invalidated = true;
        }
        drop_key();
    }

    /// Marks every flight invalidated (the loader may have missed changes).
    pub fn invalidate_all(&self) {
        for s in self.shards.iter() {
            s.lock_shard()
                .values_mut()
                .for_each(|f| f.invalidated = true);
        }
    }

    /// `key`'s load finished (`fetched_ok`: the origin answered). If the key
    /// was invalidated meanwhile and a successful result may be redone
    /// (fewer than `max_restarts` so far), the flight stays: load again.
    /// Otherwise `store` runs under the lock, the flight ends and its
    /// waiters are returned. None: no flight for the key (a bug; logged).
    pub fn settle<R>(
        &self,
        key: &[u8],
        fetched_ok: bool,
        max_restarts: u32,
        store: impl FnOnce() -> R,
    ) -> Option<Settled<R>> {
        let mut shard = self.lock(key);
        let flight = shard.get_mut(key)?;
        if flight.invalidated && fetched_ok && flight.restarts < max_restarts {
            flight.invalidated = false;
            flight.restarts += 1;
            return Some(Settled::Again);
        }
        let stored = store();
        let flight = shard.remove(key)?;
        Some(Settled::Done {
            waiters: flight.waiters,
            stored,
        })
    }

    /// Waiters on `key`'s flight now (for a caller that must answer them).
    pub fn waiters(&self, key: &[u8]) -> usize {
        self.lock(key).get(key).map_or(0, |f| f.waiters.len())
    }

    /// Keys being loaded, all shards.
    pub fn count(&self) -> usize {
        self.shards.iter().map(|s| s.lock_shard().len()).sum()
    }
}

#[cfg(test)]
mod loom_tests {
    //! Runs with the other tests: `cargo test -p citadel-server --lib loom`.
    use super::*;
    use crate::readthrough::LoadWaitId;
    use loom::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use loom::sync::{Arc, Mutex as LoomMutex, MutexGuard as LoomGuard};

    impl ShardLock for LoomMutex<Shard> {
        type Guard<'a> = LoomGuard<'a, Shard>;
        fn lock_shard(&self) -> LoomGuard<'_, Shard> {
            self.lock().unwrap()
        }
    }

    fn waiter(thread: usize) -> Waiter {
        Waiter {
            thread,
            wait: LoadWaitId(thread as u64),
            slot: 0,
        }
    }

    /// Two misses of one key and a concurrent origin update + invalidation:
    /// one load leads, the other joins; both waiters are answered exactly
    /// once; the cache never ends up holding a value older than the origin.
    #[test]
    fn single_flight_and_invalidation_never_store_stale_data() {
        // Up to 3 preemptions per execution: enough for every order of the
        // three threads' critical sections, and a few seconds to explore.
        let mut model = loom::model::Builder::new();
        model.preemption_bound = Some(3);
        model.check(|| {
            let flights: Arc<Flights<LoomMutex<Shard>>> = Arc::new(Flights::with_shards(1));
            let origin = Arc::new(AtomicU64::new(1));
            let cache: Arc<LoomMutex<Option<u64>>> = Arc::new(LoomMutex::new(None));
            let answered = Arc::new(AtomicU64::new(0));
            let miss = |t: usize| {
                let (flights, origin, cache, answered) = (
                    flights.clone(),
                    origin.clone(),
                    cache.clone(),
                    answered.clone(),
                );
                loom::thread::spawn(move || {
                    let role = flights
                        .join_or_start::<()>(b"k", waiter(t), || Ok(()))
                        .unwrap();
                    if role == Role::Follower {
                        return;
                    }
                    loop {
                        let version = origin.load(SeqCst); // the load reads the origin
                        let settled = flights.settle(b"k", true, 3, || {
                            *cache.lock().unwrap() = Some(version);
                        });
                        match settled.expect("the leader's flight exists") {
                            Settled::Again => continue,
                            Settled::Done { waiters, .. } => {
                                answered.fetch_add(waiters.len() as u64, SeqCst);
                                break;
                            }
                        }
                    }
                })
            };
            let a = miss(0);
            let b = miss(1);
            let update = {
                let (flights, origin, cache) = (flights.clone(), origin.clone(), cache.clone());
                loom::thread::spawn(move || {
                    origin.store(2, SeqCst); // UPDATE, then NOTIFY -> invalidation
                    flights.invalidate(b"k", || *cache.lock().unwrap() = None);
                })
            };
            a.join().unwrap();
            b.join().unwrap();
            update.join().unwrap();
            let waiting = flights.waiters(b"k") as u64;
            assert_eq!(
                answered.load(SeqCst) + waiting,
                2,
                "each miss answered once"
            );
            assert_eq!(waiting, 0, "no flight is left behind");
            let held = *cache.lock().unwrap();
            assert!(
                held.is_none() || held == Some(2),
                "a stale load overwrote the update: {held:?}"
            );
        });
    }
}
