//! One worker thread's event loop over its connections (see `ring.rs` for the io_uring
//! plumbing and why it is driven directly; `shm.rs` for shared-memory connections, which
//! the same loop polls instead).

use std::io;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring};

use crate::cli::WorkloadArgs;
use crate::protocol::Protocol;
use crate::signal;
use crate::stats::{ErrorKind, Stats};
use crate::workload::keys::KeyNames;
use crate::workload::values::ValuePool;
use crate::workload::Pick;

use super::cluster::{Redirect, SlotMap};
use super::conn::{Conn, KeyBuf, State};
use super::inflight::InFlight;
use super::recorder::{Progress, Recorder};
use super::ring;
use super::shm::ShmWaiter;
use super::transport::{Endpoint, Stream};

mod join;
mod teardown;

pub use join::{ClusterSetup, Joiner};

const RECV: u64 = 0;
const SEND: u64 = 1;
/// Reconnect attempts before a connection is given up.
const MAX_RECONNECTS: u32 = 5;
const RECONNECT_DELAY: Duration = Duration::from_millis(200);
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Monotonic nanoseconds since the run started.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    #[inline]
    pub fn now(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// What one phase (prefill, or warm-up + measurement) does.
#[derive(Debug, Clone, Copy)]
pub struct PhaseSpec {
    /// Requests intended at or after this time are measured.
    pub measure_from_ns: u64,
    /// Stop sending at this time (`u64::MAX`: when every connection is exhausted).
    pub send_until_ns: u64,
    pub open_loop: bool,
}

pub struct Worker<'a, P: Protocol> {
    proto: P,
    ring: IoUring,
    pub conns: Vec<Conn>,
    args: &'a WorkloadArgs,
    values: &'a ValuePool,
    names: KeyNames,
    keys: KeyBuf,
    /// Cluster mode: which node serves each slot. Each load connection is
    /// then one socket per node: `sockets[lead][node]` (else just itself).
    cluster: Option<SlotMap>,
    sockets: Vec<Vec<usize>>,
    /// The load connection each socket belongs to.
    lead_of: Vec<usize>,
    /// How to open sockets to a node that joins mid-run.
    joiner: Option<join::Joiner>,
    /// Requests answered by a redirect: (the socket that got it, the request, where to).
    redirected: Vec<(usize, InFlight, Redirect)>,
    pub clock: Clock,
    pub rec: Recorder,
    progress: Option<Sender<Progress>>,
    next_tick_ns: u64,
    /// When `reap` last ran (run-clock ns).
    last_reap_ns: u64,
    /// Set when the connections are shm ring pairs, which this loop polls and waits on
    /// itself (the io_uring then stays idle).
    shm: Option<ShmWaiter>,
}

fn user_data(conn: usize, kind: u64) -> u64 {
    (conn as u64) << 1 | kind
}

impl<'a, P: Protocol> Worker<'a, P> {
    pub fn new(
        proto: P,
        conns: Vec<Conn>,
        args: &'a WorkloadArgs,
        values: &'a ValuePool,
        cluster: Option<ClusterSetup>,
        clock: Clock,
        progress: Option<Sender<Progress>>,
    ) -> io::Result<Self> {
        let entries = (conns.len() * 2 + 8).next_power_of_two() as u32;
        let ring = ring::build(entries)?;
        let next_tick_ns = clock.now() + PROGRESS_EVERY.as_nanos() as u64;
        let shm = (conns.iter())
            .any(|c| matches!(c.server, Endpoint::Shm(_)))
            .then(|| ShmWaiter::new(conns.len()));
        let mut rec = Recorder::new();
        let group = cluster.as_ref().map_or(1, |c| c.map.nodes.len());
        // Connections come in groups of `group` consecutive sockets.
        let lead_of: Vec<usize> = (0..conns.len()).map(|i| i - i % group).collect();
        let sockets = (0..conns.len())
            .map(|i| match conns[i].lead {
                true => (i..i + group).collect(),
                false => Vec::new(),
            })
            .collect();
        let joiner = cluster.as_ref().map(|c| c.joiner);
        let cluster = cluster.map(|c| {
            rec.max_redirects = c.max_redirects;
            c.map
        });
        Ok(Worker {
            proto,
            ring,
            conns,
            args,
            values,
            names: KeyNames::new(&args.key_prefix, args.mget, args.keys)
                .with_collection_keys(args.collection_keys),
            keys: KeyBuf::default(),
            cluster,
            sockets,
            lead_of,
            joiner,
            redirected: Vec::new(),
            clock,
            rec,
            progress,
            next_tick_ns,
            last_reap_ns: 0,
            shm,
        })
    }

