//! Steady state of the RPC codec allocates nothing: with the writers and
//! buffers warmed up, parsing, verifying and decoding requests and building
//! replies of every kind (batches included) into a reused send buffer make
//! no heap allocation. Counted per thread by a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use citadel_proto::rpc::{
    decode_request, Condition, ErrorCode, FrameHeader, Method, Op, ReplyWriter, RequestWriter,
    StatValue, HEADER_LEN,
};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is a const-initialised thread-local that never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

/// One round of a server's work: requests in, replies out.
fn round(
    req_w: &mut RequestWriter,
    reply_w: &mut ReplyWriter,
    inbuf: &mut Vec<u8>,
    out: &mut Vec<u8>,
) -> usize {
    inbuf.clear();
    out.clear();
    let op = req_w.get(b"user:1");
    req_w.finish(inbuf, 1, 0, 0, op);
    let op = req_w.set(b"user:1", &[7u8; 300], 1000, Condition::Nx);
    req_w.finish(inbuf, 2, 0, 0, op);
    let keys = [&b"a"[..], b"b", b"c"];
    let op = req_w.mget(keys);
    req_w.push_op(op);
    let op = req_w.incr(b"n", 1);
    req_w.push_op(op);
    let op = req_w.batch();
    req_w.finish(inbuf, 3, 0, 0, op);

    let mut at = 0;
    let mut ops = 0;
    while let Some((header, len)) = FrameHeader::parse(&inbuf[at..]).unwrap() {
        let req = decode_request(&header, &inbuf[at + HEADER_LEN..at + len]).unwrap();
        match req.op {
            Op::Get { key } => ReplyWriter::value_frame(out, req.id, header.method, key),
            Op::Set { value, .. } => {
                let b = reply_w.done(!value.is_empty());
                reply_w.finish(out, req.id, header.method, b);
            }
            Op::Batch(batch) => {
                for op in batch.iter() {
                    let b = match op.unwrap() {
                        Op::MGet(keys) => reply_w.values(keys.iter().map(Some)),
                        _ => reply_w.error(ErrorCode::WrongType, "not an integer"),
                    };
                    reply_w.push_outcome(b);
                    ops += 1;
                }
                let b = reply_w.batch();
                reply_w.finish(out, req.id, header.method, b);
            }
            _ => unreachable!(),
        }
        ops += 1;
        at += len;
    }
    let b = reply_w.stats([
        ("keys", StatValue::Int(1)),
        ("role", StatValue::Text("primary")),
    ]);
    reply_w.finish(out, 4, Method::Stats, b);
    let b = reply_w.partial(0, b"{}");
    reply_w.finish(out, 5, Method::Call, b);
    let b = reply_w.scan_page(0, keys);
    reply_w.finish(out, 6, Method::Scan, b);
    reply_w.error_frame(out, 7, Method::Get, ErrorCode::Deadline, "deadline passed");
    ops
}

#[test]
fn steady_state_allocates_nothing() {
    let (mut req_w, mut reply_w) = (RequestWriter::new(), ReplyWriter::new());
    let (mut inbuf, mut out) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        round(&mut req_w, &mut reply_w, &mut inbuf, &mut out);
    }
    let before = allocs();
    let mut ops = 0;
    for _ in 0..1000 {
        ops += round(&mut req_w, &mut reply_w, &mut inbuf, &mut out);
    }
    assert_eq!(ops, 5000);
    assert_eq!(allocs() - before, 0, "allocations in 1000 warm rounds");
    // The counter counts.
    let v: Vec<u8> = Vec::with_capacity(std::hint::black_box(10));
    assert_eq!(allocs() - before, 1);
    drop(v);
}
