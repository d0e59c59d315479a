//! One server thread's plugin client: the thread's ring pairs (one per
//! plugin instance), the map from request id to waiter, deadlines, the
//! in-flight limit and the drop of duplicate replies.
//!
//! A caller sends with [`PluginClient::call`] (or `call_with`, which lets
//! it build the payload, e.g. a FlatBuffers `LoadRequest`, straight in ring
//! memory), naming itself with a caller tag `C`, and gets a [`RequestId`].
//! The thread calls [`PluginClient::poll`] every turn and takes each
//! [`PluginReply`] (reply, error or timeout, with its caller tag) from
//! [`PluginClient::next_reply`]. Records the plugin pushes on its own
//! (`Kind::Invalidation`) are collected for [`PluginClient::take_invalidation`].

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use citadel_proto::envelope::{unix_ms, STATUS_DEADLINE};
use citadel_proto::{Envelope, Format, HostPair, Kind, ReserveError};
use citadel_supervisor::{Hub, PluginShared};

use super::outcome::{CallError, Outcome};

/// Index of a plugin in this server's configuration order.
pub type PluginId = usize;

/// A call's id: unique per server (the thread is in the top 16 bits); it
/// is the envelope id the plugin answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// A finished call, for whoever made it.
#[derive(Debug)]
pub struct PluginReply<C> {
    pub caller: C,
    pub request: RequestId,
    pub plugin: PluginId,
    pub outcome: Outcome,
}

struct ThreadPlugin {
    shared: Arc<PluginShared>,
    lanes: Vec<HostPair>,
    next_lane: usize,
    /// (deadline, request id) in send order: deadlines never decrease.
    deadlines: VecDeque<(Instant, u64)>,
}

struct Pending<C> {
    sent: Instant,
    caller: C,
}

pub struct PluginClient<C> {
    thread: usize,
    hub: Option<Arc<Hub>>,
    plugins: Vec<ThreadPlugin>,
    pending: HashMap<u64, Pending<C>>,
    ready: VecDeque<PluginReply<C>>,
    invalidations: VecDeque<(PluginId, Vec<u8>)>,
    next_id: u64,
}

impl<C: Copy> PluginClient<C> {
    /// The client of server thread `thread`: takes its ring pairs from the hub.
    pub fn new(thread: usize, hub: Option<Arc<Hub>>) -> PluginClient<C> {
        let plugins = match &hub {
            None => Vec::new(),
            Some(h) => h
                .plugins
                .iter()
                .cloned()
                .zip(h.take_lanes(thread))
                .map(|(shared, lanes)| ThreadPlugin {
                    shared,
                    lanes,
                    next_lane: 0,
                    deadlines: VecDeque::new(),
                })
                .collect(),
        };
        PluginClient {
            thread,
            hub,
            plugins,
            pending: HashMap::new(),
            ready: VecDeque::new(),
            invalidations: VecDeque::new(),
            next_id: 1,
        }
    }

    pub fn hub(&self) -> Option<&Arc<Hub>> {
        self.hub.as_ref()
    }

    pub fn find(&self, name: &[u8]) -> Option<PluginId> {
        self.plugins
            .iter()
            .position(|p| p.shared.config.name.as_bytes().eq_ignore_ascii_case(name))
    }

    pub fn name(&self, plugin: PluginId) -> &str {
        self.plugins
            .get(plugin)
            .map_or("?", |p| p.shared.config.name.as_str())
    }

    /// Sends `payload` to `plugin` for `caller`; returns the request id.
    /// Never blocks: a full ring or too many calls in flight fail at once.
    pub fn call(
        &mut self,
        caller: C,
        plugin: PluginId,
        format: Format,
        payload: &[u8],
    ) -> Result<RequestId, CallError> {
        self.call_with(caller, plugin, format, payload.len(), |buf| {
            buf.copy_from_slice(payload);
            payload.len()
        })
    }

