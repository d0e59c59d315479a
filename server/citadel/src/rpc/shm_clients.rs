//! One server thread's shared-memory RPC clients: each has a request ring
//! (the client produces), a reply ring (the thread produces) and an
//! `RpcSession` like a socket connection's, served from the thread's
//! per-turn poll instead of the event loop.
//!
//! A client is another process, so its request ring is untrusted memory:
//! each frame is copied out with atomic loads (`Record::copy_payload_into`)
//! before it is verified and run. Replies are published frame by frame;
//! while the reply ring is full they wait here and the client's requests
//! are not read (backpressure), and a client whose backlog passes the
//! output limit is dropped.
//!
//! **Wake-ups.** All clients of a thread ring one doorbell eventfd, which
//! the thread's io_uring polls. After traffic the thread stays attentive
//! for [`ATTENTIVE`] (its loop does not block), so a busy client never
//! pays a system call; only then does it set each request ring's sleeping
//! flag (the rings' Dekker handshake) and let the loop block.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_net::Endpoint;
use citadel_proto::envelope::Envelope;
use citadel_proto::ring::{clear_sleeping, prepare_park, Consumer, Producer};
use citadel_proto::rpc::{peek_frame_id, peek_frame_len, schema::ErrorCode, Method, ReplyWriter};

use super::shm_door::{ShmEvent, ShmLane};
use super::RpcSession;
use crate::command::ConnInfo;
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::Completion;

/// How long after its last request a thread keeps polling the rings
/// instead of sleeping.
pub const ATTENTIVE: Duration = Duration::from_micros(100);
/// Requests read from one client per turn (fairness between clients).
const PER_TURN: usize = 64;

struct ShmClient {
    requests: Consumer,
    replies: Producer,
    session: RpcSession,
    /// A copy of the request frame being run.
    input: Vec<u8>,
    /// Reply frames not yet published (the reply ring was full).
    out: Vec<u8>,
    /// Bytes of `out` already published.
    sent: usize,
    dropped: Arc<AtomicBool>,
}

pub struct ShmClients {
    state: Arc<ServerState>,
    thread: usize,
    lane: Option<ShmLane>,
    clients: HashMap<u64, ShmClient>,
    completions: Vec<(u64, Completion)>,
    last_traffic: Instant,
    output_limit: usize,
    /// The request rings' sleeping flags were set (`next_deadline`): the
    /// next poll clears them. Cleared rings are left alone: a store, even
    /// of the same value, would take the cache line from the client.
    flagged: Cell<bool>,
}

impl ShmClients {
    pub fn new(
        state: &Arc<ServerState>,
        thread: usize,
        lane: Option<ShmLane>,
        output_limit: usize,
    ) -> Self {
        ShmClients {
            state: state.clone(),
            thread,
            lane,
            clients: HashMap::new(),
            completions: Vec::new(),
            last_traffic: Instant::now(),
            output_limit,
            flagged: Cell::new(false),
        }
    }

    /// The doorbell the loop polls, if this thread serves shm clients.
    pub fn doorbell(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::{AsFd, AsRawFd};
        self.lane.as_ref().map(|l| l.doorbell.as_fd().as_raw_fd())
    }

    pub fn on_doorbell(&mut self) {
        if let Some(lane) = &self.lane {
            let _ = lane.doorbell.drain();
        }
    }

    /// Once per turn: attaches and drops clients, answers finished calls,
    /// runs every request waiting in the rings.
    pub fn poll(&mut self, thread: &mut ThreadCtx) {
        if self.take_events() {
            self.count_clients(thread);
        }
        if self.clients.is_empty() {
            return;
        }
        if self.flagged.take() {
            for c in self.clients.values() {
                clear_sleeping(&[&c.requests]);
            }
        }
        thread.waits.take_local(&mut self.completions);
        for (id, done) in self.completions.drain(..) {
            if let Some(c) = self.clients.get_mut(&id) {
                c.session.resume(thread, done, &mut c.out);
            }
        }
        let mut busy = false;
        let mut dropped = Vec::new();
        for (&id, c) in self.clients.iter_mut() {
            busy |= c.serve(thread);
            if c.out.len() - c.sent > self.output_limit {
                tracing::warn!(client = id, "shm client not reading its replies; dropped");
                dropped.push(id);
            } else if c.session.is_closed() {
                dropped.push(id);
            }
        }
        for id in dropped {
            if let Some(c) = self.clients.remove(&id) {
                c.dropped.store(true, Ordering::Relaxed);
            }
        }
        self.count_clients(thread);
        if busy {
            self.last_traffic = Instant::now();
        }
    }

