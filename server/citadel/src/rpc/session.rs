//! One RPC connection: frames in, reply frames out, many requests in
//! flight (see the module documentation).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use citadel_net::{Progress, Waiter};
use citadel_proto::rpc::{
    decode_request_with, Batch, Body, FrameError, FrameHeader, Limits, Method, Op, ReplyWriter,
    Request, Strs, HEADER_LEN,
};

use super::calls::{self, Started};
use super::ops::{self, Exec, Scratch};
use super::RpcError;
use crate::clients::ClientShared;
use crate::command::ConnInfo;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::{Completion, WaitKey};

/// Features a `hello` may ask for; it is granted those this server has.
const FEATURES: &[&str] = &["batch", "deadline", "out-of-order", "call", "stats"];
/// Room for a frame's key and tables around the largest value.
const FRAME_OVERHEAD: usize = 64 << 10;

/// A request that waits for an operation.
struct InFlight {
    id: u64,
    method: Method,
}

pub struct RpcSession {
    state: Arc<ServerState>,
    client: Arc<ClientShared>,
    writer: ReplyWriter,
    limits: Limits,
    scratch: Scratch,
    authed: bool,
    close: bool,
    /// Requests waiting, by what they wait for.
    in_flight: HashMap<WaitKey, InFlight>,
    /// Waits started before the loop handed us our waiter.
    unparked: Vec<WaitKey>,
    /// This connection, as completions address it (known after the first
    /// detached wait; it never changes).
    waiter: Option<Waiter>,
}

impl RpcSession {
    pub fn new(state: &Arc<ServerState>, info: ConnInfo) -> RpcSession {
        let now = citadel_cache::unix_millis();
        let client = Arc::new(ClientShared::new(
            info.id,
            info.peer,
            info.local,
            info.thread,
            now,
        ));
        state.clients.register(client.clone());
        let limits = Limits {
            max_frame: state.limits.proto_max_bulk_len + FRAME_OVERHEAD,
            ..Limits::default()
        };
        RpcSession {
            state: state.clone(),
            client,
            writer: ReplyWriter::new(),
            limits,
            scratch: Scratch::default(),
            authed: !state.auth_required(),
            close: false,
            in_flight: HashMap::new(),
            unparked: Vec::new(),
            waiter: None,
        }
    }

    pub fn is_killed(&self) -> bool {
        self.client.is_killed()
    }

    /// True while calls it started are unanswered.
    pub fn owes_replies(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Runs every whole frame at the start of `input`.
    pub fn process(&mut self, thread: &mut ThreadCtx, input: &[u8], out: &mut Vec<u8>) -> Progress {
        let (mut pos, mut need, mut requests) = (0, 0, 0u64);
        while !self.close && pos < input.len() {
            if self.is_killed() {
                self.close = true;
                break;
            }
            let rest = &input[pos..];
            match FrameHeader::parse_with(rest, self.limits.max_frame) {
                Ok(None) => {
                    need = pos + frame_len_hint(rest);
                    break;
                }
                Ok(Some((header, len))) => {
                    pos += len;
                    requests += 1;
                    let body = &rest[HEADER_LEN..len];
                    match decode_request_with(&header, body, &self.limits) {
                        Ok(req) => self.run(thread, &req, out),
                        Err(e) => self.error(out, header.id, header.method, &e.into()),
                    }
                }
                Err(e) => {
                    let message = e.to_string();
                    let id = e.id().unwrap_or(0);
                    self.writer
                        .error_frame(out, id, Method::None, e.code(), &message);
                    match e {
                        FrameError::UnknownMethod { frame_len, .. } => pos += frame_len,
                        // The stream cannot be trusted past this: close.
                        _ => {
                            self.close = true;
                            pos = input.len();
                        }
                    }
                }
            }
        }
        if requests > 0 {
            thread.stats.commands.fetch_add(requests, Ordering::Relaxed);
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

    /// The loop's address of this connection: every wait started so far
    /// (and later) completes to it.
    pub fn park(&mut self, thread: &mut ThreadCtx, waiter: Waiter) {
        self.waiter = Some(waiter);
        for key in self.unparked.drain(..) {
            thread.park(key, waiter);
        }
    }

    /// A call finished: answer its request.
    pub fn resume(&mut self, thread: &mut ThreadCtx, done: Completion, out: &mut Vec<u8>) {
        let Some(call) = self.in_flight.remove(&done.key()) else {
            tracing::warn!(key = ?done.key(), "an RPC completion for no request");
            return;
        };
        match calls::finished(thread, &mut self.writer, done) {
            Ok(body) => self.writer.finish(out, call.id, call.method, body),
            Err(e) => self.error(out, call.id, call.method, &e),
        }
    }

    fn run(&mut self, thread: &mut ThreadCtx, req: &Request<'_>, out: &mut Vec<u8>) {
        let (id, method) = (req.id, req.op.method());
        let result = if req.expired_at(thread.cache.now_ms()) {
            Err(RpcError::Deadline)
        } else if !self.authed && !matches!(req.op, Op::Hello { .. }) {
            Err(RpcError::NoAuth)
        } else {
            match req.op {
                Op::Get { key } => {
                    ops::get_frame(&mut thread.cache, &mut self.writer, key, id, out);
                    return;
                }
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
                            return;
                        }
                        Err(e) => Err(e),
                    }
                }
                op => ops::run(&mut self.exec(thread), &op),
            }
        };
        match result {
            Ok(body) => self.writer.finish(out, id, method, body),
            Err(e) => self.error(out, id, method, &e),
        }
    }

    fn exec<'a>(&'a mut self, thread: &'a mut ThreadCtx) -> Exec<'a> {
        Exec {
            state: &self.state,
            cache: &mut thread.cache,
            writer: &mut self.writer,
            scratch: &mut self.scratch,
        }
    }

    fn wait_for(&mut self, thread: &mut ThreadCtx, key: WaitKey, id: u64, method: Method) {
        self.in_flight.insert(key, InFlight { id, method });
        match self.waiter {
            Some(waiter) => thread.park(key, waiter),
            None => self.unparked.push(key),
        }
    }

    /// Every operation of a batch, in order, into one `BatchReply`.
    fn batch(&mut self, thread: &mut ThreadCtx, batch: Batch<'_>) -> Body {
        for op in batch.iter() {
            let outcome = match op {
                Ok(op) => ops::run(&mut self.exec(thread), &op),
                Err(e) => Err(e.into()),
            };
            let body = match outcome {
                Ok(body) => body,
                Err(e) => self.writer.error(e.code(), &e.to_string()),
            };
            self.writer.push_outcome(body);
        }
        self.writer.batch()
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
        }
        let granted = FEATURES
            .iter()
            .copied()
            .filter(|f| asked.is_empty() || asked.iter().any(|a| a.eq_ignore_ascii_case(f)));
        let server = concat!("citadel ", env!("CARGO_PKG_VERSION"));
        Ok(self.writer.welcome(1, server, granted))
    }

    fn error(&mut self, out: &mut Vec<u8>, id: u64, method: Method, e: &RpcError) {
        self.writer
            .error_frame(out, id, method, e.code(), &e.to_string());
    }
}

impl Drop for RpcSession {
    fn drop(&mut self) {
        self.state.clients.unregister(&self.client);
    }
}

/// How long the frame at the start of `rest` is, once its header is
/// there (so the loop waits for all of it); 0 before.
fn frame_len_hint(rest: &[u8]) -> usize {
    match rest.first_chunk::<HEADER_LEN>() {
        Some(h) => HEADER_LEN + u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize,
        None => 0,
    }
}
