//! What one core's loop owns and lends to every session it runs, and the
//! per-turn poll that finishes operations and completes parked connections
//! (see `crate::wait`).

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Instant;

use citadel_cache::CacheHandle;
use citadel_net::Waiter;

use crate::forward::{Forwarder, Part};
use crate::monitor::Monitors;
use crate::pipeline::ThreadPipelines;
use crate::plugin::PluginClient;
use crate::pubsub::{Delivery, Message, Registry};
use crate::readthrough::{Loader, ThreadLoads};
use crate::stats::ThreadStats;
use crate::wait::{Caller, Completion, Mail, SharedInboxes, Target, ThreadWaits, WaitKey};

pub struct ThreadCtx {
    pub index: usize,
    pub cache: CacheHandle,
    pub stats: Arc<ThreadStats>,
    /// This thread's plugin rings and calls in flight.
    pub plugins: PluginClient<Caller>,
    /// This thread's read-through loads and the clients waiting for them.
    pub loads: ThreadLoads,
    /// This thread's pipeline waits and the calls it settled.
    pub pipelines: ThreadPipelines,
    /// Which parked connection waits for what.
    pub waits: ThreadWaits,
    /// Every thread's inbox (this thread reads its own).
    pub inboxes: SharedInboxes,
    /// Who is subscribed where (shared by every thread).
    pub pubsub: Arc<Registry>,
    /// Who monitors where (shared by every thread).
    pub monitors: Arc<Monitors>,
    /// This thread's view of the cluster (None: cluster mode is off), set
    /// by the service once the node is installed.
    pub cluster: Option<citadel_cluster::ThreadView>,
    /// This core's admission control and copy of the overload rules (set
    /// by the service; None in unit tests).
    pub overload: Option<crate::overload::ThreadOverload>,
    /// Clients of this thread held by CLIENT PAUSE (released by the
    /// service's poll once the pause ends).
    pub paused: Vec<u64>,
    /// Blocked clients of this thread with a timeout: (client id, Unix ms).
    pub block_deadlines: Vec<(u64, u64)>,
    /// Arguments of commands run inside EXEC or a script whose keyspace
    /// events depend on them, kept until the events are published
    /// (`command::key_events`).
    pub event_args: Vec<KeptArgs>,
    /// Stream keys whose group got a consumer made by the command that
    /// wrote them (XREADGROUP, XCLAIM, XAUTOCLAIM): (change tag,
    /// namespace, key), so that write publishes `xgroup-createconsumer`
    /// (`command::key_events`).
    pub consumers_made: Vec<(u16, u8, Vec<u8>)>,
    /// Keys the running command wrote that blocked clients may wait for
    /// (signalled once it committed: `command::blocking`).
    pub written_keys: WrittenKeys,
    /// This core's hot-key sampling and top list (`crate::hotkeys`).
    pub hotkeys: crate::hotkeys::Recorder,
    /// Mail (published messages) sent by a transaction attempt, delivered
    /// when it commits ([`ThreadCtx::release_held_mail`]) and dropped when
    /// it is retried or abandoned ([`ThreadCtx::drop_attempt_effects`]).
    pub held_mail: Vec<(usize, Mail)>,
    /// PUBLISHes for the other cluster members (one part per peer) a
    /// transaction attempt made, sent or dropped with `held_mail`.
    pub held_broadcasts: Vec<Vec<Part>>,
    /// Times commands (`command_clock`).
    pub command_clock: crate::command_clock::CommandClock,
    /// The commands the open EXEC or script ran, counted at its publication
    /// (`command::nested_calls`).
    pub nested_calls: crate::introspect::nested::NestedCalls,
    /// Keys changed this loop turn that BCAST tracking clients hear of
    /// when it ends (`crate::tracking::Tracking::broadcast`).
    pub bcast: crate::tracking::BcastBatch,
    /// What this thread's wake fds are, by position (see `wake_fds`).
    wakes: Vec<Wake>,
    mail: Vec<Mail>,
    /// The last forward this thread started (proxy mode).
    forwards: u64,
    migrates: u64,
}

