//! Proves the hot path allocates nothing once warm: a counting allocator
//! (active only on the measuring thread) wraps the system allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use super::tests::{encode, Harness};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; only counts (no unsafe in the
// command modules themselves, this is test scaffolding).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn hot_commands_do_not_allocate() {
    let mut h = Harness::new();
    let mut pipeline = Vec::new();
    for args in [
        &["SET", "k", "value"][..],
        &["GET", "k"],
        &["GET", "missing"],
        &["SET", "n", "1"],
        &["INCR", "n"],
        &["INCRBY", "n", "5"],
        &["DECR", "n"],
        &["MGET", "k", "n", "missing"],
        &["MSET", "a", "1", "b", "2"],
        &["SET", "k", "v2", "EX", "100"],
        &["SETEX", "t", "100", "v"],
        &["EXISTS", "k", "a"],
        &["TTL", "k"],
        &["DEL", "a"],
        &["PING"],
    ] {
        pipeline.extend(encode(args));
    }
    let mut out = Vec::with_capacity(1 << 16);
    // Warm up every reusable buffer (parser, cache handle scratch).
    for _ in 0..3 {
        out.clear();
        h.session.process(&mut h.ctx, &pipeline, &mut out);
    }
    out.clear();
    COUNTING.with(|c| c.set(true));
    let p = h.session.process(&mut h.ctx, &pipeline, &mut out);
    COUNTING.with(|c| c.set(false));
    assert_eq!(p.consumed, pipeline.len());
    let text = String::from_utf8_lossy(&out);
    assert!(!text.starts_with('-') && !text.contains("\n-"), "{text}");
    assert_eq!(ALLOCS.with(Cell::get), 0, "allocations on the hot path");
}
