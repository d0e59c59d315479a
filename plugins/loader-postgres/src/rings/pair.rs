//! One ring pair: requests read and not yet committed, replies waiting for
//! ring space, and the commit rule. Loads finish in any order; a request is
//! committed only once it and every request before it are settled (their
//! replies published, or none needed), so a plugin killed at any point gets
//! every unanswered request again.

use std::collections::VecDeque;

use citadel_proto::envelope::{unix_ms, STATUS_DEADLINE, STATUS_POISON};
use citadel_proto::ring::{CommitError, NotifyError, ReadError, ReserveError};
use citadel_proto::{Consumer, Envelope, Kind, PluginEnd, Producer};

use crate::error::LoadError;
use crate::wire::{self, Answer};

/// A load for the database side to run; its answer comes back as
/// `(pair, seq)`.
#[derive(Debug)]
pub struct Job {
    pub pair: usize,
    pub seq: u64,
    pub key: Vec<u8>,
    /// Unix ms; 0 = none.
    pub deadline_ms: u64,
}

/// A request read and not yet committed.
#[derive(Debug)]
struct Pending {
    /// Ring position just past the request (what committing it means).
    end: u64,
    /// The request's envelope (id, deadline, this delivery's attempt).
    request: Envelope,
    settled: bool,
}

/// A record waiting for space in the reply ring.
#[derive(Debug)]
struct Outgoing {
    /// The request it answers (None: unsolicited).
    seq: Option<u64>,
    envelope: Envelope,
    payload: Vec<u8>,
}

#[derive(Debug)]
pub struct Pair {
    index: usize,
    requests: Consumer,
    replies: Producer,
    /// In ring order; `base` is the sequence number of the front.
    pending: VecDeque<Pending>,
    base: u64,
    outbox: VecDeque<Outgoing>,
}

/// Why a pair could not be served.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Commit(#[from] CommitError),
}

impl Pair {
    pub fn new(index: usize, end: PluginEnd) -> Self {
        Self {
            index,
            requests: end.requests,
            replies: end.replies,
            pending: VecDeque::new(),
            base: 0,
            outbox: VecDeque::new(),
        }
    }

    pub fn requests(&self) -> &Consumer {
        &self.requests
    }

    /// Requests read and not yet committed.
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Nothing in flight and nothing left to publish.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.outbox.is_empty()
    }

    /// Records wait for space in the reply ring.
    pub fn is_blocked(&self) -> bool {
        !self.outbox.is_empty()
    }

    /// Reads requests while fewer than `limit` are in flight. Loads go to
    /// `dispatch`; poison (past `max_attempts` deliveries), expired and
    /// malformed requests are answered here; other kinds need no answer.
    /// Returns whether anything was read.
    pub fn read(
        &mut self,
        max_attempts: u16,
        limit: usize,
        dispatch: &mut impl FnMut(Job),
    ) -> Result<bool, ReadError> {
        let mut any = false;
        let mut now_ms = None;
        while self.pending.len() < limit {
            let Some(record) = self.requests.read()? else {
                break;
            };
            any = true;
            // Counted in ring memory before the load runs: a crash during it
            // still counts as an attempt.
            let attempt = record.mark_delivery();
            let request = Envelope {
                attempt,
                ..record.envelope()
            };
            let seq = self.base + self.pending.len() as u64;
            self.pending.push_back(Pending {
                end: record.end(),
                request,
                settled: request.kind != Kind::Request,
            });
            if request.kind != Kind::Request {
                continue;
            }
            let answer = if attempt > max_attempts {
                Answer::raw_error(Kind::Abandoned, STATUS_POISON, "")
            } else if request.deadline_ms != 0
                && request.expired_at(*now_ms.get_or_insert_with(unix_ms))
            {
                Answer::raw_error(
                    Kind::Error,
                    STATUS_DEADLINE,
                    "deadline passed before delivery",
                )
            } else {
                match wire::load_key(request.format, record.payload()) {
                    Ok(key) => {
                        dispatch(Job {
                            pair: self.index,
                            seq,
                            key,
                            deadline_ms: request.deadline_ms,
                        });
                        continue;
                    }
                    Err(e) => Answer::failed(&e),
                }
            };
            self.outbox.push_back(reply_to(seq, &request, answer));
        }
        Ok(any)
    }

    /// Queues the answer to request `seq`.
    pub fn answer(&mut self, seq: u64, answer: Answer) {
        let Some(p) = seq
            .checked_sub(self.base)
            .and_then(|i| self.pending.get(i as usize))
        else {
            tracing::error!(pair = self.index, seq, "answer for no pending request");
            return;
        };
        let out = reply_to(seq, &p.request, answer);
        self.outbox.push_back(out);
    }

    /// Queues a record that answers no request (e.g. an invalidation).
    pub fn push_unsolicited(&mut self, answer: Answer) {
        let envelope = Envelope {
            kind: answer.kind,
            format: answer.format,
            status: answer.status,
            ..Envelope::reply(0)
        };
        self.outbox.push_back(Outgoing {
            seq: None,
            envelope,
            payload: answer.payload,
        });
    }

    /// Publishes what fits in the reply ring, wakes the server if it sleeps,
    /// then commits the settled prefix of the requests.
    pub fn flush(&mut self) -> Result<(), PairError> {
        let mut publish = false;
        while let Some(out) = self.outbox.front_mut() {
            match self.replies.reserve(out.payload.len()) {
                Ok(mut grant) => {
                    grant.payload_mut().copy_from_slice(&out.payload);
                    grant.commit_quiet(&out.envelope);
                    publish = true;
                    if let Some(seq) = out.seq {
                        self.pending[(seq - self.base) as usize].settled = true;
                    }
                    self.outbox.pop_front();
                }
                Err(ReserveError::Full { .. }) => {
                    publish = true;
                    break;
                }
                Err(ReserveError::TooLarge { len, max }) => {
                    let why = format!("reply of {len} bytes exceeds the reply ring's {max}");
                    if out.seq.is_some() {
                        let failed = Answer::failed(&LoadError::Origin(why));
                        out.envelope = Envelope {
                            kind: failed.kind,
                            format: failed.format,
                            status: failed.status,
                            ..out.envelope
                        };
                        out.payload = failed.payload;
                    } else {
                        tracing::warn!(pair = self.index, "dropping an unsolicited record: {why}");
                        self.outbox.pop_front();
                    }
                }
            }
        }
        if publish {
            self.replies.notify()?;
        }
        let mut commit = None;
        while self.pending.front().is_some_and(|p| p.settled) {
            commit = self.pending.pop_front().map(|p| p.end);
            self.base += 1;
        }
        if let Some(end) = commit {
            self.requests.commit_to(end)?;
        }
        Ok(())
    }
}

fn reply_to(seq: u64, request: &Envelope, answer: Answer) -> Outgoing {
    Outgoing {
        seq: Some(seq),
        envelope: Envelope {
            id: request.id,
            kind: answer.kind,
            format: answer.format,
            deadline_ms: request.deadline_ms,
            attempt: request.attempt,
            status: answer.status,
        },
        payload: answer.payload,
    }
}
