//! One operation to send, borrowing its keys and values, and its encoding
//! into a request frame.

use std::time::Duration;

use citadel_proto::rpc::{OpBody, RequestWriter};

use crate::error::{Error, Result};
use crate::options::{duration_ms, CallOptions, Hello, SetOptions};

/// One operation, for [`Client::send`](crate::Client::send) (pipelining)
/// and batches; the typed methods of the clients build these for you.
///
/// ```
/// use citadel_client::{Command, SetOptions};
///
/// let batch = [
///     Command::set(b"user:1", b"ada", SetOptions::new()),
///     Command::get(b"user:1"),
///     Command::incr(b"visits", 1),
/// ];
/// assert!(!batch[2].is_idempotent());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Get {
        key: &'a [u8],
    },
    Set {
        key: &'a [u8],
        value: &'a [u8],
        options: SetOptions,
    },
    Delete(Vec<&'a [u8]>),
    Exists(Vec<&'a [u8]>),
    /// A TTL of zero removes the key's TTL (PERSIST).
    Expire {
        key: &'a [u8],
        ttl: Duration,
    },
    Ttl {
        key: &'a [u8],
    },
    Incr {
        key: &'a [u8],
        by: i64,
    },
    MGet(Vec<&'a [u8]>),
    MSet(Vec<(&'a [u8], &'a [u8])>),
    Scan {
        cursor: u64,
        pattern: Option<&'a str>,
        count: u32,
    },
    /// A plugin (`options` empty) or a pipeline (its options text).
    Call {
        name: &'a str,
        payload: &'a [u8],
        options: &'a str,
    },
    Stats {
        section: Option<&'a str>,
    },
    Hello(&'a Hello),
}

impl<'a> Command<'a> {
    pub fn get(key: &'a [u8]) -> Self {
        Self::Get { key }
    }

    pub fn set(key: &'a [u8], value: &'a [u8], options: SetOptions) -> Self {
        Self::Set {
            key,
            value,
            options,
        }
    }

    pub fn incr(key: &'a [u8], by: i64) -> Self {
        Self::Incr { key, by }
    }

    /// True when running it twice leaves the same state as running it once
    /// (as far as this client is concerned): such a call is retried once
    /// on another connection after a transport failure.
    pub fn is_idempotent(&self) -> bool {
        matches!(
            self,
            Self::Get { .. }
                | Self::Exists(_)
                | Self::Ttl { .. }
                | Self::MGet(_)
                | Self::Scan { .. }
                | Self::Stats { .. }
                | Self::Set { .. }
                | Self::Delete(_)
                | Self::MSet(_)
        )
    }

    /// The first key it names (its slot is the command's, in a cluster:
    /// the server refuses keys in several slots); None for keyless ones.
    pub fn first_key(&self) -> Option<&'a [u8]> {
        match self {
            Self::Get { key }
            | Self::Set { key, .. }
            | Self::Expire { key, .. }
            | Self::Ttl { key }
            | Self::Incr { key, .. } => Some(key),
            Self::Delete(keys) | Self::Exists(keys) | Self::MGet(keys) => keys.first().copied(),
            Self::MSet(pairs) => pairs.first().map(|(k, _)| *k),
            Self::Scan { .. } | Self::Call { .. } | Self::Stats { .. } | Self::Hello(_) => None,
        }
    }

    fn encode(&self, w: &mut RequestWriter) -> OpBody {
        match self {
            Self::Get { key } => w.get(key),
            Self::Set {
                key,
                value,
                options,
            } => w.set(key, value, options.ttl_ms(), options.condition),
            Self::Delete(keys) => w.delete(keys.iter().copied()),
            Self::Exists(keys) => w.exists(keys.iter().copied()),
            Self::Expire { key, ttl } => w.expire(key, duration_ms(*ttl)),
            Self::Ttl { key } => w.ttl(key),
            Self::Incr { key, by } => w.incr(key, *by),
            Self::MGet(keys) => w.mget(keys.iter().copied()),
            Self::MSet(pairs) => w.mset(pairs.iter().copied()),
            Self::Scan {
                cursor,
                pattern,
                count,
            } => w.scan(*cursor, *pattern, *count),
            Self::Call {
                name,
                payload,
                options,
            } => w.call(name, payload, options),
            Self::Stats { section } => w.stats(*section),
            Self::Hello(h) => w.hello(
                citadel_proto::rpc::VERSION.into(),
                h.client_name.as_deref(),
                h.password.as_deref(),
                h.features.iter().map(String::as_str),
            ),
        }
    }
}

/// What one request frame carries: one command, or a batch of them.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Request<'r, 'a> {
    One(&'r Command<'a>),
    Batch(&'r [Command<'a>]),
}

impl Request<'_, '_> {
    pub(crate) fn is_idempotent(&self) -> bool {
        match self {
            Self::One(c) => c.is_idempotent(),
            Self::Batch(cs) => cs.iter().all(Command::is_idempotent),
        }
    }

    /// The first key of its (first keyed) command.
    pub(crate) fn first_key(&self) -> Option<&[u8]> {
        match self {
            Self::One(c) => c.first_key(),
            Self::Batch(cs) => cs.iter().find_map(Command::first_key),
        }
    }

    /// Appends the request's frame (id `id`) to `out`.
    pub(crate) fn encode(
        &self,
        w: &mut RequestWriter,
        out: &mut Vec<u8>,
        id: u64,
        options: &CallOptions,
    ) -> Result<()> {
        let op = match self {
            Self::One(c) => c.encode(w),
            Self::Batch(cs) => {
                for c in cs.iter() {
                    if matches!(c, Command::Call { .. } | Command::Hello(_)) {
                        // The server would refuse them one by one; say so
                        // before sending anything.
                        return Err(Error::InvalidRequest("a Call or Hello inside a batch"));
                    }
                    let op = c.encode(w);
                    w.push_op(op);
                }
                w.batch()
            }
        };
        w.finish(out, id, options.deadline_unix_ms(), options.priority, op);
        Ok(())
    }
}
