//! Spare byte buffers for the copies a collection command makes of its
//! values (a page to edit, a list's inline ends, a root to write, a
//! packed value to load). A hot command on one collection then reuses
//! the buffers its last run handed back instead of allocating and freeing
//! each time. Two pools: the thread's ([`spare_buf`], [`keep_spare`])
//! and its page plan's (`PagePlan::spare_bufs`, `keep_spares`: a list
//! push or pop cycles its three buffers through the plan it already
//! holds, with no thread-local access).

use std::cell::RefCell;

/// Buffers kept per pool.
const SPARE_BUFFERS: usize = 8;
/// Largest buffer kept (a page or root; not a big value read whole).
const MAX_KEPT: usize = 64 << 10;

/// A pool of cleared buffers.
#[derive(Debug, Default)]
pub struct Spares(Vec<Vec<u8>>);

impl Spares {
    /// `N` cleared buffers (spare ones, else new).
    pub fn take<const N: usize>(&mut self) -> [Vec<u8>; N] {
        std::array::from_fn(|_| {
            let mut bytes = self.0.pop().unwrap_or_default();
            bytes.clear();
            bytes
        })
    }

    /// Keeps `bytes`'s buffer (a few, small ones).
    pub fn keep(&mut self, bytes: Vec<u8>) {
        if worth_keeping(&bytes) && self.0.len() < SPARE_BUFFERS {
            self.0.push(bytes);
        }
    }
}

fn worth_keeping(bytes: &Vec<u8>) -> bool {
    bytes.capacity() != 0 && bytes.capacity() <= MAX_KEPT
}

thread_local! {
    static SPARE: RefCell<Spares> = const { RefCell::new(Spares(Vec::new())) };
}

/// A cleared buffer (a spare one's, else new).
pub fn spare_buf() -> Vec<u8> {
    let [bytes] = SPARE.with(|s| s.borrow_mut().take());
    bytes
}

/// Keeps `bytes`'s buffer for [`spare_buf`] (a few, small ones).
pub fn keep_spare(bytes: Vec<u8>) {
    if worth_keeping(&bytes) {
        SPARE.with(|s| s.borrow_mut().keep(bytes));
    }
}
