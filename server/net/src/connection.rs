//! Per-connection state: the socket, the session, the input carried over
//! between reads (only partial requests), and double-buffered output: `out`
//! collects this turn's replies while `sending` is owned by the one send in
//! flight (the kernel reads it, so it is never touched until that send completes).
//!
//! Every call into the service for one connection runs under
//! `catch_unwind`: a panic while serving it (a bug) closes that connection
//! only; its core and every other client go on.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::{Progress, Service};

/// Capacity above which an idle buffer is given back after a large value.
const SHRINK_ABOVE: usize = 1 << 20;
const SHRINK_TO: usize = 16 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Reading and answering.
    Open,
    /// No more reading; close once the output is flushed (QUIT, EOF, shutdown).
    Draining,
    /// Socket shut down; waiting for in-flight operations before freeing.
    Closing,
}

/// What became of received bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fed {
    Ok,
    /// The session asked to close after flushing (now `Draining`).
    Close,
    /// A partial command grew past the input limit.
    Overflow,
    /// The session parked on an asynchronous operation (input is buffered).
    Parked,
    /// Serving the connection panicked (the message); close it now.
    Panicked(String),
}

pub struct Connection<S> {
    /// A TCP or Unix domain socket.
    pub stream: socket2::Socket,
    pub session: S,
    pub generation: u32,
    pub state: State,
    input: Vec<u8>,
    /// Input length required before the session can make progress again.
    need: usize,
    pub out: Vec<u8>,
    sending: Vec<u8>,
    sent: usize,
    pub recv_armed: bool,
    pub send_inflight: bool,
    /// Queued on the loop's flush list this turn.
    pub flush_queued: bool,
    /// Queued on the loop's re-arm list this turn.
    pub rearm_queued: bool,
    /// Waiting for an asynchronous operation; input is buffered, not processed.
    pub parked: bool,
    /// Started detached operations the service has not been told the
    /// connection's waiter for yet (see `Progress::detached`).
    pub detached: bool,
    /// A TCP peer's address, counted by the per-address limit until freed.
    pub peer_ip: Option<std::net::IpAddr>,
}

impl<S> Connection<S> {
    pub fn new(stream: socket2::Socket, session: S, generation: u32) -> Connection<S> {
        Connection {
            stream,
            session,
            generation,
            state: State::Open,
            input: Vec::new(),
            need: 0,
            out: Vec::new(),
            sending: Vec::new(),
            sent: 0,
            recv_armed: false,
            send_inflight: false,
            flush_queued: false,
            rearm_queued: false,
            parked: false,
            detached: false,
            peer_ip: None,
        }
    }

    /// Runs received bytes through the session. Whole commands are processed
    /// straight from `data` when nothing is carried over; only a trailing
    /// partial command is copied into the connection's input buffer.
    pub fn receive<Svc>(&mut self, svc: &mut Svc, data: &[u8], max_input: usize) -> Fed
    where
        Svc: Service<Session = S>,
    {
        if self.state != State::Open {
            return Fed::Ok;
        }
        if self.parked {
            if self.input.len() + data.len() > max_input {
                return Fed::Overflow;
            }
            self.input.extend_from_slice(data);
            return Fed::Ok;
        }
        let result = if self.input.is_empty() {
            let r = match run(svc, &mut self.session, data, &mut self.out) {
                Ok(r) => r,
                Err(what) => return Fed::Panicked(what),
            };
            let rest = &data[r.consumed..];
            if !r.close && !rest.is_empty() {
                if rest.len() > max_input {
                    return Fed::Overflow;
                }
                self.input.extend_from_slice(rest);
            }
            r
        } else {
            if self.input.len() + data.len() > max_input {
                return Fed::Overflow;
            }
            self.input.extend_from_slice(data);
            if self.input.len() < self.need {
                return Fed::Ok;
            }
            let r = match run(svc, &mut self.session, &self.input, &mut self.out) {
                Ok(r) => r,
                Err(what) => return Fed::Panicked(what),
            };
            self.input.drain(..r.consumed);
            shrink_if_idle(&mut self.input);
            r
        };
        // A partial big command (a 256 KiB SET's bulk arrives in 16 recvs):
        // room for all of it at once, so its bytes are copied in once rather
        // than moved again by every doubling of the buffer. Untouched
        // capacity costs no memory until the bytes arrive.
        if result.need > self.input.capacity() && result.need <= max_input {
            self.input.reserve(result.need - self.input.len());
        }
        self.settle(result)
    }

