//! One pipelined link to a peer (per address and protocol): a writer
//! thread that connects, greets and writes requests in the order they
//! come, and, per connection, a reader thread that reads the replies and
//! matches them in order to the requests in flight. Neither ever runs on
//! a server core.
//!
//! The in-flight queue is shared under a mutex with a `closed` flag: the
//! reader, when the connection fails (an error, EOF, or the oldest
//! request past its deadline), closes it, fails everything in flight and
//! shuts the socket (a writer blocked on a full send buffer wakes); the
//! writer queues a request only while the connection is open, so no
//! request is ever left waiting on a dead connection.
//!
//! A tracking link's reader also takes the peer's invalidation pushes
//! (`>` frames, told from replies by `reply::invalidation`) and notes the
//! keys each answered request read (`InFlight::tracked`, bounded by
//! `tracking-table-max-keys`; all invalidated when the connection goes).
//! A push follows the replies the peer wrote before it, so invalidating
//! at once follows their `Done` too, except for a job still waiting for
//! another peer's part: its invalidations are held and follow its `Done`
//! (`JobState::hold`), so a client never caches a value after the push
//! that made it stale.

use std::collections::{HashSet, VecDeque};
use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::Receiver;

use super::peer::{closed_by_peer, PeerConn};
use super::reply::{self, Invalidation};
use super::tracked::{invalidate, over_bound};
use super::{ForwardError, JobState, LinkKey, Request, Shared};

/// How often an idle reader looks at the deadline of what is in flight.
const TICK: Duration = Duration::from_millis(50);

/// One connection's requests in flight, oldest first.
#[derive(Default)]
struct InFlight {
    queue: VecDeque<Request>,
    closed: bool,
    /// Keys the peer tracks for this connection, as far as we know (a
    /// tracking link's): read through it and not invalidated since.
    tracked: HashSet<Box<[u8]>>,
    /// A batch was written before: the connection is a pooled one.
    used: bool,
    /// Why the writer's last write failed: the reader reports it (or
    /// resends), as if it had read it.
    write_error: Option<std::io::Error>,
}

/// Requests written together at most (one write for all that waited).
const BATCH: usize = 128;

/// A connection of the link: the writer's handle and its requests in flight.
type Conn = (TcpStream, Arc<Mutex<InFlight>>);