    /// Like `call`, but `fill` writes the payload (at most `max_len` bytes)
    /// straight into ring memory and returns its length.
    pub fn call_with(
        &mut self,
        caller: C,
        plugin: PluginId,
        format: Format,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<RequestId, CallError> {
        let p = self
            .plugins
            .get_mut(plugin)
            .ok_or(CallError::NoSuchPlugin)?;
        let stats = &p.shared.stats;
        let limit = p.shared.config.max_inflight;
        if stats.in_flight.fetch_add(1, Relaxed) >= limit {
            stats.in_flight.fetch_sub(1, Relaxed);
            stats.rejected.fetch_add(1, Relaxed);
            return Err(CallError::TooMany(limit));
        }
        let id = ((self.thread as u64) << 48) | self.next_id;
        let timeout = p.shared.config.timeout;
        let env = Envelope {
            format,
            deadline_ms: unix_ms() + timeout.as_millis() as u64,
            ..Envelope::request(id)
        };
        let mut fill = Some(fill);
        let mut result = Err(CallError::Full);
        let n = p.lanes.len();
        for k in 0..n {
            let lane = (p.next_lane + k) % n;
            match p.lanes[lane].requests.reserve(max_len) {
                Ok(mut grant) => {
                    let fill = fill.take().expect("filled once");
                    let len = fill(grant.payload_mut());
                    grant.truncate(len);
                    p.next_lane = (lane + 1) % n;
                    result = grant
                        .commit(&env)
                        .map_err(|e| CallError::Notify(e.to_string()));
                    break;
                }
                Err(ReserveError::Full { .. }) => continue,
                Err(ReserveError::TooLarge { len, max }) => {
                    result = Err(CallError::TooLarge { len, max });
                    break;
                }
            }
        }
        if let Err(e) = result {
            if e == CallError::Full {
                stats.rejected.fetch_add(1, Relaxed);
            }
            stats.in_flight.fetch_sub(1, Relaxed);
            return Err(e);
        }
        self.next_id += 1;
        let now = Instant::now();
        p.deadlines.push_back((now + timeout, id));
        self.pending.insert(id, Pending { sent: now, caller });
        Ok(RequestId(id))
    }

    /// Reply eventfds, in lane order (index for [`PluginClient::on_wake`]).
    pub fn wake_fds(&self) -> Vec<RawFd> {
        self.lanes().map(|l| l.spec().reply_eventfd).collect()
    }

    /// Reply eventfds this client has (`wake_fds().len()`).
    pub fn lane_count(&self) -> usize {
        self.plugins.iter().map(|p| p.lanes.len()).sum()
    }

    fn lanes(&self) -> impl Iterator<Item = &HostPair> {
        self.plugins.iter().flat_map(|p| p.lanes.iter())
    }

    /// Lane `index`'s eventfd fired: clear it (the rings are read by `poll`).
    pub fn on_wake(&mut self, index: usize) {
        if let Some(lane) = self.lanes().nth(index) {
            if let Err(e) = lane.replies.drain_doorbell() {
                tracing::warn!(thread = self.thread, "draining a plugin eventfd: {e}");
            }
        }
    }

    /// Calls awaiting a reply on this thread.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Reads every reply ring and expires calls past their deadline.
    pub fn poll(&mut self, now: Instant) {
        for (index, p) in self.plugins.iter_mut().enumerate() {
            for lane in &mut p.lanes {
                read_replies(
                    index,
                    lane,
                    &p.shared,
                    &mut self.pending,
                    &mut self.ready,
                    &mut self.invalidations,
                    now,
                );
            }
            while let Some(&(deadline, id)) = p.deadlines.front() {
                if self.pending.contains_key(&id) && deadline > now {
                    break;
                }
                p.deadlines.pop_front();
                if let Some(pending) = self.pending.remove(&id) {
                    let stats = &p.shared.stats;
                    stats.in_flight.fetch_sub(1, Relaxed);
                    stats.timeouts.fetch_add(1, Relaxed);
                    let ms = p.shared.config.timeout.as_millis() as u64;
                    self.ready.push_back(PluginReply {
                        caller: pending.caller,
                        request: RequestId(id),
                        plugin: index,
                        outcome: Outcome::Failed(CallError::Timeout(ms)),
                    });
                }
            }
        }
    }

    pub fn next_reply(&mut self) -> Option<PluginReply<C>> {
        self.ready.pop_front()
    }

    /// An `Invalidation` record a plugin pushed: (plugin, payload).
    pub fn take_invalidation(&mut self) -> Option<(PluginId, Vec<u8>)> {
        self.invalidations.pop_front()
    }

    /// The earliest deadline of a pending call.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.plugins
            .iter()
            .filter_map(|p| p.deadlines.front().map(|d| d.0))
            .min()
    }

