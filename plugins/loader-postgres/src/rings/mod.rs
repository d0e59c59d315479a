//! The ring thread: reads requests from every pair, hands loads to the
//! database side, publishes answers and invalidations as they come, commits
//! requests once answered, and parks on the rings and the event doorbell
//! when there is nothing to do.

mod notices;
mod pair;

use std::time::Duration;

use citadel_proto::ring::{wait_any, ReadError, WaitError, Wakeup};
use citadel_proto::{Consumer, PluginEnd, SpinPolicy};

use crate::events::{Event, EventReceiver};
use notices::Notices;
pub use pair::Job;
use pair::{Pair, PairError};

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Deliveries of one request before it is answered `Abandoned` (poison).
    pub max_attempts: u16,
    /// Most requests of one pair read and not yet committed.
    pub max_in_flight: usize,
    pub spin: SpinPolicy,
}

/// Why serving stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Pair(#[from] PairError),
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error("reading events: {0}")]
    Events(std::io::Error),
    #[error("the server process (parent {0}) went away")]
    ServerGone(u32),
}

/// How often an idle plugin checks that the server (its parent) still lives.
const PARENT_CHECK: Duration = Duration::from_secs(1);
/// How often to retry while a reply ring is full (the server drains it
/// without ringing us).
const FULL_RETRY: Duration = Duration::from_millis(1);

/// Serves until an `Event::Stop`, then stops reading, finishes the loads in
/// flight, publishes and commits them, and returns `Ok`.
pub fn serve(
    ends: Vec<PluginEnd>,
    options: Options,
    events: &EventReceiver,
    mut dispatch: impl FnMut(Job),
) -> Result<(), ServeError> {
    let mut pairs: Vec<Pair> = ends
        .into_iter()
        .enumerate()
        .map(|(i, end)| Pair::new(i, end))
        .collect();
    let mut notices = Notices::default();
    let parent = std::os::unix::process::parent_id();
    let mut stopping = false;
    loop {
        let mut worked = false;
        for event in events.drain().map_err(ServeError::Events)? {
            worked = true;
            match event {
                Event::Answered { pair, seq, answer } => pairs[pair].answer(seq, answer),
                Event::Invalidate(key) => notices.key(key),
                Event::Resync => notices.resync(),
                Event::Stop if !stopping => {
                    stopping = true;
                    let loads: usize = pairs.iter().map(Pair::in_flight).sum();
                    tracing::info!("stopping: finishing {loads} requests in flight");
                }
                Event::Stop => {}
            }
        }
        notices.send(&mut pairs);
        if !stopping {
            for pair in &mut pairs {
                worked |= pair.read(options.max_attempts, options.max_in_flight, &mut dispatch)?;
            }
        }
        for pair in &mut pairs {
            pair.flush()?;
        }
        if stopping && pairs.iter().all(Pair::is_idle) {
            return Ok(());
        }
        if worked {
            continue;
        }
        // Rings at their in-flight limit (or all, while stopping) are not
        // waited on: their unread requests would wake us at once.
        let rings: Vec<&Consumer> = pairs
            .iter()
            .filter(|p| !stopping && p.in_flight() < options.max_in_flight)
            .map(Pair::requests)
            .collect();
        let timeout = if pairs.iter().any(Pair::is_blocked) {
            FULL_RETRY
        } else {
            PARENT_CHECK
        };
        let woke = wait_any(&rings, &[events.fd()], options.spin, Some(timeout))?;
        if woke == Wakeup::TimedOut && std::os::unix::process::parent_id() != parent {
            return Err(ServeError::ServerGone(parent));
        }
    }
}
