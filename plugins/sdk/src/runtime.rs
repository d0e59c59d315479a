//! The serve loop: read requests in place, count the delivery, call the
//! handler, publish replies, commit requests; park when idle; stop on SIGTERM.

use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use citadel_proto::envelope::{unix_ms, STATUS_DEADLINE, STATUS_HANDLER_FAILED, STATUS_POISON};
use citadel_proto::handshake::{AttachError, HandshakeError};
use citadel_proto::ring::{wait_any, Consumer, NotifyError, ReadError, ReserveError, WaitError};
use citadel_proto::{Envelope, Handshake, Kind, PluginEnd, Producer, SpinPolicy, Wakeup};

use crate::message::{Replies, Reply, Request};
use crate::stop::StopSignal;

/// How the serve loop behaves.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Deliveries of one request before it is skipped as poison (its handler
    /// is not called again; the server receives an `Abandoned` record).
    pub max_attempts: u16,
    /// Most requests handed to a batch handler at once.
    pub max_batch: usize,
    /// Spinning before the plugin parks on its eventfd when idle.
    pub spin: SpinPolicy,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_attempts: citadel_proto::handshake::DEFAULT_MAX_ATTEMPTS,
            max_batch: 64,
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
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Wait(#[from] WaitError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error("the server process (parent {0}) went away")]
    ServerGone(u32),
}

/// How often an idle plugin checks that the server (its parent) still lives.
const PARENT_CHECK: Duration = Duration::from_secs(1);

/// Attaches to the rings named by the environment (see
/// `citadel_proto::handshake`) and serves until SIGTERM/SIGINT.
pub fn serve_env<F>(mut options: Options, handler: F) -> Result<(), ServeError>
where
    F: FnMut(&[Request<'_>], &mut Replies),
{
    let handshake = Handshake::from_env()?;
    options.max_attempts = handshake.max_attempts;
    let ends = handshake.attach()?;
    serve_ends(ends, options, handler)
}

/// Serves the given ring pairs until SIGTERM/SIGINT, then finishes the batch
/// in hand, commits it and returns `Ok`.
pub fn serve_ends<F>(
    mut ends: Vec<PluginEnd>,
    options: Options,
    mut handler: F,
) -> Result<(), ServeError>
where
    F: FnMut(&[Request<'_>], &mut Replies),
{
    let stop = StopSignal::install().map_err(ServeError::Signals)?;
    let mut replies = Replies::default();
    let max_batch = options.max_batch.max(1);
    let parent = std::os::unix::process::parent_id();
    loop {
        let mut worked = false;
        for (pair, end) in ends.iter_mut().enumerate() {
            worked |= serve_pair(end, pair, &options, max_batch, &mut handler, &mut replies)?;
        }
        if stop.requested() {
            return Ok(());
        }
        if !worked {
            let consumers: Vec<&Consumer> = ends.iter().map(|e| &e.requests).collect();
            match wait_any(&consumers, &[stop.fd()], options.spin, Some(PARENT_CHECK))? {
                Wakeup::Extra(_) => return Ok(()),
                Wakeup::TimedOut if std::os::unix::process::parent_id() != parent => {
                    return Err(ServeError::ServerGone(parent));
                }
                _ => {}
            }
        }
    }
}

/// Handles one batch from one pair; returns whether there was anything.
fn serve_pair<F>(
    end: &mut PluginEnd,
    pair: usize,
    options: &Options,
    max_batch: usize,
    handler: &mut F,
    replies: &mut Replies,
) -> Result<bool, ServeError>
where
    F: FnMut(&[Request<'_>], &mut Replies),
{
    let PluginEnd {
        requests,
        replies: out,
    } = end;
    let mut batch: Vec<Request<'_>> = Vec::with_capacity(max_batch);
    let mut read_any = false;
    let mut now_ms = None;
    while batch.len() < max_batch {
        let Some(record) = requests.read()? else {
            break;
        };
        read_any = true;
        let env = record.envelope();
        // Counted in ring memory before the handler runs, so a crash in the
        // handler still counts as an attempt.
        let attempt = record.mark_delivery();
        if attempt > options.max_attempts {
            if env.kind == Kind::Request {
                let reply = Reply {
                    kind: Kind::Abandoned,
                    status: STATUS_POISON,
                    ..Reply::ok(Vec::new())
                };
                send_reply(out, &env, attempt, reply)?;
            }
            continue;
        }
        if env.deadline_ms != 0 && env.expired_at(*now_ms.get_or_insert_with(unix_ms)) {
            if env.kind == Kind::Request {
                send_reply(
                    out,
                    &env,
                    attempt,
                    Reply::error(STATUS_DEADLINE, "deadline passed before delivery"),
                )?;
            }
            continue;
        }
        batch.push(Request {
            id: env.id,
            kind: env.kind,
            format: env.format,
            deadline_ms: env.deadline_ms,
            attempt,
            pair,
            payload: record.payload(),
        });
    }
    if !read_any {
        return Ok(false);
    }
    if !batch.is_empty() {
        replies.clear();
        if catch_unwind(AssertUnwindSafe(|| handler(&batch, replies))).is_err() {
            replies.clear();
            for _ in &batch {
                replies.push(Reply::error(STATUS_HANDLER_FAILED, "handler panicked"));
            }
        }
        for (i, req) in batch.iter().enumerate() {
            let reply = replies.take(i);
            if req.kind == Kind::Request {
                let env = Envelope {
                    id: req.id,
                    deadline_ms: req.deadline_ms,
                    ..Envelope::request(req.id)
                };
                send_reply(out, &env, req.attempt, reply)?;
            }
        }
    }
    drop(batch);
    out.notify()?;
    // Replies are published before the requests are committed: a crash in
    // between re-delivers (at-least-once), never loses.
    requests.commit_read();
    Ok(true)
}

/// Publishes `reply` to request `req`, waiting (spin, yield, sleep) while the
/// reply ring is full: the server drains it.
fn send_reply(
    out: &mut Producer,
    req: &Envelope,
    attempt: u16,
    mut reply: Reply,
) -> Result<(), ServeError> {
    let mut tries = 0u32;
    loop {
        match out.reserve(reply.payload.len()) {
            Ok(mut grant) => {
                grant.payload_mut().copy_from_slice(&reply.payload);
                grant.commit_quiet(&Envelope {
                    id: req.id,
                    kind: reply.kind,
                    format: reply.format,
                    deadline_ms: req.deadline_ms,
                    attempt,
                    status: reply.status,
                });
                return Ok(());
            }
            Err(ReserveError::TooLarge { len, max }) => {
                reply = Reply::error(
                    STATUS_HANDLER_FAILED,
                    format!("reply of {len} bytes exceeds the ring's {max}"),
                );
            }
            Err(ReserveError::Full { .. }) => {
                out.notify()?;
                tries += 1;
                match tries {
                    0..=100 => std::hint::spin_loop(),
                    101..=200 => std::thread::yield_now(),
                    _ => std::thread::sleep(Duration::from_micros(50)),
                }
            }
        }
    }
}
