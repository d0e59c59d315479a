//! One server thread's event loop: reap completions, run commands, queue one
//! send per connection, then one `io_uring_enter` that submits everything and
//! waits for completions or the next maintenance tick.
//!
//! A long turn (a core under load reaps many reads full of requests) is cut
//! into slices: every `SLICE` of work the replies ready so far are submitted
//! at once, so a request's latency is the slice it ran in, not the whole turn.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, types, IoUring};

use super::batch::WaitBatch;
use super::bufring::BufRing;
use super::connection::{Connection, State};
use super::fixed::FixedFiles;
use super::listener::Listening;
use super::peer_watch::{Duplicate, PeerWatch};
use super::shared::Shared;
use super::slab::Slab;
use super::stall_peers::OwnConnections;
use super::stats::LoopStats;
use super::token::{Op, Token};
use super::{NetError, Service, Waiter};

/// Period of maintenance (clock, cache upkeep, killed clients, shutdown).
const TICK: Duration = Duration::from_millis(100);
/// Work after which a turn sends the replies it has so far: short next to
/// an admission target (ms), long next to a submit (~1-2 µs), so slicing
/// costs under 1% while it bounds how long a reply waits for its turn.
const SLICE: Duration = Duration::from_micros(200);
/// Completions between two looks at the clock for the slice ...
const SLICE_CHECK_EVERY: usize = 8;
/// ... or one, while completions cost this much each (their requests' work):
/// 8 of them would overrun a slice by a slice, and a reply made by the first
/// (a BITCOUNT of 256 KiB, ~80 µs) waited ~600 µs for its send. A look at the
/// clock (~20 ns) is under 0.1% of such a completion.
const HEAVY_COMPLETION: Duration = Duration::from_micros(25);

pub struct Worker<S: Service> {
    // Field order matters: the io_uring is dropped (and with it every request)
    // before the buffer ring and the connections whose memory it references.
    pub(super) uring: IoUring,
    pub(super) bufs: BufRing,
    /// The ring's registered socket table, indexed by connection slot.
    pub(super) files: FixedFiles,
    pub(super) conns: Slab<Connection<S::Session>>,
    /// Closed at shutdown.
    pub(super) listeners: Vec<Listening>,
    pub(super) svc: S,
    pub(super) thread: usize,
    pub(super) stats: Arc<LoopStats>,
    pub(super) shared: Arc<Shared>,
    /// Accept failed (e.g. out of descriptors): re-arm at the next tick, not at once.
    pub(super) accept_paused: bool,
    /// Reused per turn, so the hot path does not allocate.
    pub(super) cqes: Vec<cqueue::Entry>,
    pub(super) ready: Vec<(Waiter, S::Completion)>,
    pub(super) flush: Vec<u32>,
    /// The thread's connections as a stalled thread answers them
    /// (stall_peers.rs).
    pub(super) own: OwnConnections,
    pub(super) rearm: Vec<u32>,
    pub(super) doomed: Vec<u32>,
    /// Held connections (slot, generation) and when the next hold step is
    /// due (hold.rs).
    pub(super) held: Vec<(u32, u32)>,
    pub(super) hold_deadline: Option<Instant>,
    /// At shutdown: when connections that are not parked (a client not
    /// reading its replies) are closed.
    pub(super) drain_until: Option<Instant>,
    /// ... and when parked ones (still owed a reply) are.
    pub(super) parked_until: Option<Instant>,
    /// Set once the stalled connections were closed.
    pub(super) stalled_closed: bool,
    pub(super) abort_until: Option<Instant>,
    /// How many completions the next wait is for (batch.rs).
    pub(super) batch: WaitBatch,
    /// Each peer thread's heartbeat as last seen (relief.rs).
    pub(super) peers: Vec<PeerWatch>,
    /// Stalled peers' listeners this thread accepts from (peer, its
    /// listener's duplicate), and when it next looks (relief.rs).
    pub(super) relieved: Vec<(usize, Duplicate)>,
    pub(super) relief_due: Option<Instant>,
}

