//! The world gate: lets one server thread run with every other server
//! thread outside its loop turn, for the rare work that must see the whole
//! keyspace still (a MULTI/EXEC holding KEYS, SCAN, RANDOMKEY, DBSIZE,
//! FLUSHALL or FLUSHDB, which no per-bucket lock can isolate).
//!
//! Cost on the hot path: each thread marks itself active at the start of
//! a loop turn (one sequentially consistent store and one load, per turn,
//! not per command) and inactive before it waits for completions. The
//! holder raises `requested` and waits until no other thread is active;
//! a thread starting a turn while it is raised steps back and waits. The
//! store-then-load on both sides (thread: `active` then `requested`;
//! holder: `requested` then `active`), all `SeqCst`, is Dekker's pattern:
//! at least one of the two sees the other, so no thread runs a turn while
//! the holder believes it is alone.
//!
//! A thread stuck in a turn (a script looping until SCRIPT KILL, which
//! might have to run on a thread the gate holds) must not hang the
//! holder: the holder gives up after `patience` and reports it.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;

const NO_HOLDER: usize = usize::MAX;

pub struct Gate {
    /// Raised by the holder while it waits for, and then runs without,
    /// the other threads.
    requested: CachePadded<AtomicBool>,
    /// The thread holding (or acquiring) the gate, `NO_HOLDER` if none.
    holder: CachePadded<AtomicUsize>,
    /// Per server thread: inside a loop turn.
    active: Box<[CachePadded<AtomicBool>]>,
}

/// The other threads did not leave their turns within the patience.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StillBusy;

impl Gate {
    pub fn new(threads: usize) -> Gate {
        Gate {
            requested: CachePadded::new(AtomicBool::new(false)),
            holder: CachePadded::new(AtomicUsize::new(NO_HOLDER)),
            active: (0..threads)
                .map(|_| CachePadded::new(AtomicBool::new(false)))
                .collect(),
        }
    }

    /// Whether `thread` holds the gate now (a SWAPDB inside an EXEC that
    /// runs alone).
    pub fn held_by(&self, thread: usize) -> bool {
        self.holder.load(SeqCst) == thread
    }

    /// Start of a loop turn on `thread`: waits while another thread holds
    /// the gate.
    pub fn enter(&self, thread: usize) {
        let Some(me) = self.active.get(thread) else {
            return;
        };
        loop {
            me.store(true, SeqCst);
            if !self.requested.load(SeqCst) {
                return;
            }
            me.store(false, SeqCst);
            while self.requested.load(SeqCst) {
                std::thread::yield_now();
            }
        }
    }

    /// End of a loop turn on `thread` (it is about to wait for I/O).
    pub fn leave(&self, thread: usize) {
        if let Some(me) = self.active.get(thread) {
            me.store(false, SeqCst);
        }
    }

    /// Runs `f` on `thread` (inside its turn) while every other server
    /// thread is outside its turn; `Err(StillBusy)` (and `f` not run) when
    /// they were not all out within `patience`.
    pub fn exclusive<R>(
        &self,
        thread: usize,
        patience: Duration,
        f: impl FnOnce() -> R,
    ) -> Result<R, StillBusy> {
        let deadline = Instant::now() + patience;
        // One holder at a time; a thread waiting to hold steps out of its
        // turn, so the current holder is not left waiting for it.
        while self
            .holder
            .compare_exchange(NO_HOLDER, thread, SeqCst, SeqCst)
            .is_err()
        {
            self.leave(thread);
            while self.holder.load(SeqCst) != NO_HOLDER {
                if Instant::now() >= deadline {
                    self.enter(thread);
                    return Err(StillBusy);
                }
                std::thread::yield_now();
            }
            self.enter(thread);
        }
        self.requested.store(true, SeqCst);
        let others_out = self.active.iter().enumerate().all(|(t, active)| {
            t == thread
                || loop {
                    if !active.load(SeqCst) {
                        break true;
                    }
                    if Instant::now() >= deadline {
                        break false;
                    }
                    std::thread::yield_now();
                }
        });
        let result = others_out.then(f);
        self.requested.store(false, SeqCst);
        self.holder.store(NO_HOLDER, SeqCst);
        result.ok_or(StillBusy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::sync::Arc;

    /// Threads in turns bump a counter twice per turn (even between turns);
    /// a holder, alone, must always see it even.
    #[test]
    fn a_holder_never_overlaps_a_turn() {
        let gate = Arc::new(Gate::new(3));
        let counter = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (1..3)
            .map(|t| {
                let (gate, counter, stop) = (gate.clone(), counter.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Relaxed) {
                        gate.enter(t);
                        counter.fetch_add(1, Relaxed);
                        std::hint::spin_loop();
                        counter.fetch_add(1, Relaxed);
                        gate.leave(t);
                    }
                })
            })
            .collect();
        let mut held = 0;
        for _ in 0..2_000 {
            gate.enter(0);
            let seen = gate.exclusive(0, Duration::from_secs(10), || {
                let a = counter.load(Relaxed);
                std::hint::spin_loop();
                (a, counter.load(Relaxed))
            });
            gate.leave(0);
            let (a, b) = seen.expect("threads leave their turns");
            assert_eq!(a % 2, 0, "a turn was running");
            assert_eq!(a, b, "a turn ran while the gate was held");
            held += 1;
        }
        stop.store(true, Relaxed);
        workers.into_iter().for_each(|w| w.join().unwrap());
        assert_eq!(held, 2_000);
    }

    #[test]
    fn a_stuck_turn_makes_the_holder_give_up() {
        let gate = Gate::new(2);
        gate.enter(1); // never leaves
        gate.enter(0);
        let r = gate.exclusive(0, Duration::from_millis(20), || ());
        assert_eq!(r, Err(StillBusy));
        // The gate is free again: thread 1's next turn is not held.
        gate.leave(1);
        gate.enter(1);
    }

    #[test]
    fn two_holders_take_turns() {
        let gate = Arc::new(Gate::new(2));
        let done = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let (gate, done) = (gate.clone(), done.clone());
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        gate.enter(t);
                        if gate.exclusive(t, Duration::from_secs(10), || ()).is_ok() {
                            done.fetch_add(1, Relaxed);
                        }
                        gate.leave(t);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(done.load(Relaxed), 1_000);
    }
}
