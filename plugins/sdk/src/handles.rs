//! Handles other threads use to talk to the serve loop: a [`Responder`]
//! answers one request, a [`Notifier`] pushes unsolicited records (e.g.
//! invalidations), a [`Stopper`] asks the loop to drain and return. All are
//! `Send + 'static`; each message wakes the loop if it is parked.

use std::sync::Arc;

use citadel_proto::{Format, Kind};

use crate::engine::inbox::{Inbox, Msg};
use crate::message::Reply;

/// The right (and duty) to answer one request, from any thread, at any
/// time. Replies are published as they come; the request is committed once
/// it and every earlier request of its ring pair are answered. Dropping a
/// `Responder` without replying answers the request with a handler-failed
/// error, so a request is never left hanging.
#[derive(Debug)]
#[must_use = "a request is answered (or failed, on drop) through its Responder"]
pub struct Responder {
    inbox: Arc<Inbox>,
    pair: usize,
    seq: u64,
    id: u64,
    max_payload: usize,
    answered: bool,
}

impl Responder {
    pub(crate) fn new(
        inbox: Arc<Inbox>,
        pair: usize,
        seq: u64,
        id: u64,
        max_payload: usize,
    ) -> Self {
        Self {
            inbox,
            pair,
            seq,
            id,
            max_payload,
            answered: false,
        }
    }

    /// The request's id (as in [`Request::id`](crate::Request::id)).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// Largest reply payload the reply ring takes; a larger reply is
    /// replaced by a handler-failed error.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Answers the request.
    pub fn reply(mut self, reply: impl Into<Reply>) {
        self.answered = true;
        self.send(Some(reply.into()));
    }

    fn send(&self, reply: Option<Reply>) {
        self.inbox.send(Msg::Answer {
            pair: self.pair,
            seq: self.seq,
            reply,
        });
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if !self.answered {
            self.send(None);
        }
    }
}

/// Pushes unsolicited records on the plugin's reply rings (round robin over
/// the ring pairs: the server's cache is shared, one pair suffices).
#[derive(Clone, Debug)]
pub struct Notifier {
    inbox: Arc<Inbox>,
}

impl Notifier {
    pub(crate) fn new(inbox: Arc<Inbox>) -> Self {
        Self { inbox }
    }

    /// `key` changed: the server drops it. Keys that reach the loop together
    /// are batched into one `Invalidation` record (bounded in size). An
    /// empty key means anything may have changed (a resync).
    pub fn invalidate(&self, key: impl Into<Vec<u8>>) {
        self.inbox.send(Msg::Invalidate(key.into()));
    }

    /// Changes may have been missed (e.g. the change feed was just
    /// (re)subscribed): `Invalidation { resync: true }`.
    pub fn resync(&self) {
        self.inbox.send(Msg::Resync);
    }

    /// Any other unsolicited record (id 0, status 0).
    pub fn push(&self, kind: Kind, format: Format, payload: Vec<u8>) {
        self.inbox.send(Msg::Push {
            kind,
            format,
            payload,
        });
    }
}

/// Asks the serve loop to stop as SIGTERM does: stop reading, finish and
/// publish what is in hand, commit, return `Ok`.
#[derive(Clone, Debug)]
pub struct Stopper {
    inbox: Arc<Inbox>,
}

impl Stopper {
    pub(crate) fn new(inbox: Arc<Inbox>) -> Self {
        Self { inbox }
    }

    pub fn stop(&self) {
        self.inbox.send(Msg::Stop);
    }
}
