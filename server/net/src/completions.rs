//! Parked connections: a session waiting for an asynchronous operation is
//! not fed until the operation completes. The service's wake fds (eventfds:
//! plugin reply rings, the thread's inbox) are polled by this ring with
//! multishot polls; each turn the loop collects the finished operations
//! and resumes their connections, in order, with their buffered input. A
//! completion for a connection that closed meanwhile is dropped (the slot's
//! generation no longer matches).

use std::os::fd::RawFd;
use std::time::Instant;

use io_uring::{opcode, types};

use super::connection::{Fed, State};
use super::event_loop::Worker;
use super::submit::push;
use super::token::{Op, Token};
use super::{Service, Waiter};

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
        unsafe { push(&mut self.uring, &sqe) };
    }

    pub(super) fn on_wake(&mut self, token: Token, res: i32, more: bool) {
        if res < 0 && res != -libc::ECANCELED {
            tracing::warn!(
                thread = self.thread,
                "wake eventfd poll: {}",
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

    /// Collects finished operations and resumes the connections parked on them.
    pub(super) fn run_completions(&mut self, now: Instant) {
        let mut ready = std::mem::take(&mut self.ready);
        self.svc.poll(now, &mut ready);
        for (waiter, done) in ready.drain(..) {
            let (slot, generation) = (waiter.slot(), waiter.generation());
            let Some(conn) = self.conns.get_mut(slot, generation) else {
                continue;
            };
            // A parked connection resumes; a multiplexed one (not parked,
            // operations detached) just gets the reply written.
            if conn.state == State::Closing {
                // Closed while parked on a wait it must still settle
                // (`Service::settles_after_close`): settled, then freed.
                let settles = conn.parked && self.svc.settles_after_close(&conn.session);
                if settles && !self.svc.is_push(&done) {
                    let fed = conn.resume(&mut self.svc, done);
                    conn.discard_output();
                    if let Fed::Panicked(what) = &fed {
                        self.panicked(slot, what);
                    }
                    self.try_free(slot);
                }
                continue;
            }
            self.own.set_quiet(slot, false);
            let fed = conn.resume(&mut self.svc, done);
            self.after_resume(slot, generation, fed);
        }
        self.ready = ready;
    }

    fn after_resume(&mut self, slot: u32, generation: u32, fed: Fed) {
        let limit = self.shared.client_output_limit;
        if let Fed::Panicked(what) = &fed {
            self.panicked(slot, what);
            return;
        }
        let Some(conn) = self.conns.get_mut(slot, generation) else {
            return;
        };
        if fed == Fed::Overflow || conn.pending_output() > limit {
            self.close_hard(slot);
            return;
        }
        if fed == Fed::Parked {
            self.svc
                .park(&mut conn.session, Waiter::new(slot, generation));
        }
        if std::mem::take(&mut conn.detached) {
            self.svc
                .park(&mut conn.session, Waiter::new(slot, generation));
        }
        // A reply that is not a refusal ends a hold (hold.rs).
        (conn.held_until, conn.hold_reads) = (None, false);
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
}
