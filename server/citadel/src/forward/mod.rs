//! Proxy mode's forwarding (`cluster-proxy yes`): requests for slots of
//! other nodes go to them off the server threads. A server thread submits
//! a [`Job`] (one or more [`Part`]s, each a request for one peer) and
//! parks the client; a pool of worker threads, each with its own blocking
//! connection per peer (and protocol), writes every part's request first
//! (the parts of a split command travel in parallel), then reads each
//! part's replies in order, and hands the [`Done`] job to `deliver`,
//! which mails it to the submitting thread's inbox.
//!
//! Failures are bounded: every job has a deadline
//! (`cluster-forward-timeout-ms`, connecting included); a peer that missed
//! one or refused the connection has its circuit opened for as long, so
//! requests for it fail at once meanwhile. A part answered `-MOVED` (the
//! peer's view is newer) is sent once to the node it names, no further.

mod peer;
pub mod reply;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, Sender};

pub use peer::encode_command;
use peer::PeerConn;

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
    #[error("too many forwarded requests queued")]
    Busy,
}

/// Hands a finished job to its thread (the inbox, in the server).
pub type Deliver = Box<dyn Fn(Done) + Send + Sync>;
/// The password peers want (`requirepass`, shared by the cluster), read
/// when a connection is opened.
pub type Password = Box<dyn Fn() -> Option<String> + Send + Sync>;

pub struct Forwarder {
    jobs: Sender<Job>,
}

struct Shared {
    timeout: Duration,
    password: Password,
    deliver: Deliver,
    /// Peers whose circuit is open, until when.
    open: Mutex<HashMap<String, Instant>>,
}

/// Jobs waiting for a worker, at most (past it a job fails at once).
const QUEUE_LIMIT: usize = 65_536;

impl Forwarder {
    /// Starts `workers` forwarding threads.
    pub fn start(
        workers: usize,
        timeout: Duration,
        password: Password,
        deliver: Deliver,
    ) -> std::io::Result<Forwarder> {
        let (jobs, queue) = crossbeam::channel::bounded(QUEUE_LIMIT);
        let shared = Arc::new(Shared {
            timeout,
            password,
            deliver,
            open: Mutex::new(HashMap::new()),
        });
        for n in 0..workers.max(1) {
            let (queue, shared) = (queue.clone(), shared.clone());
            std::thread::Builder::new()
                .name(format!("citadel-fwd-{n}"))
                .spawn(move || work(&queue, &shared))?;
        }
        Ok(Forwarder { jobs })
    }

    /// Queues `job`; its `Done` comes through `deliver` (at once, failed,
    /// when the queue is full).
    pub fn submit(&self, job: Job, deliver_now: impl FnOnce(Done)) {
        if let Err(e) = self.jobs.try_send(job) {
            deliver_now(Done::failed(&e.into_inner(), || ForwardError::Busy));
        }
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

/// A worker's connections, by peer address and protocol (RESP3 or not).
type Pool = HashMap<(String, bool), PeerConn>;

fn work(queue: &Receiver<Job>, shared: &Shared) {
    let mut pool = Pool::new();
    while let Ok(job) = queue.recv() {
        let results = run(&mut pool, shared, &job);
        (shared.deliver)(Done {
            thread: job.thread,
            id: job.id,
            results,
        });
    }
}

fn run(pool: &mut Pool, shared: &Shared, job: &Job) -> Vec<PartResult> {
    let deadline = Instant::now() + shared.timeout;
    // Every request out first: the peers work in parallel.
    let sent: Vec<Result<(), ForwardError>> = job
        .parts
        .iter()
        .map(|p| send(pool, shared, &p.addr, job.resp3, &p.request, deadline))
        .collect();
    job.parts
        .iter()
        .zip(sent)
        .map(|(part, sent)| {
            sent?;
            let replies = receive(pool, shared, &part.addr, job.resp3, part.replies, deadline)?;
            match replies.as_slice() {
                [only] if part.replies == 1 => match reply::moved_to(only) {
                    // The peer's view is newer: once to the owner it names.
                    Some(owner) if owner != part.addr => {
                        let owner = owner.to_string();
                        send(pool, shared, &owner, job.resp3, &part.request, deadline)?;
                        receive(pool, shared, &owner, job.resp3, 1, deadline)
                    }
                    _ => Ok(replies),
                },
                _ => Ok(replies),
            }
        })
        .collect()
}

fn send(
    pool: &mut Pool,
    shared: &Shared,
    addr: &str,
    resp3: bool,
    request: &[u8],
    deadline: Instant,
) -> Result<(), ForwardError> {
    let key = (addr.to_string(), resp3);
    if pool.get(&key).is_some_and(PeerConn::is_stale) {
        pool.remove(&key);
    }
    if !pool.contains_key(&key) {
        if shared.circuit_open(addr) {
            return Err(ForwardError::CircuitOpen);
        }
        let password = (shared.password)();
        match PeerConn::open(addr, resp3, password.as_deref(), deadline) {
            Ok(conn) => {
                pool.insert(key.clone(), conn);
            }
            Err(e) => return Err(shared.failed(addr, e)),
        }
    }
    let conn = pool.get_mut(&key).expect("inserted above");
    conn.send(request).map_err(|e| {
        pool.remove(&key);
        shared.failed(addr, e)
    })
}

fn receive(
    pool: &mut Pool,
    shared: &Shared,
    addr: &str,
    resp3: bool,
    count: usize,
    deadline: Instant,
) -> PartResult {
    let key = (addr.to_string(), resp3);
    let conn = pool.get_mut(&key).ok_or(ForwardError::Closed)?;
    let mut replies = Vec::with_capacity(count);
    for _ in 0..count {
        match conn.read_reply(deadline) {
            Ok(r) => replies.push(r),
            Err(e) => {
                // Its replies are out of step now: never reuse it.
                pool.remove(&key);
                return Err(shared.failed(addr, e));
            }
        }
    }
    Ok(replies)
}

impl Shared {
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
