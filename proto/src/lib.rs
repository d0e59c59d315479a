//! Citadel's plugin wire protocol.
//!
//! * [`ring`]: single-producer single-consumer rings of variable-length
//!   records in shared memory, with in-place reservation (zero copies), a
//!   durable commit cursor for at-least-once delivery, and eventfd wake-ups
//!   that cost a system call only when the consumer sleeps.
//! * [`envelope`]: the 32-byte record header (id, kind, deadline, attempt,
//!   status, format), a FlatBuffers struct from `proto/schema/envelope.fbs`.
//! * [`schema`]: FlatBuffers payload tables (`proto/schema/cache.fbs`).
//! * [`handshake`]: the environment through which a plugin finds its rings.
//! * [`host`]: the server's end: creating ring pairs and plugin commands.
//!
//! Unsafe code lives only in [`shm`], [`ring`] (memory of the mapping) and
//! the private `sys` module (system calls).

pub mod envelope;
mod generated;
pub mod handshake;
pub mod host;
pub mod ring;
pub mod shm;
mod sys;

/// FlatBuffers payload tables generated from `proto/schema/cache.fbs`.
pub mod schema {
    pub use crate::generated::plugin::*;
}

pub use envelope::{Envelope, Format, Kind};
pub use handshake::{Handshake, PairSpec, PluginEnd, RingSource};
pub use host::{plugin_command, Backing, HostPair};
pub use ring::{Consumer, EventFd, Producer, Record, ReserveError, Ring, SpinPolicy, Wakeup};
