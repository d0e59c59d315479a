//! Single-flight: one load per key at a time, whichever thread misses.
//! A sharded table (key → [`Flight`]) touched only on misses; the first
//! miss inserts the flight and sends the load, later misses add themselves
//! as waiters. Invalidations mark the key's flight under the same shard
//! lock that the load's completion stores under, so a load that started
//! before an invalidation never overwrites the newer state: its result is
//! dropped and the key is loaded again for the same waiters.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

const SHARDS: usize = 64;

/// A client waiting for a load: its thread, its wait and the slot (the
/// key's position in an MGET) the result goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Waiter {
    pub thread: usize,
    pub wait: u64,
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

impl Flight {
    pub fn new(first: Waiter) -> Flight {
        Flight {
            waiters: vec![first],
            invalidated: false,
            restarts: 0,
        }
    }
}

pub type Shard = HashMap<Box<[u8]>, Flight>;

pub struct Flights {
    shards: Box<[Mutex<Shard>]>,
    hasher: std::hash::RandomState,
}

impl Default for Flights {
    fn default() -> Self {
        Flights {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: std::hash::RandomState::new(),
        }
    }
}

impl Flights {
    /// The shard holding `key`'s flight, locked.
    pub fn lock(&self, key: &[u8]) -> MutexGuard<'_, Shard> {
        let i = self.hasher.hash_one(key) as usize % SHARDS;
        self.shards[i].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks every flight invalidated (the loader may have missed changes).
    pub fn invalidate_all(&self) {
        for s in self.shards.iter() {
            let mut s = s.lock().unwrap_or_else(|p| p.into_inner());
            s.values_mut().for_each(|f| f.invalidated = true);
        }
    }

    /// Keys being loaded, all shards.
    pub fn count(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}
