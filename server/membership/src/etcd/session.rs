//! The session thread: registers this node (a lease and its member key
//! attached to it), keeps the lease alive, turns the watch's changes into
//! views, fences the node when its keep-alives go unanswered for too long,
//! and registers it again once etcd answers.

use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};
use crossbeam::select;

use citadel_proto::cluster::MembershipEvent;

use super::client::{EtcdClient, EtcdError};
use super::fence::LeaseClock;
use super::members::MemberSet;
use super::watch::{WatchMsg, WatchNews, Watcher};

pub struct Session {
    client: EtcdClient,
    /// `<prefix>members/`.
    members_prefix: String,
    /// `<prefix>members/<id>`, this node's key.
    key: String,
    record: String,
    ttl: Duration,
    events: Sender<MembershipEvent>,
    /// Asks the session to leave; set by `run` (until then, never).
    stop: Receiver<()>,
    watch_tx: Sender<WatchMsg>,
    watch_rx: Receiver<WatchMsg>,
    /// Counts watches, so news from a replaced one is recognised.
    generation: u64,
}

/// This node's standing while its lease is alive as far as it knows.
pub struct Registration {
    lease: i64,
    clock: LeaseClock,
    next_renewal: Instant,
    keep_alive_failing: bool,
    /// The members and the watch that keeps them current; `None` until a
    /// read of the members succeeds.
    members: Option<MemberSet>,
    watcher: Option<Watcher>,
    resync_at: Instant,
}

enum Outcome {
    /// Asked to stop, or the receiver of the events is gone.
    Stop,
    Isolated(String),
}

/// The receiver of the events is gone: nobody needs this membership.
struct ConsumerGone;

impl Session {
    pub fn new(
        client: EtcdClient,
        prefix: &str,
        id: &str,
        record: String,
        ttl: Duration,
        events: Sender<MembershipEvent>,
    ) -> Session {
        let members_prefix = format!("{prefix}members/");
        let (watch_tx, watch_rx) = channel::unbounded();
        Session {
            client,
            key: format!("{members_prefix}{id}"),
            members_prefix,
            record,
            ttl,
            events,
            stop: channel::never(),
            watch_tx,
            watch_rx,
            generation: 0,
        }
    }

    /// Grants a lease and puts this node's key under it, then reads the
    /// members (sending the first view) and opens the watch.
    pub fn register(&mut self) -> Result<Registration, EtcdError> {
        let sent = Instant::now();
        let deadline = sent + self.ttl;
        let lease = self.client.grant(self.ttl, deadline)?;
        let clock = LeaseClock::new(lease.ttl, sent);
        let put_by = deadline.min(clock.fence_at());
        self.client
            .put(&self.key, self.record.as_bytes(), lease.id, put_by)?;
        tracing::info!(key = %self.key, lease = lease.id, ttl = ?lease.ttl, "registered in etcd");
        let mut registration = Registration {
            lease: lease.id,
            next_renewal: clock.next_renewal(),
            clock,
            keep_alive_failing: false,
            members: None,
            watcher: None,
            resync_at: sent,
        };
        // A failed read is retried by `serve`; only a gone consumer matters.
        let _ = self.resync(&mut registration);
        Ok(registration)
    }

