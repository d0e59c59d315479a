//! One server thread's event loop: reap completions, run commands, queue one
//! send per connection, then one `io_uring_enter` that submits everything and
//! waits for completions or the next maintenance tick.
//!
//! A long turn (a core under load reaps many reads full of requests) is cut
//! into slices: every `SLICE` of work the replies ready so far are submitted
//! at once, so a request's latency is the slice it ran in, not the whole turn.

use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::batch::WaitBatch;
use super::bufring::BufRing;
use super::connection::{Connection, Fed, State};
use super::fixed::FixedFiles;
use super::shared::Shared;
use super::slab::Slab;
use super::stats::LoopStats;
use super::token::{Op, Token};
use super::{Door, NetError, Service, Waiter};

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

/// One listening socket of this thread, and whether its multishot accept
/// is armed.
pub struct Listening {
    /// None once closed at shutdown (its accept may still be finishing).
    pub(super) socket: Option<socket2::Socket>,
    /// For a Unix socket: its path (the name of clients' unnamed ends).
    pub(super) unix_path: Option<Arc<str>>,
    /// Which front door its connections came in by.
    pub(super) door: Door,
    pub(super) armed: bool,
}

impl Listening {
    pub(super) fn tcp(door: Door, listener: TcpListener) -> Listening {
        Listening {
            socket: Some(listener.into()),
            unix_path: None,
            door,
            armed: false,
        }
    }

    pub(super) fn unix(door: Door, socket: socket2::Socket, path: &std::path::Path) -> Listening {
        Listening {
            socket: Some(socket),
            unix_path: Some(Arc::from(path.to_string_lossy().as_ref())),
            door,
            armed: false,
        }
    }
}

