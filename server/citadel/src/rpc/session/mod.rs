//! One RPC connection: frames in, reply frames out, many requests in
//! flight (see the module documentation).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use citadel_net::{Progress, Waiter};
use citadel_proto::rpc::{
    decode_request_with, peek_frame_len, Batch, Body, Constant, FrameError, FrameHeader, Limits,
    Method, Op, ReplyWriter, Request, RequestError, Strs, HEADER_LEN,
};

mod routed;

use super::batch_forward::BatchPlan;
use super::calls::{self, Started};
use super::ops::{self, Exec, Scratch};
use super::route::{self, Routed};
use super::split::Split;
use super::RpcError;
use crate::clients::ClientShared;
use crate::command::{register_client, ConnInfo};
use crate::state::ServerState;
use crate::stats::{RpcCounters, ThreadStats};
use crate::thread::ThreadCtx;
use crate::wait::{Completion, Target, WaitKey};

/// Features a `hello` may ask for; it is granted those this server has.
const FEATURES: &[&str] = &["batch", "deadline", "out-of-order", "call", "stats"];
/// Room for a frame's key and tables around the largest value.
const FRAME_OVERHEAD: usize = 64 << 10;

/// Frames decoded (and keys prefetched) at a time.
const AHEAD: usize = 32;

/// A frame's header, its body and its verified request (or why it is
/// not one).
type Decoded<'a> = (FrameHeader, &'a [u8], Result<Request<'a>, RequestError>);

/// A request's frame: its header and body.
type Frame<'a> = (&'a FrameHeader, &'a [u8]);

/// Starts loading the home bucket, then the item, of each single-key
/// request (and each single-key operation of a batch), so the memory
/// misses of what is about to run overlap.
fn prefetch(thread: &ThreadCtx, batch: &[Option<Decoded<'_>>]) {
    let mut hashes = [0u64; AHEAD];
    let mut n = 0;
    let mut add = |op: &Op<'_>| {
        if let Some(key) = single_key(op).filter(|_| n < AHEAD) {
            hashes[n] = thread.cache.prefetch_bucket(key);
            n += 1;
        }
    };
    for (_, _, decoded) in batch.iter().flatten() {
        match decoded {
            Ok(Request {
                op: Op::Batch(ops), ..
            }) => ops.iter().flatten().for_each(|op| add(&op)),
            Ok(req) => add(&req.op),
            Err(_) => {}
        }
    }
    for &h in &hashes[..n] {
        thread.cache.prefetch_item(h);
    }
}

fn single_key<'a>(op: &Op<'a>) -> Option<&'a [u8]> {
    match *op {
        Op::Get { key }
        | Op::Set { key, .. }
        | Op::Incr { key, .. }
        | Op::Ttl { key }
        | Op::Expire { key, .. } => Some(key),
        _ => None,
    }
}

/// A request that waits for an operation.
struct InFlight {
    id: u64,
    method: Method,
    /// How forwarded answers become the request's answer.
    merge: Merge,
}

/// What a forwarded request's answers are merged into (proxy mode).
enum Merge {
    /// One operation, one peer reply.
    One,
    /// A multi-key operation split over nodes.
    Split(Box<Split>),
    /// A batch with operations on other nodes.
    Batch(Box<BatchPlan>),
    /// An operation reading misses from their previous owners first.
    Handoff(Box<crate::rpc::handoff::RpcHandoff>),
}

pub struct RpcSession {
    state: Arc<ServerState>,
    /// This thread's counters.
    stats: Arc<ThreadStats>,
    client: Arc<ClientShared>,
    writer: ReplyWriter,
    limits: Limits,
    scratch: Scratch,
    authed: bool,
    close: bool,
    /// Each input holds exactly one frame (a ring record): a frame that
    /// cannot be trusted spoils only itself, never the stream.
    framed: bool,
    /// Requests waiting, by what they wait for.
    in_flight: HashMap<WaitKey, InFlight>,
    /// Waits started before the loop handed us our waiter.
    unparked: Vec<WaitKey>,
    /// This session, as completions address it (for a loop connection:
    /// known after its first detached wait; it never changes).
    target: Option<Target>,
    /// Its priority and quota group under the overload rules.
    overload: crate::overload::ClientClass,
    /// The request routed next runs after its warm hand-off (no second).
    handed_off: bool,
    /// While `process` runs, when it began (monotonic ns; 0 otherwise, or
    /// when nothing may be refused): the time since is this read's own
    /// work, no queueing delay for its later requests (`admit`).
    pass_start: u64,
    /// Counts this connection among its core's (overload/alone.rs).
    open: Option<crate::overload::OpenConnection>,
}

