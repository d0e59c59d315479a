//! Citadel's wire protocols: the plugin wire and the RPC front door.
//!
//! * [`ring`]: single-producer single-consumer rings of variable-length
//!   records in shared memory, with in-place reservation (zero copies), a
//!   durable commit cursor for at-least-once delivery, and eventfd wake-ups
//!   that cost a system call only when the consumer sleeps.
//! * [`envelope`]: the 32-byte record header (id, kind, deadline, attempt,
//!   status, format), a FlatBuffers struct from `proto/schema/envelope.fbs`.
//! * [`schema`]: FlatBuffers payload tables (`proto/schema/cache.fbs`).
//! * [`load`]: the read-through loader protocol on top of them: encoding
//!   and verified decoding of `LoadRequest`, `LoadReply`, `ErrorReply` and
//!   `Invalidation`, with typed results and errors.
//! * [`pipeline`]: the messages of a compute pipeline (call, frame,
//!   result, end) and a call's options.
//! * [`cluster`]: Redis Cluster's key space (CRC16 slots, hash tags)
//!   and the member record every membership source publishes.
//! * [`discovery`]: the record each server writes into the shared
//!   discovery directory, and listing the live ones.
//! * [`rpc`]: the RPC front door's frames (a 24-byte header and a
//!   FlatBuffers body from `proto/schema/rpc.fbs`): a streaming header
//!   parser, verified in-place request decoding with bounded limits, and
//!   reply (and request) writers that append frames to a send buffer
//!   without allocating in steady state.
//! * [`handshake`]: the environment through which a plugin finds its rings.
//! * [`host`]: the server's end: creating ring pairs and plugin commands.
//! * [`inline_abi`]: the C ABI of an inline plugin module (a plugin loaded
//!   into the server instead of started as a process).
//!
//! Unsafe code lives only in [`shm`], [`ring`] (memory of the mapping) and
//! the private `sys` module (system calls). Built with `--cfg loom`, only
//! the rings (over loom's atomics, `ring::Ring::new_model`), the envelope
//! and the codecs are compiled, for the loom models in `proto/tests`.

#[cfg(not(loom))]
pub mod cluster;
#[cfg(not(loom))]
pub mod discovery;
pub mod envelope;
mod generated;
#[cfg(not(loom))]
pub mod handshake;
#[cfg(not(loom))]
pub mod host;
pub mod inline_abi;
pub mod load;
pub mod pipeline;
pub mod ring;
pub mod rpc;
#[cfg(not(loom))]
pub mod shm;
mod sync;
#[cfg(not(loom))]
mod sys;

/// FlatBuffers payload tables generated from `proto/schema/cache.fbs`.
pub mod schema {
    pub use crate::generated::plugin::*;
}

pub use envelope::{Envelope, Format, Kind};
#[cfg(not(loom))]
pub use handshake::{Handshake, OutputSpec, PairSpec, PluginEnd, RingSource};
#[cfg(not(loom))]
pub use host::{plugin_command, stage_command, Backing, HostPair};
pub use ring::{
    Consumer, EventFd, Producer, Record, ReserveError, Ring, RingCounters, SpinPolicy, Wakeup,
    LATENCY_BUCKETS,
};
