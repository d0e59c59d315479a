//! The per-core io_uring networking loop.
//!
//! One thread per core, each pinned to its CPU, each with its own io_uring,
//! its own SO_REUSEPORT listener (see `listener` for why) and its own
//! provided-buffer ring. Per turn a thread reaps every completion (multishot
//! accepts, multishot recvs, sends), runs every whole command it received
//! through the [`Service`] (straight out of the kernel's buffer when no
//! partial command is pending), queues one send per connection that has
//! output, and makes one `io_uring_enter` that submits everything and waits
//! for more completions or the next ~100 ms maintenance tick.
//!
//! The loop knows nothing about RESP or the cache: it drives a [`Service`]
//! (the command layer in production, see `service`; a tiny echo protocol in
//! this module's tests), so it can be tested without either.

mod affinity;
mod bufring;
mod conn;
mod event_loop;
mod lifecycle;
mod listener;
mod park;
mod ring;
mod rlimit;
mod server;
mod service;
pub mod signals;
mod slab;
mod token;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

pub use crate::command::Progress;

pub use affinity::allowed_cpus;
pub use ring::probe;
pub use rlimit::raise_nofile;
pub use server::{bind, serve, NetConfig};
pub use service::CommandService;

/// The layer above the loop, one instance per server thread.
pub trait Service {
    /// Per-connection state.
    type Session;
    /// A connection was accepted; `id` is unique across threads.
    fn open(&mut self, id: u64, peer: SocketAddr, local: SocketAddr) -> Self::Session;
    /// Runs the whole commands at the start of `input`, appending replies to `out`.
    fn process(&mut self, session: &mut Self::Session, input: &[u8], out: &mut Vec<u8>)
        -> Progress;
    /// True when the connection must be closed now (CLIENT KILL).
    fn is_killed(&self, session: &Self::Session) -> bool;
    /// Once per loop turn, before any `process`, with the wall clock in Unix ms.
    fn turn(&mut self, now_ms: u64);
    /// Every ~100 ms: background upkeep.
    fn tick(&mut self);
    /// True once a graceful shutdown was requested (signal or SHUTDOWN).
    fn shutdown_requested(&self) -> bool;
    /// Current connection limit across all threads (CONFIG SET may change it).
    fn maxclients(&self) -> usize;

    // Asynchronous calls (plugins): a session whose `Progress::parked` is
    // set waits for one; the loop stops feeding it (buffering its input)
    // until the completion arrives, then calls `resume` and goes on.

    /// Eventfds whose readiness means completions may be waiting; the loop
    /// polls them with io_uring and calls `on_wake(index)` when one fires.
    fn wake_fds(&self) -> Vec<std::os::fd::RawFd> {
        Vec::new()
    }
    fn on_wake(&mut self, _index: usize) {}
    /// A session just parked: `waker` identifies its connection in completions.
    fn park(&mut self, _session: &mut Self::Session, _waker: u64) {}
    /// Once per turn: gather finished calls (replies, timeouts).
    fn poll_async(&mut self, _now: std::time::Instant) {}
    fn next_completion(&mut self) -> Option<crate::plugin::Completion> {
        None
    }
    /// The earliest instant `poll_async` must run (a call's deadline).
    fn next_deadline(&self) -> Option<std::time::Instant> {
        None
    }
    /// The call `session` was parked on finished: append its reply to `out`.
    fn resume(
        &mut self,
        _session: &mut Self::Session,
        _done: crate::plugin::Completion,
        _out: &mut Vec<u8>,
    ) {
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("{0}")]
    Unavailable(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot set up the provided buffer ring: {0}")]
    BufRing(std::io::Error),
    #[error("server thread {thread}: {message}")]
    Thread { thread: usize, message: String },
    #[error("io_uring_enter failed: {0}")]
    Enter(std::io::Error),
}
