//! The end of a phase and of a worker: timing out what is left in flight, and closing
//! every connection without freeing a buffer the kernel still holds.

use std::time::Duration;

use crate::protocol::Protocol;
use crate::stats::ErrorKind;

use super::{Worker, SEND};
use crate::driver::conn::Conn;
use crate::driver::ring;

const SHUTDOWN_CANCEL_AFTER: Duration = Duration::from_secs(1);
const SHUTDOWN_LEAK_AFTER: Duration = Duration::from_secs(5);
/// user_data of cancel requests (no connection has this index).
const CANCEL: u64 = u64::MAX;

impl<P: Protocol> Worker<'_, P> {
    /// Drain deadline passed: whatever is still in flight is a timeout.
    pub(super) fn time_out_all(&mut self, now: u64) {
        let drain = self.args.drain_timeout;
        for c in &mut self.conns {
            if !c.inflight.is_empty() {
                c.fail(
                    ErrorKind::Timeout,
                    &format!("no reply within {drain:?} after the run"),
                    now,
                    &mut self.rec,
                );
            }
        }
    }

    /// Closes every connection and waits until the kernel has returned all buffers, so
    /// dropping them is sound: shutdown(2) completes pending receives and sends; after a
    /// second everything left is cancelled; if even that never completes the buffers are
    /// leaked rather than freed under the kernel.
    pub fn shutdown(mut self) {
        for c in &self.conns {
            if let Some(s) = &c.sock {
                s.shutdown();
            }
        }
        let start = self.clock.now();
        let mut cancelled = false;
        while self.conns.iter().any(Conn::busy) {
            let now = self.clock.now();
            let waited = Duration::from_nanos(now - start);
            if waited >= SHUTDOWN_LEAK_AFTER {
                tracing::error!("io_uring operations did not complete; leaking their buffers");
                std::mem::forget(self.conns);
                return;
            }
            if !cancelled && waited >= SHUTDOWN_CANCEL_AFTER {
                let _ = ring::cancel_all(&mut self.ring, CANCEL);
                cancelled = true;
            }
            let _ = ring::wait(&mut self.ring, now, now + 100_000_000);
            let mut cq = self.ring.completion();
            cq.sync();
            for cqe in &mut cq {
                if cqe.user_data() == CANCEL {
                    continue;
                }
                let c = &mut self.conns[(cqe.user_data() >> 1) as usize];
                if cqe.user_data() & 1 == SEND {
                    c.send_busy = false;
                } else {
                    c.recv_busy = false;
                }
            }
        }
    }
}
