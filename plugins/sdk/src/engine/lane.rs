//! One ring pair: requests read and not yet committed, records waiting for
//! reply-ring space, and the commit rule. Requests are answered in any
//! order; one is committed only once it and every request before it are
//! settled (its reply published, or none needed), so a plugin killed at any
//! point gets every unanswered request again (at-least-once).
//!
//! A pipeline stage's pair also has output rings (the next stage's
//! request rings): its successful replies go there, as requests of the
//! next stage (all records of one call to the same next instance, so they
//! stay in order: `outputs.rs`); errors still go to the server, which
//! answers at once.

use std::collections::VecDeque;

use citadel_proto::envelope::{unix_ms, STATUS_DEADLINE, STATUS_OK, STATUS_POISON};
use citadel_proto::ring::{CommitError, NotifyError, ReadError, ReserveError};
use citadel_proto::{Consumer, Envelope, Format, Kind, PluginEnd, Producer};

use super::outputs::{continues_call, Outputs};
use crate::message::{Reply, Request};

/// A request read and not yet committed.
#[derive(Debug)]
struct Slot {
    /// Ring position just past the request (what committing it means).
    end: u64,
    /// Its envelope, with this delivery's attempt count.
    request: Envelope,
    answered: bool,
    settled: bool,
    /// Its call ends with it here (see `outputs::continues_call`).
    ends_call: bool,
}

/// Where a record goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dest {
    /// The server (the reply ring).
    Server,
    /// The next pipeline stage (the ring its call is open in).
    Next,
}

/// A record waiting for space in the reply ring.
#[derive(Debug)]
struct Outgoing {
    /// The request it answers (None: unsolicited).
    seq: Option<u64>,
    dest: Dest,
    /// Its call ends with it here.
    ends_call: bool,
    envelope: Envelope,
    payload: Vec<u8>,
}

/// Why a ring pair could not be served.
#[derive(Debug, thiserror::Error)]
pub enum LaneError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

/// Requests of one pair handed to a handler: `requests[i]` is `seqs[i]`.
pub(crate) struct Batch<'a, 'r> {
    pub requests: &'a [Request<'r>],
    pub seqs: &'a [u64],
}

/// Everything of a pair but its request ring (which the batch borrows).
#[derive(Debug)]
pub(crate) struct Book {
    pair: usize,
    replies: Producer,
    /// A pipeline stage's output rings (empty: replies go to the server).
    pub(crate) outputs: Outputs,
    /// In ring order; `base` is the sequence number of the front.
    pending: VecDeque<Slot>,
    base: u64,
    outbox: VecDeque<Outgoing>,
}

#[derive(Debug)]
pub(crate) struct Lane {
    pub(crate) requests: Consumer,
    pub(crate) book: Book,
}

/// What a read turn needs to know.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadLimits {
    pub max_attempts: u16,
    /// Most requests read and not yet committed.
    pub in_flight: usize,
    /// Most requests handed to the handler at once.
    pub batch: usize,
}

impl Lane {
    pub(crate) fn new(pair: usize, end: PluginEnd) -> Self {
        let book = Book {
            pair,
            replies: end.replies,
            outputs: Outputs::new(end.outputs),
            pending: VecDeque::new(),
            base: 0,
            outbox: VecDeque::new(),
        };
        Self {
            requests: end.requests,
            book,
        }
    }

    /// Reads requests while the limits allow; poison (past `max_attempts`
    /// deliveries) and expired ones are answered here, the rest go to
    /// `handle` as one batch. Returns whether anything was read.
    pub(crate) fn read(
        &mut self,
        limits: ReadLimits,
        handle: &mut dyn FnMut(Batch<'_, '_>, &mut Book),
    ) -> Result<bool, ReadError> {
        let Lane { requests, book } = self;
        let mut batch = Vec::new();
        let mut seqs = Vec::new();
        let mut now_ms = None;
        let mut any = false;
        while book.pending.len() < limits.in_flight && batch.len() < limits.batch {
            let Some(record) = requests.read()? else {
                break;
            };
            any = true;
            // Counted in ring memory before any handler runs: a crash in it
            // still counts as an attempt.
            let attempt = record.mark_delivery();
            let request = Envelope {
                attempt,
                ..record.envelope()
            };
            let ends_call = !continues_call(record.payload());
            let seq = book.open(record.end(), request, ends_call);
            if attempt > limits.max_attempts {
                let abandoned = Reply {
                    kind: Kind::Abandoned,
                    status: STATUS_POISON,
                    ..Reply::ok(Vec::new())
                };
                book.answer(seq, Some(abandoned));
            } else if request.deadline_ms != 0
                && request.expired_at(*now_ms.get_or_insert_with(unix_ms))
            {
                let late = Reply::error(STATUS_DEADLINE, "deadline passed before delivery");
                book.answer(seq, Some(late));
            } else {
                batch.push(Request {
                    id: request.id,
                    kind: request.kind,
                    format: request.format,
                    deadline_ms: request.deadline_ms,
                    attempt,
                    pair: book.pair,
                    payload: record.payload(),
                });
                seqs.push(seq);
            }
        }
        if !batch.is_empty() {
            let batch = Batch {
                requests: &batch,
                seqs: &seqs,
            };
            let started = std::time::Instant::now();
            let records = batch.requests.len() as u64;
            handle(batch, book);
            requests.record_handled(records, started.elapsed().as_nanos() as u64);
        }
        Ok(any)
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.book.pending.len()
    }

    /// Nothing in flight and nothing left to publish.
    pub(crate) fn is_idle(&self) -> bool {
        self.book.pending.is_empty() && self.book.outbox.is_empty()
    }