impl RpcSession {
    pub fn new(state: &Arc<ServerState>, info: ConnInfo) -> RpcSession {
        let thread = info.thread;
        let client = register_client(state, info);
        let limits = Limits {
            max_frame: state.limits.proto_max_bulk_len + FRAME_OVERHEAD,
            ..Limits::default()
        };
        RpcSession {
            state: state.clone(),
            stats: state.thread_stats[thread].clone(),
            client,
            writer: ReplyWriter::new(),
            limits,
            scratch: Scratch::default(),
            authed: !state.auth_required(),
            close: false,
            framed: false,
            in_flight: HashMap::new(),
            unparked: Vec::new(),
            target: None,
            overload: Default::default(),
            handed_off: false,
            pass_start: 0,
            open: None,
        }
    }

    /// Counted among the connections of its core while it lives.
    pub fn counted(mut self, open: Option<crate::overload::OpenConnection>) -> RpcSession {
        self.open = open;
        self
    }

    /// A session served off the event loop (a shared-memory client), whose
    /// completions are addressed to `Target::Local(id)`.
    pub fn local(state: &Arc<ServerState>, info: ConnInfo) -> RpcSession {
        let id = info.id;
        let mut session = RpcSession::new(state, info);
        session.target = Some(Target::Local(id));
        session.framed = true;
        session
    }

    pub fn is_killed(&self) -> bool {
        self.client.is_killed()
    }

    /// True once the session ended (CLIENT KILL, or a stream it cannot trust).
    pub fn is_closed(&self) -> bool {
        self.close || self.is_killed()
    }

