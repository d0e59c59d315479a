//! What the database side tells the ring thread: load answers and
//! invalidations, through a channel plus an eventfd the ring thread polls
//! beside its rings.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::{mpsc, Arc};

use citadel_proto::EventFd;

use crate::wire::Answer;

#[derive(Debug)]
pub enum Event {
    /// The answer to request `seq` of ring pair `pair`.
    Answered {
        pair: usize,
        seq: u64,
        answer: Answer,
    },
    /// A key changed in the database.
    Invalidate(Vec<u8>),
    /// Changes may have been missed (the change feed was (re)subscribed).
    Resync,
    /// SIGTERM or SIGINT: finish what is in flight, then exit.
    Stop,
}

/// The sending side; cheap to clone into tasks.
#[derive(Clone, Debug)]
pub struct EventSender {
    tx: mpsc::Sender<Event>,
    wake: Arc<EventFd>,
}

impl EventSender {
    pub fn send(&self, event: Event) {
        // A send fails only once the ring thread is gone (the process is
        // exiting): nothing is left to tell.
        if self.tx.send(event).is_ok() {
            if let Err(e) = self.wake.signal() {
                tracing::error!("waking the ring thread: {e}");
            }
        }
    }
}

#[derive(Debug)]
pub struct EventReceiver {
    rx: mpsc::Receiver<Event>,
    wake: Arc<EventFd>,
}

impl EventReceiver {
    /// Readable while events may be waiting.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.wake.as_fd()
    }

    /// Every waiting event. The doorbell is cleared first, so an event sent
    /// after this call rings it again.
    pub fn drain(&self) -> io::Result<Vec<Event>> {
        self.wake.drain()?;
        Ok(self.rx.try_iter().collect())
    }
}

pub fn channel() -> io::Result<(EventSender, EventReceiver)> {
    let (tx, rx) = mpsc::channel();
    let wake = Arc::new(EventFd::new()?);
    let sender = EventSender {
        tx,
        wake: Arc::clone(&wake),
    };
    Ok((sender, EventReceiver { rx, wake }))
}
