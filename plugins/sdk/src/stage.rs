//! Pipeline stages. A stage is a plugin whose ring pairs also have output
//! rings: the next stage's request rings. Two ways to be one:
//!
//! * **one record in, one record out** (an OCR stage, a filter): serve as
//!   any plugin does ([`Plugin::serve`](crate::Plugin::serve),
//!   `serve_batch`, `serve_out_of_order`). A successful reply goes to the
//!   next stage as its request, or to the server from the last stage; an
//!   error always goes to the server, which answers the caller at once.
//! * **one record in, many out** (a decoder writing one record per frame):
//!   [`Plugin::serve_stage`](crate::Plugin::serve_stage) hands the handler
//!   an [`Emitter`] that reserves each output record in the next stage's
//!   ring and lets the handler write it in place (the ring is the
//!   allocator: no intermediate buffer). The request is committed once the
//!   handler returns, after everything it emitted is published, so a stage
//!   killed mid-call gets the call again and emits it again from the start
//!   (the server keeps one result per frame).
//!
//! A full output ring is backpressure: `emit` waits for the next stage to
//! make room (it never drops), and gives up only if the server is gone.
//! Every record of one call goes to one next-stage instance, chosen among
//! those taking calls at the first `emit` (see `engine/outputs.rs`).

use std::time::{Duration, Instant};

use citadel_proto::ring::ReserveError;
use citadel_proto::Envelope;

use crate::engine::outputs::Outputs;
use crate::message::Request;

/// How long `emit` sleeps between tries while the output ring is full,
/// after spinning and yielding briefly.
const FULL_SLEEP: Duration = Duration::from_micros(200);
const PARENT_CHECK: Duration = Duration::from_secs(1);

/// Why an output record could not be emitted.
#[derive(Debug, thiserror::Error)]
pub enum EmitError {
    #[error("this plugin is not a pipeline stage with a next stage (no output rings)")]
    NoOutput,
    #[error("an output record of {len} bytes exceeds the next stage's ring maximum of {max} (raise its ring-capacity)")]
    TooLarge { len: usize, max: usize },
    #[error("waking the next stage: {0}")]
    Notify(String),
    #[error("the server process went away while the next stage's ring was full")]
    ServerGone,
}

/// Writes records of one call into the next stage's ring.
#[derive(Debug)]
pub struct Emitter<'a> {
    outputs: &'a mut Outputs,
    envelope: Envelope,
    emitted: u32,
}

impl Drop for Emitter<'_> {
    /// The handler returned: the call ends here (its records, if any, are
    /// published).
    fn drop(&mut self) {
        self.outputs.end(self.envelope.id);
    }
}

impl<'a> Emitter<'a> {
    pub(crate) fn new(outputs: &'a mut Outputs, request: &Request<'_>) -> Self {
        Self {
            outputs,
            envelope: Envelope {
                deadline_ms: request.deadline_ms,
                ..Envelope::request(request.id)
            },
            emitted: 0,
        }
    }

    /// True if there is a next stage.
    pub fn has_output(&self) -> bool {
        !self.outputs.is_empty()
    }

    /// Largest payload one output record may have (0 without an output).
    pub fn max_payload(&self) -> usize {
        self.outputs.max_payload()
    }

    /// Records emitted for this call so far.
    pub fn emitted(&self) -> u32 {
        self.emitted
    }

    /// Copies `payload` into one output record.
    pub fn emit(&mut self, payload: &[u8]) -> Result<(), EmitError> {
        self.emit_with(payload.len(), |buf| buf.copy_from_slice(payload))
    }

    /// Reserves one output record of `len` bytes, lets `fill` write it in
    /// ring memory, and publishes it (waking the next stage if it sleeps).
    /// Waits while the ring is full.
    pub fn emit_with(&mut self, len: usize, fill: impl FnOnce(&mut [u8])) -> Result<(), EmitError> {
        if self.outputs.is_empty() {
            return Err(EmitError::NoOutput);
        }
        let parent = std::os::unix::process::parent_id();
        let mut tries = 0u32;
        let mut checked = Instant::now();
        loop {
            // None: every next instance is closed for a moment (an
            // upgrade); waited out like a full ring.
            let reserved = match self.outputs.route(self.envelope.id) {
                Some(n) => self.outputs.ring(n).reserve(len),
                None => Err(ReserveError::Full {
                    needed: len,
                    free: 0,
                }),
            };
            match reserved {
                Ok(mut grant) => {
                    fill(grant.payload_mut());
                    grant
                        .commit(&self.envelope)
                        .map_err(|e| EmitError::Notify(e.to_string()))?;
                    self.emitted += 1;
                    return Ok(());
                }
                Err(ReserveError::TooLarge { len, max }) => {
                    return Err(EmitError::TooLarge { len, max })
                }
                Err(ReserveError::Full { .. }) => {
                    tries += 1;
                    match tries {
                        0..=64 => std::hint::spin_loop(),
                        65..=128 => std::thread::yield_now(),
                        _ => std::thread::sleep(FULL_SLEEP),
                    }
                    if checked.elapsed() >= PARENT_CHECK {
                        checked = Instant::now();
                        if citadel_proto::handshake::server_gone(parent) {
                            return Err(EmitError::ServerGone);
                        }
                    }
                }
            }
        }
    }
}