    /// True while calls it started are unanswered.
    pub fn owes_replies(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Runs every whole frame at the start of `input`: up to [`AHEAD`]
    /// frames are decoded at a time and their keys prefetched before they
    /// run, so their cache misses overlap (as RESP's pipelines do).
    pub fn process(&mut self, thread: &mut ThreadCtx, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let (mut pos, mut need, mut requests) = (0, 0, 0u64);
        let mut classes = [0u64; 4];
        if let Some(overload) = thread.overload.as_mut().filter(|o| o.may_refuse()) {
            overload.pass_began(self.open.as_mut(), input.len());
            self.pass_start = crate::command::monotonic_nanos();
        }
        while !self.close && pos < input.len() {
            if self.is_killed() {
                self.close = true;
                break;
            }
            let mut batch: [Option<Decoded<'_>>; AHEAD] = Default::default();
            let mut n = 0;
            let mut stop = None;
            while n < AHEAD && pos < input.len() {
                let rest = &input[pos..];
                match FrameHeader::parse_with(rest, self.limits.max_frame) {
                    Ok(None) => {
                        // The whole frame, once its header is here (0: unknown yet).
                        need = pos + peek_frame_len(rest).unwrap_or(0);
                        stop = Some(None);
                        break;
                    }
                    Ok(Some((header, len))) => {
                        let body = &rest[HEADER_LEN..len];
                        let decoded = decode_request_with(&header, body, &self.limits);
                        batch[n] = Some((header, body, decoded));
                        n += 1;
                        pos += len;
                    }
                    Err(e) => {
                        stop = Some(Some(e));
                        break;
                    }
                }
            }
            let is_batch = |d: &Option<Decoded<'_>>| {
                matches!(
                    d,
                    Some((
                        _,
                        _,
                        Ok(Request {
                            op: Op::Batch(_),
                            ..
                        })
                    ))
                )
            };
            if n > 1 || is_batch(&batch[0]) {
                prefetch(thread, &batch[..n]);
            }
            for (header, body, decoded) in batch[..n].iter_mut().filter_map(Option::take) {
                requests += 1;
                match decoded {
                    Ok(req) => {
                        classes[RpcCounters::class(req.priority)] += 1;
                        self.run(thread, &req, (&header, body), out)
                    }
                    Err(e) => self.error(out, header.id, header.method, &e.into()),
                }
            }
            match stop {
                None => {}
                Some(None) => break,
                Some(Some(e)) => pos = self.frame_error(e, pos, input.len(), out),
            }
        }
        self.pass_start = 0;
        if requests > 0 {
            // Counted once per call, not per request.
            thread.stats.commands.fetch_add(requests, Ordering::Relaxed);
            let rpc = &thread.stats.rpc;
            rpc.requests.fetch_add(requests, Ordering::Relaxed);
            for (class, &n) in classes.iter().enumerate().filter(|(_, n)| **n > 0) {
                rpc.by_priority[class].fetch_add(n, Ordering::Relaxed);
            }
            self.client
                .last_ms
                .store(thread.cache.now_ms(), Ordering::Relaxed);
        }
        Progress {
            consumed: pos,
            close: self.close,
            need,
            parked: false,
            detached: !self.unparked.is_empty(),
        }
    }

    /// Answers a frame the header check refused; returns where reading
    /// goes on (the end of `input` when the stream cannot be trusted).
    fn frame_error(&mut self, e: FrameError, pos: usize, end: usize, out: &mut Vec<u8>) -> usize {
        let message = e.to_string();
        let id = e.id().unwrap_or(0);
        self.writer
            .error_frame(out, id, Method::None, e.code(), &message);
        match e {
            FrameError::UnknownMethod { frame_len, .. } => pos + frame_len,
            // A record's bad frame is just that record.
            _ if self.framed => end,
            // The stream cannot be trusted past this: close.
            _ => {
                self.close = true;
                end
            }
        }
    }

    /// The loop's address of this connection: every wait started so far
    /// (and later) completes to it.
    pub fn park(&mut self, thread: &mut ThreadCtx, waiter: Waiter) {
        let target = Target::Conn(waiter);
        self.target = Some(target);
        for key in self.unparked.drain(..) {
            thread.waits.park(key, target);
        }
    }

    /// A call finished (answer its request) or made progress (stream it).
    pub fn resume(&mut self, thread: &mut ThreadCtx, done: Completion, out: &mut Vec<u8>) {
        if let Completion::PipelinePartial { index, json, .. } = &done {
            if let Some(call) = self.in_flight.get(&done.key()) {
                let body = self.writer.partial(*index, json);
                self.writer.finish(out, call.id, call.method, body);
            }
            return;
        }
        let Some(call) = self.in_flight.remove(&done.key()) else {
            tracing::warn!(key = ?done.key(), "an RPC completion for no request");
            return;
        };
        let answer = match (done, call.merge) {
            (Completion::Forward { results, .. }, Merge::Split(plan)) => {
                super::split::finished(&mut self.writer, call.method, *plan, results)
            }
            (Completion::Forward { results, .. }, Merge::Batch(mut plan)) => {
                plan.answered(results);
                self.batch_finished(thread, *plan)
            }
            (Completion::Forward { results, .. }, Merge::Handoff(wait)) => {
                match self.handoff_finished(thread, *wait, results, out) {
                    Some(answer) => answer,
                    None => return,
                }
            }
            (Completion::Forward { results, .. }, Merge::One) => {
                super::forward::finished(&mut self.writer, call.method, results)
            }
            (done, _) => calls::finished(thread, &mut self.writer, done),
        };
        match answer {
            Ok(body) => self.writer.finish(out, call.id, call.method, body),
            Err(e) => self.error(out, call.id, call.method, &e),
        }
    }

    fn run(
        &mut self,
        thread: &mut ThreadCtx,
        req: &Request<'_>,
        frame: Frame<'_>,
        out: &mut Vec<u8>,
    ) {
        let (id, method) = (req.id, req.op.method());
        let started = (thread.stats.telemetry.is_some()).then(crate::command::monotonic_nanos);
        let result = if req.expired_at(thread.cache.now_ms()) {
            Err(RpcError::Deadline)
        } else if !self.authed && !matches!(req.op, Op::Hello { .. }) {
            Err(RpcError::NoAuth)
        } else if let Err(e) = self.admit(thread, req) {
            Err(e)
        } else {
            match self.route_and_run(thread, req, frame, out) {
                Some(result) => result,
                None => {
                    // Its reply is written (or it waits): it did not fail here.
                    record(thread, method, started, false);
                    return;
                }
            }
        };
        record(thread, method, started, result.is_err());
        match result {
            Ok(body) => self.writer.finish(out, id, method, body),
            Err(e) => self.error(out, id, method, &e),
        }
    }

    /// Overload protection: the core's admission and the quotas; the
    /// request's priority field (when set) is the client's priority. As
    /// RESP's commands, a request is judged by the delay at the start of
    /// its read (the time the read's earlier requests took is taken out).
    fn admit(&mut self, thread: &mut ThreadCtx, req: &Request<'_>) -> Result<(), RpcError> {
        let Some(overload) = thread.overload.as_mut() else {
            return Ok(());
        };
        let (class, key) = crate::rpc::admission::op_class(&req.op);
        let (client, authed) = (&self.client, self.authed);
        let who = || crate::overload::Identity::of(client, authed);
        let priority = (req.priority != 0).then(|| crate::overload::rpc_priority(req.priority));
        let pass_start = self.pass_start;
        let own = || match pass_start {
            0 => Duration::ZERO,
            start => Duration::from_nanos(crate::command::monotonic_nanos().saturating_sub(start)),
        };
        overload
            .check(&mut self.overload, who, priority, class, key, own)
            .map_err(|refusal| RpcError::Overload(refusal.text))
    }

    /// Runs a request this node serves; None when its reply frame is
    /// already in `out` (or it waits).
    pub(super) fn run_here(
        &mut self,
        thread: &mut ThreadCtx,
        req: &Request<'_>,
        out: &mut Vec<u8>,
    ) -> Option<Result<Body, RpcError>> {
        let (id, method) = (req.id, req.op.method());
        sample_keys(&self.state, thread, &req.op);
        if let Err(e) = crate::rpc::admission::refuse_write(&self.state, &req.op) {
            return Some(Err(e));
        }
        Some(match req.op {
            Op::Get { key } => match ops::get_frame(&mut thread.cache, key, id, out) {
                Ok(()) => return None,
                Err(e) => Err(e),
            },
            Op::Set {
                key,
                value,
                ttl_ms,
                condition,
            } => match ops::set(&mut thread.cache, key, value, ttl_ms, condition) {
                Ok(applied) => {
                    let reply = if applied {
                        Constant::Applied
                    } else {
                        Constant::NotApplied
                    };
                    ReplyWriter::constant_frame(out, id, method, reply);
                    return None;
                }
                Err(e) => Err(e),
            },
            Op::Hello {
                version,
                client_name,
                password,
                features,
            } => self.hello(version, client_name, password, features),
            Op::Batch(batch) => Ok(self.batch(thread, batch)),
            Op::Call {
                name,
                payload,
                options,
            } => {
                let call = (name, payload, options);
                let started = calls::start(
                    &self.state,
                    thread,
                    &mut self.writer,
                    &mut self.scratch,
                    call,
                );
                match started {
                    Ok(Started::Now(body)) => Ok(body),
                    Ok(Started::Waiting(key)) => {
                        self.wait_for(thread, key, id, method);
                        return None;
                    }
                    Err(e) => Err(e),
                }
            }
            op => ops::run(&mut self.exec(thread), &op),
        })
    }

    fn exec<'a>(&'a mut self, thread: &'a mut ThreadCtx) -> Exec<'a> {
        Exec {
            state: &self.state,
            cache: &mut thread.cache,
            writer: &mut self.writer,
            scratch: &mut self.scratch,
        }
    }

    pub(super) fn wait_for(
        &mut self,
        thread: &mut ThreadCtx,
        key: WaitKey,
        id: u64,
        method: Method,
    ) {
        let merge = Merge::One;
        self.in_flight.insert(key, InFlight { id, method, merge });
        // A pipeline's frames are streamed as they arrive.
        if matches!(key, WaitKey::Pipeline(_)) {
            thread.waits.stream(key);
        }
        match self.target {
            Some(target) => thread.waits.park(key, target),
            None => self.unparked.push(key),
        }
    }

    /// Every operation of a batch, in order, into one `BatchReply`.
    fn batch(&mut self, thread: &mut ThreadCtx, batch: Batch<'_>) -> Body {
        for op in batch.iter() {
            let body = self.batch_op(thread, op);
            self.writer.push_outcome(body);
        }
        self.writer.batch()
    }

    /// One operation of a batch, run here (in cluster mode each is routed
    /// on its own; another node's answers `Moved` unless the batch was
    /// forwarded: `batch_forward.rs`).
    fn batch_op(&mut self, thread: &mut ThreadCtx, op: Result<Op<'_>, RequestError>) -> Body {
        let outcome = match op {
            Ok(op) => match route::route(thread, &op) {
                Ok(Routed::Local) => {
                    route::note_write(&self.state, thread, &op);
                    sample_keys(&self.state, thread, &op);
                    crate::rpc::admission::refuse_write(&self.state, &op)
                        .and_then(|()| ops::run(&mut self.exec(thread), &op))
                }
                Ok(Routed::Elsewhere { refusal, .. }) => Err(refusal),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        };
        match outcome {
            Ok(body) => body,
            Err(e) => e.body(&mut self.writer),
        }
    }

    fn hello(
        &mut self,
        version: u32,
        client_name: Option<&str>,
        password: Option<&str>,
        asked: Strs<'_>,
    ) -> Result<Body, RpcError> {
        if version > 1 {
            return Err(RpcError::Version(version));
        }
        if self.state.auth_required() {
            match password {
                Some(p) if self.state.check_password(p.as_bytes()) => self.authed = true,
                Some(_) => return Err(RpcError::WrongPass),
                None if !self.authed => return Err(RpcError::NoAuth),
                None => {}
            }
        }
        if let Some(name) = client_name {
            self.client.names().name = name.as_bytes().to_vec();
            self.overload.stale();
        }
        let granted = FEATURES
            .iter()
            .copied()
            .filter(|f| asked.is_empty() || asked.iter().any(|a| a.eq_ignore_ascii_case(f)));
        let server = concat!("citadel ", env!("CARGO_PKG_VERSION"));
        Ok(self.writer.welcome(1, server, granted))
    }

    fn error(&mut self, out: &mut Vec<u8>, id: u64, method: Method, e: &RpcError) {
        self.count_error(e);
        let body = e.body(&mut self.writer);
        self.writer.finish(out, id, method, body);
    }

    fn count_error(&self, e: &RpcError) {
        let counters = &self.stats.rpc;
        counters.errors.fetch_add(1, Ordering::Relaxed);
        if matches!(e, RpcError::Deadline) {
            counters.deadline_refused.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for RpcSession {
    fn drop(&mut self) {
        self.state.clients.unregister(&self.client);
    }
}

/// One request's count and time in the stats region (`metrics::rpc_ran`).
#[inline]
fn record(thread: &ThreadCtx, method: Method, started: Option<u64>, failed: bool) {
    if let (Some(slot), Some(started)) = (&thread.stats.telemetry, started) {
        let nanos = crate::command::monotonic_nanos().saturating_sub(started);
        crate::metrics::rpc_ran(slot, method, nanos, failed);
    }
}

/// Hot-key sampling of an RPC operation, as `dispatch` samples a RESP
/// command (`crate::hotkeys`): one decrement unless it is the sampled one.
#[inline]
fn sample_keys(state: &ServerState, thread: &mut ThreadCtx, op: &Op<'_>) {
    if thread.hotkeys.due() {
        state.hotkeys.record(
            thread.index,
            &mut thread.hotkeys,
            crate::command::monotonic_nanos(),
            |f| route::for_each_key(op, f),
        );
    }
}
