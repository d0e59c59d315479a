//! Citadel's per-core io_uring network loop: bytes in, bytes out.
//!
//! One thread per core, each pinned to its CPU, each with its own io_uring,
//! its own SO_REUSEPORT listener (see `listener` for why; every thread also
//! accepts on the optional Unix domain socket), its own registered file
//! table (sockets named by index, `fixed`) and its own provided-buffer
//! ring. Per turn a thread reaps every completion (multishot
//! accepts, multishot recvs, sends), runs every whole request it received
//! through the [`Service`] (straight out of the kernel's buffer when no
//! partial request is pending), queues one send per connection that has
//! output, and makes one `io_uring_enter` that submits everything and waits
//! for more completions or the next ~100 ms maintenance tick.
//!
//! This crate is a leaf: it knows nothing about RESP, commands, the cache,
//! plugins or the server's settings. It drives a [`Service`] (the command
//! layer in production; tiny line protocols in this crate's tests).
//!
//! **Waiting.** A session may stop on an asynchronous operation (a plugin
//! call, a read-through load, ...): it returns [`Progress::parked`], the loop
//! stops feeding the connection (later bytes stay buffered) and tells the
//! service which [`Waiter`] to complete. Completions are the service's own
//! typed values ([`Service::Completion`]); the service's wake fds (eventfds)
//! are polled by this thread's ring, and every turn the loop collects the
//! finished operations ([`Service::poll`]) and resumes each waiting
//! connection, then runs the input it buffered meanwhile, in order.

mod admit;
mod affinity;
mod batch;
mod bufring;
mod completions;
mod connection;
mod connection_id;
mod endpoint;
mod event_loop;
mod fixed;
mod hold;
mod lifecycle;
mod listener;
mod peer_watch;
mod relief;
mod rlimit;
mod shared;
mod slab;
mod stall_door;
mod stall_io;
mod stall_peers;
mod stats;
mod submit;
mod threads;
mod token;
mod transfer;
mod uring;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::time::Instant;

pub use admit::Refused;
pub use affinity::allowed_cpus;
pub use endpoint::Endpoint;
pub use rlimit::raise_nofile;
pub use stall_door::serve_stalled;
pub use stall_io::{Answer, Answered, Caller};
pub use stats::LoopStats;
pub use threads::{bind, serve, DoorConfig, Listeners, NetConfig, UnixSocket};
pub use uring::run_deferred_work;

/// Which front door a connection came in by: 0 is the main one
/// (`NetConfig::addr` and `unix`), n is `NetConfig::doors[n - 1]`. The
/// service decides what each door speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Door(pub u8);

impl Door {
    pub const MAIN: Door = Door(0);
}
pub use uring::probe;

/// What one call of [`Service::process`] did with the input it was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Bytes of whole requests handled; the loop drops them.
    pub consumed: usize,
    /// Close the connection once its output is flushed.
    pub close: bool,
    /// When known, the length the unconsumed input (`input[consumed..]` plus
    /// what arrives later) must reach before another call can progress; 0 if
    /// unknown.
    pub need: usize,
    /// The last request consumed waits for an asynchronous operation: feed
    /// nothing more until the loop resumes the session with its completion.
    pub parked: bool,
    /// The requests consumed started operations that finish later without
    /// holding the connection up (a multiplexed protocol answers out of
    /// order): the loop hands the session its [`Waiter`] ([`Service::park`])
    /// and goes on feeding it; completions arrive through
    /// [`Service::resume`] all the same.
    pub detached: bool,
}

/// The connection a parked operation completes to: its slot and the slot's
/// generation, so a completion for a connection that closed meanwhile is
/// dropped instead of reaching the slot's next tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Waiter(u64);

impl Waiter {
    pub(crate) fn new(slot: u32, generation: u32) -> Waiter {
        Waiter(u64::from(slot) << 32 | u64::from(generation))
    }
    pub(crate) fn slot(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub(crate) fn generation(self) -> u32 {
        self.0 as u32
    }
}

/// The layer above the loop, one instance per server thread.
pub trait Service {
    /// Per-connection state.
    type Session;
    /// A finished asynchronous operation, as the session it resumes needs it.
    type Completion;

