//! Spare byte buffers, per worker thread, for the copies a collection
//! command makes of its values (a page to edit, a list's inline ends, a
//! root to write, a packed value to load). A hot command on one
//! collection then reuses the buffers its last run handed back instead of
//! allocating and freeing each time.

use std::cell::RefCell;

/// Buffers kept per thread.
const SPARE_BUFFERS: usize = 8;
/// Largest buffer kept (a page or root; not a big value read whole).
const MAX_KEPT: usize = 64 << 10;

thread_local! {
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A cleared buffer (a spare one's, else new).
pub fn spare_buf() -> Vec<u8> {
    let mut bytes = SPARE.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    bytes.clear();
    bytes
}

/// `N` cleared buffers at once (one thread-local access: a list edit
/// takes three per command).
pub fn spare_bufs<const N: usize>() -> [Vec<u8>; N] {
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        std::array::from_fn(|_| {
            let mut bytes = spare.pop().unwrap_or_default();
            bytes.clear();
            bytes
        })
    })
}

/// Keeps `bytes`'s buffer for [`spare_buf`] (a few, small ones).
pub fn keep_spare(bytes: Vec<u8>) {
    keep_spares([bytes]);
}

/// [`keep_spare`] of each of `all`, in one thread-local access.
pub fn keep_spares<const N: usize>(all: [Vec<u8>; N]) {
    if all
        .iter()
        .all(|b| b.capacity() == 0 || b.capacity() > MAX_KEPT)
    {
        return;
    }
    SPARE.with(|s| {
        let mut spare = s.borrow_mut();
        for bytes in all {
            if bytes.capacity() != 0 && bytes.capacity() <= MAX_KEPT && spare.len() < SPARE_BUFFERS
            {
                spare.push(bytes);
            }
        }
    });
}
