//! A plugin attached to its rings, ready to serve in one of two modes:
//!
//! * **in order** ([`Plugin::serve`], [`Plugin::serve_batch`]): the handler
//!   returns each reply; a batch is published and committed before the next
//!   one is read;
//! * **out of order** ([`Plugin::serve_out_of_order`]): the handler gets
//!   each request with a [`Responder`] and may answer later, from any
//!   thread (e.g. a tokio task). Replies are published as they come; a
//!   request is committed once it and every earlier request of its ring
//!   pair are answered, so a plugin killed at any point gets every
//!   unanswered request again.
//!
//! Both run the same loop (`engine`): poison guard, deadlines, in-flight
//! limit, backpressure on a full reply ring, parent-death check, graceful
//! stop on SIGTERM/SIGINT, and unsolicited records from a [`Notifier`].

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use citadel_proto::envelope::STATUS_HANDLER_FAILED;
use citadel_proto::{Handshake, PluginEnd};

use crate::engine::inbox::Inbox;
use crate::engine::lane::{Batch, Book, Lane, ReadLimits};
use crate::engine::Engine;
use crate::handles::{Notifier, Responder, Stopper};
use crate::message::{Replies, Reply, Request};
use crate::options::{Options, ServeError};
use crate::stage::Emitter;
use crate::stop::StopSignal;

/// A plugin attached to its ring pairs, with its stop signal installed.
pub struct Plugin {
    lanes: Vec<Lane>,
    options: Options,
    inbox: Arc<Inbox>,
    stop: StopSignal,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("pairs", &self.lanes.len())
            .field("options", &self.options)
            .finish()
    }
}

impl Plugin {
    /// Attaches to the rings named by the environment (see
    /// `citadel_proto::handshake`); `max_attempts` comes from there too.
    pub fn from_env(mut options: Options) -> Result<Self, ServeError> {
        let handshake = Handshake::from_env()?;
        options.max_attempts = handshake.max_attempts;
        Self::new(handshake.attach()?, options)
    }

    /// Serves the given ring pairs. SIGTERM/SIGINT handlers are installed
    /// now (a signal before serving starts is not lost).
    pub fn new(ends: Vec<PluginEnd>, options: Options) -> Result<Self, ServeError> {
        let stop = StopSignal::install().map_err(ServeError::Signals)?;
        Self::with_stop(ends, options, stop)
    }

    /// Serves the given ring pairs, stopped by `stop`.
    pub(crate) fn with_stop(
        ends: Vec<PluginEnd>,
        options: Options,
        stop: StopSignal,
    ) -> Result<Self, ServeError> {
        let inbox = Arc::new(Inbox::new().map_err(ServeError::Inbox)?);
        let lanes = ends
            .into_iter()
            .enumerate()
            .map(|(i, end)| Lane::new(i, end))
            .collect();
        Ok(Self {
            lanes,
            options,
            inbox,
            stop,
        })
    }

    /// Ring pairs served (one per server thread).
    pub fn pairs(&self) -> usize {
        self.lanes.len()
    }

    /// A handle to push unsolicited records (e.g. invalidations).
    pub fn notifier(&self) -> Notifier {
        Notifier::new(Arc::clone(&self.inbox))
    }

    /// A handle that stops the loop as SIGTERM does.
    pub fn stopper(&self) -> Stopper {
        Stopper::new(Arc::clone(&self.inbox))
    }

