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
/// Bytes a partial command must still lack for the rest to be received
/// straight into the input buffer (a direct recv) rather than through the
/// provided buffers and a copy: the copy was 15-18% of a 256 KiB SET's CPU,
/// and switching costs a cancel and a one-shot recv (Redis reads a bulk of
/// 32 KiB or more straight into its own buffer too).
const DIRECT_MIN: usize = 32 << 10;
/// What a connection that sends big bulks reads at a time before it knows
/// the next command's size (Redis's read size too): the multishot recv would
/// take all the socket holds into provided buffers, a whole 256 KiB bulk
/// before the loop sees its header.
const HEAD_READ: usize = 16 << 10;

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
    /// Entered in the ring's registered file table at its slab slot.
    pub fixed: bool,
    pub state: State,
    input: Vec<u8>,
    /// `input`'s (length, capacity) as last told to the service.
    reported_input: (usize, usize),
    /// Input length required before the session can make progress again.
    need: usize,
    pub out: Vec<u8>,
    sending: Vec<u8>,
    sent: usize,
    pub recv_armed: bool,
    /// The armed recv writes straight into `input` (see `direct_span`).
    pub recv_direct: bool,
    /// ... and it is for the rest of a partial command (not a head read).
    direct_rest: bool,
    /// Sends big bulks: reads with one-shot recvs into `input`, up to
    /// `HEAD_READ` until a command's size is known, then all of its rest.
    bulky: bool,
    /// The multishot recv is being cancelled to switch to a direct one.
    pub recv_switching: bool,
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
    /// Until then its replies are not sent: all it sent was refused under
    /// overload (hold.rs).
    pub held_until: Option<std::time::Instant>,
    /// ... and its recv is not armed (the first part of a hold to end).
    pub hold_reads: bool,
    /// The maintenance tick of its last recv (batch.rs counts the
    /// connections active per tick).
    pub recv_tick: u32,
}

impl<S> Connection<S> {
    pub fn new(stream: socket2::Socket, session: S, generation: u32) -> Connection<S> {
        Connection {
            stream,
            session,
            generation,
            fixed: false,
            state: State::Open,
            input: Vec::new(),
            reported_input: (0, 0),
            need: 0,
            out: Vec::new(),
            sending: Vec::new(),
            sent: 0,
            recv_armed: false,
            recv_direct: false,
            direct_rest: false,
            bulky: false,
            recv_switching: false,
            send_inflight: false,
            flush_queued: false,
            rearm_queued: false,
            parked: false,
            detached: false,
            peer_ip: None,
            held_until: None,
            hold_reads: false,
            recv_tick: 0,
        }
    }

    /// Runs received bytes through the session. Whole commands are processed
    /// straight from `data` when nothing is carried over; only a trailing
    /// partial command is copied into the connection's input buffer.
    pub fn receive<Svc>(&mut self, svc: &mut Svc, data: &[u8], max_input: usize) -> Fed
    where
        Svc: Service<Session = S>,
    {
        let fed = self.feed(svc, data, max_input);
        self.report_input(svc);
        fed
    }

