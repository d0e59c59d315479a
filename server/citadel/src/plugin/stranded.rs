//! Calls stranded behind a stuck inline handler: when the supervisor
//! detaches an instance (its serve call did not return within the stop
//! timeout, `citadel_supervisor::PluginShared::detach`), the calls this
//! thread queued in that instance's rings which its thread never took
//! (their records' delivery count is still 0) will not be served by it.
//! They are answered at once with [`CallError::Detached`] instead of
//! waiting for their timeouts. Calls it did take stay pending: the stuck
//! handler may still answer them.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Instant;

use citadel_proto::HostPair;
use citadel_supervisor::PluginShared;

use super::calls::{Pending, PluginId, PluginReply};
use super::outcome::CallError;
use super::route::Ending;

/// Detached instances as one thread last saw them: the plugin's count of
/// detaches, and each instance's.
pub(super) struct Detaches {
    seen: u64,
    per_instance: Vec<u64>,
}

impl Detaches {
    pub(super) fn new(instances: usize) -> Detaches {
        Detaches {
            seen: 0,
            per_instance: vec![0; instances],
        }
    }
}

/// One plugin of this thread, as far as stranded calls go: its shared
/// state, its calls in send order (deadline, id) and its ring pairs.
pub(super) struct Stranded<'a> {
    pub shared: &'a PluginShared,
    pub deadlines: &'a VecDeque<(Instant, u64)>,
    pub lanes: &'a mut [HostPair],
    pub plugin: PluginId,
}

impl Stranded<'_> {
    /// Answers the plugin's calls stranded in instances detached since the
    /// last look (one atomic load when none was).
    pub(super) fn answer<C>(
        &mut self,
        seen: &mut Detaches,
        pending: &mut HashMap<u64, Pending<C>>,
        ready: &mut VecDeque<PluginReply<C>>,
        now: Instant,
    ) {
        let shared = self.shared;
        // ORDERING: SeqCst, paired with `detach` (see there): no call reaches
        // an instance counted here after this load.
        let count = shared.detaches.load(SeqCst);
        if count == seen.seen {
            return;
        }
        seen.seen = count;
        let newly: Vec<usize> = (0..shared.instances.len())
            .filter(|&i| {
                let now_count = shared.instances[i].detached.load(Relaxed);
                std::mem::replace(&mut seen.per_instance[i], now_count) != now_count
            })
            .collect();
        let mut answered = 0;
        for &(_, id) in self.deadlines {
            let Some((Some(lane), at)) = pending.get(&id).map(|c| (c.instance, c.at)) else {
                continue;
            };
            if !newly.contains(&lane) || !self.lanes[lane].requests.undelivered(at) {
                continue;
            }
            let Some(call) = pending.remove(&id) else {
                continue;
            };
            shared.stats.in_flight.fetch_sub(1, Relaxed);
            shared.stats.errors.fetch_add(1, Relaxed);
            answered += 1;
            let error = CallError::Detached(lane);
            ready.push_back(call.fail(id, self.plugin, Some(shared), Ending::Error, error, now));
        }
        if answered > 0 {
            tracing::warn!(plugin = %shared.config.name, instances = ?newly, answered, "instance detached: calls queued to it that it never took answered with an error");
        }
    }
}