    /// Records wait for space in the reply ring.
    pub(crate) fn is_blocked(&self) -> bool {
        !self.book.outbox.is_empty()
    }

    /// Publishes what fits in the reply ring, wakes the server if it
    /// sleeps, then commits the settled prefix of the requests.
    pub(crate) fn flush(&mut self) -> Result<(), LaneError> {
        if self.book.publish()? {
            self.book.replies.notify()?;
        }
        if let Some(end) = self.book.settled_prefix() {
            self.requests.commit_to(end)?;
        }
        Ok(())
    }
}

impl Book {
    /// Records a request read; returns its sequence number.
    fn open(&mut self, end: u64, request: Envelope, ends_call: bool) -> u64 {
        self.pending.push_back(Slot {
            end,
            request,
            answered: false,
            settled: false,
            ends_call,
        });
        self.base + self.pending.len() as u64 - 1
    }

    pub(crate) fn pair(&self) -> usize {
        self.pair
    }

    /// Largest payload the reply ring takes.
    pub(crate) fn max_payload(&self) -> usize {
        self.replies.ring().max_payload()
    }

    /// Queues the answer to request `seq` (None: the handler gave none).
    /// Records other than `Kind::Request` need no reply: they settle.
    pub(crate) fn answer(&mut self, seq: u64, reply: Option<Reply>) {
        let pair = self.pair;
        let Some(slot) = seq
            .checked_sub(self.base)
            .and_then(|i| self.pending.get_mut(i as usize))
            .filter(|s| !s.answered)
        else {
            tracing::error!(pair, seq, "an answer for no pending request");
            return;
        };
        slot.answered = true;
        if slot.request.kind != Kind::Request {
            slot.settled = true;
            return;
        }
        let reply = reply.unwrap_or_else(|| {
            Reply::handler_failed("the handler dropped the request without a reply")
        });
        let mut envelope = Envelope {
            id: slot.request.id,
            kind: reply.kind,
            format: reply.format,
            deadline_ms: slot.request.deadline_ms,
            attempt: slot.request.attempt,
            status: reply.status,
        };
        let dest = if !self.outputs.is_empty() && reply.kind == Kind::Reply && !reply.to_server {
            envelope.kind = Kind::Request;
            envelope.attempt = 0;
            Dest::Next
        } else {
            Dest::Server
        };
        let ends_call = slot.ends_call;
        self.outbox.push_back(Outgoing {
            seq: Some(seq),
            dest,
            ends_call,
            envelope,
            payload: reply.payload,
        });
    }

    /// Settles request `seq` without a reply: the handler passed its
    /// output to the next stage itself (already published).
    pub(crate) fn settle(&mut self, seq: u64) {
        match seq
            .checked_sub(self.base)
            .and_then(|i| self.pending.get_mut(i as usize))
        {
            Some(slot) => {
                slot.answered = true;
                slot.settled = true;
            }
            None => tracing::error!(pair = self.pair, seq, "settling no pending request"),
        }
    }

    /// Queues a record that answers no request (id 0, status 0).
    pub(crate) fn push_unsolicited(&mut self, kind: Kind, format: Format, payload: Vec<u8>) {
        let envelope = Envelope {
            kind,
            format,
            status: STATUS_OK,
            ..Envelope::reply(0)
        };
        self.outbox.push_back(Outgoing {
            seq: None,
            dest: Dest::Server,
            ends_call: false,
            envelope,
            payload,
        });
    }

    /// Publishes queued records, in order, until a ring is full; returns
    /// whether the server should be woken (something published, or the
    /// ring is full and it must drain it). Output rings are woken here.
    fn publish(&mut self) -> Result<bool, NotifyError> {
        let mut wake = false;
        let mut passed_on = false;
        while let Some(out) = self.outbox.front_mut() {
            let ring = match out.dest {
                Dest::Server => &mut self.replies,
                Dest::Next => match self.outputs.route(out.envelope.id) {
                    Some(n) => self.outputs.ring(n),
                    // Every next instance is closed (a moment of an
                    // upgrade): wait as for a full ring.
                    None => break,
                },
            };
            match ring.reserve(out.payload.len()) {
                Ok(mut grant) => {
                    grant.payload_mut().copy_from_slice(&out.payload);
                    grant.commit_quiet(&out.envelope);
                    match out.dest {
                        Dest::Server => wake = true,
                        Dest::Next => passed_on = true,
                    }
                    if let Some(seq) = out.seq {
                        self.pending[(seq - self.base) as usize].settled = true;
                    }
                    if out.ends_call {
                        self.outputs.end(out.envelope.id);
                    }
                    self.outbox.pop_front();
                }
                Err(ReserveError::Full { .. }) => {
                    wake |= out.dest == Dest::Server;
                    break;
                }
                Err(ReserveError::TooLarge { len, max }) => {
                    let why = format!("reply of {len} bytes exceeds the ring's maximum of {max}");
                    if out.seq.is_some() {
                        out.dest = Dest::Server;
                        let failed = Reply::handler_failed(&why);
                        out.envelope.kind = failed.kind;
                        out.envelope.format = failed.format;
                        out.envelope.status = failed.status;
                        out.payload = failed.payload;
                    } else {
                        tracing::warn!(pair = self.pair, "dropping an unsolicited record: {why}");
                        self.outbox.pop_front();
                    }
                }
            }
        }
        if passed_on {
            self.outputs.notify_all()?;
        }
        Ok(wake)
    }

    /// Pops the settled requests at the front; returns the ring position
    /// to commit to, if any.
    fn settled_prefix(&mut self) -> Option<u64> {
        let mut commit = None;
        while self.pending.front().is_some_and(|s| s.settled) {
            commit = self.pending.pop_front().map(|s| s.end);
            self.base += 1;
        }
        commit
    }
}