/// Keys one command wrote, in one reused buffer.
#[derive(Default)]
pub struct WrittenKeys {
    bytes: Vec<u8>,
    spans: Vec<std::ops::Range<usize>>,
}

impl WrittenKeys {
    pub fn push(&mut self, key: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.spans.push(start..self.bytes.len());
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.spans.iter().map(|span| &self.bytes[span.clone()])
    }

    pub fn clear(&mut self) {
        self.spans.clear();
        self.bytes.clear();
    }
}

/// What a wake fd belongs to.
#[derive(Debug, Clone, Copy)]
enum Wake {
    /// The reply ring of plugin lane `n` of this thread.
    PluginLane(usize),
    /// This thread's inbox.
    Inbox,
}

impl ThreadCtx {
    #[allow(clippy::too_many_arguments)] // one per shared part it lends to sessions
    pub fn new(
        index: usize,
        cache: CacheHandle,
        stats: Arc<ThreadStats>,
        plugins: PluginClient<Caller>,
        loads: ThreadLoads,
        pipelines: ThreadPipelines,
        inboxes: SharedInboxes,
        pubsub: Arc<Registry>,
        monitors: Arc<Monitors>,
    ) -> ThreadCtx {
        let mut wakes: Vec<Wake> = (0..plugins.lane_count()).map(Wake::PluginLane).collect();
        if inboxes.get(index).is_some() {
            wakes.push(Wake::Inbox);
        }
        ThreadCtx {
            index,
            cache,
            stats,
            plugins,
            loads,
            pipelines,
            waits: ThreadWaits::default(),
            inboxes,
            pubsub,
            monitors,
            cluster: None,
            overload: None,
            paused: Vec::new(),
            block_deadlines: Vec::new(),
            event_args: Vec::new(),
            consumers_made: Vec::new(),
            written_keys: WrittenKeys::default(),
            hotkeys: Default::default(),
            held_mail: Vec::new(),
            held_broadcasts: Vec::new(),
            command_clock: Default::default(),
            nested_calls: Default::default(),
            bcast: Default::default(),
            wakes,
            mail: Vec::new(),
            forwards: 0,
            migrates: 0,
        }
    }

    /// Counts a call a saturated downstream (plugin, loader) refused at once.
    pub fn count_downstream(
        &self,
        reason: crate::overload::Reason,
        priority: crate::overload::ClientPriority,
    ) {
        if let Some(o) = &self.overload {
            let rank = crate::overload::Rank::of(priority, crate::overload::CommandClass::Compute);
            o.stats().count(reason, rank);
        }
    }

    /// Wakes the blocked clients whose timeout passed: their command runs
    /// again and answers that it timed out.
    fn wake_timed_out_blocks(&mut self) {
        if self.block_deadlines.is_empty() {
            return;
        }
        let now = citadel_cache::unix_millis();
        let waits = &mut self.waits;
        self.block_deadlines.retain(|&(client, deadline)| {
            let passed = deadline <= now;
            if passed {
                waits.wake(Completion::Unblocked { client });
            }
            !passed
        });
    }

    /// When the loop must wake for the next blocked client's timeout.
    pub fn block_deadline(&self) -> Option<Instant> {
        let next = self.block_deadlines.iter().map(|&(_, at)| at).min()?;
        let now = citadel_cache::unix_millis();
        Some(Instant::now() + std::time::Duration::from_millis(next.saturating_sub(now)))
    }

    /// Delivers the mail a committed transaction attempt held, and sends
    /// its broadcasts to the other members through `forwarder`.
    pub fn release_held_mail(&mut self, forwarder: Option<&Forwarder>) {
        // The common case (most transactions wake no one): no drain made.
        if self.held_mail.is_empty() && self.held_broadcasts.is_empty() {
            return;
        }
        for (thread, mail) in self.held_mail.drain(..) {
            self.inboxes.send(thread, mail);
        }
        let broadcasts = self.held_broadcasts.drain(..);
        if let Some(forwarder) = forwarder {
            broadcasts.for_each(|parts| forwarder.send_unanswered(parts));
        }
    }

