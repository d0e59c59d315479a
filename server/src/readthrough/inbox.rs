//! Cross-thread delivery of load results: a load finished on one thread
//! hands the results for waiters on other threads to their inboxes and
//! rings the owner's eventfd, which that thread's io_uring polls beside its
//! plugin reply eventfds. The bell rings only when the inbox was empty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use citadel_proto::EventFd;

use super::LoadResult;

/// A result for one waiter: (wait, slot, result).
pub type Delivery = (u64, u32, LoadResult);

pub struct Inbox {
    queue: Mutex<Vec<Delivery>>,
    mail: AtomicBool,
    bell: EventFd,
}

impl Inbox {
    pub fn new() -> std::io::Result<Inbox> {
        Ok(Inbox {
            queue: Mutex::default(),
            mail: AtomicBool::new(false),
            bell: EventFd::new()?,
        })
    }

    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::{AsFd, AsRawFd};
        self.bell.as_fd().as_raw_fd()
    }

    pub fn push(&self, d: Delivery) {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        let was_empty = q.is_empty();
        q.push(d);
        self.mail.store(true, Ordering::Release);
        drop(q);
        if was_empty {
            if let Err(e) = self.bell.signal() {
                tracing::warn!("waking a server thread for a load result: {e}");
            }
        }
    }

    /// The bell rang: clear it (the queue is read by `take`).
    pub fn on_wake(&self) {
        if let Err(e) = self.bell.drain() {
            tracing::warn!("draining a load-result eventfd: {e}");
        }
    }

    /// Everything delivered so far (cheap when nothing was).
    pub fn take(&self, into: &mut Vec<Delivery>) {
        if !self.mail.swap(false, Ordering::Acquire) {
            return;
        }
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        into.append(&mut q);
    }
}
