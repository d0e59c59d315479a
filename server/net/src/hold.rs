//! Holding refusals (ARCHITECTURE.md, "Overload protection"). A core that
//! sheds refuses most of what it reads, and open loop each connection
//! brings one request per turn: every refusal alone cost the kernel a recv
//! completion and a send (~5.6 µs, the send's loopback delivery most of
//! it), a seventh of an admitted 256 KiB BITCOUNT. So a connection whose
//! every request was refused is held for a bounded time (the service's
//! [`Service::hold`]): its refusals wait in its output and its multishot
//! recv is cancelled, so what the client sends meanwhile stays in the
//! socket. A hold ends in two steps: the recv is armed again, and it reads
//! everything in one completion; one turn later (after that input was
//! run) one send carries every refusal. The service judges input read
//! after a hold as old as the hold (it may have waited that long), and does
//! not hold the same connection again for it: no request is held and then
//! admitted late, and no connection stays held while others are served.
//! A reply that is not a refusal ends a hold at once, and so does the end
//! of the overload ([`Service::holding`]).

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::connection::State;
use super::event_loop::Worker;
use super::token::Token;
use super::Service;

impl<S: Service> Worker<S> {
    /// `token`'s connection had its input run: holds it when the service
    /// asks (cancelling its multishot recv), else ends its hold.
    pub(super) fn hold_after_input(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(token.slot, token.generation) else {
            return;
        };
        let hold = match conn.state {
            State::Open if !conn.parked => self.svc.hold(&mut conn.session),
            _ => None,
        };
        let Some(hold) = hold else {
            (conn.held_until, conn.hold_reads) = (None, false);
            return;
        };
        if conn.held_until.is_none() {
            conn.held_until = Some(Instant::now() + hold);
            self.held.push((token.slot, token.generation));
            // ORDERING: Relaxed: a standalone counter.
            self.stats.holds.fetch_add(1, Relaxed);
        }
        conn.hold_reads = true;
        // The switch to a direct recv cancels the same way (its flag keeps
        // a second cancel from being sent).
        if conn.recv_armed && !conn.recv_switching && !conn.recv_direct {
            conn.recv_switching = true;
            self.cancel(token);
        }
    }

    /// Ends the holds that are due, or all of them once the service holds
    /// no more; `hold_deadline` is then the earliest step left.
    pub(super) fn release_holds(&mut self, now: Instant) {
        let all = !self.held.is_empty() && !self.svc.holding();
        let mut held = std::mem::take(&mut self.held);
        let mut next: Option<Instant> = None;
        let mut i = 0;
        while i < held.len() {
            let (slot, generation) = held[i];
            match self.hold_step(slot, generation, now, all) {
                Some(due) => {
                    next = Some(next.map_or(due, |n| n.min(due)));
                    i += 1;
                }
                None => {
                    held.swap_remove(i);
                }
            }
        }
        self.held = held;
        self.hold_deadline = next;
    }

    /// One held connection at `now` (`all`: every hold ends): when its next
    /// step is due, None once its hold is over (or it is gone).
    fn hold_step(
        &mut self,
        slot: u32,
        generation: u32,
        now: Instant,
        all: bool,
    ) -> Option<Instant> {
        let conn = self.conns.get_mut(slot, generation)?;
        let until = conn.held_until?;
        if !all && until > now {
            return Some(until);
        }
        if conn.hold_reads && !all {
            // First step: read what came meanwhile; its replies join the
            // held ones when that input is run (or at the next pass).
            conn.hold_reads = false;
            self.queue_rearm(slot);
            return Some(now);
        }
        (conn.held_until, conn.hold_reads) = (None, false);
        self.queue_flush(slot);
        self.queue_rearm(slot);
        None
    }
}