impl<S: Service> Worker<S> {
    pub fn new(
        uring: IoUring,
        bufs: BufRing,
        listeners: Vec<Listening>,
        svc: S,
        thread: usize,
        stats: Arc<LoopStats>,
        shared: Arc<Shared>,
    ) -> Worker<S> {
        let files = FixedFiles::register(&uring, svc.maxclients());
        let batch = WaitBatch::new(uring.params().is_feature_min_timeout());
        Worker {
            uring,
            bufs,
            files,
            conns: Slab::default(),
            listeners,
            svc,
            thread,
            stats,
            shared,
            accept_paused: false,
            cqes: Vec::with_capacity(1024),
            ready: Vec::new(),
            flush: Vec::with_capacity(1024),
            own: OwnConnections::default(),
            rearm: Vec::with_capacity(1024),
            doomed: Vec::new(),
            held: Vec::new(),
            hold_deadline: None,
            drain_until: None,
            parked_until: None,
            stalled_closed: false,
            abort_until: None,
            batch,
            peers: Vec::new(),
            relieved: Vec::new(),
            relief_due: None,
        }
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(mut self) -> Result<(), NetError> {
        if self.shared.relief.loops.len() == 1 {
            // No peer can take its connections while a script stalls it.
            super::stall_door::install(self.shared.relief.duplicate(self.thread), self.thread);
        }
        // (Single issuer comes with deferred task work in `uring::create`.)
        if self.uring.params().is_setup_single_issuer() {
            self.own.enable(self.svc.maxclients());
        }
        self.arm_accept();
        self.arm_wakes();
        let mut next_tick = Instant::now() + TICK;
        let mut turn_start = Instant::now();
        loop {
            let now = Instant::now();
            self.stats
                .busy_ns
                .fetch_add((now - turn_start).as_nanos() as u64, Relaxed);
            let wake_at = self
                .svc
                .next_deadline()
                .map_or(next_tick, |d| d.min(next_tick))
                .min(self.hold_deadline.unwrap_or(next_tick))
                .min(self.relief_due.unwrap_or(next_tick));
            self.svc.rest();
            let submitted = if wake_at <= Instant::now() {
                // Due already (a service polling shared memory): submit
                // without waiting. Even a zero timeout would arm a timer,
                // and timer slack turns that into tens of microseconds.
                self.uring.submit().map(drop)
            } else {
                let timeout = wake_at.saturating_duration_since(now);
                let ts = types::Timespec::from(timeout);
                let (want, min_wait) = self.batch.want(timeout, !self.held.is_empty());
                let args = match min_wait {
                    Some(us) => types::SubmitArgs::new().min_wait_usec(us),
                    None => types::SubmitArgs::new(),
                };
                let args = args.timespec(&ts);
                self.uring
                    .submitter()
                    .submit_with_args(want, &args)
                    .map(drop)
            };
            if let Err(e) = submitted {
                match e.raw_os_error() {
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                    _ => return Err(NetError::Enter(e)),
                }
            }
            super::uring::run_deferred_work(&mut self.uring);
            turn_start = Instant::now();
            self.svc.turn(unix_millis());
            self.reap(turn_start);
            self.run_completions(turn_start);
            self.adopt_stalled();
            if self.relief_due.is_some() {
                self.accept_relieved(turn_start);
            }
            // No clock read on a turn with nothing held (nearly every one).
            if !self.held.is_empty() {
                self.release_holds(Instant::now());
            }
            self.flush_and_rearm();
            if turn_start >= next_tick {
                next_tick = turn_start + TICK;
                self.tick();
            }

            if self.shutdown_step(turn_start) {
                break;
            }
        }
        self.svc.rest();
        self.bufs.unregister(&self.uring);
        Ok(())
    }

    fn reap(&mut self, turn_start: Instant) {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.uring.completion());
        // (A full completion queue may have overflowed, holding
        // completions back: which connections they received for is not
        // known this turn.)
        let overflowed = cqes.len() >= self.uring.params().cq_entries() as usize;
        self.own.reaped(&cqes, overflowed);
        self.batch.taken();
        self.prefetch_inputs(&cqes);
        let (mut slice_start, mut looked) = (turn_start, turn_start);
        let (mut every, mut since) = (SLICE_CHECK_EVERY, 0);
        let mut recvs = 0;
        for cqe in cqes.iter() {
            // The clock every few completions, not per request: a slice
            // overruns by at most that many completions' work.
            since += 1;
            if since >= every {
                let now = Instant::now();
                let heavy =
                    now.saturating_duration_since(looked) >= HEAVY_COMPLETION * since as u32;
                (every, since, looked) = (if heavy { 1 } else { SLICE_CHECK_EVERY }, 0, now);
                if now.saturating_duration_since(slice_start) >= SLICE {
                    self.send_now();
                    slice_start = now;
                }
            }
            let token = Token::decode(cqe.user_data());
            match token.op {
                Op::Accept => {
                    let listener = token.slot as usize;
                    self.on_accept(listener, cqe.result(), cqueue::more(cqe.flags()))
                }
                Op::Recv => {
                    recvs += 1;
                    self.on_recv(token, cqe.result(), cqe.flags())
                }
                Op::Send => self.on_send(token, cqe.result()),
                Op::Cancel => {}
                Op::Wake => self.on_wake(token, cqe.result(), cqueue::more(cqe.flags())),
            }
        }
        self.cqes = cqes;
        self.batch.reaped(recvs);
    }

