//! What a plugin call ends with.

use citadel_proto::Format;

/// Why a plugin call failed. Every variant is answered to the client as an
/// error naming the plugin (see `command::plugin`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("no such plugin")]
    NoSuchPlugin,
    #[error("is overloaded: its request ring is full (backpressure), retry later")]
    Full,
    #[error("is overloaded: {0} requests in flight (max-inflight), retry later")]
    TooMany(u64),
    #[error("cannot take a payload of {len} bytes (its rings hold at most {max})")]
    TooLarge { len: usize, max: usize },
    #[error("did not answer within {0} ms (timeout)")]
    Timeout(u64),
    #[error("abandoned the request after {0} attempts: it crashed the plugin each time (poison request)")]
    Poison(u16),
    #[error("failed: {0}")]
    Plugin(String),
    /// An error reply carrying a FlatBuffers `ErrorReply` (e.g. a loader's).
    #[error("failed: {message}")]
    Coded { code: u32, message: String },
    /// Queued to an instance detached before it took the call (a handler
    /// stuck past the stop timeout): answered at once, never served.
    #[error("did not serve the call: instance {0} was detached (a handler stuck past stop-timeout-ms) before taking it; retry")]
    Detached(usize),
    #[error("cannot be woken: {0}")]
    Notify(String),
    /// PLUGIN CALL of a pipeline's stage (the name: its pipeline, if first).
    #[error("is a pipeline stage: call its pipeline with PIPELINE CALL{}", if .0.is_empty() { String::new() } else { format!(" {}", .0) })]
    PipelineStage(String),
}

impl CallError {
    /// The overload reason when the call was refused at the entry because
    /// the plugin is saturated (its ring full, max-inflight reached): such
    /// a call is shed at once (`-OVERLOAD downstream ...`), never parked.
    pub fn shed_reason(&self) -> Option<crate::overload::Reason> {
        use crate::overload::Reason;
        match self {
            CallError::Full => Some(Reason::PluginFull),
            CallError::TooMany(_) => Some(Reason::PluginLimit),
            _ => None,
        }
    }

    /// The reply's first word: `OVERLOAD downstream` when shed, else `ERR`.
    pub fn reply_prefix(&self) -> &'static str {
        if self.shed_reason().is_some() {
            "OVERLOAD downstream"
        } else {
            "ERR"
        }
    }
}

/// What a pipeline call gathered: one result per frame index (JSON
/// objects from the last stage) and the first stage's summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineOutput {
    /// Frames the first stage sent (its `End`).
    pub frames: u32,
    pub summary: Vec<u8>,
    pub results: std::collections::BTreeMap<u32, Vec<u8>>,
}

/// The result of one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The plugin's reply (`Kind::Reply`), copied out of the reply ring.
    Reply {
        format: Format,
        payload: Vec<u8>,
    },
    /// A pipeline call's results.
    Pipeline(PipelineOutput),
    Failed(CallError),
}