    /// A connection was accepted; `id` is unique across threads.
    fn open(&mut self, id: u64, peer: Endpoint, local: Endpoint, door: Door) -> Self::Session;
    /// Runs the whole requests at the start of `input`, appending replies to `out`.
    fn process(&mut self, session: &mut Self::Session, input: &[u8], out: &mut Vec<u8>)
        -> Progress;
    /// A hint, before a turn runs any of its input: each of `inputs`, the
    /// start of a connection's next request, will be run soon. Each
    /// connection brings one request per turn at pipeline 1, and executing
    /// them one by one pays their cache misses one after another; starting
    /// to load what they need first lets the misses overlap. Only for turns
    /// with two or more such inputs.
    fn prefetch<'a>(&mut self, _inputs: impl Iterator<Item = (&'a Self::Session, &'a [u8])>)
    where
        Self::Session: 'a,
    {
    }
    /// The connection's held input changed: `len` bytes not yet run (a
    /// partial request, or requests held while parked) and `spare` more
    /// the buffer has room for (CLIENT LIST's `qbuf`, `qbuf-free`). Called
    /// only on a change, never for requests run straight from a receive.
    fn input_held(&mut self, _session: &mut Self::Session, _len: usize, _spare: usize) {}
    /// True when the connection must be closed now (CLIENT KILL).
    fn is_killed(&self, session: &Self::Session) -> bool;
    /// Once per loop turn, before any `process`, with the wall clock in Unix ms.
    fn turn(&mut self, now_ms: u64);
    /// The turn is over: the loop is about to wait for completions (and
    /// calls nothing of the service until the next `turn`).
    fn rest(&mut self) {}
    /// Every ~100 ms: background upkeep.
    fn tick(&mut self);
    /// True once a graceful shutdown was requested (signal or SHUTDOWN).
    fn shutdown_requested(&self) -> bool;
    /// Current connection limit across all threads (it may change at run time).
    fn maxclients(&self) -> usize;
    /// Most concurrent TCP connections from one IP address; 0: no limit.
    fn max_per_address(&self) -> usize {
        0
    }
    /// Most accepts per second across all threads; 0: no limit.
    fn accept_rate(&self) -> u64 {
        0
    }
    /// A new connection was refused (it got its error line and is closed).
    fn refused(&mut self, _why: Refused) {}
    /// True while the session still owes replies to operations it started
    /// detached ([`Progress::detached`]): a draining connection is kept
    /// until they are answered.
    fn owes_replies(&self, _session: &Self::Session) -> bool {
        false
    }
    /// True when a parked session's wait is pointless once its peer stopped
    /// sending (a client blocked on keys, which Redis drops on disconnect):
    /// the loop then closes it at EOF instead of keeping it for the reply.
    fn drop_parked_at_eof(&self, _session: &Self::Session) -> bool {
        false
    }
    /// True when a parked session's operation must still be settled after
    /// its connection is closed hard (CLIENT KILL, a reset): the socket
    /// closes at once, but the session is kept until the completion has
    /// resumed it (its reply is dropped), then freed.
    fn settles_after_close(&self, _session: &Self::Session) -> bool {
        false
    }
    /// Serving one connection panicked; the loop closes that connection and
    /// counts it ([`LoopStats::panics`]). `what` is the panic message.
    fn on_panic(&mut self, _what: &str) {}

    /// Eventfds whose readiness means completions may be waiting; the loop
    /// polls them with io_uring and calls `on_wake(index)` when one fires.
    fn wake_fds(&self) -> Vec<RawFd> {
        Vec::new()
    }
    /// Wake fd number `index` (of [`Service::wake_fds`]) fired.
    fn on_wake(&mut self, _index: usize) {}
    /// `session` just returned [`Progress::parked`]: its pending operation
    /// completes to `waiter`.
    fn park(&mut self, _session: &mut Self::Session, _waiter: Waiter) {}
    /// Once per turn: appends every operation that finished (replies,
    /// results from other threads, timeouts) to `ready`.
    fn poll(&mut self, _now: Instant, _ready: &mut Vec<(Waiter, Self::Completion)>) {}
    /// The earliest instant `poll` must run (an operation's deadline).
    fn next_deadline(&self) -> Option<Instant> {
        None
    }
    /// True for a completion that is output the session did not wait for
    /// (a subscriber's message): a parked connection stays parked.
    fn is_push(&self, _done: &Self::Completion) -> bool {
        false
    }
    /// After `session`'s input was processed: how long to hold its replies
    /// and its reads, when every request in that input was refused because
    /// the core is overloaded (see hold.rs: one recv and one send then carry
    /// several refusals). None: no hold (any other reply ends one).
    fn hold(&mut self, _session: &mut Self::Session) -> Option<std::time::Duration> {
        None
    }
    /// False: every held connection is released now (the overload is over).
    fn holding(&self) -> bool {
        false
    }
    /// Whether a command from `session` could be answered from outside it
    /// while its thread is stalled in a long command (`serve_stalled`):
    /// the session is in a state those answers do not depend on. Asked
    /// when the connection goes quiet.
    fn stall_plain(&self, _session: &Self::Session) -> bool {
        false
    }
    /// The operation `session` was parked on finished: append its reply to `out`.
    fn resume(
        &mut self,
        _session: &mut Self::Session,
        _done: Self::Completion,
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
    #[error("cannot listen on the Unix socket {path}: {source}")]
    BindUnix {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot set up the provided buffer ring: {0}")]
    BufRing(std::io::Error),
    #[error("server thread {thread}: {message}")]
    Thread { thread: usize, message: String },
    #[error("io_uring_enter failed: {0}")]
    Enter(std::io::Error),
}
