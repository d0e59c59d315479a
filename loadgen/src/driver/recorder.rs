//! Where a worker's outcomes go: warm-up/prefill vs measured stats, plus the one-second
//! window behind the live progress line.

use std::sync::mpsc::Sender;

use hdrhistogram::Histogram;

use crate::protocol::OpKind;
use crate::stats::{new_histogram, ErrorKind, Stats};

use super::cluster::Redirect;
use super::inflight::InFlight;

/// A good reply's latency from its request's intended send time (open loop: its
/// timetable slot; what the client of a real service sees) and from its actual send
/// (without the load generator's own lag behind the timetable).
#[derive(Debug, Clone, Copy)]
pub struct Latencies {
    pub from_intended_ns: u64,
    pub from_send_ns: u64,
}

/// One worker's last progress window.
#[derive(Debug)]
pub struct Progress {
    pub replies: u64,
    pub errors: u64,
    /// Latency of the window's good replies, in nanoseconds.
    pub latency: Histogram<u64>,
    pub measuring: bool,
}

#[derive(Debug)]
pub struct Recorder {
    /// `[unmeasured (warm-up or prefill), measured]`.
    pub phases: [Stats; 2],
    window: Progress,
    /// Time of the last measured outcome, in run-clock nanoseconds.
    pub last_measured_ns: u64,
    /// Cluster mode: redirects one request may follow (0: a redirect is an error).
    pub max_redirects: u8,
    /// Requests answered by a redirect, to send again (the worker takes them).
    pub redirected: Vec<(InFlight, Redirect)>,
    /// Good replies recorded, measured or not (the worker counts a read's).
    pub good_replies: u64,
    /// Whether the last good reply was measured.
    last_measured: bool,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            phases: [Stats::default(), Stats::default()],
            window: Progress {
                replies: 0,
                errors: 0,
                latency: new_histogram(),
                measuring: false,
            },
            last_measured_ns: 0,
            max_redirects: 0,
            redirected: Vec::new(),
            good_replies: 0,
            last_measured: false,
        }
    }

    /// A good reply, with the keys it found and missed; `latency`: from the
    /// intended send time and from the actual one.
    #[inline]
    pub fn ok(
        &mut self,
        measured: bool,
        op: OpKind,
        now_ns: u64,
        latency: Latencies,
        (hits, misses): (u32, u32),
    ) {
        let latency_ns = latency.from_intended_ns;
        let stats = &mut self.phases[measured as usize];
        stats.record_ok(op, latency_ns, hits, misses);
        stats
            .from_send
            .saturating_record(latency.from_send_ns.max(1));
        self.good_replies += 1;
        self.last_measured = measured;
        self.window.replies += 1;
        self.window.latency.saturating_record(latency_ns.max(1));
        if measured {
            self.last_measured_ns = now_ns;
        }
    }

    /// A request handed to the send path `lag_ns` after its intended time.
    #[inline]
    pub fn sent(&mut self, measured: bool, lag_ns: u64) {
        (self.phases[measured as usize].send_lag).saturating_record(lag_ns.max(1));
    }

    /// `replies` good replies of one read sat unread up to `lag_ns` (open loop; counted
    /// with the phase of the last of them).
    pub fn reply_lag(&mut self, lag_ns: u64, replies: u64) {
        if replies > 0 {
            let stats = &mut self.phases[self.last_measured as usize];
            stats.reply_lag.saturating_record_n(lag_ns.max(1), replies);
        }
    }

    pub fn error(
        &mut self,
        measured: bool,
        op: Option<OpKind>,
        kind: ErrorKind,
        now_ns: u64,
        message: impl FnOnce() -> String,
    ) {
        self.phases[measured as usize].record_error(op, kind, message);
        self.window.errors += 1;
        if measured && op.is_some() {
            self.last_measured_ns = now_ns;
        }
    }

    /// A request the server shed (`-OVERLOAD ...`): counted apart from errors.
    pub fn shed(
        &mut self,
        measured: bool,
        op: OpKind,
        now_ns: u64,
        message: impl FnOnce() -> String,
    ) {
        self.phases[measured as usize].record_shed(op, message);
        self.window.replies += 1;
        if measured {
            self.last_measured_ns = now_ns;
        }
    }

    /// `f` was answered by a redirect it may follow: counted, and queued
    /// to be sent again.
    pub fn redirect(&mut self, mut f: InFlight, to: Redirect) {
        let stats = &mut self.phases[f.measured as usize];
        if to.ask {
            stats.ask += 1;
        } else {
            stats.moved += 1;
        }
        f.redirects += 1;
        self.redirected.push((f, to));
    }

    /// Sends the current window (if anyone listens) and starts a new one.
    pub fn flush_window(&mut self, to: Option<&Sender<Progress>>, measuring: bool) {
        let Some(to) = to else {
            return;
        };
        let window = Progress {
            replies: std::mem::take(&mut self.window.replies),
            errors: std::mem::take(&mut self.window.errors),
            latency: self.window.latency.clone(),
            measuring,
        };
        self.window.latency.reset();
        // The receiver is gone only when the run is being torn down.
        let _ = to.send(window);
    }

    /// Hands the measured and unmeasured stats over, leaving empty ones.
    pub fn take(&mut self) -> [Stats; 2] {
        std::mem::take(&mut self.phases)
    }
}
