//! Proxy mode's forwarding (`cluster-proxy yes`): requests for slots of
//! other nodes go to them off the server threads. A server thread submits
//! a [`Job`] (one or more [`Part`]s, each a request for one peer) and
//! parks the client; each part goes to the link of its peer (protocol,
//! tracking or not): a writer thread that writes requests in order on one
//! pipelined connection and a reader thread that matches the replies to
//! them in order (`link.rs`). The parts of a split command travel to their
//! peers in parallel; when a job's last part is answered, its [`Done`]
//! goes to `deliver`, which mails it to the submitting thread's inbox.
//! A request nobody waits for ([`Forwarder::send_unanswered`]: a broadcast
//! PUBLISH) travels the same links, in order with the rest; its reply is
//! dropped and only counted ([`Unanswered`]).
//!
//! Failures are bounded: every request has a deadline
//! (`cluster-forward-timeout-ms` from its submission, connecting
//! included); a connection whose oldest request missed it is closed and
//! everything in flight on it fails; a peer that failed has its circuit
//! opened for as long, so requests for it fail at once meanwhile. A part
//! answered `-MOVED` (the peer's view is newer) is sent once to the node
//! it names, no further: a single command, a part whose every command was
//! refused so, or a transaction whose queue was and whose EXEC aborted
//! (nothing of it ran).
//!
//! Client-side caching across nodes: a tracking client's read (RESP3)
//! travels on its peer's tracking link, whose connections said `CLIENT
//! TRACKING on`; the peer's invalidation pushes come back on them between
//! the replies, and go to the server's own tracking table
//! ([`PeerTracking`]), which mails the clients that read the key. Each
//! connection notes the keys read through it, to invalidate them all when
//! it is lost (the peer then no longer tracks them for us); see
//! `link.rs` for the order of a push against the replies.

mod link;
mod peer;
pub mod reply;
#[cfg(test)]
mod tests;
mod tracked;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::Sender;

pub use peer::{encode_command, PeerConn};
pub use tracked::PeerTracking;

/// A forward this thread waits for (numbered per server thread).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ForwardId(pub u64);

/// One peer's share of a forwarded command.
#[derive(Debug)]
pub struct Part {
    /// The peer's announced `host:port`.
    pub addr: String,
    /// RESP commands, as the peer will read them.
    pub request: Vec<u8>,
    /// How many replies `request` gets.
    pub replies: usize,
    /// A tracking client's read (RESP3 only): the keys the peer will
    /// track for the link; the part goes on the peer's tracking link.
    pub tracked: Option<Vec<Box<[u8]>>>,
}

/// Each reply of a part, as the peer wrote it; or why there is none.
pub type PartResult = Result<Vec<Vec<u8>>, ForwardError>;

#[derive(Debug)]
pub struct Job {
    /// The server thread of the waiting client.
    pub thread: usize,
    pub id: ForwardId,
    /// The client speaks RESP3: so must the peer connection.
    pub resp3: bool,
    pub parts: Vec<Part>,
}

/// A finished job: one result per part, in the job's order.
#[derive(Debug)]
pub struct Done {
    pub thread: usize,
    pub id: ForwardId,
    pub results: Vec<PartResult>,
}

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("timed out")]
    Timeout,
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(std::io::Error),
    #[error("the reply is not RESP")]
    Malformed,
    #[error("refused the connection's greeting: {0}")]
    Handshake(String),
    #[error("failed recently (circuit open)")]
    CircuitOpen,
    #[error("forwarding is not available")]
    Unavailable,
}

impl ForwardError {
    /// The same error once more (for each request of a failed connection).
    fn again(&self) -> ForwardError {
        match self {
            ForwardError::Timeout => ForwardError::Timeout,
            ForwardError::Closed => ForwardError::Closed,
            ForwardError::Io(e) => ForwardError::Io(std::io::Error::new(e.kind(), e.to_string())),
            ForwardError::Malformed => ForwardError::Malformed,
            ForwardError::Handshake(t) => ForwardError::Handshake(t.clone()),
            ForwardError::CircuitOpen => ForwardError::CircuitOpen,
            ForwardError::Unavailable => ForwardError::Unavailable,
        }
    }
}

/// Hands a finished job to its thread (the inbox, in the server).
pub type Deliver = Box<dyn Fn(Done) + Send + Sync>;
/// The password peers want (`requirepass`, shared by the cluster), read
/// when a connection is opened.
pub type Password = Box<dyn Fn() -> Option<String> + Send + Sync>;

