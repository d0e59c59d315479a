//! Single-producer single-consumer rings of variable-length records in
//! shared memory. See [`layout`] for the memory format and [`wake`] for the
//! wake-up protocol.
//!
//! # Trust boundary: reading memory another process may write
//!
//! The consumer reads records in place. Under the SPSC protocol the
//! producer never writes a published, uncommitted record, so a `&[u8]` over
//! it ([`Record::payload`]) is sound. The server, though, reads *reply*
//! rings whose producer is a plugin process: a buggy or hostile plugin can
//! write a record while the server reads it. Two rules keep the server
//! sound and in bounds whatever a plugin does:
//!
//! * Every field the consumer *decides* on (cursors, a record's length and
//!   padding marker, the header) is read from ring memory with atomic loads
//!   exactly once and checked before use, so a concurrent writer cannot
//!   change a length between its check and its use (no double fetch) and
//!   no check can be bypassed; a failed check is [`ReadError::Corrupt`].
//! * The payload of a ring written by an untrusted process should be
//!   copied out with [`Record::copy_payload`] /
//!   [`Record::copy_payload_into`], which use relaxed atomic 8-byte loads
//!   (payloads start 8-aligned and are padded to 8 bytes, so whole words
//!   never leave the record). Atomic loads of memory another process writes
//!   are defined behaviour; a plain `memcpy` from a `&[u8]` the other side
//!   mutates is a data race (undefined behaviour in Rust's model, and in
//!   practice lets the compiler re-read bytes it already checked). Volatile
//!   reads would stop re-reads but are still racy in the model; relaxed
//!   atomics cost the same plain `mov`s on x86-64 and are defined. The
//!   copy is what the server keeps anyway (it outlives the commit), so
//!   reading it atomically costs nothing extra. Decoding then works on the
//!   private copy, where the FlatBuffers verifier's checks stay true.
//!
//! The plugin side reads request rings written by the server (trusted) and
//! uses the zero-copy [`Record::payload`].

pub mod consumer;
pub mod layout;
#[cfg(not(loom))]
mod memory;
#[cfg(loom)]
mod model;
pub mod producer;
pub mod record;
pub mod wake;

pub use consumer::{CommitError, Consumer, ReadError};

/// A ring's statistics counters (see `layout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stall {
    /// The producer found no room.
    Full = 0,
    /// The consumer parked with nothing to read.
    Empty = 1,
    /// Records handed to the consumer's handler (every delivery).
    Delivered = 2,
    /// Nanoseconds the consumer's handlers spent on its records.
    BusyNs = 3,
}

/// A ring's statistics, read from its shared memory: what a pipeline
/// stage's bottleneck advice is computed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingCounters {
    pub full: u64,
    pub empty: u64,
    pub delivered: u64,
    pub busy_ns: u64,
}
pub use layout::LayoutError;
#[cfg(not(loom))]
pub use memory::Ring;
#[cfg(loom)]
pub use model::{EventFd, Ring};
pub use producer::{Grant, NotifyError, Producer, ReserveError, SendError};
pub use record::Record;
pub use wake::{clear_sleeping, prepare_park, SpinPolicy, Wakeup};
#[cfg(not(loom))]
pub use wake::{wait_any, EventFd, WaitError};
