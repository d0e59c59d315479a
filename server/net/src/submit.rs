//! What the event loop queues to the kernel: one send per connection with
//! output, re-armed recvs (multishot into the provided buffers, or one
//! direct recv of a big command's rest), multishot accepts and cancels.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering::Relaxed;

use io_uring::{opcode, squeue, types, IoUring};

use super::connection::State;
use super::event_loop::Worker;
use super::token::{Op, Token};
use super::Service;

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

impl<S: Service> Worker<S> {
    /// Hands each connection's output to one send, and re-arms stopped recvs.
    pub(super) fn flush_and_rearm(&mut self) {
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