    /// In order, one request at a time: each reply is published and its
    /// request committed before the next request is handled.
    pub fn serve<F, R>(mut self, mut handler: F) -> Result<(), ServeError>
    where
        F: FnMut(&Request<'_>) -> R,
        R: Into<Reply>,
    {
        self.options.max_batch = 1;
        self.serve_batch(move |reqs, out| {
            for r in reqs {
                out.push(handler(r));
            }
        })
    }

    /// In order, in batches (up to `max_batch`, whatever is waiting): push
    /// one reply per request into `out`, in order. The batch is committed
    /// after its replies are published. A panic answers the whole batch
    /// with a handler-failed error.
    pub fn serve_batch<F>(self, mut handler: F) -> Result<(), ServeError>
    where
        F: FnMut(&[Request<'_>], &mut Replies),
    {
        let batch = self.options.max_batch.max(1);
        let limits = ReadLimits {
            max_attempts: self.options.max_attempts,
            in_flight: batch,
            batch,
        };
        let mut replies = Replies::default();
        let mut handle = |batch: Batch<'_, '_>, book: &mut Book| {
            replies.clear();
            let run = catch_unwind(AssertUnwindSafe(|| handler(batch.requests, &mut replies)));
            if run.is_err() {
                replies.clear();
                for _ in batch.requests {
                    replies.push(Reply::error(STATUS_HANDLER_FAILED, "handler panicked"));
                }
            }
            for (i, seq) in batch.seqs.iter().enumerate() {
                book.answer(*seq, Some(replies.take(i)));
            }
        };
        self.run(limits, &mut handle)
    }

    /// Out of order: `handler` gets each request and its [`Responder`], and
    /// may answer at once or later from any thread. Up to `max_in_flight`
    /// requests per ring pair are in hand at once. A panic in the handler
    /// drops the responder: the request is answered with a handler-failed
    /// error.
    pub fn serve_out_of_order<F>(self, mut handler: F) -> Result<(), ServeError>
    where
        F: FnMut(&Request<'_>, Responder),
    {
        let limits = ReadLimits {
            max_attempts: self.options.max_attempts,
            in_flight: self.options.max_in_flight.max(1),
            batch: self.options.max_batch.max(1),
        };
        let inbox = Arc::clone(&self.inbox);
        let mut handle = |batch: Batch<'_, '_>, book: &mut Book| {
            let max_payload = book.max_payload();
            for (req, seq) in batch.requests.iter().zip(batch.seqs) {
                let responder =
                    Responder::new(Arc::clone(&inbox), book.pair(), *seq, req.id, max_payload);
                if catch_unwind(AssertUnwindSafe(|| handler(req, responder))).is_err() {
                    tracing::error!(id = req.id, "the handler panicked");
                }
            }
        };
        self.run(limits, &mut handle)
    }

    /// A pipeline stage that emits many records per request (see
    /// [`crate::stage`]): `handler` writes its output through the
    /// [`Emitter`] and returns `None` when it passed everything on, or a
    /// reply for the server (an error, e.g. an undecodable input, answers
    /// the caller directly and the next stages never see the call). One
    /// request at a time; it is committed after the handler returns. A
    /// panic answers the request with a handler-failed error.
    pub fn serve_stage<F>(mut self, mut handler: F) -> Result<(), ServeError>
    where
        F: FnMut(&Request<'_>, &mut Emitter<'_>) -> Option<Reply>,
    {
        self.options.max_batch = 1;
        let limits = ReadLimits {
            max_attempts: self.options.max_attempts,
            in_flight: 1,
            batch: 1,
        };
        let mut handle = |batch: Batch<'_, '_>, book: &mut Book| {
            for (req, seq) in batch.requests.iter().zip(batch.seqs) {
                let mut emitter = Emitter::new(&mut book.outputs, req);
                let outcome = catch_unwind(AssertUnwindSafe(|| handler(req, &mut emitter)));
                // The call ends in its output ring before it is answered.
                drop(emitter);
                match outcome {
                    Ok(None) => book.settle(*seq),
                    Ok(Some(reply)) => book.answer(*seq, Some(reply)),
                    Err(_) => {
                        tracing::error!(id = req.id, "the stage handler panicked");
                        book.answer(*seq, Some(Reply::handler_failed("handler panicked")));
                    }
                }
            }
        };
        self.run(limits, &mut handle)
    }

    fn run(
        self,
        limits: ReadLimits,
        handle: &mut dyn FnMut(Batch<'_, '_>, &mut Book),
    ) -> Result<(), ServeError> {
        let engine = Engine::new(self.lanes, self.inbox, self.stop);
        engine.run(&self.options, limits, handle)
    }
}
