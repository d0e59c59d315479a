//! Calls stranded behind a stuck inline handler: when the supervisor
//! detaches an instance (its serve call did not return within the stop
//! timeout, `citadel_supervisor::PluginShared::detach`), the calls this
//! thread queued in that instance's rings which its thread never took
//! will not be served by it. Each is taken back from the ring
//! (`Producer::withdraw`: its delivery count goes from 0 to `WITHDRAWN` in
//! one compare-and-swap, so the stuck thread can never also take it) and
//! sent again, same id, to another instance of its version that takes
//! calls; only when none has room is it answered at once with
//! [`CallError::Detached`] instead of waiting for its timeout. Calls the
//! thread did take stay pending: the stuck handler may still answer them.
//! (Should that thread return and meet a withdrawn record, it abandons it;
//! the reply reader drops that answer by its `WITHDRAWN` mark, `replies.rs`.)

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::time::Instant;

use citadel_proto::{Envelope, HostPair};
use citadel_supervisor::PluginShared;

use super::calls::{Pending, PluginId, PluginReply};
use super::outcome::CallError;
use super::place::place;
use super::route::{self, Ending};

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
    /// Sends again (or answers) the plugin's calls stranded in instances
    /// detached since the last look (one atomic load when none was).
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
        let (mut answered, mut resent) = (0, 0);
        for &(_, id) in self.deadlines {
            let Some(call) = pending.get_mut(&id) else {
                continue;
            };
            let (Some(lane), at) = (call.instance, call.at) else {
                continue;
            };
            if !newly.contains(&lane) {
                continue;
            }
            let Some((env, payload)) = self.lanes[lane].requests.withdraw(at) else {
                // The thread took it (or answered it): it stays pending.
                continue;
            };
            if let Some((new, at)) = self.send_again(lane, &env, &payload) {
                route::moved(shared, lane);
                route::started(shared, new);
                (call.instance, call.at) = (Some(new), at);
                resent += 1;
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
        if answered + resent > 0 {
            tracing::warn!(plugin = %shared.config.name, instances = ?newly, resent, answered, "instance detached: calls queued to it that it never took sent to another instance (answered with an error where none had room)");
        }
    }

    /// Writes a withdrawn request into another instance of `lane`'s
    /// version (any version if none of them takes calls).
    fn send_again(&mut self, lane: usize, env: &Envelope, payload: &[u8]) -> Option<(usize, u64)> {
        let per = self.shared.config.per_version.max(1);
        let first = lane / per * per;
        let others = (first..first + per).filter(|&l| l != lane);
        let others: Vec<usize> = others.filter(|&l| l < self.lanes.len()).collect();
        let fill = |buf: &mut [u8]| {
            buf.copy_from_slice(payload);
            payload.len()
        };
        place(
            self.shared,
            self.lanes,
            others.into_iter(),
            env,
            payload.len(),
            fill,
        )
        .ok()
    }
}