    /// Forgets what an attempt that is retried or abandoned held for its
    /// commit: its mail, its broadcasts, and the consumers it made (their
    /// `xgroup-createconsumer` events: a retry that finds the consumer
    /// made by another client meanwhile makes none).
    pub fn drop_attempt_effects(&mut self) {
        self.held_mail.clear();
        self.held_broadcasts.clear();
        self.consumers_made.clear();
    }

    /// The eventfds the loop polls, in the order `on_wake` numbers them.
    pub fn wake_fds(&self) -> Vec<RawFd> {
        let lanes = self.plugins.wake_fds();
        self.wakes
            .iter()
            .filter_map(|w| match w {
                Wake::PluginLane(n) => lanes.get(*n).copied(),
                Wake::Inbox => self.inboxes.get(self.index).map(|i| i.fd()),
            })
            .collect()
    }

    pub fn on_wake(&mut self, index: usize) {
        match self.wakes.get(index) {
            Some(Wake::PluginLane(n)) => self.plugins.on_wake(*n),
            Some(Wake::Inbox) => {
                if let Some(inbox) = self.inboxes.get(self.index) {
                    inbox.on_wake();
                }
            }
            None => tracing::warn!(index, "wake-up of an unknown eventfd"),
        }
    }

    /// Once per turn: reads plugin replies, settles this thread's loads,
    /// applies invalidations, takes mail from other threads and mails
    /// theirs, then hands every finished wait to the loop.
    pub fn poll(&mut self, now: Instant, ready: &mut Vec<(Waiter, Completion)>) {
        self.plugins.poll(now);
        // Frames before the ends of their calls: a call whose frames and
        // End arrived in one read streams them before it settles.
        while let Some(partial) = self.plugins.next_partial() {
            if let Caller::Pipeline { key, .. } = partial.caller {
                self.stream_partial(key, partial.index, partial.json);
            }
        }
        while let Some(reply) = self.plugins.next_reply() {
            match reply.caller {
                Caller::Client => self.waits.finish(Completion::Plugin {
                    request: reply.request,
                    plugin: reply.plugin,
                    outcome: reply.outcome,
                }),
                Caller::ReadThrough => {
                    let loader = Loader {
                        plugins: &mut self.plugins,
                        caller: Caller::ReadThrough,
                    };
                    self.loads.on_load_done(&mut self.cache, loader, reply);
                }
                Caller::Pipeline {
                    pipeline,
                    key,
                    spooled,
                } => {
                    self.settle_pipeline(pipeline, key, spooled, reply.outcome);
                }
            }
        }
        while let Some((plugin, payload)) = self.plugins.take_invalidation() {
            self.loads.invalidate(&mut self.cache, plugin, &payload);
        }
        if let Some(inbox) = self.inboxes.get(self.index) {
            inbox.take(&mut self.mail);
        }
        for mail in self.mail.drain(..) {
            match mail {
                Mail::LoadResult { wait, slot, result } => self.loads.fill(wait, slot, result),
                Mail::PipelineDone { wait, result } => {
                    self.waits.finish(Completion::Pipeline { wait, result })
                }
                Mail::PipelinePartial { wait, index, json } => self
                    .waits
                    .progress(Completion::PipelinePartial { wait, index, json }),
                Mail::Publish { message, receivers } => {
                    deliver_message(&self.pubsub, &mut self.waits, &message, receivers)
                }
                // Only a wake-up: the service's poll releases paused clients.
                Mail::Unpause => {}
                Mail::Invalidate { receivers, what } => {
                    for (client, waiter) in receivers {
                        let what = what.clone();
                        self.waits
                            .push(waiter, Completion::Invalidate { client, what });
                    }
                }
                Mail::Monitor { line, monitors } => {
                    deliver_line(&self.monitors, &mut self.waits, &line, &monitors)
                }
                Mail::Forwarded(done) => self.waits.finish(Completion::Forward {
                    id: done.id,
                    results: done.results,
                }),
                Mail::Migrated(done) => self.waits.finish(Completion::Migrate {
                    id: done.id,
                    outcome: done.outcome,
                }),
                Mail::KeyReady { client } => self.waits.wake(Completion::Unblocked { client }),
            }
        }
        self.wake_timed_out_blocks();
        self.finish_loads();
        self.waits.drain_into(ready);
    }

