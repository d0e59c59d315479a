//! Proves the hot path allocates nothing once warm (see `crate::test_alloc`).

use super::tests::{encode, Harness};
use crate::test_alloc::allocations_in;

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
    let (p, allocs) = allocations_in(|| h.session.process(&mut h.ctx, &pipeline, &mut out));
    assert_eq!(p.consumed, pipeline.len());
    let text = String::from_utf8_lossy(&out);
    assert!(!text.starts_with('-') && !text.contains("\n-"), "{text}");
    assert_eq!(allocs, 0, "allocations on the hot path");
}
