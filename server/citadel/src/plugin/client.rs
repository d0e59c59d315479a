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
//!
//! A pipeline call ([`PluginClient::call_pipeline`]) is sent to the
//! pipeline's first stage and completes on the first `End` (or error) that
//! any stage sends back; the per-frame results that come before it are
//! gathered here, one per frame index (`replies.rs`).

use std::collections::{HashMap, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use citadel_proto::envelope::unix_ms;
use citadel_proto::{Envelope, Format, HostPair};
use citadel_supervisor::{CallStats, Hub, PluginShared};

use super::attention::Attention;
use super::calls::{Pending, ThreadPipeline, Waiting};
pub use super::calls::{PluginId, PluginReply, RequestId};
use super::outcome::CallError;
use super::place::place;
use super::replies::read_replies;
use super::route::{self, Ending, Route};
use super::stranded;

struct ThreadPlugin {
    shared: Arc<PluginShared>,
    lanes: Vec<HostPair>,
    /// Which version and instance each call goes to.
    route: Route,
    /// (deadline, request id) in send order: deadlines never decrease.
    deadlines: VecDeque<(Instant, u64)>,
    /// Detached instances as last seen (`stranded.rs`).
    detaches: stranded::Detaches,
    /// The pipeline whose first stage this plugin is (PLUGIN CALL refused).
    first_stage_of: Option<usize>,
    /// False for a later pipeline stage: its requests come from the stage
    /// before it, the server only reads its replies.
    takes_calls: bool,
}

pub struct PluginClient<C> {
    thread: usize,
    hub: Option<Arc<Hub>>,
    plugins: Vec<ThreadPlugin>,
    pipelines: Vec<ThreadPipeline>,
    pending: HashMap<u64, Pending<C>>,
    ready: VecDeque<PluginReply<C>>,
    invalidations: VecDeque<(PluginId, Vec<u8>)>,
    partials: VecDeque<super::replies::Partial<C>>,
    next_id: u64,
    /// The reply rings' sleeping flags (`attention.rs`).
    attention: Attention,
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
                .enumerate()
                .map(|(p, (shared, lanes))| ThreadPlugin {
                    route: Route::new(shared.config.versions.len(), thread),
                    detaches: stranded::Detaches::new(shared.instances.len()),
                    shared,
                    lanes,
                    deadlines: VecDeque::new(),
                    first_stage_of: h.pipelines.iter().position(|q| q.config.stages[0] == p),
                    takes_calls: h.topology.takes_calls(p),
                })
                .collect(),
        };
        let pipelines = hub
            .iter()
            .flat_map(|h| h.pipelines.iter())
            .map(|shared| ThreadPipeline {
                first: shared.config.stages[0],
                shared: shared.clone(),
                deadlines: VecDeque::new(),
            })
            .collect();
        PluginClient {
            thread,
            hub,
            plugins,
            pipelines,
            pending: HashMap::new(),
            ready: VecDeque::new(),
            invalidations: VecDeque::new(),
            partials: VecDeque::new(),
            next_id: 1,
            attention: Attention::new(),
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
        self.call_with(caller, plugin, format, None, payload.len(), |buf| {
            buf.copy_from_slice(payload);
            payload.len()
        })
    }

    /// Like `call`, but `fill` writes the payload (at most `max_len` bytes)
    /// straight into ring memory and returns its length. `key`: the key the
    /// call is about, if any (it keeps the key on one version of the plugin).
    pub fn call_with(
        &mut self,
        caller: C,
        plugin: PluginId,
        format: Format,
        key: Option<&[u8]>,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<RequestId, CallError> {
        let p = self.plugins.get(plugin).ok_or(CallError::NoSuchPlugin)?;
        if let Some(q) = p.first_stage_of {
            let name = self.pipelines[q].shared.config.name.clone();
            return Err(CallError::PipelineStage(name));
        }
        if !p.takes_calls {
            return Err(CallError::PipelineStage(String::new()));
        }
        let (id, timeout, instance, at) = self.send(plugin, None, key, format, max_len, fill)?;
        let now = Instant::now();
        self.attention.traffic(&self.plugins[plugin].shared, now);
        self.plugins[plugin]
            .deadlines
            .push_back((now + timeout, id));
        route::started(&self.plugins[plugin].shared, instance);
        self.track(id, now, caller, Waiting::Plugin, Some((instance, at)));
        Ok(RequestId(id))
    }

    /// Sends a call to pipeline `pipeline`'s first stage; `fill` writes the
    /// `Call` message (at most `max_len` bytes) in ring memory. The reply
    /// is an `Outcome::Pipeline` (or a failure) once a stage sends `End`.
    pub fn call_pipeline(
        &mut self,
        caller: C,
        pipeline: usize,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<RequestId, CallError> {
        let first = self
            .pipelines
            .get(pipeline)
            .ok_or(CallError::NoSuchPlugin)?
            .first;
        let (id, timeout, lane, _) =
            self.send(first, Some(pipeline), None, Format::Raw, max_len, fill)?;
        // A pipeline call is counted by the pipeline, not by the stage's
        // instance (a stage's instances always take calls).
        self.plugins[first].shared.instances[lane].leave();
        let now = Instant::now();
        self.attention.traffic(&self.plugins[first].shared, now);
        self.pipelines[pipeline]
            .deadlines
            .push_back((now + timeout, id));
        self.track(id, now, caller, Waiting::pipeline(pipeline), None);
        Ok(RequestId(id))
    }

    fn track(
        &mut self,
        id: u64,
        sent: Instant,
        caller: C,
        waiting: Waiting,
        lane: Option<(usize, u64)>,
    ) {
        self.next_id += 1;
        let pending = Pending {
            sent,
            caller,
            waiting,
            instance: lane.map(|l| l.0),
            at: lane.map_or(0, |l| l.1),
        };
        self.pending.insert(id, pending);
    }

    /// Writes one request into one of `plugin`'s lanes: a version chosen
    /// by weight (by `key` when given), then one of its instances (see
    /// `route.rs`; a full ring tried next), counted against the limit of
    /// `pipeline` if given, else of the plugin. Returns its id, timeout
    /// the instance (lane) it went to and its ring position there.
    fn send(
        &mut self,
        plugin: PluginId,
        pipeline: Option<usize>,
        key: Option<&[u8]>,
        format: Format,
        max_len: usize,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(u64, std::time::Duration, usize, u64), CallError> {
        let ThreadPlugin {
            shared,
            lanes,
            route,
            ..
        } = &mut self.plugins[plugin];
        let (stats, limit, timeout) = match pipeline {
            Some(q) => {
                let s = &self.pipelines[q].shared;
                (&s.stats, s.config.max_inflight, s.config.timeout)
            }
            None => (
                &shared.stats,
                shared.config.max_inflight,
                shared.config.timeout,
            ),
        };
        // The stats region counts refusals of the plugin's own calls.
        let shm = shared.shm.get().filter(|_| pipeline.is_none());
        if stats.in_flight.fetch_add(1, Relaxed) >= limit {
            stats.in_flight.fetch_sub(1, Relaxed);
            stats.rejected.fetch_add(1, Relaxed);
            if let Some(entry) = shm {
                entry.refused();
            }
            return Err(CallError::TooMany(limit));
        }
        let id = ((self.thread as u64) << 48) | self.next_id;
        let env = Envelope {
            format,
            deadline_ms: unix_ms() + timeout.as_millis() as u64,
            ..Envelope::request(id)
        };
        let version = route.version(&shared.traffic, key);
        let per = shared.config.per_version.max(1);
        let base = (version * per).min(lanes.len().saturating_sub(per));
        let n = per.min(lanes.len());
        let first = route.instance(shared, version);
        // The version's lanes from the chosen one on.
        let version_lanes = (0..n).map(|k| base + (first + k) % n);
        match place(shared, lanes, version_lanes, &env, max_len, fill) {
            Ok((lane, at)) => {
                route.sent(shared, shared.config.version_of(lane), lane % per);
                Ok((id, timeout, lane, at))
            }
            Err(e) => {
                if e == CallError::Full {
                    stats.rejected.fetch_add(1, Relaxed);
                    if let Some(entry) = shm {
                        entry.refused();
                    }
                }
                stats.in_flight.fetch_sub(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Largest payload pipeline `pipeline`'s first stage takes.
    pub fn pipeline_max_payload(&self, pipeline: usize) -> usize {
        self.pipelines
            .get(pipeline)
            .and_then(|q| self.plugins[q.first].lanes.first())
            .map_or(0, |l| l.requests.ring().max_payload())
    }

    /// Reply eventfds, in lane order (index for [`PluginClient::on_wake`]).
    pub fn wake_fds(&self) -> Vec<RawFd> {
        self.lanes().map(|l| l.spec().reply_eventfd).collect()
    }

    /// Reply eventfds this client has (`wake_fds().len()`).
    pub fn lane_count(&self) -> usize {
        self.plugins.iter().map(|p| p.lanes.len()).sum()
    }

    fn lanes(&self) -> impl Iterator<Item = &HostPair> + Clone {
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
        let Self {
            plugins,
            pipelines,
            pending,
            ready,
            invalidations,
            partials,
            attention,
            ..
        } = self;
        attention.awake(
            plugins
                .iter()
                .flat_map(|p| p.lanes.iter().map(|l| &l.replies)),
        );
        for (index, p) in plugins.iter_mut().enumerate() {
            for lane in &mut p.lanes {
                let mut to = super::replies::Sinks {
                    pending: &mut *pending,
                    ready: &mut *ready,
                    invalidations: &mut *invalidations,
                    partials: &mut *partials,
                };
                if read_replies(index, lane, &p.shared, pipelines, &mut to, now) {
                    attention.traffic(&p.shared, now);
                }
            }
        }
        for (index, p) in self.plugins.iter_mut().enumerate() {
            let mut stranded = stranded::Stranded {
                shared: &p.shared,
                deadlines: &p.deadlines,
                lanes: &mut p.lanes,
                plugin: index,
            };
            stranded.answer(&mut p.detaches, &mut self.pending, &mut self.ready, now);
            let (stats, ms) = (&p.shared.stats, p.shared.config.timeout.as_millis() as u64);
            expire(
                &mut p.deadlines,
                stats,
                Some(&p.shared),
                ms,
                index,
                &mut self.pending,
                &mut self.ready,
                now,
            );
        }
        for q in &mut self.pipelines {
            let (stats, ms) = (&q.shared.stats, q.shared.config.timeout.as_millis() as u64);
            expire(
                &mut q.deadlines,
                stats,
                None,
                ms,
                q.first,
                &mut self.pending,
                &mut self.ready,
                now,
            );
        }
    }

    pub fn next_reply(&mut self) -> Option<PluginReply<C>> {
        self.ready.pop_front()
    }

    /// A frame's result of a pipeline call still running (for callers
    /// that stream them).
    pub fn next_partial(&mut self) -> Option<super::replies::Partial<C>> {
        self.partials.pop_front()
    }

    /// An `Invalidation` record a plugin pushed: (plugin, payload).
    pub fn take_invalidation(&mut self) -> Option<(PluginId, Vec<u8>)> {
        self.invalidations.pop_front()
    }

    /// When the loop must poll again: the earliest deadline of a pending
    /// call, or now (attentive, or replies waiting; see `attention.rs`).
    /// Called just before the loop blocks: sets the reply rings' flags.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.plugins.is_empty() {
            return None;
        }
        let rings = self.lanes().map(|l| &l.replies);
        if let Some(now) = self.attention.before_block(!self.pending.is_empty(), rings) {
            return Some(now);
        }
        let plugins = self.plugins.iter().map(|p| &p.deadlines);
        let pipelines = self.pipelines.iter().map(|q| &q.deadlines);
        plugins
            .chain(pipelines)
            .filter_map(|d| d.front().map(|d| d.0))
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

/// Fails every call of `deadlines` whose time is up (a timeout reply);
/// `plugin_shared`: the plugin whose instance and version count it.
#[allow(clippy::too_many_arguments)]
fn expire<C>(
    deadlines: &mut VecDeque<(Instant, u64)>,
    stats: &CallStats,
    plugin_shared: Option<&PluginShared>,
    timeout_ms: u64,
    plugin: PluginId,
    pending: &mut HashMap<u64, Pending<C>>,
    ready: &mut VecDeque<PluginReply<C>>,
    now: Instant,
) {
    while let Some(&(deadline, id)) = deadlines.front() {
        if pending.contains_key(&id) && deadline > now {
            break;
        }
        deadlines.pop_front();
        if let Some(p) = pending.remove(&id) {
            stats.in_flight.fetch_sub(1, Relaxed);
            stats.timeouts.fetch_add(1, Relaxed);
            let error = CallError::Timeout(timeout_ms);
            ready.push_back(p.fail(id, plugin, plugin_shared, Ending::Timeout, error, now));
        }
    }
}