    fn feed<Svc>(&mut self, svc: &mut Svc, data: &[u8], max_input: usize) -> Fed
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
        if !self.input.is_empty() {
            if self.input.len() + data.len() > max_input {
                return Fed::Overflow;
            }
            self.input.extend_from_slice(data);
            return self.run_input(svc, max_input);
        }
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
        self.progressed(r, max_input)
    }

    /// Whether its next received bytes are run straight from the receive
    /// buffer, starting at a request (nothing partial buffered, not parked).
    pub fn runs_straight(&self) -> bool {
        self.state == State::Open && !self.parked && self.input.is_empty()
    }

    /// Whether the rest of a partial command is big enough to be received
    /// straight into the input buffer (room for it is reserved already).
    pub fn wants_direct(&self) -> bool {
        self.state == State::Open
            && !self.parked
            && self.need >= self.input.len() + DIRECT_MIN
            && self.need <= self.input.capacity()
    }

    /// Where the next recv writes when it is a direct one (None: through the
    /// provided buffers): the input buffer's spare room, for all the bytes a
    /// big partial command still lacks and no more (what follows stays in
    /// the socket), with `MSG_WAITALL` (the bool); or, on a connection that
    /// sends big bulks, a head read of up to `HEAD_READ` bytes. The buffer is
    /// not touched, moved or freed until that recv completes: only a
    /// connection that is open, not parked and has no other recv armed asks
    /// for one, and such a connection's input is used only by
    /// `received_direct` (a close clears it or stops reading, and
    /// `received_direct` then drops the bytes; the connection is freed only
    /// once no recv is armed).
    pub fn direct_span(&mut self) -> Option<(*mut u8, u32, bool)> {
        if self.state != State::Open || self.parked {
            return None;
        }
        let missing = self.need.saturating_sub(self.input.len());
        let rest = missing >= DIRECT_MIN || (self.bulky && missing > 0);
        let len = if rest && self.need <= self.input.capacity() {
            self.bulky = true;
            missing
        } else if self.bulky {
            self.input.reserve(HEAD_READ);
            HEAD_READ
        } else {
            return None;
        };
        self.direct_rest = rest;
        let room = self.input.spare_capacity_mut();
        Some((
            room.as_mut_ptr().cast(),
            len.min(u32::MAX as usize) as u32,
            rest,
        ))
    }

    /// A direct recv wrote `n` bytes into the input buffer's spare room.
    pub fn received_direct<Svc>(&mut self, svc: &mut Svc, n: usize, max_input: usize) -> Fed
    where
        Svc: Service<Session = S>,
    {
        let fed = self.feed_direct(svc, n, max_input);
        self.report_input(svc);
        fed
    }

    fn feed_direct<Svc>(&mut self, svc: &mut Svc, n: usize, max_input: usize) -> Fed
    where
        Svc: Service<Session = S>,
    {
        if self.state != State::Open {
            return Fed::Ok;
        }
        assert!(
            n <= self.input.capacity() - self.input.len(),
            "a direct recv overran its span"
        );
        // SAFETY: the kernel wrote these `n` bytes into the spare room that
        // `direct_span` handed out, starting at the length, which nothing
        // changed while the recv was in flight (see `direct_span`).
        unsafe { self.input.set_len(self.input.len() + n) };
        if self.input.len() > max_input {
            return Fed::Overflow;
        }
        let fed = self.run_input(svc, max_input);
        // A head read that started no big command: back to the provided
        // buffers (small commands, pipelined, are cheapest there).
        if !self.direct_rest && self.need < DIRECT_MIN {
            self.bulky = false;
        }
        fed
    }

    /// Runs the carried-over input once it holds what the session needs.
    fn run_input<Svc>(&mut self, svc: &mut Svc, max_input: usize) -> Fed
    where
        Svc: Service<Session = S>,
    {
        if self.input.len() < self.need {
            return Fed::Ok;
        }
        match self.run_held(svc) {
            Ok(r) => self.progressed(r, max_input),
            Err(fed) => fed,
        }
    }

    /// Runs the session over the held input and drops what it consumed.
    fn run_held<Svc>(&mut self, svc: &mut Svc) -> Result<Progress, Fed>
    where
        Svc: Service<Session = S>,
    {
        let r = run(svc, &mut self.session, &self.input, &mut self.out).map_err(Fed::Panicked)?;
        self.input.drain(..r.consumed);
        shrink_if_idle(&mut self.input);
        Ok(r)
    }

    fn progressed(&mut self, result: Progress, max_input: usize) -> Fed {
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
        let fed = self.resume_held(svc, done);
        self.report_input(svc);
        fed
    }

    /// Tells the service the held input's size when it changed
    /// ([`Service::input_held`]): requests run straight from the receive
    /// buffer leave it empty, so this is one comparison for them.
    fn report_input<Svc>(&mut self, svc: &mut Svc)
    where
        Svc: Service<Session = S>,
    {
        let now = (self.input.len(), self.input.capacity());
        if now != self.reported_input {
            self.reported_input = now;
            svc.input_held(&mut self.session, now.0, now.1 - now.0);
        }
    }

    fn resume_held<Svc>(&mut self, svc: &mut Svc, done: Svc::Completion) -> Fed
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
        match self.run_held(svc) {
            Ok(r) => self.settle(r),
            Err(fed) => fed,
        }
    }

    /// Bytes of replies not yet handed to the kernel.
    pub fn pending_output(&self) -> usize {
        self.out.len() + (self.sending.len() - self.sent)
    }

    /// Its output drained, nothing else of the connection is pending in
    /// the loop but its armed recv: no input held, not parked or held, not
    /// switching reads (`stall_peers.rs`).
    pub fn is_quiet(&self) -> bool {
        self.state == State::Open
            && self.input.is_empty()
            && !self.parked
            && !self.detached
            && self.held_until.is_none()
            && self.recv_armed
            && !self.recv_direct
            && !self.recv_switching
            && !self.rearm_queued
    }

    /// True when the next send is the rest of one the socket did not take whole.
    pub fn send_continues(&self) -> bool {
        self.sent > 0
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
