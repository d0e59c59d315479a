//! The serve loop, one for every mode: read requests from every ring pair
//! (poison and deadline checks, delivery counted in ring memory), hand them
//! to the mode's handler, take answers and unsolicited records from other
//! threads (the inbox), publish replies as they come (retrying while a reply
//! ring is full, never dropping), commit each pair's settled prefix, and
//! park on the rings, the inbox and the stop signal when idle. SIGTERM,
//! SIGINT or a `Stopper`: stop reading, finish what is in hand, publish,
//! commit, return `Ok`. An idle plugin whose parent (the server) is gone
//! returns `ServerGone`.

pub(crate) mod inbox;
pub(crate) mod lane;
mod notices;
pub(crate) mod outputs;

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_proto::ring::wait_any;
use citadel_proto::Consumer;

use crate::options::{Options, ServeError};
use crate::stop::StopSignal;
use inbox::{Inbox, Msg};
use lane::{Batch, Book, Lane, ReadLimits};
use notices::Notices;

/// How often an idle plugin checks that the server (its parent) still lives.
const PARENT_CHECK: Duration = Duration::from_secs(1);
/// How often to retry while a reply ring is full (the server drains it
/// without ringing us), after spinning and yielding a little.
const FULL_RETRY: Duration = Duration::from_millis(1);
const FULL_SPINS: u32 = 100;
const FULL_YIELDS: u32 = 100;

/// The loop's state.
pub(crate) struct Engine {
    lanes: Vec<Lane>,
    inbox: Arc<Inbox>,
    stop: StopSignal,
    notices: Notices,
    stopping: bool,
}

impl Engine {
    pub(crate) fn new(lanes: Vec<Lane>, inbox: Arc<Inbox>, stop: StopSignal) -> Self {
        Self {
            lanes,
            inbox,
            stop,
            notices: Notices::default(),
            stopping: false,
        }
    }

    /// Serves until stopped; `handle` gets each batch of requests read.
    pub(crate) fn run(
        mut self,
        options: &Options,
        limits: ReadLimits,
        handle: &mut dyn FnMut(Batch<'_, '_>, &mut Book),
    ) -> Result<(), ServeError> {
        let parent = std::os::unix::process::parent_id();
        let mut parent_checked = Instant::now();
        let mut full_tries = 0u32;
        let mut msgs = Vec::new();
        loop {
            let mut worked = self.take_messages(&mut msgs);
            if !self.stopping && self.stop.requested() {
                self.begin_stop("signal");
            }
            self.notices.send(&mut self.lanes);
            if !self.stopping {
                for lane in &mut self.lanes {
                    worked |= lane.read(limits, handle)?;
                }
            }
            let mut blocked = false;
            for lane in &mut self.lanes {
                lane.flush()?;
                blocked |= lane.is_blocked();
            }
            if self.stopping && self.lanes.iter().all(Lane::is_idle) {
                tracing::info!("stopped: every request in hand answered and committed");
                return Ok(());
            }
            if worked {
                full_tries = 0;
                continue;
            }
            if blocked && full_tries < FULL_SPINS + FULL_YIELDS {
                full_tries += 1;
                if full_tries <= FULL_SPINS {
                    std::hint::spin_loop();
                } else {
                    std::thread::yield_now();
                }
                continue;
            }
            let timeout = if blocked { FULL_RETRY } else { PARENT_CHECK };
            self.park(options, limits.in_flight, timeout)?;
            if parent_checked.elapsed() >= PARENT_CHECK {
                parent_checked = Instant::now();
                if self.stop.watches_parent() && citadel_proto::handshake::server_gone(parent) {
                    return Err(ServeError::ServerGone(parent));
                }
            }
        }
    }

    /// Applies what other threads sent; returns whether there was anything.
    fn take_messages(&mut self, msgs: &mut Vec<Msg>) -> bool {
        self.inbox.take(msgs);
        let any = !msgs.is_empty();
        for msg in msgs.drain(..) {
            match msg {
                Msg::Answer { pair, seq, reply } => match self.lanes.get_mut(pair) {
                    Some(lane) => lane.book.answer(seq, reply),
                    None => tracing::error!(pair, "an answer for no ring pair"),
                },
                Msg::Invalidate(key) => self.notices.key(key),
                Msg::Resync => self.notices.resync(),
                Msg::Push {
                    kind,
                    format,
                    payload,
                } => self.notices.record(kind, format, payload),
                Msg::Stop if !self.stopping => self.begin_stop("stop request"),
                Msg::Stop => {}
            }
        }
        any
    }

    fn begin_stop(&mut self, why: &str) {
        self.stopping = true;
        let in_flight: usize = self.lanes.iter().map(Lane::in_flight).sum();
        tracing::info!("stopping ({why}): finishing {in_flight} requests in hand");
    }

    /// Waits for requests, messages or the stop signal. Rings at their
    /// in-flight limit (all of them while stopping) are not waited on:
    /// their unread requests would wake us at once.
    fn park(
        &self,
        options: &Options,
        in_flight: usize,
        timeout: Duration,
    ) -> Result<(), ServeError> {
        let rings: Vec<&Consumer> = self
            .lanes
            .iter()
            .filter(|l| !self.stopping && l.in_flight() < in_flight)
            .map(|l| &l.requests)
            .collect();
        let mut extra = vec![self.inbox.fd()];
        // The stop descriptor stays readable once signalled.
        if !self.stopping {
            extra.push(self.stop.fd());
        }
        if self.inbox.park() {
            wait_any(&rings, &extra, options.spin, Some(timeout))?;
        }
        self.inbox.unpark().map_err(ServeError::Inbox)
    }
}