    /// Runs one phase to its end (all sent requests answered, failed or timed out) and
    /// returns `[unmeasured, measured]` stats.
    pub fn run_phase(&mut self, spec: PhaseSpec) -> io::Result<[Stats; 2]> {
        let drain = self.args.drain_timeout.as_nanos() as u64;
        let mut sending_done_at: Option<u64> = None;
        loop {
            let now = self.clock.now();
            if sending_done_at.is_none()
                && (signal::stop_requested()
                    || now >= spec.send_until_ns
                    || self
                        .conns
                        .iter()
                        .all(|c| c.exhausted || c.state == State::Gone))
            {
                sending_done_at = Some(now);
            }
            let sending = sending_done_at.is_none();
            let mut wake = spec.send_until_ns;
            for i in 0..self.conns.len() {
                self.service(i, now, sending, &spec, &mut wake)?;
            }
            if let Some(done) = sending_done_at {
                if self.conns.iter().all(|c| c.inflight.is_empty()) {
                    break;
                }
                if now >= done.saturating_add(drain) {
                    self.time_out_all(now);
                    break;
                }
                wake = wake.min(done.saturating_add(drain));
            }
            let measuring = now >= spec.measure_from_ns;
            if now >= self.next_tick_ns {
                self.rec.flush_window(self.progress.as_ref(), measuring);
                self.next_tick_ns = now + PROGRESS_EVERY.as_nanos() as u64;
            }
            wake = wake.min(self.next_tick_ns);
            match &mut self.shm {
                Some(waiter) => waiter.wait(&mut self.conns, now, wake, &mut self.rec)?,
                None => {
                    // Open loop: whether the wait slept bounds how long the replies it
                    // brings sat unread (`reap`).
                    let sleeps = spec.open_loop.then(crate::cpu::thread_sleeps).flatten();
                    ring::wait(&mut self.ring, now, wake)?;
                    let slept = sleeps.map(|n| crate::cpu::thread_sleeps() != Some(n));
                    self.reap(slept);
                    self.follow_redirects();
                }
            }
        }
        Ok(self.rec.take())
    }

    /// Moves connection `i` along: queue requests, start a send and a receive, or handle
    /// closing, reconnecting and giving up.
    fn service(
        &mut self,
        i: usize,
        now: u64,
        sending: bool,
        spec: &PhaseSpec,
        wake: &mut u64,
    ) -> io::Result<()> {
        match self.conns[i].state {
            State::Up => {
                if sending {
                    self.fill(i, now, spec, wake);
                }
                if let Some(waiter) = &mut self.shm {
                    let c = &mut self.conns[i];
                    let sent = c.shm_send(now, &mut self.rec);
                    if sent | c.shm_recv(&self.proto, now, &mut self.rec) {
                        waiter.moved(now);
                    }
                    return Ok(());
                }
                self.post_send(i)?;
                self.post_recv(i)?;
            }
            State::Closing => {
                let c = &mut self.conns[i];
                if !c.busy() {
                    c.sock = None;
                    c.state = State::Down {
                        retry_at: now + RECONNECT_DELAY.as_nanos() as u64,
                        attempts: 0,
                    };
                }
            }
            State::Down { retry_at, attempts } if sending => {
                if spec.open_loop {
                    self.miss_due_requests(i, now, spec, wake);
                }
                if now < retry_at {
                    *wake = (*wake).min(retry_at);
                } else {
                    self.reconnect(i, now, attempts);
                }
            }
            State::Down { .. } | State::Gone => {}
        }
        Ok(())
    }

    /// Closed loop: top the pipeline up now. Open loop: queue the requests that are due.
    /// In cluster mode connection `i` is the first socket of its group; each request goes
    /// to the socket of the node that serves its key, and the pipeline counts them all.
    fn fill(&mut self, i: usize, now: u64, spec: &PhaseSpec, wake: &mut u64) {
        if !self.conns[i].lead {
            return;
        }
        let pipeline = self.args.pipeline.max(1);
        if self.args.lockstep
            && (self.sockets[i].iter()).any(|&s| !self.conns[s].inflight.is_empty())
        {
            return;
        }
        loop {
            let in_flight: usize = (self.sockets[i].iter())
                .map(|&s| self.conns[s].inflight.len())
                .sum();
            let c = &mut self.conns[i];
            if in_flight >= pipeline || c.exhausted {
                break;
            }
            let start = match &c.sched {
                Some(s) => {
                    let due = s.due();
                    if due > now {
                        *wake = (*wake).min(due);
                        break;
                    }
                    due
                }
                None => now,
            };
            let measured = start >= spec.measure_from_ns;
            let Some(mut f) =
                c.next_request(&self.names, self.values, &mut self.keys, start, measured)
            else {
                break;
            };
            // Open loop: how far behind its timetable the client sends it (its own
            // queueing, charged to the latency from `start`, reported apart too).
            f.sent_ns = now;
            self.rec.sent(measured, now.saturating_sub(start));
            if let Some(s) = &mut c.sched {
                s.advance();
            }
            let node = match &self.cluster {
                None => Some(0),
                Some(map) => map.node_of_key(self.keys.first()),
            };
            self.send(i, node, f, false, now);
        }
        // A batch must not wait for requests that are not due (open loop) or not allowed
        // in flight yet: what is queued goes out with this send.
        self.flush_group(i);
    }

