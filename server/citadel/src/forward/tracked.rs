//! What the tracking links (`link.rs`) share with the server's
//! client-side caching: the [`PeerTracking`] it implements, and how an
//! invalidation waits for the replies it must follow.

use std::collections::HashSet;
use std::sync::Arc;

use super::{JobState, Shared};

/// The server's client-side caching, as the tracking links see it.
pub trait PeerTracking: Send + Sync {
    /// A key read through a link changed on its peer, or the link that
    /// read it was lost: invalidate it for the clients that cached it.
    fn invalidate(&self, key: &[u8]);
    /// The most keys one tracking connection notes (0: no bound);
    /// keys past it are invalidated, as the tracking table does.
    fn max_keys(&self) -> usize;
    /// The cluster map's generation: a key read before a change may be
    /// another node's now, which no link tracks for us.
    fn generation(&self) -> u64;
}

impl JobState {
    /// Its `Done` was mailed.
    pub(super) fn delivered(&self) -> bool {
        let held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.is_none()
    }

    /// Holds `key`'s invalidation until the job's `Done` is mailed; false
    /// when it already was (invalidate now).
    pub(super) fn hold(&self, key: &[u8]) -> bool {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.as_mut().map(|h| h.push(key.into())).is_some()
    }
}

/// Invalidates `keys` here: at once, or after the `Done` of each job in
/// `unfinished` still waiting (a reply it holds may be a key's old value).
pub(super) fn invalidate(
    shared: &Shared,
    unfinished: &mut Vec<Arc<JobState>>,
    keys: Vec<Box<[u8]>>,
) {
    unfinished.retain(|j| !j.delivered());
    for key in keys {
        let mut held = false;
        for job in unfinished.iter() {
            held |= job.hold(&key);
        }
        if !held {
            shared.tracking.invalidate(&key);
        }
    }
}

/// Takes keys out of `tracked` until at most `max` are left (0: no bound).
pub(super) fn over_bound(tracked: &mut HashSet<Box<[u8]>>, max: usize) -> Vec<Box<[u8]>> {
    if max == 0 || tracked.len() <= max {
        return Vec::new();
    }
    let over: Vec<Box<[u8]>> = tracked.iter().take(tracked.len() - max).cloned().collect();
    for key in &over {
        tracked.remove(key);
    }
    over
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_bound_takes_out_only_the_excess() {
        let mut tracked: HashSet<Box<[u8]>> = (0..10u8).map(|i| Box::from([i])).collect();
        assert!(over_bound(&mut tracked, 0).is_empty(), "0: no bound");
        assert!(over_bound(&mut tracked, 10).is_empty());
        let over = over_bound(&mut tracked, 4);
        assert_eq!((over.len(), tracked.len()), (6, 4));
        assert!(over.iter().all(|k| !tracked.contains(k)));
    }
}
