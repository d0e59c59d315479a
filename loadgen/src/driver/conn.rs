//! One connection's state: socket, receive/send buffers, requests in flight, its request
//! stream and (open loop) its timetable. All buffers are allocated up front and reused.

use crate::protocol::{Answer, OpKind, Outcome, Protocol, ProtocolError, Request, Target};
use crate::schedule::Schedule;
use crate::stats::{ErrorKind, SHED_PREFIX};
use crate::workload::keys::KeyNames;
use crate::workload::values::{ValuePool, ValueRef};
use crate::workload::{Generator, Pick};

use super::cluster::parse_redirect;
use super::inflight::{InFlight, InFlightTable};
use super::recorder::{Latencies, Recorder};
use super::transport::{Endpoint, Stream};

/// Initial receive buffer; grows (rarely) when one reply does not fit.
const RECV_BUF: usize = 64 * 1024;
/// Compact the receive buffer when less than this is free at its end.
const RECV_MIN_FREE: usize = 16 * 1024;
/// What a redirected request is preceded by after `-ASK`.
const ASKING: &[u8] = b"*1\r\n$6\r\nASKING\r\n";

/// A request's key names, formatted once for routing and encoding.
#[derive(Debug, Default)]
pub struct KeyBuf {
    pub key: Vec<u8>,
    pub ends: Vec<usize>,
}

impl KeyBuf {
    /// The first (for MGET: every key shares its slot) key.
    pub fn first(&self) -> &[u8] {
        &self.key[..self.ends.first().copied().unwrap_or(self.key.len())]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Up,
    /// Failed; waiting for the kernel to finish the operations still using its buffers.
    Closing,
    /// Closed; reconnect at `retry_at` (run-clock ns).
    Down {
        retry_at: u64,
        attempts: u32,
    },
    /// Given up on.
    Gone,
}

#[derive(Debug)]
pub struct Conn {
    pub global: u64,
    /// Generates requests (every connection, except the sockets past the
    /// first of a cluster connection, which only carry what it routes).
    pub lead: bool,
    pub server: Endpoint,
    pub sock: Option<Stream>,
    pub state: State,
    pub rbuf: Vec<u8>,
    pub rstart: usize,
    pub rend: usize,
    /// Bytes handed to the kernel (`wsent` of them already accepted).
    pub wbuf: Vec<u8>,
    pub wsent: usize,
    /// Encoded requests waiting for the current send to finish.
    pub pending: Vec<u8>,
    pub send_busy: bool,
    pub recv_busy: bool,
    pub inflight: InFlightTable,
    pub gen: Generator,
    /// Measured requests this connection may still send (`--requests` mode).
    pub budget: Option<u64>,
    /// No more requests will be generated in this phase.
    pub exhausted: bool,
    pub sched: Option<Schedule>,
}

impl Conn {
    pub fn new(
        global: u64,
        node: usize,
        server: Endpoint,
        sock: Stream,
        gen: Generator,
        pipeline: usize,
        max_request: usize,
    ) -> Conn {
        Conn {
            global,
            // Cluster mode: `node` is the slot map's node this socket goes to;
            // the load connection's socket to node 0 leads.
            lead: node == 0,
            server,
            sock: Some(sock),
            state: State::Up,
            rbuf: vec![0; RECV_BUF.max(max_request * 2)],
            rstart: 0,
            rend: 0,
            wbuf: Vec::with_capacity(pipeline * max_request),
            wsent: 0,
            pending: Vec::with_capacity(pipeline * max_request),
            send_busy: false,
            recv_busy: false,
            inflight: InFlightTable::with_capacity(pipeline),
            gen,
            budget: None,
            exhausted: false,
            sched: None,
        }
    }

    /// Starts a new phase with this request stream.
    pub fn begin_phase(&mut self, gen: Generator, budget: Option<u64>, sched: Option<Schedule>) {
        self.gen = gen;
        self.budget = budget;
        self.sched = sched;
        self.exhausted = !self.lead || matches!(self.state, State::Gone);
    }

    /// The next request of this connection's stream (its key names in
    /// `keys`), or `None` when the stream or budget is exhausted.
    pub fn next_request(
        &mut self,
        names: &KeyNames,
        values: &ValuePool,
        keys: &mut KeyBuf,
        start_ns: u64,
        measured: bool,
    ) -> Option<InFlight> {
        let pick = self.take_next(measured)?;
        names.format(pick.op, pick.key, &mut keys.key, &mut keys.ends);
        let value = if pick.op.carries_value() {
            values.pick(self.gen.rng())
        } else {
            ValueRef::default()
        };
        let mut f = InFlight::new(pick.op, pick.key, value, start_ns, measured);
        f.element = pick.element;
        Some(f)
    }

    /// Encodes `f` (its key names in `keys`) into `pending` and tracks it;
    /// after `-ASK`, preceded by ASKING (RESP: cluster mode is RESP only).
    pub fn send<P: Protocol>(
        &mut self,
        proto: &mut P,
        f: InFlight,
        keys: &KeyBuf,
        values: &ValuePool,
        asking: bool,
    ) {
        if asking {
            self.pending.extend_from_slice(ASKING);
            let mut ask = InFlight::new(OpKind::Set, f.key, ValueRef::default(), f.start_ns, false);
            ask.asking = true;
            self.inflight.push(ask);
        }
        let req = Request {
            op: f.op,
            key: &keys.key,
            key_ends: &keys.ends,
            value: values.get(f.value),
            element: f.element,
        };
        let id = self.inflight.push(f);
        proto.encode(id, &req, &mut self.pending);
    }