/// The writer thread of `link`: takes every request waiting, queues them
/// in flight and writes them with one write.
pub fn write_loop(link: &LinkKey, requests: &Receiver<Request>, shared: &Arc<Shared>) {
    let addr = link.addr.as_str();
    let mut conn: Option<Conn> = None;
    let mut bytes = Vec::new();
    while let Ok(first) = requests.recv() {
        let now = Instant::now();
        let mut batch = Vec::new();
        for request in std::iter::once(first).chain(requests.try_iter().take(BATCH - 1)) {
            if now >= request.deadline {
                // Waited out its time behind a connect: never sent.
                request.fail(ForwardError::Timeout);
            } else {
                batch.push(request);
            }
        }
        let Some(first) = batch.first() else {
            continue;
        };
        let deadline = first.deadline;
        // A connection the reader closed (the peer went, or closed it
        // idle), or an idle one the peer closed before the reader saw it
        // (`stale`), is replaced once; nothing of this batch was sent on it.
        let mut queued = false;
        for _ in 0..2 {
            if conn.as_ref().is_some_and(|(stream, f)| stale(stream, f)) {
                conn = None;
            }
            let (_, in_flight) = match conn.as_mut() {
                Some(c) => c,
                None if shared.circuit_open(addr) => break,
                None => match connect(link, deadline, shared) {
                    Ok(c) => conn.insert(c),
                    Err(e) => {
                        let e = shared.failed(addr, e);
                        for request in batch.drain(..) {
                            request.fail(e.again());
                        }
                        break;
                    }
                },
            };
            let mut f = lock(in_flight);
            if f.closed {
                continue;
            }
            bytes.clear();
            let after_idle = f.used && f.queue.is_empty();
            f.used = true;
            for (i, mut request) in batch.drain(..).enumerate() {
                request.after_idle = after_idle && i == 0;
                bytes.extend_from_slice(&request.part.request);
                f.queue.push_back(request);
            }
            drop(f);
            queued = true;
            break;
        }
        for request in batch.drain(..) {
            request.fail(ForwardError::CircuitOpen);
        }
        if let (true, Some((stream, in_flight))) = (queued, conn.as_mut()) {
            if let Err(e) = stream.write_all(&bytes) {
                // The reader fails (or resends) what is in flight once
                // the socket goes.
                lock(in_flight).write_error.get_or_insert(e);
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

/// Whether the writer must replace its connection: the reader closed it,
/// or it is idle and the peer has closed it (a restarted peer) though the
/// reader has not seen that yet; writing into it would fail the batch.
fn stale(stream: &TcpStream, in_flight: &Mutex<InFlight>) -> bool {
    let mut f = lock(in_flight);
    if !f.closed && f.queue.is_empty() && closed_by_peer(stream) {
        // The reader, on the EOF, finds nothing in flight: no failure.
        f.closed = true;
    }
    f.closed
}

/// Opens and greets a connection of `link`, and starts its reader.
fn connect(
    link: &LinkKey,
    deadline: Instant,
    shared: &Arc<Shared>,
) -> Result<(TcpStream, Arc<Mutex<InFlight>>), ForwardError> {
    let password = (shared.password)();
    let peer = PeerConn::open(link, password.as_deref(), deadline)?;
    let writer = peer.writer().map_err(ForwardError::Io)?;
    writer
        .set_write_timeout(Some(shared.timeout))
        .map_err(ForwardError::Io)?;
    let in_flight = Arc::new(Mutex::new(InFlight::default()));
    let (f, s, l) = (in_flight.clone(), shared.clone(), link.clone());
    std::thread::Builder::new()
        .name("citadel-fwd-read".into())
        .spawn(move || read_loop(&l, peer, &f, &s))
        .map_err(ForwardError::Io)?;
    Ok((writer, in_flight))
}

/// The reader of one connection: replies to requests in order (and, on
/// a tracking link, the peer's invalidations), until the connection fails
/// or the peer closes it.
fn read_loop(link: &LinkKey, mut peer: PeerConn, in_flight: &Mutex<InFlight>, shared: &Shared) {
    let addr = link.addr.as_str();
    let mut replies: Vec<Vec<u8>> = Vec::new();
    // Jobs with a part answered here whose `Done` is not mailed yet.
    let mut unfinished: Vec<Arc<JobState>> = Vec::new();
    let mut generation = shared.tracking.generation();
    let error = loop {
        if link.tracking && shared.tracking.generation() != generation {
            // The map changed: what was read here may be another node's
            // now (its writes never come back on this link).
            generation = shared.tracking.generation();
            let keys = lock(in_flight).tracked.drain().collect();
            invalidate(shared, &mut unfinished, keys);
        }
        let oldest = lock(in_flight).queue.front().map(|r| r.deadline);
        let wake = oldest.map_or(Instant::now() + TICK, |d| d.min(Instant::now() + TICK));
        match peer.read_reply(wake) {
            Ok(reply) => {
                if let Some(push) = link.tracking.then(|| reply::invalidation(&reply)).flatten() {
                    let keys = {
                        let mut f = lock(in_flight);
                        match push {
                            Invalidation::All => f.tracked.drain().collect(),
                            Invalidation::Keys(keys) => keys
                                .into_iter()
                                .map(|k| f.tracked.take(k).unwrap_or_else(|| k.into()))
                                .collect(),
                        }
                    };
                    invalidate(shared, &mut unfinished, keys);
                    continue;
                }
                let mut f = lock(in_flight);
                let Some(wanted) = f.queue.front().map(|r| r.part.replies) else {
                    break ForwardError::Malformed; // a reply nobody asked for
                };
                replies.push(reply);
                if replies.len() < wanted {
                    continue;
                }
                if let Some(request) = f.queue.pop_front() {
                    let read = request.part.tracked.iter().flatten().cloned();
                    let shed = if !link.tracking {
                        Vec::new()
                    } else if request.generation != generation {
                        // Sent before the map changed: not kept either.
                        read.collect()
                    } else {
                        // Tracked by the peer now (a push for an earlier
                        // read came before this reply, so after `take`).
                        f.tracked.extend(read);
                        over_bound(&mut f.tracked, shared.tracking.max_keys())
                    };
                    drop(f);
                    // Only a tracking link holds pushes behind jobs.
                    let job = link.tracking.then(|| request.job()).flatten();
                    request.answered(std::mem::take(&mut replies));
                    unfinished.extend(job.filter(|j| !j.delivered()));
                    if link.tracking {
                        invalidate(shared, &mut unfinished, shed);
                    }
                }
            }
            Err(ForwardError::Timeout) => {
                if oldest.is_some_and(|d| Instant::now() >= d) {
                    break ForwardError::Timeout;
                }
            }
            Err(e) => break e,
        }
    };
    let (failed, lost, write_error) = {
        let mut f = lock(in_flight);
        f.closed = true;
        let failed: Vec<Request> = f.queue.drain(..).collect();
        (
            failed,
            f.tracked.drain().collect::<Vec<_>>(),
            f.write_error.take(),
        )
    };
    let error = write_error.map_or(error, ForwardError::Io);
    peer.shutdown();
    // The peer tracks nothing for a closed connection: what was read
    // through it may change unseen.
    invalidate(shared, &mut unfinished, lost);
    if failed.is_empty() && matches!(error, ForwardError::Closed) {
        return; // The peer closed an idle connection: no failure.
    }
    let failed = if replies.is_empty() && unread_by_peer(&error, &failed) {
        resend_once(addr, failed)
    } else {
        failed
    };
    if failed.is_empty() {
        return;
    }
    let error = shared.failed(addr, error);
    for request in failed {
        request.fail(error.again());
    }
}

/// Whether a connection's failure shows the peer never read what is in
/// flight: reset before answering the first request written after the
/// connection sat idle. A peer closes with a reset only if bytes were
/// left unread in its socket, or came after it was closed; a peer that
/// read the request and then died closes with a FIN. The reset of an
/// idle pooled connection is the usual end of a peer that was killed
/// and restarted: its old socket, held by its io_uring until the ring's
/// teardown (asynchronous in the kernel), still looked open when the
/// writer checked it (`stale`), took the request, and was closed unread.
fn unread_by_peer(error: &ForwardError, failed: &[Request]) -> bool {
    let reset = matches!(error, ForwardError::Io(e) if matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
    ));
    reset && failed.first().is_some_and(|r| r.after_idle)
}

/// Sends each request of a connection the peer reset unread once more,
/// on a fresh connection (the writer replaces the closed one); returns
/// those already sent again, which fail.
fn resend_once(addr: &str, failed: Vec<Request>) -> Vec<Request> {
    let (again, resend): (Vec<Request>, Vec<Request>) = failed.into_iter().partition(|r| r.resent);
    if !resend.is_empty() {
        tracing::info!(
            peer = addr,
            requests = resend.len(),
            "the peer reset a pooled connection unread: sending again on a fresh one"
        );
    }
    for mut request in resend {
        request.resent = true;
        let shared = request.shared.clone();
        shared.route(request);
    }
    again
}

fn lock(in_flight: &Mutex<InFlight>) -> std::sync::MutexGuard<'_, InFlight> {
    in_flight.lock().unwrap_or_else(|e| e.into_inner())
}
