//! Parked connections: a session waiting for an asynchronous call (a plugin)
//! is not fed until the call completes. The service's wake fds (plugin reply
//! eventfds) are polled by this ring with multishot polls; each turn the
//! loop collects completions and resumes their connections, in order, with
//! their buffered input. A completion for a connection that closed meanwhile
//! is dropped (the slot's generation no longer matches).

use std::os::fd::RawFd;
use std::time::Instant;

use io_uring::{opcode, types};

use super::conn::{Fed, State};
use super::event_loop::{push, Worker};
use super::token::{Op, Token};
use super::Service;

impl<S: Service> Worker<S> {
    pub(super) fn arm_wakes(&mut self) {
        for (i, fd) in self.svc.wake_fds().into_iter().enumerate() {
            self.arm_wake(i as u32, fd);
        }
    }

    fn arm_wake(&mut self, index: u32, fd: RawFd) {
        let sqe = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
            .multi(true)
            .build()
            .user_data(Token::new(Op::Wake, index, 0).encode());
        // SAFETY: a poll references no memory of ours; the eventfd belongs to
        // the service, which lives as long as the ring (it is dropped after).
        unsafe { push(&mut self.ring, &sqe) };
    }

    pub(super) fn on_wake(&mut self, token: Token, res: i32, more: bool) {
        if res < 0 && res != -libc::ECANCELED {
            tracing::warn!(
                thread = self.thread,
                "plugin eventfd poll: {}",
                std::io::Error::from_raw_os_error(-res)
            );
        }
        self.svc.on_wake(token.slot as usize);
        if !more && res != -libc::ECANCELED {
            if let Some(fd) = self.svc.wake_fds().get(token.slot as usize) {
                self.arm_wake(token.slot, *fd);
            }
        }
    }

    /// Collects finished calls and resumes the connections parked on them.
    pub(super) fn run_async(&mut self, now: Instant) {
        self.svc.poll_async(now);
        while let Some(done) = self.svc.next_completion() {
            let t = Token::decode(done.waker);
            let Some(conn) = self.conns.get_mut(t.slot, t.generation) else {
                continue;
            };
            if !conn.parked || conn.state == State::Closing {
                continue;
            }
            let fed = conn.resume(&mut self.svc, done);
            self.after_resume(t.slot, t.generation, fed);
        }
    }

    fn after_resume(&mut self, slot: u32, generation: u32, fed: Fed) {
        let limit = self.shared.client_output_limit;
        let Some(conn) = self.conns.get_mut(slot, generation) else {
            return;
        };
        if fed == Fed::Overflow || conn.pending_output() > limit {
            self.close_hard(slot);
            return;
        }
        if fed == Fed::Parked {
            self.svc
                .park(&mut conn.session, Self::waker(slot, generation));
        }
        let (open, armed, has_output) = (
            conn.state == State::Open,
            conn.recv_armed,
            conn.pending_output() > 0,
        );
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

    /// The waker a connection parks with (see `run_async`).
    pub(super) fn waker(slot: u32, generation: u32) -> u64 {
        Token::new(Op::Recv, slot, generation).encode()
    }
}
