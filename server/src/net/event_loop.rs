//! One server thread's event loop: reap completions, run commands, queue one
//! send per connection, then one `io_uring_enter` that submits everything and
//! waits for completions or the next maintenance tick.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use io_uring::{cqueue, opcode, squeue, types, IoUring};

use super::bufring::BufRing;
use super::conn::{Conn, Fed, State};
use super::server::Shared;
use super::slab::Slab;
use super::token::{Op, Token};
use super::{NetError, Service};
use crate::state::ThreadStats;

/// Period of maintenance (clock, cache upkeep, killed clients, shutdown).
const TICK: Duration = Duration::from_millis(100);
/// How long a graceful shutdown waits for replies to drain.
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// How long it then waits for the kernel to finish with aborted sockets.
const ABORT_WAIT: Duration = Duration::from_secs(1);
const MAX_CLIENTS_REPLY: &[u8] = b"-ERR max number of clients reached\r\n";

pub struct Worker<S: Service> {
    // Field order matters: the ring is dropped (and with it every request)
    // before the buffer ring and the connections whose memory it references.
    ring: IoUring,
    bufs: BufRing,
    conns: Slab<Conn<S::Session>>,
    listener: Option<TcpListener>,
    svc: S,
    thread: usize,
    next_id: u64,
    stats: Arc<ThreadStats>,
    shared: Arc<Shared>,
    accept_armed: bool,
    /// Accept failed (e.g. out of descriptors): re-arm at the next tick, not at once.
    accept_paused: bool,
    /// Reused per turn, so the hot path does not allocate.
    cqes: Vec<cqueue::Entry>,
    flush: Vec<u32>,
    rearm: Vec<u32>,
    doomed: Vec<u32>,
    drain_until: Option<Instant>,
    abort_until: Option<Instant>,
}

impl<S: Service> Worker<S> {
    pub fn new(
        ring: IoUring,
        bufs: BufRing,
        listener: TcpListener,
        svc: S,
        thread: usize,
        stats: Arc<ThreadStats>,
        shared: Arc<Shared>,
    ) -> Worker<S> {
        Worker {
            ring,
            bufs,
            conns: Slab::default(),
            listener: Some(listener),
            svc,
            thread,
            next_id: 1,
            stats,
            shared,
            accept_armed: false,
            accept_paused: false,
            cqes: Vec::with_capacity(1024),
            flush: Vec::with_capacity(1024),
            rearm: Vec::with_capacity(1024),
            doomed: Vec::new(),
            drain_until: None,
            abort_until: None,
        }
    }

