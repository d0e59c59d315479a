//! Pipeline calls on the server's side: the result cache key, single
//! flight (concurrent identical calls, on any thread, share one
//! computation), and settling a finished call: render its reply, store it
//! in the cache with the pipeline's TTL, answer every waiter.
//!
//! ```text
//! PIPELINE CALL ─ key = xxh3(pipeline, options, input content)
//!   ├─ cached (`__pipeline:<name>:<key>`) ─▶ reply now
//!   ├─ in flight ─▶ join: park on WaitKey::Pipeline(wait)
//!   └─ lead: Call ─▶ first stage ... last stage ─▶ results, End
//!        poll: Caller::Pipeline ─▶ ThreadPipelines::settle ─▶ store, then
//!        each waiter: this thread's ─▶ Completion::Pipeline,
//!                     other threads' ─▶ Mail::PipelineDone
//! ```

mod flights;
mod render;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use flights::Flights;
pub use render::{render, result_key, ResultKey};

use citadel_cache::CacheHandle;

use crate::plugin::Outcome;

/// Identifies one parked PIPELINE CALL (unique per server: the thread is
/// in the top 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipelineWaitId(pub u64);

/// What a call's waiters get: the reply (a JSON document) or the error
/// text to answer with.
pub type PipelineResult = Arc<Result<Vec<u8>, String>>;

/// A finished call's waiter and its result.
pub struct Settled {
    pub thread: usize,
    pub wait: PipelineWaitId,
    pub result: PipelineResult,
}

/// One thread's side: wait ids and the waiters of calls it settled.
pub struct ThreadPipelines {
    pub flights: Arc<Flights>,
    /// Where DATA inputs too large for the first stage's ring are written
    /// for it to read (see [`ThreadPipelines::spool_path`]).
    spool: Arc<Path>,
    thread: usize,
    next_wait: u64,
    settled: Vec<Settled>,
}

impl ThreadPipelines {
    pub fn new(thread: usize, flights: Arc<Flights>, spool: Arc<Path>) -> Self {
        Self {
            flights,
            spool,
            thread,
            next_wait: 1,
            settled: Vec::new(),
        }
    }

    pub fn thread(&self) -> usize {
        self.thread
    }

    /// The file a spooled DATA input of call `hash` is written to: the
    /// first stage reads it as a FILE input, and it is removed when the
    /// call settles.
    pub fn spool_path(&self, hash: u128) -> PathBuf {
        self.spool.join(format!("{hash:032x}.in"))
    }

    pub fn new_wait(&mut self) -> PipelineWaitId {
        self.next_wait += 1;
        PipelineWaitId(((self.thread as u64) << 48) | self.next_wait)
    }

    /// A call this thread led finished: store its result (when `ttl_ms`
    /// is not zero) before the flight ends, so a call arriving now finds
    /// either the flight or the stored result; then hand the result to
    /// every waiter. A `spooled` input file is removed.
    pub fn settle(
        &mut self,
        cache: &mut CacheHandle,
        name: &str,
        key: &ResultKey,
        ttl_ms: u64,
        spooled: bool,
        outcome: Outcome,
    ) {
        let result = match render(name, outcome) {
            Ok(json) => {
                if ttl_ms > 0 {
                    let expire_at = cache.now_ms() + ttl_ms;
                    if let Err(e) = cache.set(&key.cache_key, &json, Some(expire_at)) {
                        tracing::warn!(pipeline = name, "not caching a result: {e}");
                    }
                }
                Ok(json)
            }
            Err(e) => Err(e),
        };
        let result = Arc::new(result);
        if spooled {
            let _ = std::fs::remove_file(self.spool_path(key.hash));
        }
        for (thread, wait) in self.flights.finish(key.hash) {
            self.settled.push(Settled {
                thread,
                wait,
                result: result.clone(),
            });
        }
    }

    /// Waiters of calls settled since the last call.
    pub fn take_settled(&mut self) -> std::vec::Drain<'_, Settled> {
        self.settled.drain(..)
    }
}
