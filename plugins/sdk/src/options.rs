//! How the serve loop behaves, and why it stops with an error.

use std::io;

use citadel_proto::handshake::{AttachError, HandshakeError};
use citadel_proto::ring::{ReadError, WaitError};
use citadel_proto::SpinPolicy;

use crate::engine::lane::LaneError;

/// How the serve loop behaves.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Deliveries of one request before it is skipped as poison (its handler
    /// is not called again; the server receives an `Abandoned` record).
    /// `serve_env` and `Plugin::from_env` take it from the handshake.
    pub max_attempts: u16,
    /// Most requests handed to a handler at once (in order: one batch;
    /// out of order: per ring pair and loop turn).
    pub max_batch: usize,
    /// Out of order: most requests of one ring pair read and not yet
    /// committed (in order, one batch is in hand at a time).
    pub max_in_flight: usize,
    /// Spinning before the plugin parks on its eventfds when idle.
    pub spin: SpinPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_attempts: citadel_proto::handshake::DEFAULT_MAX_ATTEMPTS,
            max_batch: 64,
            max_in_flight: 8192,
            spin: SpinPolicy::default(),
        }
    }
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Attach(#[from] AttachError),
    #[error("installing signal handlers: {0}")]
    Signals(io::Error),
    #[error("creating the serve loop's inbox: {0}")]
    Inbox(io::Error),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Lane(#[from] LaneError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error("the server process (parent {0}) went away")]
    ServerGone(u32),
}
