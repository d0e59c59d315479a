//! Per-thread counters and HdrHistograms, merged at the end of a run.

use hdrhistogram::Histogram;

use crate::protocol::OpKind;

/// Highest latency a histogram tracks (larger values are clamped): 60 s, in nanoseconds.
const MAX_LATENCY_NS: u64 = 60_000_000_000;
/// How many distinct error messages are kept as examples.
const MAX_SAMPLES: usize = 8;

/// The prefix of a shed reply (`-OVERLOAD <layer> <reason>`): the server refused the
/// request at once to protect itself. Counted apart from errors: it is the overload
/// protection working, not a failure of the server or of the client.
pub const SHED_PREFIX: &[u8] = b"OVERLOAD ";

/// Why a request failed. Every request that does not get a good reply ends in exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server replied with an error (e.g. `-ERR`, `SERVER_ERROR`).
    ServerError,
    /// A well-formed reply the operation should not get (e.g. `NOT_STORED`).
    UnexpectedReply,
    /// The reply could not be parsed; the connection was closed.
    ProtocolError,
    /// The connection closed or failed with this request in flight or unsent.
    ConnectionLost,
    /// A (re)connect attempt failed.
    ConnectFailed,
    /// No reply before the drain deadline at the end of the run.
    Timeout,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 6] = [
        ErrorKind::ServerError,
        ErrorKind::UnexpectedReply,
        ErrorKind::ProtocolError,
        ErrorKind::ConnectionLost,
        ErrorKind::ConnectFailed,
        ErrorKind::Timeout,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ServerError => "server_error",
            ErrorKind::UnexpectedReply => "unexpected_reply",
            ErrorKind::ProtocolError => "protocol_error",
            ErrorKind::ConnectionLost => "connection_lost",
            ErrorKind::ConnectFailed => "connect_failed",
            ErrorKind::Timeout => "timeout",
        }
    }
}

/// Latency and outcomes for one operation type.
#[derive(Debug, Clone)]
pub struct OpStats {
    /// Latency of good replies, in nanoseconds.
    pub latency: Histogram<u64>,
    /// Good replies (hits + misses for GET).
    pub ok: u64,
    /// Keys found and not found (GET: one per reply; MGET: each of its keys), elements
    /// popped or not (LPOP, RPOP, SPOP, ZPOPMIN: one per reply), elements an LRANGE 0 N-1
    /// returned and the rest of N.
    pub hits: u64,
    pub misses: u64,
    /// Requests of this type that ended in an error.
    pub errors: u64,
    /// Requests of this type the server shed (`-OVERLOAD ...`): neither good nor errors.
    pub shed: u64,
}

impl OpStats {
    fn new() -> OpStats {
        OpStats {
            latency: new_histogram(),
            ok: 0,
            hits: 0,
            misses: 0,
            errors: 0,
            shed: 0,
        }
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.errors + self.shed
    }
}

/// Everything one worker measured.
#[derive(Debug, Clone)]
pub struct Stats {
    pub ops: [OpStats; OpKind::ALL.len()],
    pub errors: [u64; ErrorKind::ALL.len()],
    /// Cluster redirects followed: `-MOVED` and `-ASK` replies.
    pub moved: u64,
    pub ask: u64,
    /// First distinct error messages, for the report.
    pub error_samples: Vec<String>,
    /// The first shed reply's text, for the report.
    pub shed_sample: Option<String>,
    /// Good replies' latency from their actual send (all operations); the per-op
    /// histograms count from the intended send time.
    pub from_send: Histogram<u64>,
    /// How late each request was handed to the send path after its intended time
    /// (open loop: the load generator's own queueing; zero in closed loop).
    pub send_lag: Histogram<u64>,
    /// Open loop, per good reply: how long it may have sat in its socket before the
    /// client read it (a bound: the client's loop since its previous read, or zero when
    /// the client was idle and the reply woke it).
    pub reply_lag: Histogram<u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            ops: std::array::from_fn(|_| OpStats::new()),
            errors: [0; ErrorKind::ALL.len()],
            moved: 0,
            ask: 0,
            error_samples: Vec::new(),
            shed_sample: None,
            from_send: new_histogram(),
            send_lag: new_histogram(),
            reply_lag: new_histogram(),
        }
    }
}

impl Stats {
    #[inline]
    pub fn op(&mut self, op: OpKind) -> &mut OpStats {
        &mut self.ops[op.index()]
    }

    /// A good reply to `op` after `latency_ns`, with the keys it found and missed.
    #[inline]
    pub fn record_ok(&mut self, op: OpKind, latency_ns: u64, hits: u32, misses: u32) {
        let s = self.op(op);
        s.latency.saturating_record(latency_ns.max(1));
        s.ok += 1;
        s.hits += u64::from(hits);
        s.misses += u64::from(misses);
    }

    /// A failed request (`op` is `None` for failures not tied to a request, like connects).
    pub fn record_error(
        &mut self,
        op: Option<OpKind>,
        kind: ErrorKind,
        message: impl FnOnce() -> String,
    ) {
        if let Some(op) = op {
            self.op(op).errors += 1;
        }
        self.errors[kind as usize] += 1;
        if self.error_samples.len() < MAX_SAMPLES {
            let msg = format!("{}: {}", kind.name(), message());
            if !self.error_samples.contains(&msg) {
                self.error_samples.push(msg);
            }
        }
    }

    /// A request the server shed (`-OVERLOAD ...`, text `message`).
    pub fn record_shed(&mut self, op: OpKind, message: impl FnOnce() -> String) {
        self.op(op).shed += 1;
        if self.shed_sample.is_none() {
            self.shed_sample = Some(message());
        }
    }

    /// Requests the server shed.
    pub fn total_shed(&self) -> u64 {
        self.ops.iter().map(|o| o.shed).sum()
    }

    /// Requests that got an outcome (good, shed or error).
    pub fn requests(&self) -> u64 {
        self.ops.iter().map(OpStats::requests).sum()
    }

    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }

    pub fn merge(&mut self, other: &Stats) {
        for (a, b) in self.ops.iter_mut().zip(&other.ops) {
            a.latency.add(&b.latency).expect("histograms share bounds");
            a.ok += b.ok;
            a.hits += b.hits;
            a.misses += b.misses;
            a.errors += b.errors;
            a.shed += b.shed;
        }
        if self.shed_sample.is_none() {
            self.shed_sample.clone_from(&other.shed_sample);
        }
        (self.from_send.add(&other.from_send)).expect("histograms share bounds");
        (self.send_lag.add(&other.send_lag)).expect("histograms share bounds");
        (self.reply_lag.add(&other.reply_lag)).expect("histograms share bounds");
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.moved += other.moved;
        self.ask += other.ask;
        for s in &other.error_samples {
            if self.error_samples.len() < MAX_SAMPLES && !self.error_samples.contains(s) {
                self.error_samples.push(s.clone());
            }
        }
    }

    /// All operations' latencies in one histogram.
    pub fn combined_latency(&self) -> Histogram<u64> {
        let mut h = new_histogram();
        for op in &self.ops {
            h.add(&op.latency).expect("histograms share bounds");
        }
        h
    }
}

/// A histogram covering 1 ns .. 60 s at 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).expect("valid histogram bounds")
}