    /// Serves `registration` and every later one until `stop` yields or
    /// disconnects.
    pub fn run(mut self, registration: Registration, stop: Receiver<()>) {
        self.stop = stop;
        let mut standing = Some(registration);
        loop {
            let Some(mut registration) = standing.take().or_else(|| self.rejoin()) else {
                return;
            };
            match self.serve(&mut registration) {
                Outcome::Stop => return self.leave(registration),
                Outcome::Isolated(reason) => {
                    // Fencing first; closing the old watch can wait.
                    tracing::warn!(key = %self.key, "isolated from the cluster: {reason}");
                    let told = self.events.send(MembershipEvent::Isolated { reason });
                    drop(registration);
                    if told.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Keeps the lease alive and passes the watch's changes on until the
    /// lease may be lost or the session is told to stop.
    fn serve(&mut self, reg: &mut Registration) -> Outcome {
        loop {
            let mut wake = reg.next_renewal.min(reg.clock.fence_at());
            if reg.watcher.is_none() {
                wake = wake.min(reg.resync_at);
            }
            let timeout = wake.saturating_duration_since(Instant::now());
            select! {
                recv(self.stop) -> _ => return Outcome::Stop,
                recv(self.watch_rx) -> msg => {
                    if let Ok(msg) = msg {
                        if self.on_watch(reg, msg).is_err() {
                            return Outcome::Stop;
                        }
                    }
                }
                default(timeout) => {}
            }
            let now = Instant::now();
            if now >= reg.clock.fence_at() {
                return Outcome::Isolated(format!(
                    "no lease keep-alive answered for {:?} (lease TTL {:?})",
                    now - reg.clock.renewed_at(),
                    reg.clock.ttl()
                ));
            }
            if now >= reg.next_renewal {
                if let Err(reason) = self.keep_alive(reg) {
                    return Outcome::Isolated(reason);
                }
            }
            if reg.watcher.is_none() && Instant::now() >= reg.resync_at && self.resync(reg).is_err()
            {
                return Outcome::Stop;
            }
        }
    }

    /// One keep-alive; `Err` when etcd says the lease is gone.
    fn keep_alive(&mut self, reg: &mut Registration) -> Result<(), String> {
        let sent = Instant::now();
        let deadline = (sent + reg.clock.interval()).min(reg.clock.fence_at());
        match self.client.keep_alive(reg.lease, deadline) {
            Ok(Some(ttl)) => {
                if reg.keep_alive_failing {
                    tracing::info!(lease = reg.lease, "lease keep-alives answered again");
                }
                reg.keep_alive_failing = false;
                reg.clock.renewed(sent, ttl);
                reg.next_renewal = reg.clock.next_renewal();
                Ok(())
            }
            Ok(None) => Err(format!(
                "etcd no longer has lease {} (it expired)",
                reg.lease
            )),
            Err(e) => {
                // Retried every tenth of the TTL: one warning per outage.
                if reg.keep_alive_failing {
                    tracing::debug!(lease = reg.lease, "lease keep-alive failed: {e}");
                } else {
                    tracing::warn!(lease = reg.lease, "lease keep-alive failed (retrying): {e}");
                }
                reg.keep_alive_failing = true;
                reg.next_renewal = Instant::now() + reg.clock.retry();
                Ok(())
            }
        }
    }

    fn on_watch(&mut self, reg: &mut Registration, msg: WatchMsg) -> Result<(), ConsumerGone> {
        if msg.generation != self.generation {
            return Ok(());
        }
        match msg.news {
            WatchNews::Events(events) => {
                let Some(members) = reg.members.as_mut() else {
                    return Ok(());
                };
                for view in members.apply(events) {
                    self.events
                        .send(MembershipEvent::View(view))
                        .map_err(|_| ConsumerGone)?;
                }
            }
            WatchNews::Ended(why) => {
                tracing::warn!("etcd watch ended: {why}; reading the members again");
                reg.watcher = None;
                reg.resync_at = Instant::now();
            }
        }
        Ok(())
    }

    /// Reads the members (a view if the revision moved) and opens a watch
    /// from the next revision. On failure, schedules another try.
    fn resync(&mut self, reg: &mut Registration) -> Result<(), ConsumerGone> {
        reg.watcher = None;
        self.generation += 1;
        let now = Instant::now();
        let deadline = (now + reg.clock.interval()).min(reg.clock.fence_at());
        let opened = self.read_and_watch(deadline);
        let (members, watcher) = match opened {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("reading the members from etcd failed: {e}");
                reg.resync_at = Instant::now() + reg.clock.retry();
                return Ok(());
            }
        };
        let moved = reg
            .members
            .as_ref()
            .is_none_or(|old| members.revision() > old.revision());
        if moved {
            self.events
                .send(MembershipEvent::View(members.view()))
                .map_err(|_| ConsumerGone)?;
        }
        reg.members = Some(members);
        reg.watcher = Some(watcher);
        Ok(())
    }

    fn read_and_watch(&mut self, deadline: Instant) -> Result<(MemberSet, Watcher), EtcdError> {
        let (revision, kvs) = self.client.range_prefix(&self.members_prefix, deadline)?;
        let members = MemberSet::from_range(&self.members_prefix, revision, kvs);
        let (stream, closer) = self
            .client
            .watch(&self.members_prefix, revision + 1, deadline)?;
        let watcher = Watcher::spawn(stream, closer, self.generation, self.watch_tx.clone())
            .map_err(|e| EtcdError::Unexpected {
                endpoint: String::new(),
                call: "watch",
                reply: format!("no watch thread: {e}"),
            })?;
        Ok((members, watcher))
    }

    /// Registers again after isolation, retrying until etcd answers or the
    /// session is told to stop (`None`).
    fn rejoin(&mut self) -> Option<Registration> {
        let mut failures = 0u32;
        loop {
            match self.register() {
                Ok(registration) => return Some(registration),
                Err(e) if failures == 0 => {
                    tracing::warn!("registering in etcd failed (retrying): {e}")
                }
                Err(e) => tracing::debug!("registering in etcd failed (retrying): {e}"),
            }
            failures += 1;
            select! {
                recv(self.stop) -> _ => return None,
                default(self.ttl / 3) => {}
            }
        }
    }

    /// A clean leave: revoking the lease deletes this node's key at once,
    /// so the others take its slots over without waiting for the TTL.
    fn leave(&mut self, reg: Registration) {
        let lease = reg.lease;
        let deadline = Instant::now() + reg.clock.interval();
        drop(reg);
        match self.client.revoke(lease, deadline) {
            Ok(()) => tracing::info!(key = %self.key, "left the cluster (lease revoked)"),
            Err(e) => tracing::warn!(key = %self.key, "lease not revoked, it will expire: {e}"),
        }
    }
}