    /// When the loop must poll again: now while attentive or while a
    /// request is waiting; None (the loop may block) once every request
    /// ring says the thread sleeps.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.clients.is_empty() {
            return None;
        }
        let now = Instant::now();
        let pending_out = self.clients.values().any(|c| c.sent < c.out.len());
        if now < self.last_traffic + ATTENTIVE || pending_out {
            return Some(now);
        }
        self.flagged.set(true);
        for c in self.clients.values() {
            if !prepare_park(&[&c.requests]) {
                // A request is there: poll again at once (the flags set so
                // far are cleared by that poll).
                return Some(now);
            }
        }
        None
    }

    fn count_clients(&self, thread: &ThreadCtx) {
        let n = self.clients.len() as u64;
        thread.stats.rpc.shm_clients.store(n, Ordering::Relaxed);
    }

    /// Attaches and detaches clients; true if any did.
    fn take_events(&mut self) -> bool {
        let Some(lane) = &self.lane else {
            return false;
        };
        let mut any = false;
        while let Ok(event) = lane.events.try_recv() {
            any = true;
            match event {
                ShmEvent::Attach {
                    id,
                    channel,
                    dropped,
                } => {
                    let Ok(wake) = lane.doorbell.try_clone() else {
                        dropped.store(true, Ordering::Relaxed);
                        continue;
                    };
                    let info = ConnInfo {
                        id,
                        peer: Endpoint::Unix(Arc::from("shm")),
                        local: Endpoint::Unix(Arc::from("shm")),
                        thread: self.thread,
                    };
                    let client = ShmClient {
                        requests: Consumer::attach(channel.requests, wake),
                        replies: Producer::attach(channel.replies, channel.client_wake),
                        session: RpcSession::local(&self.state, info),
                        input: Vec::new(),
                        out: Vec::new(),
                        sent: 0,
                        dropped,
                    };
                    self.clients.insert(id, client);
                    self.last_traffic = Instant::now();
                }
                ShmEvent::Detach { id } => {
                    self.clients.remove(&id);
                }
            }
        }
        any
    }
}

impl ShmClient {
    /// Publishes waiting replies, then runs up to `PER_TURN` requests;
    /// true if anything moved.
    fn serve(&mut self, thread: &mut ThreadCtx) -> bool {
        let mut moved = self.publish();
        let mut n = 0;
        while n < PER_TURN && self.sent == self.out.len() {
            let record = match self.requests.read() {
                Ok(Some(record)) => record,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("shm client's request ring is corrupt ({e}); dropped");
                    self.dropped.store(true, Ordering::Relaxed);
                    break;
                }
            };
            self.input.clear();
            record.copy_payload_into(&mut self.input);
            self.requests.commit_read();
            let progress = self.session.process(thread, &self.input, &mut self.out);
            if progress.consumed < self.input.len() && !progress.close {
                // A record holds exactly one whole frame.
                let id = peek_frame_id(&self.input);
                ReplyWriter::new().error_frame(
                    &mut self.out,
                    id,
                    Method::None,
                    ErrorCode::BadFrame,
                    "a ring record must hold exactly one whole frame",
                );
            }
            n += 1;
            moved = true;
            moved |= self.publish();
        }
        moved
    }

    /// Moves reply frames from `out` into the reply ring while they fit;
    /// wakes the client once if it sleeps.
    fn publish(&mut self) -> bool {
        let start = self.sent;
        while self.sent < self.out.len() {
            let rest = &self.out[self.sent..];
            let Some(len) = frame_len(rest) else {
                break;
            };
            let frame = &rest[..len];
            let max = self.replies.ring().max_payload();
            let result = if len > max {
                let mut err = Vec::new();
                ReplyWriter::new().error_frame(
                    &mut err,
                    peek_frame_id(frame),
                    Method::None,
                    ErrorCode::TooLarge,
                    &format!("reply of {len} bytes exceeds the shm ring's limit of {max}"),
                );
                self.replies
                    .send(&Envelope::reply(peek_frame_id(frame)), &err)
            } else {
                self.replies
                    .reserve(len)
                    .map_err(Into::into)
                    .map(|mut grant| {
                        grant.payload_mut().copy_from_slice(frame);
                        grant.commit_quiet(&Envelope::reply(peek_frame_id(frame)));
                    })
            };
            if result.is_err() {
                break; // full: the rest waits for the next turn
            }
            self.sent += len;
        }
        let moved = self.sent != start;
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
        if moved {
            let _ = self.replies.notify();
        }
        moved
    }
}

/// The length of the whole frame `bytes` starts with, if it is all there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    peek_frame_len(bytes).filter(|&len| bytes.len() >= len)
}