    fn settle(&mut self, result: Progress) -> Fed {
        self.need = result.need;
        self.detached |= result.detached;
        if result.close {
            self.state = State::Draining;
            self.input.clear();
            return Fed::Close;
        }
        if result.parked {
            self.parked = true;
            return Fed::Parked;
        }
        Fed::Ok
    }

    /// The operation the session was parked on finished: hand it the
    /// completion, then run the input buffered meanwhile (it may park again).
    pub fn resume<Svc>(&mut self, svc: &mut Svc, done: Svc::Completion) -> Fed
    where
        Svc: Service<Session = S>,
    {
        // A push (a subscriber's message) leaves a parked connection parked.
        let was_parked = self.parked;
        if !svc.is_push(&done) {
            self.parked = false;
        }
        let (session, out) = (&mut self.session, &mut self.out);
        if let Err(what) = guarded(|| svc.resume(session, done, out)) {
            return Fed::Panicked(what);
        }
        // Input waits here only while parked; otherwise it is a partial
        // request the session already saw, and waits for more bytes.
        if !was_parked || self.parked || self.state == State::Closing || self.input.is_empty() {
            return Fed::Ok;
        }
        let r = match run(svc, &mut self.session, &self.input, &mut self.out) {
            Ok(r) => r,
            Err(what) => return Fed::Panicked(what),
        };
        self.input.drain(..r.consumed);
        shrink_if_idle(&mut self.input);
        self.settle(r)
    }

    /// Bytes of replies not yet handed to the kernel.
    pub fn pending_output(&self) -> usize {
        self.out.len() + (self.sending.len() - self.sent)
    }

    /// The next span to send, if no send is in flight and there is output.
    /// Marks the send in flight; the span stays valid and unchanged until
    /// [`Connection::sent`] is called.
    pub fn next_send(&mut self) -> Option<(*const u8, u32)> {
        if self.send_inflight {
            return None;
        }
        if self.sent == self.sending.len() {
            if self.out.is_empty() {
                return None;
            }
            self.sending.clear();
            self.sent = 0;
            std::mem::swap(&mut self.out, &mut self.sending);
        }
        let rest = &self.sending[self.sent..];
        self.send_inflight = true;
        Some((rest.as_ptr(), rest.len().min(1 << 30) as u32))
    }

    /// A send completed having written `n` bytes.
    pub fn sent(&mut self, n: usize) {
        self.send_inflight = false;
        self.sent += n;
        if self.sent >= self.sending.len() {
            self.sending.clear();
            self.sent = 0;
            shrink_if_idle(&mut self.sending);
        }
    }

    /// Drops unsent output (the connection is being torn down).
    pub fn discard_output(&mut self) {
        self.out.clear();
        self.input.clear();
    }
}

/// Runs `f`, turning a panic into its message.
fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    // Unwind safety: after a panic the connection is closed and its session
    // dropped, so no half-updated session state is ever used again.
    catch_unwind(AssertUnwindSafe(f)).map_err(|payload| {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with a non-text payload".to_string())
    })
}

/// Calls the session until it stops making progress on `data`; Err with the
/// panic message if serving panicked.
fn run<Svc: Service>(
    svc: &mut Svc,
    session: &mut Svc::Session,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Result<Progress, String> {
    guarded(|| run_unguarded(svc, session, data, out))
}

fn run_unguarded<Svc: Service>(
    svc: &mut Svc,
    session: &mut Svc::Session,
    data: &[u8],
    out: &mut Vec<u8>,
) -> Progress {
    let mut total = 0;
    let mut detached = false;
    loop {
        let p = svc.process(session, &data[total..], out);
        total += p.consumed;
        detached |= p.detached;
        if p.close || p.parked || p.consumed == 0 || p.need != 0 || total == data.len() {
            // `need` may count from the slice given or from its unconsumed
            // rest; waiting for `need - consumed` more is right for both.
            let need = p.need.saturating_sub(p.consumed);
            return Progress {
                consumed: total,
                close: p.close,
                need,
                parked: p.parked,
                detached,
            };
        }
    }
}

fn shrink_if_idle(buf: &mut Vec<u8>) {
    if buf.capacity() > SHRINK_ABOVE && buf.len() < SHRINK_TO {
        buf.shrink_to(SHRINK_TO);
    }
}
