//! Single-producer single-consumer rings of variable-length records in
//! shared memory. See [`layout`] for the memory format and [`wake`] for the
//! wake-up protocol.

pub mod consumer;
pub mod layout;
pub mod producer;
pub mod wake;

pub use consumer::{CommitError, Consumer, ReadError, Record};
pub use layout::{LayoutError, Ring};
pub use producer::{Grant, NotifyError, Producer, ReserveError, SendError};
pub use wake::{wait_any, EventFd, SpinPolicy, WaitError, Wakeup};