    /// Sends what load connection `lead`'s sockets have queued.
    fn flush_group(&mut self, lead: usize) {
        for &s in &self.sockets[lead] {
            self.proto.flush(&mut self.conns[s].pending);
        }
    }

    /// Sends `f` (its keys in `self.keys`) on load connection `lead`'s socket to `node`.
    fn send(&mut self, lead: usize, node: Option<usize>, f: InFlight, asking: bool, now: u64) {
        let socket = node.and_then(|n| self.sockets[lead].get(n).copied());
        let Some(c) = socket.map(|s| &mut self.conns[s]) else {
            let slot = citadel_proto::cluster::key_slot(self.keys.first());
            self.rec
                .error(f.measured, Some(f.op), ErrorKind::ServerError, now, || {
                    format!("no connected node serves slot {slot}")
                });
            return;
        };
        if c.state != State::Up {
            let server = &c.server;
            self.rec.error(
                f.measured,
                Some(f.op),
                ErrorKind::ConnectionLost,
                now,
                || format!("{server}: not connected"),
            );
            return;
        }
        c.send(&mut self.proto, f, &self.keys, self.values, asking);
    }

    /// Sends every request answered by `-MOVED` / `-ASK` again, to the node the redirect
    /// names (after `-ASK` with ASKING first). A `-MOVED` that contradicts the slot map
    /// updates it and fetches CLUSTER SLOTS again from that node.
    fn follow_redirects(&mut self) {
        if self.redirected.is_empty() {
            return;
        }
        let now = self.clock.now();
        let mut redirected = std::mem::take(&mut self.redirected);
        for (from, f, to) in redirected.drain(..) {
            let lead = self.lead_of[from];
            let Some(map) = &mut self.cluster else {
                continue;
            };
            if !to.ask && map.moved(&to) {
                match SlotMap::fetch(&[to.to]) {
                    Ok(fresh) => self.refresh_map(&fresh),
                    Err(e) => tracing::warn!("refetching CLUSTER SLOTS from {}: {e}", to.to),
                }
            }
            let node = self.cluster.as_ref().and_then(|m| m.node_index(to.to));
            self.names
                .format(f.op, f.key, &mut self.keys.key, &mut self.keys.ends);
            self.send(lead, node, f, to.ask, now);
            self.flush_group(lead);
        }
        self.redirected = redirected;
    }

    /// Open loop while disconnected: requests that fall due cannot be sent and are errors.
    fn miss_due_requests(&mut self, i: usize, now: u64, spec: &PhaseSpec, wake: &mut u64) {
        let c = &mut self.conns[i];
        while let Some(due) = c.sched.as_ref().map(|s| s.due()) {
            if due > now {
                *wake = (*wake).min(due);
                break;
            }
            let measured = due >= spec.measure_from_ns;
            let Some(Pick { op, .. }) = c.take_next(measured) else {
                break;
            };
            let server = &c.server;
            self.rec
                .error(measured, Some(op), ErrorKind::ConnectionLost, now, || {
                    format!("{server}: not connected")
                });
            if let Some(s) = &mut c.sched {
                s.advance();
            }
        }
    }

    fn reconnect(&mut self, i: usize, now: u64, attempts: u32) {
        let c = &mut self.conns[i];
        match c.server.connect(CONNECT_TIMEOUT) {
            Ok(sock) => {
                tracing::info!(server = %c.server, "reconnected");
                c.reconnected(sock);
            }
            Err(e) => {
                let server = c.server.clone();
                self.rec
                    .error(true, None, ErrorKind::ConnectFailed, now, || {
                        format!("{server}: {e}")
                    });
                if attempts + 1 >= MAX_RECONNECTS {
                    tracing::warn!(%server, "giving up on connection after {MAX_RECONNECTS} failed reconnects");
                    c.state = State::Gone;
                    // Requests this connection owed are lost, not silently skipped.
                    let owed = c.budget.take().unwrap_or(0);
                    for _ in 0..owed {
                        if let Some((op, _)) = c.gen.next_pick().map(|p| (p.op, p.key)) {
                            self.rec
                                .error(true, Some(op), ErrorKind::ConnectionLost, now, || {
                                    format!("{server}: connection given up")
                                });
                        }
                    }
                    c.exhausted = true;
                } else {
                    c.state = State::Down {
                        retry_at: now + RECONNECT_DELAY.as_nanos() as u64,
                        attempts: attempts + 1,
                    };
                }
            }
        }
    }

