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

use super::calls::{Pending, PluginId, PluginReply};
use super::client::ThreadPlugin;
use super::outcome::CallError;
use super::route::Ending;

/// Answers plugin `plugin`'s calls stranded in instances detached since
/// the last look (one atomic load when none was).
pub(super) fn answer<C>(
    p: &mut ThreadPlugin,
    plugin: PluginId,
    pending: &mut HashMap<u64, Pending<C>>,
    ready: &mut VecDeque<PluginReply<C>>,
    now: Instant,
) {
    // ORDERING: SeqCst, paired with `detach` (see there): no call reaches
    // an instance counted here after this load.
    let count = p.shared.detaches.load(SeqCst);
    if count == p.detaches_seen {
        return;
    }
    p.detaches_seen = count;
    let shared = &p.shared;
    let newly: Vec<usize> = (0..shared.instances.len())
        .filter(|&i| {
            let now_count = shared.instances[i].detached.load(Relaxed);
            std::mem::replace(&mut p.detached_seen[i], now_count) != now_count
        })
        .collect();
    let mut answered = 0;
    for &(_, id) in &p.deadlines {
        let Some(lane) = pending.get(&id).and_then(|c| c.instance) else {
            continue;
        };
        if !newly.contains(&lane) || !p.lanes[lane].requests.undelivered(pending[&id].at) {
            continue;
        }
        let Some(call) = pending.remove(&id) else {
            continue;
        };
        shared.stats.in_flight.fetch_sub(1, Relaxed);
        shared.stats.errors.fetch_add(1, Relaxed);
        answered += 1;
        let error = CallError::Detached(lane);
        ready.push_back(call.fail(id, plugin, Some(shared), Ending::Error, error, now));
    }
    if answered > 0 {
        tracing::warn!(plugin = %shared.config.name, instances = ?newly, answered, "instance detached: calls queued to it that it never took answered with an error");
    }
}