    /// Lets the service start loading what this turn's received requests
    /// need before any of them runs, so their cache misses overlap
    /// ([`Service::prefetch`]); only with two or more to overlap.
    fn prefetch_inputs(&mut self, cqes: &[cqueue::Entry]) {
        let received = |cqe: &&cqueue::Entry| {
            cqe.result() > 0
                && Token::decode(cqe.user_data()).op == Op::Recv
                && cqueue::buffer_select(cqe.flags()).is_some()
        };
        if cqes.iter().filter(received).nth(1).is_none() {
            return;
        }
        let (conns, bufs) = (&self.conns, &self.bufs);
        self.svc
            .prefetch(cqes.iter().filter(received).filter_map(|cqe| {
                let token = Token::decode(cqe.user_data());
                let conn = conns.get(token.slot, token.generation)?;
                if conn.recv_direct || !conn.runs_straight() {
                    return None;
                }
                let bid = cqueue::buffer_select(cqe.flags())?;
                // SAFETY: `bid` was handed to us by this recv completion, which
                // `on_recv` recycles later in this turn (not before); `result`
                // is the byte count it holds.
                let data = unsafe { bufs.filled(bid, cqe.result() as usize) };
                Some((&conn.session, data))
            }));
    }

    /// Mid-turn, a slice's worth of work done: submits the replies it made
    /// (and any re-arms) now instead of at the end of the turn.
    fn send_now(&mut self) {
        self.flush_and_rearm();
        if self.uring.submission().cq_overflow() {
            // This enter runs deferred receives, posting completions this
            // turn did not reap (stall_peers.rs).
            self.own.suspend();
        }
        if let Err(e) = self.uring.submit() {
            // The entries stay queued; the turn's own enter submits them.
            tracing::debug!(thread = self.thread, "mid-turn submit: {e}");
        }
    }

    fn tick(&mut self) {
        // ORDERING: Relaxed: a standalone counter (a watchdog sees it move).
        self.stats.ticks.fetch_add(1, Relaxed);
        self.batch.ticked();
        self.svc.tick();
        self.watch_peers();
        self.accept_paused = false;
        let mut doomed = std::mem::take(&mut self.doomed);
        doomed.extend(
            self.conns
                .slots()
                .filter(|(_, c)| c.state != State::Closing && self.svc.is_killed(&c.session))
                .map(|(slot, _)| slot),
        );
        for &slot in &doomed {
            self.close_hard(slot);
        }
        doomed.clear();
        self.doomed = doomed;
    }

    /// Serving the connection in `slot` panicked: close it, count it, log it.
    pub(super) fn panicked(&mut self, slot: u32, what: &str) {
        self.stats.panics.fetch_add(1, Relaxed);
        tracing::error!(
            thread = self.thread,
            "closing a connection whose request panicked the server: {what}"
        );
        self.svc.on_panic(what);
        self.close_hard(slot);
    }
}

/// Wall-clock time in Unix milliseconds (what the service's expiries use).
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
