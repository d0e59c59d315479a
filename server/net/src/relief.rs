//! Relief for a stalled thread. A thread whose loop stops turning (a Lua
//! script past busy-script-time, a command that runs for seconds) cannot
//! accept the connections the kernel hands its listener: the SO_REUSEPORT
//! hash sends it its share of TCP connections, and each connection to the
//! Unix socket wakes the first armed accept, which may be its. They would
//! wait until it returns, so an operator's `redis-cli SCRIPT KILL` could
//! hang on the very core it is meant to free. Every thread watches its
//! peers' tick counters on its own tick; once a peer has not ticked for
//! `STALL_TICKS` of them, it takes the connections waiting in that peer's
//! listeners (a duplicate of each descriptor) every `RELIEF_POLL` until
//! the peer ticks again. Not with an io_uring accept of its own: accept
//! polls are exclusive waiters, so each new connection wakes only the
//! first armed one, the stalled ring's, whose deferred task work
//! (DEFER_TASKRUN) runs only when its thread enters the kernel again; the
//! connection stays queued until then, and a plain `accept4` takes it.
//! Listeners are nonblocking (`listener.rs`), so that `accept4` never
//! waits. Connections already on the stalled thread wait for it; new ones
//! are served.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use super::event_loop::Worker;
use super::peer_watch::{PeerWatch, RELIEF_POLL, STALL_TICKS};
use super::Service;

impl<S: Service> Worker<S> {
    /// On each tick: starts relieving peers that stopped ticking, and
    /// stops for those that tick again.
    pub(super) fn watch_peers(&mut self) {
        let peers = self.shared.relief.loops.len();
        if self.peers.len() != peers {
            self.peers = vec![PeerWatch::default(); peers];
        }
        let me = self.thread;
        for peer in (0..peers).filter(|&p| p != me) {
            // ORDERING: Relaxed: a heartbeat; any value newer than the last
            // one seen says the thread turns.
            let ticks = self.shared.relief.loops[peer].ticks.load(Relaxed);
            let watch = &mut self.peers[peer];
            if ticks != watch.ticks {
                (watch.ticks, watch.still) = (ticks, 0);
                if watch.relieving {
                    watch.relieving = false;
                    self.end_relief(peer);
                }
                continue;
            }
            watch.still = watch.still.saturating_add(1);
            if watch.still >= STALL_TICKS && !watch.relieving && self.drain_until.is_none() {
                watch.relieving = true;
                self.start_relief(peer);
            }
        }
    }

    /// Takes `peer`'s listeners' queued connections from now on.
    fn start_relief(&mut self, peer: usize) {
        let dups = self.shared.relief.duplicate(peer);
        tracing::warn!(
            thread = self.thread,
            stalled = peer,
            "thread {peer} has not turned its loop for {} ms: accepting its new connections",
            u64::from(STALL_TICKS) * 100
        );
        self.relieved
            .extend(dups.into_iter().map(|dup| (peer, dup)));
        self.relief_due = Some(Instant::now());
    }

    /// `peer` turns again: its listeners are its own again.
    fn end_relief(&mut self, peer: usize) {
        tracing::info!(thread = self.thread, peer, "thread {peer} turns again");
        self.relieved.retain(|(of, _)| *of != peer);
        if self.relieved.is_empty() {
            self.relief_due = None;
        }
    }

    /// Adopts the connections this thread took while a command stalled it
    /// (`stall_door.rs`: a thread without peers).
    pub(super) fn adopt_stalled(&mut self) {
        for (door, stream, path, id) in super::stall_door::take_held() {
            self.stats.relieved.fetch_add(1, Relaxed);
            self.adopt(stream, door, path, Some(id));
        }
        // Replies answered for the thread's own connections while it was
        // stalled that their sockets did not take: they go first.
        for (slot, generation, unsent) in self.own.take_unsent() {
            if let Some(conn) = self.conns.get_mut(slot, generation) {
                conn.out.splice(0..0, unsent);
                self.queue_flush(slot);
            }
        }
    }

    /// Accepts what waits in the relieved listeners (each `RELIEF_POLL`).
    pub(super) fn accept_relieved(&mut self, now: Instant) {
        if self.relief_due.is_none_or(|due| now < due) {
            return;
        }
        self.relief_due = Some(now + RELIEF_POLL);
        let mut taken = Vec::new();
        for (_, (door, listener, path)) in &self.relieved {
            while let Ok((stream, _)) = listener.accept() {
                taken.push((*door, stream, path.clone()));
            }
        }
        for (door, stream, path) in taken {
            self.stats.relieved.fetch_add(1, Relaxed);
            self.adopt(stream, door, path, None);
        }
    }
}