/// Builds an SQE on a connection's socket: by its registered slot (the
/// connection's slab slot) when it has one, else by its descriptor.
macro_rules! on_socket {
    ($conn:expr, $slot:expr, |$fd:ident| $build:expr) => {
        if $conn.fixed {
            let $fd = types::Fixed($slot);
            $build
        } else {
            let $fd = types::Fd($conn.stream.as_raw_fd());
            $build
        }
    };
}

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
    pub(super) next_id: u64,
    pub(super) stats: Arc<LoopStats>,
    pub(super) shared: Arc<Shared>,
    /// Accept failed (e.g. out of descriptors): re-arm at the next tick, not at once.
    pub(super) accept_paused: bool,
    /// Reused per turn, so the hot path does not allocate.
    pub(super) cqes: Vec<cqueue::Entry>,
    pub(super) ready: Vec<(Waiter, S::Completion)>,
    pub(super) flush: Vec<u32>,
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
            next_id: 1,
            stats,
            shared,
            accept_paused: false,
            cqes: Vec::with_capacity(1024),
            ready: Vec::new(),
            flush: Vec::with_capacity(1024),
            rearm: Vec::with_capacity(1024),
            doomed: Vec::new(),
            held: Vec::new(),
            hold_deadline: None,
            drain_until: None,
            parked_until: None,
            stalled_closed: false,
            abort_until: None,
            batch,
        }
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(mut self) -> Result<(), NetError> {
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
                .min(self.hold_deadline.unwrap_or(next_tick));
            self.svc.rest();
            let submitted = if wake_at <= Instant::now() {
                // Due already (a service polling shared memory): submit
                // without waiting. Even a zero timeout would arm a timer,
                // and timer slack turns that into tens of microseconds.
                self.uring.submit().map(drop)
            } else {
                let timeout = wake_at.saturating_duration_since(now);
                let ts = types::Timespec::from(timeout);
                let (want, min_wait) = self.batch.want(timeout);
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
            turn_start = Instant::now();
            self.svc.turn(unix_millis());
            self.reap(turn_start);
            self.run_completions(turn_start);
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
        self.batch.taken();
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

    fn on_recv(&mut self, token: Token, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return;
        };
        let direct = conn.recv_direct;
        self.batch.received(&mut conn.recv_tick);
        if !cqueue::more(flags) {
            (conn.recv_armed, conn.recv_direct, conn.recv_switching) = (false, false, false);
        }
        let mut hard_close = false;
        if res > 0 {
            self.stats.bytes_in.fetch_add(res as u64, Relaxed);
            let max_input = self.shared.max_input;
            let fed = if direct {
                conn.received_direct(&mut self.svc, res as usize, max_input)
            } else {
                let bid = bid.expect("recv completion with data names its buffer");
                // SAFETY: `bid` was just handed to us by this recv completion and
                // is recycled right after use; `res` is the byte count it holds.
                let data = unsafe { self.bufs.filled(bid, res as usize) };
                let fed = conn.receive(&mut self.svc, data, max_input);
                self.bufs.recycle(bid);
                fed
            };
            match fed {
                Fed::Parked => {
                    let waiter = Waiter::new(token.slot, conn.generation);
                    self.svc.park(&mut conn.session, waiter);
                }
                Fed::Panicked(what) => {
                    self.panicked(token.slot, &what);
                    return;
                }
                _ => {}
            }
            if std::mem::take(&mut conn.detached) {
                let waiter = Waiter::new(token.slot, conn.generation);
                self.svc.park(&mut conn.session, waiter);
            }
            if fed == Fed::Overflow {
                tracing::debug!(
                    thread = self.thread,
                    "closing a client whose partial request exceeds the input limit"
                );
                hard_close = true;
            } else if conn.pending_output() > self.shared.client_output_limit {
                tracing::debug!(
                    thread = self.thread,
                    "closing a client over the output buffer limit"
                );
                hard_close = true;
            }
        } else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            match -res {
                0 if conn.parked && self.svc.drop_parked_at_eof(&conn.session) => {
                    hard_close = true;
                }
                0 => {
                    // EOF: the peer is done sending; answer what it sent, then close.
                    if conn.state == State::Open {
                        conn.state = State::Draining;
                    }
                }
                libc::ENOBUFS => {} // no free buffers this turn: re-armed below
                libc::ECANCELED => {}
                _ => hard_close = true,
            }
        }
        // The rest of a big bulk is received straight into the input
        // buffer: the multishot recv is cancelled and, once its last
        // completion is in, re-armed as a direct one (flush_and_rearm).
        let switch = conn.recv_armed && !conn.recv_switching && conn.wants_direct();
        conn.recv_switching |= switch;
        let (slot, open, armed, has_output) = (
            token.slot,
            conn.state == State::Open,
            conn.recv_armed,
            conn.pending_output() > 0,
        );
        if hard_close {
            self.close_hard(slot);
            return;
        }
        if res > 0 {
            self.hold_after_input(token);
        }
        if switch {
            self.cancel(token);
        }
        if has_output {
            self.queue_flush(slot);
        }
        if open && !armed {
            self.queue_rearm(slot);
        }
        if !open {
            self.close_graceful(slot);
        }
    }

    fn on_send(&mut self, token: Token, res: i32) {
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            return;
        };
        if res <= 0 {
            // An error, or no progress on a non-empty send: the peer is gone.
            conn.send_inflight = false;
            self.close_hard(token.slot);
            return;
        }
        self.stats.bytes_out.fetch_add(res as u64, Relaxed);
        conn.sent(res as usize);
        if conn.pending_output() > 0 && conn.state != State::Closing {
            self.queue_flush(token.slot);
        } else {
            self.try_free(token.slot);
        }
    }

    /// Mid-turn, a slice's worth of work done: submits the replies it made
    /// (and any re-arms) now instead of at the end of the turn.
    fn send_now(&mut self) {
        self.flush_and_rearm();
        if let Err(e) = self.uring.submit() {
            // The entries stay queued; the turn's own enter submits them.
            tracing::debug!(thread = self.thread, "mid-turn submit: {e}");
        }
    }

    /// Hands each connection's output to one send, and re-arms stopped recvs.
    fn flush_and_rearm(&mut self) {
        let mut flush = std::mem::take(&mut self.flush);
        for &slot in &flush {
            let Some(conn) = self.conns.slot_mut(slot) else {
                continue;
            };
            conn.flush_queued = false;
            if conn.state == State::Closing {
                continue;
            }
            let continues = conn.send_continues();
            if let Some((ptr, len)) = conn.next_send() {
                let token = Token::new(Op::Send, slot, conn.generation);
                let sqe = on_socket!(conn, slot, |fd| opcode::Send::new(fd, ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build())
                .user_data(token.encode());
                // SAFETY: the span lies in the connection's `sending` buffer,
                // which is not modified, moved or freed while `send_inflight`
                // is set (until this send's completion), and the socket stays
                // open at least as long.
                unsafe { push(&mut self.uring, &sqe) };
                self.batch.sent(len, continues);
            }
        }
        flush.clear();
        self.flush = flush;

        let mut rearm = std::mem::take(&mut self.rearm);
        for &slot in &rearm {
            let Some(conn) = self.conns.slot_mut(slot) else {
                continue;
            };
            conn.rearm_queued = false;
            if conn.state != State::Open || conn.recv_armed || conn.hold_reads {
                continue;
            }
            conn.recv_armed = true;
            let token = Token::new(Op::Recv, slot, conn.generation);
            let sqe = match conn.direct_span() {
                Some((ptr, len, rest)) => {
                    // A command's rest comes in one completion: io_uring
                    // retries a short read with MSG_WAITALL.
                    conn.recv_direct = true;
                    self.stats.direct_recvs.fetch_add(1, Relaxed);
                    let flags = if rest { libc::MSG_WAITALL } else { 0 };
                    on_socket!(conn, slot, |fd| opcode::Recv::new(fd, ptr, len)
                        .flags(flags)
                        .build())
                }
                None => {
                    let bgid = self.bufs.bgid();
                    on_socket!(conn, slot, |fd| opcode::RecvMulti::new(fd, bgid).build())
                }
            };
            // SAFETY: a multishot recv writes only into the registered buffer
            // group, which outlives every request; a direct one only into
            // the span `direct_span` gave, which stays allocated and
            // untouched until its completion (see there; the connection is
            // freed only once no recv is armed). The socket stays open until
            // the recv's final completion is reaped.
            unsafe { push(&mut self.uring, &sqe.user_data(token.encode())) };
        }
        rearm.clear();
        self.rearm = rearm;

        if !self.accept_paused && self.drain_until.is_none() {
            self.arm_accept();
        }
    }

    fn tick(&mut self) {
        // ORDERING: Relaxed: a standalone counter (a watchdog sees it move).
        self.stats.ticks.fetch_add(1, Relaxed);
        self.batch.ticked();
        self.svc.tick();
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

    pub(super) fn queue_flush(&mut self, slot: u32) {
        if let Some(conn) = self.conns.slot_mut(slot) {
            // A held connection's replies wait (hold.rs); closing, they go.
            let held = conn.held_until.is_some() && conn.state == State::Open;
            if !conn.flush_queued && !held {
                conn.flush_queued = true;
                self.flush.push(slot);
            }
        }
    }

    pub(super) fn queue_rearm(&mut self, slot: u32) {
        if let Some(conn) = self.conns.slot_mut(slot) {
            if !conn.rearm_queued {
                conn.rearm_queued = true;
                self.rearm.push(slot);
            }
        }
    }

    /// Arms a multishot accept on every listening socket that has none.
    pub(super) fn arm_accept(&mut self) {
        for (index, l) in self.listeners.iter_mut().enumerate() {
            let Some(socket) = l.socket.as_ref().filter(|_| !l.armed) else {
                continue;
            };
            let sqe = opcode::AcceptMulti::new(types::Fd(socket.as_raw_fd()))
                .flags(libc::SOCK_CLOEXEC)
                .build()
                .user_data(Token::new(Op::Accept, index as u32, 0).encode());
            // SAFETY: accept references no memory of ours; the kernel holds
            // its own reference to the listening socket.
            unsafe { push(&mut self.uring, &sqe) };
            l.armed = true;
        }
    }

    /// True while an accept is armed on any listening socket.
    pub(super) fn accepting(&self) -> bool {
        self.listeners.iter().any(|l| l.armed)
    }

    pub(super) fn cancel(&mut self, target: Token) {
        // Its result is not used: only a failure (the target was done
        // already) posts a completion (Linux 5.17; 6.0 is required).
        let sqe = opcode::AsyncCancel::new(target.encode())
            .build()
            .flags(squeue::Flags::SKIP_SUCCESS)
            .user_data(Token::new(Op::Cancel, 0, 0).encode());
        // SAFETY: a cancel request references no memory.
        unsafe { push(&mut self.uring, &sqe) };
    }
}

/// Wall-clock time in Unix milliseconds (what the service's expiries use).
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Queues `sqe`, submitting queued entries first when the queue is full.
///
/// # Safety
/// Whatever memory and descriptors `sqe` references must stay valid until
/// its final completion is reaped.
pub(super) unsafe fn push(uring: &mut IoUring, sqe: &squeue::Entry) {
    loop {
        // SAFETY: forwarded from this function's contract.
        if unsafe { uring.submission().push(sqe) }.is_ok() {
            return;
        }
        if let Err(e) = uring.submit() {
            if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EAGAIN) {
                tracing::error!("io_uring submit failed: {e}");
            }
            std::thread::yield_now();
        }
    }
}