    /// Runs until a graceful shutdown completes.
    pub fn run(mut self) -> Result<(), NetError> {
        self.arm_accept();
        let mut next_tick = Instant::now() + TICK;
        let mut turn_start = Instant::now();
        loop {
            let now = Instant::now();
            self.stats
                .busy_ns
                .fetch_add((now - turn_start).as_nanos() as u64, Relaxed);
            let ts = types::Timespec::from(next_tick.saturating_duration_since(now));
            let args = types::SubmitArgs::new().timespec(&ts);
            if let Err(e) = self.ring.submitter().submit_with_args(1, &args) {
                match e.raw_os_error() {
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) => {}
                    _ => return Err(NetError::Enter(e)),
                }
            }
            turn_start = Instant::now();
            self.svc.turn(citadel_cache::unix_millis());
            self.reap();
            self.flush_and_rearm();
            if turn_start >= next_tick {
                next_tick = turn_start + TICK;
                self.tick();
            }
            if self.shutdown_step(turn_start) {
                break;
            }
        }
        self.bufs.unregister(&self.ring);
        Ok(())
    }

    fn reap(&mut self) {
        let mut cqes = std::mem::take(&mut self.cqes);
        cqes.clear();
        cqes.extend(self.ring.completion());
        for cqe in &cqes {
            let token = Token::decode(cqe.user_data());
            match token.op {
                Op::Accept => self.on_accept(cqe.result(), cqueue::more(cqe.flags())),
                Op::Recv => self.on_recv(token, cqe.result(), cqe.flags()),
                Op::Send => self.on_send(token, cqe.result()),
                Op::Cancel => {}
            }
        }
        self.cqes = cqes;
    }

    fn on_accept(&mut self, res: i32, more: bool) {
        if !more {
            self.accept_armed = false;
        }
        if res < 0 {
            self.accept_paused = !more;
            match -res {
                libc::ECANCELED => {}
                libc::EMFILE | libc::ENFILE => {
                    tracing::warn!(thread = self.thread, "accept: out of file descriptors")
                }
                e => tracing::debug!(
                    thread = self.thread,
                    "accept: {}",
                    std::io::Error::from_raw_os_error(e)
                ),
            }
            return;
        }
        // SAFETY: a successful accept completion's result is a new file
        // descriptor that nothing else owns; the TcpStream takes ownership.
        let stream = unsafe { TcpStream::from_raw_fd(res) };
        if self.drain_until.is_some() {
            return;
        }
        if self.shared.clients.fetch_add(1, Relaxed) >= self.svc.maxclients() {
            self.shared.clients.fetch_sub(1, Relaxed);
            self.stats.rejected.fetch_add(1, Relaxed);
            reject(stream);
            return;
        }
        let (peer, local) = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(p), Ok(l)) => (p, l),
            _ => {
                self.shared.clients.fetch_sub(1, Relaxed);
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let id = ((self.thread as u64) << 48) | self.next_id;
        self.next_id += 1;
        let session = self.svc.open(id, peer, local);
        let (slot, _) = self
            .conns
            .insert_with(|generation| Conn::new(stream, session, generation));
        self.stats.accepted.fetch_add(1, Relaxed);
        self.stats.connections.fetch_add(1, Relaxed);
        self.queue_rearm(slot);
    }

    fn on_recv(&mut self, token: Token, res: i32, flags: u32) {
        let bid = cqueue::buffer_select(flags);
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            if let Some(bid) = bid {
                self.bufs.recycle(bid);
            }
            return;
        };
        if !cqueue::more(flags) {
            conn.recv_armed = false;
        }
        let mut hard_close = false;
        if res > 0 {
            let bid = bid.expect("recv completion with data names its buffer");
            self.stats.bytes_in.fetch_add(res as u64, Relaxed);
            // SAFETY: `bid` was just handed to us by this recv completion and
            // is recycled right after use; `res` is the byte count it holds.
            let data = unsafe { self.bufs.filled(bid, res as usize) };
            let fed = conn.receive(&mut self.svc, data, self.shared.max_input);
            self.bufs.recycle(bid);
            if fed == Fed::Overflow {
                tracing::debug!(
                    thread = self.thread,
                    "closing a client whose partial command exceeds the input limit"
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
        if res < 0 {
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
            if let Some((ptr, len)) = conn.next_send() {
                let token = Token::new(Op::Send, slot, conn.generation);
                let sqe = opcode::Send::new(types::Fd(conn.stream.as_raw_fd()), ptr, len)
                    .flags(libc::MSG_NOSIGNAL)
                    .build()
                    .user_data(token.encode());
                // SAFETY: the span lies in the connection's `sending` buffer,
                // which is not modified, moved or freed while `send_inflight`
                // is set (until this send's completion), and the socket stays
                // open at least as long.
                unsafe { push(&mut self.ring, &sqe) };
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
            if conn.state != State::Open || conn.recv_armed {
                continue;
            }
            conn.recv_armed = true;
            let token = Token::new(Op::Recv, slot, conn.generation);
            let sqe = opcode::RecvMulti::new(types::Fd(conn.stream.as_raw_fd()), self.bufs.bgid())
                .build()
                .user_data(token.encode());
            // SAFETY: the recv writes only into the registered buffer group,
            // which outlives every request; the socket stays open until the
            // recv's final completion is reaped.
            unsafe { push(&mut self.ring, &sqe) };
        }
        rearm.clear();
        self.rearm = rearm;

        if self.listener.is_some()
            && !self.accept_armed
            && !self.accept_paused
            && self.drain_until.is_none()
        {
            self.arm_accept();
        }
    }

    fn tick(&mut self) {
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

    /// Drives a graceful shutdown; true when the loop may exit.
    fn shutdown_step(&mut self, now: Instant) -> bool {
        if self.drain_until.is_none() {
            if !self.svc.shutdown_requested() && !self.shared.stop.load(Relaxed) {
                return false;
            }
            self.drain_until = Some(now + DRAIN_WAIT);
            if self.accept_armed {
                self.cancel(Token::new(Op::Accept, 0, 0));
            }
            self.listener = None;
            let open: Vec<u32> = self.conns.slots().map(|(slot, _)| slot).collect();
            for slot in open {
                self.close_graceful(slot);
            }
        }
        if self.conns.is_empty() && !self.accept_armed {
            return true;
        }
        if self.abort_until.is_none() && self.drain_until.is_some_and(|t| now >= t) {
            tracing::warn!(
                thread = self.thread,
                clients = self.conns.len(),
                "replies not drained in time; closing"
            );
            self.abort_until = Some(now + ABORT_WAIT);
            let left: Vec<u32> = self.conns.slots().map(|(slot, _)| slot).collect();
            for slot in left {
                self.close_hard(slot);
            }
        }
        if self.abort_until.is_some_and(|t| now >= t) {
            // Requests still in flight die with the ring; their buffers must
            // outlive it, so they are leaked (the process is exiting).
            std::mem::forget(std::mem::take(&mut self.conns));
            return true;
        }
        false
    }

    /// Stops reading; closes once pending output is flushed.
    fn close_graceful(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if conn.state == State::Open {
            conn.state = State::Draining;
        }
        if conn.recv_armed {
            let token = Token::new(Op::Recv, slot, conn.generation);
            self.cancel(token);
        }
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if conn.pending_output() > 0 && conn.state == State::Draining {
            self.queue_flush(slot);
        }
        self.try_free(slot);
    }

    /// Drops unsent output and shuts the socket down so in-flight operations end.
    fn close_hard(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        if conn.state == State::Closing {
            return;
        }
        conn.state = State::Closing;
        conn.discard_output();
        let _ = conn.stream.shutdown(Shutdown::Both);
        if conn.recv_armed {
            let token = Token::new(Op::Recv, slot, conn.generation);
            self.cancel(token);
        }
        self.try_free(slot);
    }

    /// Frees a closing connection once the kernel no longer uses its memory.
    fn try_free(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let done = match conn.state {
            State::Open => false,
            State::Draining => conn.pending_output() == 0,
            State::Closing => true,
        };
        if !done || conn.recv_armed || conn.send_inflight {
            return;
        }
        self.conns.remove(slot);
        self.shared.clients.fetch_sub(1, Relaxed);
        self.stats.connections.fetch_sub(1, Relaxed);
    }

    fn queue_flush(&mut self, slot: u32) {
        if let Some(conn) = self.conns.slot_mut(slot) {
            if !conn.flush_queued {
                conn.flush_queued = true;
                self.flush.push(slot);
            }
        }
    }

    fn queue_rearm(&mut self, slot: u32) {
        if let Some(conn) = self.conns.slot_mut(slot) {
            if !conn.rearm_queued {
                conn.rearm_queued = true;
                self.rearm.push(slot);
            }
        }
    }

    fn arm_accept(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        let sqe = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
            .flags(libc::SOCK_CLOEXEC)
            .build()
            .user_data(Token::new(Op::Accept, 0, 0).encode());
        // SAFETY: accept references no memory of ours; the kernel holds its
        // own reference to the listening socket.
        unsafe { push(&mut self.ring, &sqe) };
        self.accept_armed = true;
    }

    fn cancel(&mut self, target: Token) {
        let sqe = opcode::AsyncCancel::new(target.encode())
            .build()
            .user_data(Token::new(Op::Cancel, 0, 0).encode());
        // SAFETY: a cancel request references no memory.
        unsafe { push(&mut self.ring, &sqe) };
    }
}

/// Queues `sqe`, submitting queued entries first when the queue is full.
///
/// # Safety
/// Whatever memory and descriptors `sqe` references must stay valid until
/// its final completion is reaped.
unsafe fn push(ring: &mut IoUring, sqe: &squeue::Entry) {
    loop {
        // SAFETY: forwarded from this function's contract.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return;
        }
        if let Err(e) = ring.submit() {
            if e.raw_os_error() != Some(libc::EBUSY) && e.raw_os_error() != Some(libc::EAGAIN) {
                tracing::error!("io_uring submit failed: {e}");
            }
            std::thread::yield_now();
        }
    }
}

/// Refuses a client over maxclients: best-effort error line, then close.
fn reject(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(true);
    // Read what the client already sent so closing sends FIN, not RST.
    let _ = stream.read(&mut [0u8; 1024]);
    let _ = stream.write(MAX_CLIENTS_REPLY);
    let _ = stream.shutdown(Shutdown::Write);
}
