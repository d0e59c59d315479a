//! Calls in progress, by result key: the first caller leads (sends the
//! call), identical calls on any thread join it. Sharded so threads
//! starting different calls rarely meet on one lock.

use std::collections::HashMap;
use std::sync::Mutex;

use super::PipelineWaitId;

const SHARDS: usize = 16;

type Waiters = Vec<(usize, PipelineWaitId)>;

#[derive(Default)]
pub struct Flights {
    shards: [Mutex<HashMap<u128, Waiters>>; SHARDS],
}

impl Flights {
    fn shard(&self, key: u128) -> std::sync::MutexGuard<'_, HashMap<u128, Waiters>> {
        self.shards[(key as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Joins the flight of `key`, or starts it if none is in progress and
    /// `cached()` (checked under the lock) finds no stored result. Returns
    /// `Some(true)` if the caller leads (must send the call), `Some(false)`
    /// if it joined, `None` if the result is stored now.
    pub fn join_or_lead(
        &self,
        key: u128,
        thread: usize,
        wait: PipelineWaitId,
        cached: impl FnOnce() -> bool,
    ) -> Option<bool> {
        let mut shard = self.shard(key);
        if let Some(waiters) = shard.get_mut(&key) {
            waiters.push((thread, wait));
            return Some(false);
        }
        // The leader stores before it ends the flight: a result stored
        // between our first look and this lock is found here.
        if cached() {
            return None;
        }
        shard.insert(key, vec![(thread, wait)]);
        Some(true)
    }

    /// Ends the flight of `key`; returns its waiters (the leader first).
    pub fn finish(&self, key: u128) -> Waiters {
        self.shard(key).remove(&key).unwrap_or_default()
    }

    /// The waiters of `key`'s flight so far (those that stream partial
    /// results get each frame's as it arrives).
    pub fn waiters(&self, key: u128) -> Waiters {
        self.shard(key).get(&key).cloned().unwrap_or_default()
    }

    /// Calls in progress (for INFO).
    pub fn in_progress(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leads_others_join_and_all_are_answered() {
        let f = Flights::default();
        let w = |n| PipelineWaitId(n);
        assert_eq!(f.join_or_lead(7, 0, w(1), || false), Some(true));
        assert_eq!(f.join_or_lead(7, 1, w(2), || false), Some(false));
        assert_eq!(
            f.join_or_lead(8, 1, w(3), || true),
            None,
            "stored meanwhile"
        );
        assert_eq!(f.in_progress(), 1);
        assert_eq!(f.finish(7), vec![(0, w(1)), (1, w(2))]);
        assert!(f.finish(7).is_empty());
        assert_eq!(
            f.join_or_lead(7, 0, w(4), || false),
            Some(true),
            "a new flight"
        );
    }
}