    /// The next pick charged to the budget, or `None` (and `exhausted`) when done.
    pub fn take_next(&mut self, measured: bool) -> Option<Pick> {
        if measured {
            if let Some(b) = &mut self.budget {
                if *b == 0 {
                    self.exhausted = true;
                    return None;
                }
                *b -= 1;
            }
        }
        let pick = self.gen.next_pick();
        self.exhausted |= pick.is_none();
        pick
    }

    /// Parses every complete reply in the receive buffer, matching each answer to its
    /// request (the oldest, or by id).
    pub fn parse_replies<P: Protocol>(
        &mut self,
        proto: &P,
        now: u64,
        rec: &mut Recorder,
    ) -> Result<(), ProtocolError> {
        let buf = &self.rbuf[self.rstart..self.rend];
        self.rstart += answer_replies(proto, &mut self.inflight, buf, now, rec)?;
        self.make_recv_room();
        Ok(())
    }

    /// Ensures free space at the end of the receive buffer (compacting, or growing when a
    /// single reply is larger than the buffer).
    fn make_recv_room(&mut self) {
        if self.rstart == self.rend {
            self.rstart = 0;
            self.rend = 0;
        } else if self.rbuf.len() - self.rend < RECV_MIN_FREE {
            self.rbuf.copy_within(self.rstart..self.rend, 0);
            self.rend -= self.rstart;
            self.rstart = 0;
            if self.rbuf.len() - self.rend < RECV_MIN_FREE {
                let len = self.rbuf.len() * 2;
                self.rbuf.resize(len, 0);
            }
        }
    }

    /// Fails every request in flight with `kind`, shuts the socket down (which completes the
    /// kernel operations still using its buffers) and moves to `Closing`.
    pub fn fail(&mut self, kind: ErrorKind, why: &str, now: u64, rec: &mut Recorder) {
        let server = &self.server;
        for f in self.inflight.drain().filter(|f| !f.asking) {
            rec.error(f.measured, Some(f.op), kind, now, || {
                format!("{server}: {why}")
            });
        }
        self.pending.clear();
        self.wbuf.clear();
        self.wsent = 0;
        self.rstart = 0;
        self.rend = 0;
        if let Some(s) = &self.sock {
            s.shutdown();
        }
        self.state = State::Closing;
    }

    /// Whether the kernel still holds one of this connection's buffers.
    pub fn busy(&self) -> bool {
        self.send_busy || self.recv_busy
    }

    /// Back in service on a new socket.
    pub fn reconnected(&mut self, sock: Stream) {
        self.sock = Some(sock);
        self.state = State::Up;
    }
}

/// Parses the complete reply units (replies, frames) at the front of `buf`, recording the
/// request each answers; returns the bytes they occupy. Socket receive buffers and shm
/// ring records both go through here, so both are accounted alike.
pub fn answer_replies<P: Protocol>(
    proto: &P,
    inflight: &mut InFlightTable,
    buf: &[u8],
    now: u64,
    rec: &mut Recorder,
) -> Result<usize, ProtocolError> {
    let stray = ProtocolError {
        protocol: proto.name(),
        what: "reply without a request",
    };
    let mut used = 0;
    while used < buf.len() {
        let oldest = inflight.oldest().ok_or(stray.clone())?.op;
        let unit = &buf[used..];
        let mut unmatched = false;
        let parsed = proto.parse(oldest, unit, &mut |a: Answer| {
            let f = match a.to {
                Target::Oldest => inflight.take_oldest(),
                Target::Id(id) => inflight.take(id),
            };
            match f {
                Some(f) => record(rec, f, a, unit, now, proto.name()),
                None => unmatched = true,
            }
        })?;
        if unmatched {
            return Err(stray);
        }
        let Some(len) = parsed else {
            break;
        };
        used += len;
    }
    Ok(used)
}

/// Records one answered request: latency from its start, and its outcome (an answer for
/// another operation than the request's is unexpected).
fn record(rec: &mut Recorder, f: InFlight, a: Answer, buf: &[u8], now: u64, proto: &str) {
    if f.asking {
        // The request after it answers for both.
        return;
    }
    let latency = Latencies {
        from_intended_ns: now.saturating_sub(f.start_ns),
        from_send_ns: now.saturating_sub(f.sent_ns),
    };
    let outcome = match a.op {
        Some(op) if op != f.op => Outcome::Unexpected,
        _ => a.outcome,
    };
    match outcome {
        Outcome::Hit => rec.ok(f.measured, f.op, now, latency, (1, 0)),
        Outcome::Miss => rec.ok(f.measured, f.op, now, latency, (0, 1)),
        Outcome::Ok => rec.ok(f.measured, f.op, now, latency, (0, 0)),
        Outcome::Keys { hits, misses } => rec.ok(f.measured, f.op, now, latency, (hits, misses)),
        Outcome::ServerError(range) if buf[range.clone()].starts_with(SHED_PREFIX) => {
            rec.shed(f.measured, f.op, now, || {
                String::from_utf8_lossy(&buf[range]).into_owned()
            })
        }
        Outcome::ServerError(range) => {
            let redirect = (f.redirects < rec.max_redirects)
                .then(|| parse_redirect(&buf[range.clone()]))
                .flatten();
            if let Some(to) = redirect {
                rec.redirect(f, to);
                return;
            }
            rec.error(f.measured, Some(f.op), ErrorKind::ServerError, now, || {
                String::from_utf8_lossy(&buf[range]).into_owned()
            })
        }
        Outcome::Unexpected => rec.error(
            f.measured,
            Some(f.op),
            ErrorKind::UnexpectedReply,
            now,
            || {
                let end = buf.len().min(64);
                format!(
                    "{proto} reply to {}: {:?}",
                    f.op.name(),
                    String::from_utf8_lossy(&buf[..end])
                )
            },
        ),
    }
}
