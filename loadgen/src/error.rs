//! Typed errors for everything that can stop a run.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum LoadgenError {
    #[error("invalid configuration: {0}")]
    Config(String),

    #[error("cannot resolve server address {addr:?}: {source}")]
    Resolve { addr: String, source: io::Error },

    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: String, source: io::Error },

    #[error("io_uring failed: {0} (is io_uring disabled? see /proc/sys/kernel/io_uring_disabled)")]
    Ring(io::Error),

    #[error("worker thread panicked")]
    WorkerPanicked,

    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },

    #[error(
        "error rate {rate:.6} ({errors} errors / {requests} requests) exceeds --max-errors {max}"
    )]
    TooManyErrors {
        errors: u64,
        requests: u64,
        rate: f64,
        max: f64,
    },

    #[error("cannot start {server}: {reason}")]
    ServerStart {
        server: &'static str,
        reason: String,
    },

    #[error(
        "prefill: the server shed {shed} of {requests} SETs ({sample}), so those keys are missing; \
         prefill with fewer connections or a smaller pipeline (e.g. a run of -c 4 --prefill -n 1 \
         first), or raise the server's overload target"
    )]
    PrefillShed {
        shed: u64,
        requests: u64,
        sample: String,
    },

    #[error("interrupted")]
    Interrupted,
}
