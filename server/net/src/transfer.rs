//! A connection's recv and send completions: input fed to its session
//! (from a provided buffer or straight into its input buffer), replies
//! queued, closes on EOF, errors and limits; and sent bytes acknowledged.

use std::sync::atomic::Ordering::Relaxed;

use io_uring::cqueue;

use super::connection::{Fed, State};
use super::event_loop::Worker;
use super::token::Token;
use super::{Service, Waiter};

impl<S: Service> Worker<S> {
    pub(super) fn on_recv(&mut self, token: Token, res: i32, flags: u32) {
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

    pub(super) fn on_send(&mut self, token: Token, res: i32) {
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
            if self.own.tracking() {
                let quiet = conn.is_quiet() && self.svc.stall_plain(&conn.session);
                self.own.set_quiet(token.slot, quiet);
            }
            self.try_free(token.slot);
        }
    }
}