pub struct Forwarder {
    shared: Arc<Shared>,
}

struct Shared {
    timeout: Duration,
    password: Password,
    deliver: Deliver,
    tracking: Box<dyn PeerTracking>,
    /// Peers whose circuit is open, until when.
    open: Mutex<HashMap<String, Instant>>,
    /// Each peer's links: its writer's queue.
    links: Mutex<HashMap<LinkKey, Sender<Request>>>,
    /// What became of the requests nobody waits for.
    unanswered: Unanswered,
}

/// Requests sent with [`Forwarder::send_unanswered`], by outcome (INFO).
#[derive(Debug, Default)]
pub struct Unanswered {
    /// Answered by their peer (not with an error).
    pub delivered: AtomicU64,
    /// Failed: the peer refused or errored, timed out, or its circuit was open.
    pub dropped: AtomicU64,
}

/// One link: a peer, the protocol of its connections, and whether they
/// track what they read (a tracking client's reads go there).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct LinkKey {
    addr: String,
    resp3: bool,
    tracking: bool,
}

/// A job's parts still out, and the results of those answered.
struct JobState {
    thread: usize,
    id: ForwardId,
    results: Mutex<Vec<Option<PartResult>>>,
    left: AtomicUsize,
    /// Invalidations that came after one of its parts' replies, held until
    /// its `Done` is mailed (then they follow it); None once it is.
    held: Mutex<Option<Vec<Box<[u8]>>>>,
}

/// Who waits for a request's replies.
enum ReplyTo {
    /// Part `index` of a job a client waits for.
    Job { job: Arc<JobState>, index: usize },
    /// Nobody: the replies are dropped, the outcome counted ([`Unanswered`]).
    Nobody,
}

/// One part on its way to a peer.
struct Request {
    reply_to: ReplyTo,
    part: Part,
    resp3: bool,
    deadline: Instant,
    /// Already sent again after a -MOVED (never twice).
    redirected: bool,
    /// The first request written into a pooled connection after it sat
    /// idle: if the peer resets that connection before answering it, the
    /// peer's socket was closed or closing with it unread (`link.rs`).
    after_idle: bool,
    /// Already sent again after such a reset (never twice).
    resent: bool,
    /// The cluster map's generation when it was sent.
    generation: u64,
    shared: Arc<Shared>,
}

impl Forwarder {
    pub fn start(
        timeout: Duration,
        password: Password,
        deliver: Deliver,
        tracking: Box<dyn PeerTracking>,
    ) -> Forwarder {
        Forwarder {
            shared: Arc::new(Shared {
                timeout,
                password,
                deliver,
                tracking,
                open: Mutex::new(HashMap::new()),
                links: Mutex::new(HashMap::new()),
                unanswered: Unanswered::default(),
            }),
        }
    }

    /// Sends each part of `job` to its peer's link; its `Done` comes
    /// through `deliver` once every part is answered or failed.
    pub fn submit(&self, job: Job) {
        let deadline = Instant::now() + self.shared.timeout;
        let state = Arc::new(JobState {
            thread: job.thread,
            id: job.id,
            results: Mutex::new(job.parts.iter().map(|_| None).collect()),
            left: AtomicUsize::new(job.parts.len()),
            held: Mutex::new(Some(Vec::new())),
        });
        if job.parts.is_empty() {
            (self.shared.deliver)(Done::failed(&job, || ForwardError::Unavailable));
            return;
        }
        for (index, part) in job.parts.into_iter().enumerate() {
            let reply_to = ReplyTo::Job {
                job: state.clone(),
                index,
            };
            self.send(reply_to, part, job.resp3, deadline);
        }
    }

    /// Sends each part to its peer (RESP2) with nobody waiting for the
    /// replies: they are dropped, and each part counted delivered or
    /// dropped ([`Forwarder::unanswered`]). Never blocks: the links queue.
    pub fn send_unanswered(&self, parts: Vec<Part>) {
        let deadline = Instant::now() + self.shared.timeout;
        for part in parts {
            self.send(ReplyTo::Nobody, part, false, deadline);
        }
    }

    /// What became of the parts sent with [`Forwarder::send_unanswered`].
    pub fn unanswered(&self) -> &Unanswered {
        &self.shared.unanswered
    }

