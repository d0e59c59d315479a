//! The RPC hot path allocates nothing once warm (see `crate::test_alloc`).

use super::RpcSession;
use crate::command::tests::Harness;
use crate::test_alloc::allocations_in;

#[test]
fn rpc_frames_do_not_allocate() {
    use citadel_proto::rpc::{Condition, RequestWriter};
    let mut h = Harness::new();
    let info = crate::command::ConnInfo {
        id: 99,
        peer: citadel_net::Endpoint::Unix("t".into()),
        local: citadel_net::Endpoint::Unix("t".into()),
        thread: 0,
    };
    let mut session = RpcSession::new(&h.state, info);
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
    let (p, allocs) = allocations_in(|| session.process(&mut h.ctx, &frames, &mut out));
    assert_eq!(p.consumed, frames.len());
    assert_eq!(allocs, 0, "allocations on the RPC hot path");
    // Every reply is there and none is an error.
    let mut at = 0;
    let mut replies = 0;
    while at < out.len() {
        let (header, len) = citadel_proto::rpc::FrameHeader::parse(&out[at..])
            .unwrap()
            .unwrap();
        assert!(
            !header.has(citadel_proto::rpc::FLAG_ERROR),
            "reply {}",
            header.id
        );
        at += len;
        replies += 1;
    }
    assert_eq!(replies, 12);
}
