//! The running script's host, reachable from the permanent `redis.call`
//! (`call.rs`) through a cell the engine fills for the length of one run
//! (kept in the state's `api::Shared`).

use std::cell::Cell;
use std::ptr::NonNull;

use super::Host;

/// What a run's `redis.call` needs from the engine: its host and rules.
#[derive(Clone, Copy)]
struct Running {
    host: NonNull<dyn Host + 'static>,
    read_only: bool,
}

/// The running script's host, set by [`RunHost::enter`] for one run.
#[derive(Default)]
pub struct RunHost(Cell<Option<Running>>);

/// Clears the [`RunHost`] when the run ends (also on a panic).
pub struct Entered<'r>(&'r RunHost);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0 .0.set(None);
    }
}

impl RunHost {
    /// Makes `host` the one `redis.call` reaches until the guard drops.
    pub fn enter<'r>(&'r self, host: &mut dyn Host, read_only: bool) -> Entered<'r> {
        let host: NonNull<dyn Host + '_> = NonNull::from(host);
        // SAFETY: only the trait object's lifetime bound is erased (same
        // layout). The pointer lives in the cell until the returned guard
        // drops, and the guard borrows `self` for no longer than the
        // caller's `host` borrow is held (the engine drops it before `run`
        // returns), so it is never dereferenced after `host`'s borrow ends.
        let host: NonNull<dyn Host + 'static> = unsafe { std::mem::transmute(host) };
        self.0.set(Some(Running { host, read_only }));
        Entered(self)
    }

    pub fn is_running(&self) -> bool {
        self.0.get().is_some()
    }

    /// Runs `f` with the host, taken out of the cell meanwhile (a nested
    /// `redis.call`, which no command can cause, would find none: no two
    /// `&mut` to the host ever exist). None outside a run.
    pub fn with<R>(&self, f: impl FnOnce(&mut dyn Host, bool) -> R) -> Option<R> {
        let running = self.0.take()?;
        // SAFETY: `running.host` was made from a `&mut dyn Host` that is
        // still borrowed (see `enter`: the cell is cleared before that
        // borrow ends), and it was taken out of the cell, so this is the
        // only reference to the host until it is put back below.
        let r = f(unsafe { &mut *running.host.as_ptr() }, running.read_only);
        self.0.set(Some(running));
        Some(r)
    }
}