    /// Mails results for waiters on other threads and completes the load
    /// waits of this thread's connections.
    fn finish_loads(&mut self) {
        for r in self.loads.take_remote() {
            let mail = Mail::LoadResult {
                wait: r.wait,
                slot: r.slot,
                result: r.result,
            };
            self.inboxes.send(r.thread, mail);
        }
        while let Some((wait, results)) = self.loads.next_finished() {
            self.waits.finish(Completion::Loads { wait, results });
        }
    }

    /// A pipeline call this thread led finished: store the result, then
    /// answer its waiters here and mail those of other threads.
    pub fn settle_pipeline(
        &mut self,
        pipeline: usize,
        hash: u128,
        spooled: bool,
        outcome: crate::plugin::Outcome,
    ) {
        let Some(shared) = self
            .plugins
            .hub()
            .and_then(|h| h.pipelines.get(pipeline))
            .cloned()
        else {
            return;
        };
        let name = &shared.config.name;
        let key = crate::pipeline::ResultKey::for_hash(name, hash);
        let ttl_ms = shared.config.result_ttl.as_millis() as u64;
        self.pipelines
            .settle(&mut self.cache, name, &key, ttl_ms, spooled, outcome);
        let me = self.index;
        for s in self.pipelines.take_settled() {
            let (wait, result) = (s.wait, s.result);
            if s.thread == me {
                self.waits.finish(Completion::Pipeline { wait, result });
            } else {
                self.inboxes
                    .send(s.thread, Mail::PipelineDone { wait, result });
            }
        }
    }

    /// One frame's result of a call this thread leads: to every waiter
    /// that streams (the others ignore it), here or by mail.
    fn stream_partial(&mut self, key: u128, index: u32, json: Arc<[u8]>) {
        let me = self.index;
        for (thread, wait) in self.pipelines.flights.waiters(key) {
            let json = json.clone();
            if thread == me {
                self.waits
                    .progress(Completion::PipelinePartial { wait, index, json });
            } else {
                self.inboxes
                    .send(thread, Mail::PipelinePartial { wait, index, json });
            }
        }
    }

    /// A fresh id for a forward of this thread.
    pub fn next_forward(&mut self) -> crate::forward::ForwardId {
        self.forwards += 1;
        crate::forward::ForwardId(self.forwards)
    }

    /// A fresh id for an outbound MIGRATE of this thread.
    pub fn next_migrate(&mut self) -> crate::migrate::MigrateId {
        self.migrates += 1;
        crate::migrate::MigrateId(self.migrates)
    }

    /// A connection parked on `key`.
    pub fn park(&mut self, key: WaitKey, waiter: Waiter) {
        self.waits.park(key, Target::Conn(waiter));
    }
}

/// Hands a published message to each of its receivers on this thread
/// (those still subscribed; the loop drops it for a closed connection).
fn deliver_message(
    pubsub: &Registry,
    waits: &mut ThreadWaits,
    message: &Arc<Message>,
    receivers: Vec<Delivery>,
) {
    let waiters = pubsub.waiters(message, &receivers);
    for (d, waiter) in receivers.into_iter().zip(waiters) {
        if let Some(waiter) = waiter {
            let done = Completion::Message {
                client: d.client,
                message: message.clone(),
                pattern: d.pattern,
            };
            waits.push(waiter, done);
        }
    }
}

/// Hands a MONITOR line to each of its monitors on this thread (those
/// still monitoring; the loop drops it for a closed connection).
fn deliver_line(monitors: &Monitors, waits: &mut ThreadWaits, line: &Arc<[u8]>, clients: &[u64]) {
    let waiters = monitors.waiters(clients);
    for (&client, waiter) in clients.iter().zip(waiters) {
        if let Some(waiter) = waiter {
            let line = line.clone();
            waits.push(waiter, Completion::Monitor { client, line });
        }
    }
}

/// A copy of a command's arguments (its index in the command table, the
/// bytes, each argument's span), kept for its keyspace events by
/// `command::key_events` until the transaction or script commits.
#[derive(Debug)]
pub struct KeptArgs {
    pub idx: usize,
    pub buf: Vec<u8>,
    pub spans: Vec<std::ops::Range<usize>>,
}
