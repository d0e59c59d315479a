//! A streamed call's frames as they come: partial results handed out one
//! by one, the final reply (or the failure) kept for `finish`. The state
//! is shared by the blocking [`CallStream`] and the async one.

use std::sync::Arc;

use crate::client::{Client, PendingReply};
use crate::error::{Error, Result};
use crate::frame::Frame;
use crate::outcome::{Outcome, Partial};

#[derive(Default)]
pub(crate) struct StreamState {
    /// The final payload or the error that ended the stream.
    result: Option<Result<Vec<u8>>>,
}

impl StreamState {
    pub(crate) fn is_done(&self) -> bool {
        self.result.is_some()
    }

    /// The partial result this frame carries, or `None` when the frame
    /// (or the failure) ends the stream.
    pub(crate) fn on_frame(&mut self, item: Result<Frame>) -> Option<Partial> {
        match item.and_then(Frame::into_outcome) {
            Ok(Outcome::Partial(p)) => Some(p),
            Ok(last) => {
                self.result = Some(last.into_call_reply());
                None
            }
            Err(e) => {
                self.result = Some(Err(e));
                None
            }
        }
    }

    pub(crate) fn take_result(&mut self) -> Result<Vec<u8>> {
        self.result.take().unwrap_or(Err(Error::Closed))
    }
}

/// A streamed call (a pipeline): iterate over the partial results as
/// they arrive, then [`finish`](CallStream::finish) for the final reply or
/// the error that ended the stream (a failure ends the iteration early).
///
/// ```no_run
/// use citadel_client::Client;
///
/// let client = Client::connect("unix:/run/citadel/rpc.sock")?;
/// let video = std::fs::read("clip.mp4")?;
/// let mut frames = client.call_stream("describe-video", &video, "fps=1 max_frames=3")?;
/// for partial in frames.by_ref() {
///     println!("frame {}: {}", partial.index, String::from_utf8_lossy(&partial.data));
/// }
/// let summary = frames.finish()?;
/// # let _ = summary;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct CallStream {
    reply: PendingReply,
    state: StreamState,
    /// The connection's client, for a stream from a pool or a discovered
    /// client that may drop it from its routes mid-stream.
    _client: Option<Arc<Client>>,
}

impl CallStream {
    pub(crate) fn new(reply: PendingReply) -> Self {
        Self {
            reply,
            state: StreamState::default(),
            _client: None,
        }
    }

    /// Keeps `client` (and so the connection) alive while the stream is.
    pub(crate) fn keeping(mut self, client: Arc<Client>) -> Self {
        self._client = Some(client);
        self
    }

    /// The final reply, after skipping the partials not yet read.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        while self.next().is_some() {}
        self.state.take_result()
    }

    /// Hands each partial result to `each`, then returns the final reply.
    pub fn for_each_partial(mut self, mut each: impl FnMut(Partial)) -> Result<Vec<u8>> {
        for p in self.by_ref() {
            each(p);
        }
        self.state.take_result()
    }
}

impl Iterator for CallStream {
    type Item = Partial;

    fn next(&mut self) -> Option<Partial> {
        if self.state.is_done() {
            return None;
        }
        let item = self.reply.next_frame();
        self.state.on_frame(item)
    }
}
