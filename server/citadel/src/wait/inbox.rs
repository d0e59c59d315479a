//! Cross-thread delivery: a thread finishes an operation another thread's
//! client waits for (a load settled here, with waiters on other cores) and
//! puts [`Mail`] in that thread's inbox: a lock-free queue (crossbeam's
//! `SegQueue`) plus an eventfd the owner's io_uring polls. The bell rings
//! once per batch: the first sender after the owner emptied the queue rings
//! it, later senders see `rung` set and only queue.

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};

use citadel_proto::EventFd;
use crossbeam::queue::SegQueue;

use crate::pipeline::{PipelineResult, PipelineWaitId};
use crate::readthrough::{LoadResult, LoadWaitId};

/// What one thread hands another.
#[derive(Debug)]
pub enum Mail {
    /// The result of one key of a read-through wait.
    LoadResult {
        wait: LoadWaitId,
        slot: u32,
        result: LoadResult,
    },
    /// A pipeline call another thread led finished.
    PipelineDone {
        wait: PipelineWaitId,
        result: PipelineResult,
    },
    /// One frame's result of a pipeline call another thread leads.
    PipelinePartial {
        wait: PipelineWaitId,
        index: u32,
        json: std::sync::Arc<[u8]>,
    },
    /// A message for subscribers this thread serves.
    Publish {
        message: std::sync::Arc<crate::pubsub::Message>,
        receivers: Vec<crate::pubsub::Delivery>,
    },
    /// CLIENT UNPAUSE: wakes the thread so it releases its paused clients.
    Unpause,
    /// An invalidation for connections this thread serves (client id, its
    /// connection).
    Invalidate {
        receivers: Vec<(u64, citadel_net::Waiter)>,
        what: super::Invalidated,
    },
    /// A command's MONITOR line for monitors this thread serves (client ids).
    Monitor {
        line: std::sync::Arc<[u8]>,
        monitors: Vec<u64>,
    },
    /// A forwarding worker finished a request of this thread's client.
    Forwarded(crate::forward::Done),
    /// A key a blocked client (id) of this thread waits for was written
    /// (`crate::blocking`): it looks again.
    KeyReady { client: u64 },
    /// A MIGRATE worker finished a MIGRATE of this thread's client.
    Migrated(crate::migrate::Done),
}

pub struct Inbox {
    queue: SegQueue<Mail>,
    /// Set by the first sender after the owner last emptied the queue: the
    /// bell has rung (or is about to) and need not ring again.
    rung: AtomicBool,
    bell: EventFd,
}

impl Inbox {
    pub fn new() -> std::io::Result<Inbox> {
        Ok(Inbox {
            queue: SegQueue::new(),
            rung: AtomicBool::new(false),
            bell: EventFd::new()?,
        })
    }

    pub fn fd(&self) -> RawFd {
        self.bell.as_fd().as_raw_fd()
    }

    /// Queues `mail` and wakes the owner unless a wake-up is already due.
    pub fn send(&self, mail: Mail) {
        self.queue.push(mail);
        // ORDERING: SeqCst fence + swap, paired with the owner's store of
        // `rung = false` + SeqCst fence + pops in `take` (a Dekker
        // handshake): either the owner's pops see this push, or this swap
        // sees `rung` cleared and rings the bell.
        fence(Ordering::SeqCst);
        if !self.rung.swap(true, Ordering::SeqCst) {
            if let Err(e) = self.bell.signal() {
                tracing::warn!("waking a server thread: {e}");
            }
        }
    }

    /// The bell rang: clear it (the queue is read by `take`).
    pub fn on_wake(&self) {
        if let Err(e) = self.bell.drain() {
            tracing::warn!("draining an inbox eventfd: {e}");
        }
    }

    /// Moves everything delivered so far into `into`. One relaxed load when
    /// nothing was sent: mail is only ever queued with `rung` set after it.
    pub fn take(&self, into: &mut Vec<Mail>) {
        if !self.rung.load(Ordering::Relaxed) {
            return;
        }
        // ORDERING: clear `rung`, SeqCst fence, then pop (pairs with the
        // sender's push + SeqCst fence + swap): mail pushed after our last
        // pop finds `rung` cleared and rings the bell again.
        self.rung.store(false, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        while let Some(mail) = self.queue.pop() {
            into.push(mail);
        }
    }
}

/// One inbox per server thread.
pub struct Inboxes {
    list: Vec<Inbox>,
}

impl Inboxes {
    pub fn new(threads: usize) -> std::io::Result<Inboxes> {
        Ok(Inboxes {
            list: (0..threads)
                .map(|_| Inbox::new())
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn get(&self, thread: usize) -> Option<&Inbox> {
        self.list.get(thread)
    }

    /// Delivers `mail` to `thread` (dropped, with a warning, if there is no such thread).
    pub fn send(&self, thread: usize, mail: Mail) {
        match self.list.get(thread) {
            Some(inbox) => inbox.send(mail),
            None => tracing::warn!(thread, "mail for a thread that does not exist"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Many senders, one owner that sleeps on the bell: nothing is lost and
    /// the owner is never left asleep with mail queued.
    #[test]
    fn senders_never_leave_mail_behind_a_sleeping_owner() {
        let inbox = Arc::new(Inbox::new().unwrap());
        let senders: Vec<_> = (0..4u32)
            .map(|t| {
                let inbox = inbox.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u32 {
                        inbox.send(Mail::LoadResult {
                            wait: LoadWaitId(u64::from(t)),
                            slot: i,
                            result: Ok(None),
                        });
                    }
                })
            })
            .collect();
        let mut got = Vec::new();
        let mut fds = [libc::pollfd {
            fd: inbox.fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        while got.len() < 80_000 {
            inbox.take(&mut got);
            if got.len() == 80_000 {
                break;
            }
            // SAFETY: one valid pollfd; a 5 s timeout bounds a lost wake-up.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 5000) };
            assert!(n > 0, "a wake-up was lost: asleep with mail on its way");
            inbox.on_wake();
        }
        for s in senders {
            s.join().unwrap();
        }
        inbox.take(&mut got);
        assert_eq!(got.len(), 80_000);
    }
}
