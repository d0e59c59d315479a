//! Connection lifecycle for the event loop: accepting (and refusing past
//! maxclients), graceful and hard closes, freeing a connection only once the
//! kernel is done with its memory, and the bounded drain at shutdown.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd};
use std::sync::Arc;

use socket2::Socket;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use super::admit::{refusal_line, Refused};
use super::connection::{Connection, State};
use super::connection_id::connection_id;
use super::event_loop::Worker;
use super::token::{Op, Token};
use super::{Door, Endpoint, Service};

/// At shutdown, how long clients that do not read their replies may take
/// (parked clients, still owed a reply, wait up to `drain_wait`).
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// After that: how long the loop waits for the kernel to finish with
/// aborted sockets.
const ABORT_WAIT: Duration = Duration::from_secs(1);

impl<S: Service> Worker<S> {
    pub(super) fn on_accept(&mut self, listener: usize, res: i32, more: bool) {
        if !more {
            if let Some(l) = self.listeners.get_mut(listener) {
                l.armed = false;
            }
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
        // descriptor that nothing else owns; the Socket takes ownership.
        let stream = unsafe { Socket::from_raw_fd(res) };
        if self.drain_until.is_some() {
            return;
        }
        let door = self.listeners[listener].door;
        let unix_path = self.listeners[listener].unix_path.clone();
        self.adopt(stream, door, unix_path, None);
    }

    /// Serves `stream`, a connection just accepted through `door` (from
    /// the Unix socket at `unix_path`, if given), unless the connection
    /// limits refuse it.
    /// `id` is the connection's when the stall door gave it one already.
    pub(super) fn adopt(
        &mut self,
        stream: Socket,
        door: Door,
        unix_path: Option<Arc<str>>,
        id: Option<u64>,
    ) {
        let (peer, local) = match (stream.peer_addr(), stream.local_addr()) {
            (Ok(p), Ok(l)) => (p, l),
            _ => return,
        };
        let peer_ip = peer.as_socket().map(|a| a.ip());
        if let Err(why) = self.admit_connection(peer_ip) {
            self.stats.rejected.fetch_add(1, Relaxed);
            let line = refusal_line(
                why,
                peer_ip,
                self.svc.max_per_address(),
                self.svc.accept_rate(),
            );
            self.svc.refused(why);
            reject(stream, &line);
            return;
        }
        let unix_path = unix_path.as_ref();
        if unix_path.is_none() {
            // TCP: no Nagle delay on replies.
            let _ = stream.set_nodelay(true);
        }
        let peer = Endpoint::from_sockaddr(&peer, unix_path);
        let local = Endpoint::from_sockaddr(&local, unix_path);
        let id = id.unwrap_or_else(|| connection_id(self.thread));
        let session = self.svc.open(id, peer, local, door);
        let (slot, generation) = self
            .conns
            .insert_with(|generation| Connection::new(stream, session, generation));
        if let Some(conn) = self.conns.slot_mut(slot) {
            conn.peer_ip = peer_ip;
            let fd = conn.stream.as_raw_fd();
            conn.fixed = self.files.enter(&self.uring, slot, fd);
            self.own.opened(slot, generation, id, door, fd);
        }
        self.stats.accepted.fetch_add(1, Relaxed);
        self.stats.connections.fetch_add(1, Relaxed);
        self.queue_rearm(slot);
    }

    /// Drives a graceful shutdown; true when the loop may exit.
    pub(super) fn shutdown_step(&mut self, now: Instant) -> bool {
        if self.drain_until.is_none() {
            if !self.svc.shutdown_requested() && !self.shared.stop.load(Relaxed) {
                return false;
            }
            self.drain_until = Some(now + DRAIN_WAIT);
            self.parked_until = Some(now + self.shared.drain_wait.max(DRAIN_WAIT));
            self.shared.relief.withdraw(self.thread);
            (self.relieved, self.relief_due) = (Vec::new(), None);
            super::stall_door::uninstall();
            self.own.disable();
            for index in 0..self.listeners.len() {
                if self.listeners[index].armed {
                    self.cancel(Token::new(Op::Accept, index as u32, 0));
                }
                // The ring holds its own reference while the cancel runs.
                self.listeners[index].socket = None;
            }
            let open: Vec<u32> = self.conns.slots().map(|(slot, _)| slot).collect();
            for slot in open {
                self.close_graceful(slot);
            }
        }
        if self.conns.is_empty() && !self.accepting() {
            return true;
        }
        if !self.stalled_closed && self.drain_until.is_some_and(|t| now >= t) {
            // Clients that do not read their replies do not hold the
            // shutdown; clients still owed a reply (parked) wait longer.
            self.stalled_closed = true;
            let stalled: Vec<u32> = self
                .conns
                .slots()
                .filter(|(_, c)| !c.parked && !self.svc.owes_replies(&c.session))
                .map(|(slot, _)| slot)
                .collect();
            if !stalled.is_empty() {
                tracing::warn!(
                    thread = self.thread,
                    clients = stalled.len(),
                    "replies not read in time; closing"
                );
            }
            for slot in stalled {
                self.close_hard(slot);
            }
        }
        // Once the stalled ones are closed, the rest are parked or flushing
        // a reply that arrived meanwhile; when none is left, finish.
        let nobody_owed =
            self.stalled_closed && self.conns.slots().all(|(_, c)| c.state == State::Closing);
        if self.abort_until.is_none()
            && (nobody_owed || self.parked_until.is_some_and(|t| now >= t))
        {
            if !nobody_owed {
                tracing::warn!(
                    thread = self.thread,
                    clients = self.conns.len(),
                    "replies still owed at shutdown-timeout; closing"
                );
            }
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
    pub(super) fn close_graceful(&mut self, slot: u32) {
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
    pub(super) fn close_hard(&mut self, slot: u32) {
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
    pub(super) fn try_free(&mut self, slot: u32) {
        let Some(conn) = self.conns.slot_mut(slot) else {
            return;
        };
        let done = match conn.state {
            State::Open => false,
            // A parked connection still owes a reply (kept until it arrives).
            State::Draining => {
                conn.pending_output() == 0 && !conn.parked && !self.svc.owes_replies(&conn.session)
            }
            // Kept while it settles its wait (`Service::settles_after_close`).
            State::Closing => !(conn.parked && self.svc.settles_after_close(&conn.session)),
        };
        if !done || conn.recv_armed || conn.send_inflight {
            return;
        }
        // Out of the table before the descriptor closes: the table's own
        // reference would keep the socket open.
        if conn.fixed && !self.files.remove(&self.uring, slot) {
            let _ = conn.stream.shutdown(Shutdown::Both);
        }
        self.own.closed(slot);
        if let Some(ip) = self.conns.remove(slot).and_then(|c| c.peer_ip) {
            self.shared.limits.release(ip);
        }
        self.shared.clients.fetch_sub(1, Relaxed);
        self.stats.connections.fetch_sub(1, Relaxed);
    }
}

impl<S: Service> Worker<S> {
    /// maxclients, the accept rate, then the per-address limit; an admitted
    /// connection is counted (clients, its address) until it is freed.
    fn admit_connection(&self, ip: Option<std::net::IpAddr>) -> Result<(), Refused> {
        if self.shared.clients.fetch_add(1, Relaxed) >= self.svc.maxclients() {
            self.shared.clients.fetch_sub(1, Relaxed);
            return Err(Refused::MaxClients);
        }
        let (per_address, rate) = (self.svc.max_per_address(), self.svc.accept_rate());
        let admitted = self.shared.limits.admit(ip, per_address, rate);
        if admitted.is_err() {
            self.shared.clients.fetch_sub(1, Relaxed);
        }
        admitted
    }
}

/// Refuses a client: best-effort error line, then close.
fn reject(mut stream: Socket, line: &[u8]) {
    let _ = stream.set_nonblocking(true);
    // Read what the client already sent so closing sends FIN, not RST.
    let _ = stream.read(&mut [0u8; 1024]);
    let _ = stream.write(line);
    let _ = stream.shutdown(Shutdown::Write);
}