    /// Every maintenance tick: publish this thread's ring depths.
    pub fn tick(&mut self) {
        for p in &mut self.plugins {
            let bytes: u64 = p.lanes.iter_mut().map(|l| l.requests.in_flight()).sum();
            if let Some(slot) = p.shared.ring_bytes.get(self.thread) {
                slot.store(bytes, Relaxed);
            }
        }
    }
}

fn read_replies<C>(
    plugin: PluginId,
    lane: &mut HostPair,
    shared: &PluginShared,
    pending: &mut HashMap<u64, Pending<C>>,
    ready: &mut VecDeque<PluginReply<C>>,
    invalidations: &mut VecDeque<(PluginId, Vec<u8>)>,
    now: Instant,
) {
    let stats = &shared.stats;
    let mut any = false;
    loop {
        let record = match lane.replies.read() {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(e) => {
                tracing::error!(plugin = %shared.config.name, "reply ring: {e}");
                break;
            }
        };
        any = true;
        let env = record.envelope();
        if env.kind == Kind::Invalidation {
            invalidations.push_back((plugin, record.copy_payload()));
            continue;
        }
        let Some(waiting) = pending.remove(&env.id) else {
            // A duplicate (re-delivered after a crash) or a late reply.
            stats.dropped.fetch_add(1, Relaxed);
            continue;
        };
        stats.in_flight.fetch_sub(1, Relaxed);
        stats.processed.fetch_add(1, Relaxed);
        stats
            .latency
            .record(now.saturating_duration_since(waiting.sent));
        let outcome = match env.kind {
            Kind::Reply => Outcome::Reply {
                format: env.format,
                payload: record.copy_payload(),
            },
            Kind::Abandoned => {
                stats.errors.fetch_add(1, Relaxed);
                stats.poisoned.fetch_add(1, Relaxed);
                Outcome::Failed(CallError::Poison(env.attempt.saturating_sub(1).max(1)))
            }
            _ if env.status == STATUS_DEADLINE => {
                stats.timeouts.fetch_add(1, Relaxed);
                let ms = shared.config.timeout.as_millis() as u64;
                Outcome::Failed(CallError::Timeout(ms))
            }
            _ => {
                stats.errors.fetch_add(1, Relaxed);
                Outcome::Failed(error_reply(env.format, &record.copy_payload()))
            }
        };
        ready.push_back(PluginReply {
            caller: waiting.caller,
            request: RequestId(env.id),
            plugin,
            outcome,
        });
    }
    if any {
        lane.replies.commit_read();
    }
}

/// An error reply: a FlatBuffers `ErrorReply` keeps its code, anything
/// else is shown as text.
fn error_reply(format: Format, payload: &[u8]) -> CallError {
    if format == Format::FlatBuffer {
        if let Ok(e) = citadel_proto::load::decode_error_reply(payload) {
            return CallError::Coded {
                code: e.code().0,
                message: e.to_string(),
            };
        }
    }
    CallError::Plugin(String::from_utf8_lossy(payload).into_owned())
}