    fn send(&self, reply_to: ReplyTo, part: Part, resp3: bool, deadline: Instant) {
        // Only a tracked read's is looked at (`link.rs`).
        let generation = match part.tracked {
            Some(_) => self.shared.tracking.generation(),
            None => 0,
        };
        self.shared.route(Request {
            reply_to,
            part,
            resp3,
            deadline,
            redirected: false,
            after_idle: false,
            resent: false,
            generation,
            shared: self.shared.clone(),
        });
    }
}

impl Done {
    /// `job` failed whole, every part with `error()`.
    pub fn failed(job: &Job, error: impl Fn() -> ForwardError) -> Done {
        Done {
            thread: job.thread,
            id: job.id,
            results: job.parts.iter().map(|_| Err(error())).collect(),
        }
    }
}

impl Request {
    /// The job waiting for it, if any.
    fn job(&self) -> Option<Arc<JobState>> {
        match &self.reply_to {
            ReplyTo::Job { job, .. } => Some(job.clone()),
            ReplyTo::Nobody => None,
        }
    }

    fn fail(self, e: ForwardError) {
        self.complete(Err(e));
    }

    /// Its replies: done, unless they say none of it ran because its slot
    /// moved (`reply::redirect_of`: -MOVED answers, or a transaction
    /// aborted by them): then it is sent on once more (a job's part: an
    /// unanswered request is never redirected).
    fn answered(mut self, replies: Vec<Vec<u8>>) {
        let waited = matches!(self.reply_to, ReplyTo::Job { .. });
        if let (false, true) = (self.redirected, waited) {
            if let Some(owner) = reply::redirect_of(&replies).filter(|o| *o != self.part.addr) {
                self.part.addr = owner.to_string();
                self.redirected = true;
                let shared = self.shared.clone();
                shared.route(self);
                return;
            }
        }
        self.complete(Ok(replies));
    }

    fn complete(self, result: PartResult) {
        let (job, index) = match &self.reply_to {
            ReplyTo::Job { job, index } => (job, *index),
            ReplyTo::Nobody => {
                let counts = &self.shared.unanswered;
                let refused = |r: &Vec<Vec<u8>>| r.iter().any(|r| r.starts_with(b"-"));
                let counter = match &result {
                    Ok(replies) if !refused(replies) => &counts.delivered,
                    _ => &counts.dropped,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        {
            let mut results = job.results.lock().unwrap_or_else(|e| e.into_inner());
            results[index] = Some(result);
        }
        if job.left.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        let results = std::mem::take(&mut *job.results.lock().unwrap_or_else(|e| e.into_inner()));
        let results = results
            .into_iter()
            .map(|r| r.unwrap_or(Err(ForwardError::Closed)))
            .collect();
        (self.shared.deliver)(Done {
            thread: job.thread,
            id: job.id,
            results,
        });
        let held = job.held.lock().unwrap_or_else(|e| e.into_inner()).take();
        for key in held.unwrap_or_default() {
            self.shared.tracking.invalidate(&key);
        }
    }
}

impl Shared {
    /// Hands `request` to its peer's link, started on first use.
    fn route(self: &Arc<Self>, request: Request) {
        let key = LinkKey {
            addr: request.part.addr.clone(),
            resp3: request.resp3,
            // Pushes come on the connection itself: RESP3 only.
            tracking: request.resp3 && request.part.tracked.is_some(),
        };
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let sender = match links.get(&key) {
            Some(s) => s.clone(),
            None => {
                let (sender, requests) = crossbeam::channel::unbounded();
                let (link, shared) = (key.clone(), self.clone());
                let started = std::thread::Builder::new()
                    .name(format!("citadel-fwd-{}", key.addr))
                    .spawn(move || link::write_loop(&link, &requests, &shared));
                if let Err(e) = started {
                    drop(links);
                    request.fail(ForwardError::Io(e));
                    return;
                }
                links.insert(key, sender.clone());
                sender
            }
        };
        drop(links);
        if let Err(e) = sender.send(request) {
            e.into_inner().fail(ForwardError::Closed);
        }
    }

    fn circuit_open(&self, addr: &str) -> bool {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match open.get(addr) {
            Some(&until) if Instant::now() < until => true,
            Some(_) => {
                open.remove(addr);
                false
            }
            None => false,
        }
    }

    /// `addr` failed: its circuit opens for a timeout's length.
    fn failed(&self, addr: &str, e: ForwardError) -> ForwardError {
        tracing::warn!(peer = addr, "forwarding failed: {e}");
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.insert(addr.to_string(), Instant::now() + self.timeout);
        e
    }
}
