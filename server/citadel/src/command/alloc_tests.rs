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
        // SAFETY: the caller upholds `alloc`'s contract, forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.with(|a| a.set(a.get() + 1));
        }
        // SAFETY: as for `dealloc`; the caller upholds `realloc`'s contract.
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

#[test]
fn rpc_frames_do_not_allocate() {
    use citadel_proto::rpc::{Condition, RequestWriter};
    let mut h = Harness::new();
    let info = super::ConnInfo {
        id: 99,
        peer: citadel_net::Endpoint::Unix("t".into()),
        local: citadel_net::Endpoint::Unix("t".into()),
        thread: 0,
    };
    let mut session = crate::rpc::RpcSession::new(&h.state, info);
    let mut w = RequestWriter::new();
    let mut frames = Vec::new();
    let mut build = |i: u64, f: &dyn Fn(&mut RequestWriter) -> citadel_proto::rpc::OpBody| {
        let op = f(&mut w);
        w.finish(&mut frames, i, 0, 0, op);
    };
    build(1, &|w| w.set(b"k", b"value", 0, Condition::Always));
    build(2, &|w| w.get(b"k"));
    build(3, &|w| w.get(b"missing"));
    build(4, &|w| w.set(b"n", b"1", 100_000, Condition::Always));
    build(5, &|w| w.incr(b"n", 5));
    build(6, &|w| w.ttl(b"n"));
    build(7, &|w| w.set(b"k", b"v2", 0, Condition::Xx));
    build(8, &|w| w.mget([&b"k"[..], b"n", b"missing"]));
    build(9, &|w| w.mset([(&b"a"[..], &b"1"[..]), (b"b", b"2")]));
    build(10, &|w| w.exists([&b"k"[..], b"a"]));
    build(11, &|w| w.expire(b"k", 50_000));
    build(12, &|w| w.delete([&b"a"[..]]));
    let mut out = Vec::with_capacity(1 << 16);
    for _ in 0..3 {
        out.clear();
        session.process(&mut h.ctx, &frames, &mut out);
    }
    out.clear();
    COUNTING.with(|c| c.set(true));
    let p = session.process(&mut h.ctx, &frames, &mut out);
    COUNTING.with(|c| c.set(false));
    assert_eq!(p.consumed, frames.len());
    assert_eq!(ALLOCS.with(Cell::get), 0, "allocations on the RPC hot path");
    // Every reply is there and none is an error.
    let mut at = 0;
    let mut replies = 0;
    while at < out.len() {
        let (header, len) = citadel_proto::rpc::FrameHeader::parse(&out[at..])
            .unwrap()
            .unwrap();
        assert!(!header.has(citadel_proto::rpc::FLAG_ERROR), "reply {}", header.id);
        at += len;
        replies += 1;
    }
    assert_eq!(replies, 12);
}
