//! Options of a call, of a SET, and of a connection.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use citadel_proto::rpc::Condition;

/// Per-call options: how long the answer is worth waiting for, and how
/// important the call is.
///
/// The deadline travels to the server (as Unix milliseconds), which
/// answers `Deadline` instead of running a request whose deadline has
/// passed; the client stops waiting at the same moment with
/// [`Error::Timeout`](crate::Error::Timeout).
///
/// ```
/// use std::time::Duration;
/// use citadel_client::CallOptions;
///
/// let urgent = CallOptions::new().deadline(Duration::from_millis(50)).priority(200);
/// assert_eq!(urgent.priority, 200);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallOptions {
    /// Time allowed from the call's start; `None`: wait as long as the
    /// connection lives.
    pub deadline: Option<Duration>,
    /// Higher is more important (the server sheds low priorities first
    /// under overload); 0 = default.
    pub priority: u8,
}

impl CallOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub fn priority(mut self, priority: u8) -> Self {
        self.priority = priority;
        self
    }

    /// The request's `deadline_ms` field (0 = none) for a call starting now.
    pub(crate) fn deadline_unix_ms(&self) -> u64 {
        let Some(d) = self.deadline else { return 0 };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        // Rounded up: a sub-millisecond deadline must not read as "none".
        let ms = (now + d).as_micros().div_ceil(1000);
        u64::try_from(ms).unwrap_or(u64::MAX).max(1)
    }
}

/// SET's options: a time to live and a condition (NX / XX).
///
/// ```
/// use std::time::Duration;
/// use citadel_client::SetOptions;
///
/// let only_new_for_a_minute = SetOptions::new().ttl(Duration::from_secs(60)).nx();
/// # let _ = only_new_for_a_minute;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetOptions {
    pub ttl: Option<Duration>,
    pub condition: Condition,
}

impl Default for SetOptions {
    fn default() -> Self {
        Self {
            ttl: None,
            condition: Condition::Always,
        }
    }
}

impl SetOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Only if the key does not exist.
    pub fn nx(mut self) -> Self {
        self.condition = Condition::Nx;
        self
    }

    /// Only if the key exists.
    pub fn xx(mut self) -> Self {
        self.condition = Condition::Xx;
        self
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        self.ttl.map_or(0, duration_ms)
    }
}

/// A duration in whole milliseconds, at least 1 for a non-zero duration
/// (0 means "no TTL" on the wire).
pub(crate) fn duration_ms(d: Duration) -> u64 {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 && !d.is_zero() {
        1
    } else {
        ms
    }
}

/// The HELLO a connection opens with: needed when the server has a
/// password; otherwise optional.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hello {
    pub client_name: Option<String>,
    pub password: Option<String>,
    /// Features asked for; the server grants a subset.
    pub features: Vec<String>,
}

/// Options of a connection (also of each connection a [`Pool`] or a
/// [`Discovered`] client opens).
///
/// [`Pool`]: crate::Pool
/// [`Discovered`]: crate::Discovered
#[derive(Clone, Debug, Default)]
pub struct ClientOptions {
    /// The options of calls made without their own.
    pub call: CallOptions,
    /// Sent first on every new connection (authentication).
    pub hello: Option<Hello>,
    /// Bound on connecting (TCP); `None`: the system's.
    pub connect_timeout: Option<Duration>,
    /// Ring capacity asked for on shared-memory connections (a power of
    /// two, 64 KiB..64 MiB; 0: the server's default, 1 MiB). A request or
    /// reply must fit in one ring record, half the capacity:
    /// a larger request fails with [`Error::TooLarge`], a larger reply
    /// with the server's `TooLarge` error.
    ///
    /// [`Error::TooLarge`]: crate::Error::TooLarge
    pub shm_ring: u64,
}

impl ClientOptions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn call(mut self, call: CallOptions) -> Self {
        self.call = call;
        self
    }

    pub fn hello(mut self, hello: Hello) -> Self {
        self.hello = Some(hello);
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    pub fn shm_ring(mut self, capacity: u64) -> Self {
        self.shm_ring = capacity;
        self
    }
}