    fn post_send(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.conns[i];
        if c.send_busy {
            return Ok(());
        }
        if c.wsent == c.wbuf.len() {
            if c.pending.is_empty() {
                return Ok(());
            }
            std::mem::swap(&mut c.wbuf, &mut c.pending);
            c.pending.clear();
            c.wsent = 0;
        }
        let Some(fd) = c.sock.as_ref().and_then(Stream::socket_fd) else {
            return Ok(());
        };
        let rest = &c.wbuf[c.wsent..];
        let sqe = opcode::Send::new(types::Fd(fd), rest.as_ptr(), rest.len() as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(i, SEND));
        c.send_busy = true;
        // SAFETY: `wbuf` is neither written, resized nor dropped while `send_busy` is set
        // (new requests go to `pending`; `fail` only clears it, which keeps the allocation),
        // and it is a heap allocation that stays put when `self.conns` grows (a node joining
        // moves the `Conn`s, not their buffers), so the pointer stays valid until the completion
        // clears `send_busy`; teardown waits for every completion before dropping buffers.
        unsafe { ring::push(&mut self.ring, &sqe) }?;
        if self.args.lockstep {
            // Like redis-benchmark's write(): this connection's send reaches the kernel
            // on its own, not batched with the other connections' sends.
            self.ring.submit()?;
        }
        Ok(())
    }

    fn post_recv(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.conns[i];
        if c.recv_busy {
            return Ok(());
        }
        let Some(fd) = c.sock.as_ref().and_then(Stream::socket_fd) else {
            return Ok(());
        };
        let free = &mut c.rbuf[c.rend..];
        let sqe = opcode::Recv::new(types::Fd(fd), free.as_mut_ptr(), free.len() as u32)
            .build()
            .user_data(user_data(i, RECV));
        c.recv_busy = true;
        // SAFETY: `rbuf` is only read, compacted or resized when its receive completes
        // (`recv_busy` false), and it is a heap allocation that stays put when `self.conns`
        // grows (see `post_send`), so the kernel writes into memory we own and nobody else
        // touches until the completion.
        unsafe { ring::push(&mut self.ring, &sqe) }
    }

    /// Handles every completion that has arrived. `slept` (open loop): whether the wait
    /// before slept. If it did, what it brings arrived during the sleep and woke it: read
    /// at once. If not, a reply may have reached its socket just after the previous reap
    /// and waited through the whole loop since, unread: that span bounds the client's own
    /// lag in reading it (`Stats::reply_lag`).
    fn reap(&mut self, slept: Option<bool>) {
        let now = self.clock.now();
        let since_last = now.saturating_sub(std::mem::replace(&mut self.last_reap_ns, now));
        let reply_lag = slept.map(|slept| if slept { 0 } else { since_last });
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let i = (cqe.user_data() >> 1) as usize;
            let c = &mut self.conns[i];
            let res = cqe.result();
            if cqe.user_data() & 1 == SEND {
                c.send_busy = false;
                if c.state != State::Up {
                    continue;
                }
                if res < 0 {
                    let e = io::Error::from_raw_os_error(-res);
                    c.fail(
                        ErrorKind::ConnectionLost,
                        &format!("send: {e}"),
                        now,
                        &mut self.rec,
                    );
                } else {
                    c.wsent += res as usize;
                }
            } else {
                c.recv_busy = false;
                if c.state != State::Up {
                    continue;
                }
                if res <= 0 {
                    let why = if res == 0 {
                        "connection closed by server".to_string()
                    } else {
                        format!("recv: {}", io::Error::from_raw_os_error(-res))
                    };
                    c.fail(ErrorKind::ConnectionLost, &why, now, &mut self.rec);
                    continue;
                }
                c.rend += res as usize;
                let answered = self.rec.good_replies;
                if let Err(e) = c.parse_replies(&self.proto, now, &mut self.rec) {
                    tracing::warn!(server = %c.server, "{e}");
                    c.fail(ErrorKind::ProtocolError, &e.to_string(), now, &mut self.rec);
                }
                if let Some(lag) = reply_lag {
                    let replies = self.rec.good_replies - answered;
                    self.rec.reply_lag(lag, replies);
                }
                let redirected = self.rec.redirected.drain(..).map(|(f, to)| (i, f, to));
                self.redirected.extend(redirected);
            }
        }
    }
}
