use citadel_proto::rpc::{decode_request, ErrorCode, Op, ReplyWriter, FLAG_BATCH};

use super::*;

fn get(key: &[u8]) -> Request<'_> {
    Request {
        op: OpKind::Get,
        key_ends: &[],
        key,
        value: b"",
        element: 0,
    }
}

fn set<'a>(key: &'a [u8], value: &'a [u8]) -> Request<'a> {
    Request {
        op: OpKind::Set,
        key_ends: &[],
        key,
        value,
        element: 0,
    }
}

/// The frames in `buf`: (header, body).
fn frames(mut buf: &[u8]) -> Vec<(FrameHeader, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some((h, len)) = FrameHeader::parse(buf).unwrap() {
        out.push((h, buf[HEADER_LEN..len].to_vec()));
        buf = &buf[len..];
    }
    assert!(buf.is_empty(), "trailing bytes");
    out
}

fn answers(p: &Rpc, buf: &[u8]) -> (Option<usize>, Vec<Answer>) {
    let mut got = Vec::new();
    let len = p.parse(OpKind::Get, buf, &mut |a| got.push(a)).unwrap();
    (len, got)
}

#[test]
fn plain_frames_carry_their_ids() {
    let mut p = Rpc::new(1);
    let mut out = Vec::new();
    p.encode(7, &get(b"k1"), &mut out);
    p.encode(8, &set(b"k2", b"v"), &mut out);
    let f = frames(&out);
    assert_eq!(f.len(), 2);
    let r = decode_request(&f[0].0, &f[0].1).unwrap();
    assert!(matches!(r.op, Op::Get { key: b"k1" }));
    assert_eq!((r.id, r.deadline_ms), (7, 0));
    let r = decode_request(&f[1].0, &f[1].1).unwrap();
    assert!(matches!(
        r.op,
        Op::Set {
            key: b"k2",
            value: b"v",
            ttl_ms: 0,
            ..
        }
    ));
    assert_eq!(r.id, 8);
}

#[test]
fn batches_fill_then_flush_the_rest() {
    let mut p = Rpc::new(3);
    let mut out = Vec::new();
    for id in 10..15 {
        p.encode(id, &get(b"k"), &mut out);
    }
    assert_eq!(frames(&out).len(), 1, "only the full batch is out");
    p.flush(&mut out);
    p.encode(15, &get(b"lone"), &mut out);
    p.flush(&mut out);
    p.flush(&mut out); // nothing held: no frame
    let f = frames(&out);
    let ids: Vec<_> = f.iter().map(|(h, _)| (h.id, h.method)).collect();
    assert_eq!(
        ids,
        [(10, Method::Batch), (13, Method::Batch), (15, Method::Get)]
    );
    assert!(f[0].0.has(FLAG_BATCH) && !f[2].0.has(FLAG_BATCH));
    let Op::Batch(b) = decode_request(&f[1].0, &f[1].1).unwrap().op else {
        panic!("not a batch");
    };
    assert_eq!(b.len(), 2);
}

#[test]
fn classifies_single_replies() {
    let mut w = ReplyWriter::new();
    let mut buf = Vec::new();
    ReplyWriter::value_frame(&mut buf, 1, Method::Get, b"hello");
    let body = w.value(None);
    w.finish(&mut buf, 2, Method::Get, body);
    let body = w.done(true);
    w.finish(&mut buf, 3, Method::Set, body);
    w.error_frame(&mut buf, 4, Method::Set, ErrorCode::Internal, "oom here");
    let p = Rpc::new(1);
    let mut at = 0;
    let mut all = Vec::new();
    while let (Some(len), got) = answers(&p, &buf[at..]) {
        for a in got {
            if let Outcome::ServerError(r) = &a.outcome {
                assert_eq!(&buf[at + r.start..at + r.end], b"oom here");
            }
            all.push((a.to, a.op, matches!(a.outcome, Outcome::ServerError(_))));
        }
        at += len;
    }
    assert_eq!(at, buf.len());
    assert_eq!(
        all,
        [
            (Target::Id(1), Some(OpKind::Get), false),
            (Target::Id(2), Some(OpKind::Get), false),
            (Target::Id(3), Some(OpKind::Set), false),
            (Target::Id(4), Some(OpKind::Set), true),
        ]
    );
    let (_, hit) = answers(&p, &buf);
    assert_eq!(hit[0].outcome, Outcome::Hit);
}

#[test]
fn batch_reply_answers_consecutive_ids() {
    let mut w = ReplyWriter::new();
    let mut buf = Vec::new();
    let hit = w.value(Some(b"v"));
    w.push_outcome(hit);
    let miss = w.value(None);
    w.push_outcome(miss);
    let done = w.done(true);
    w.push_outcome(done);
    let e = w.error(ErrorCode::Internal, "no");
    w.push_outcome(e);
    let body = w.batch();
    w.finish(&mut buf, 20, Method::Batch, body);
    let (len, got) = answers(&Rpc::new(4), &buf);
    assert_eq!(len, Some(buf.len()));
    let ids: Vec<_> = got.iter().map(|a| a.to).collect();
    assert_eq!(ids, (20..24).map(Target::Id).collect::<Vec<_>>());
    assert_eq!(got[0].outcome, Outcome::Hit);
    assert_eq!(got[1].outcome, Outcome::Miss);
    assert_eq!(got[2].outcome, Outcome::Ok);
    assert_eq!(got[3].op, None);
}

#[test]
fn partial_frames_wait_and_garbage_fails() {
    let mut buf = Vec::new();
    ReplyWriter::value_frame(&mut buf, 1, Method::Get, &[7; 300]);
    let p = Rpc::new(1);
    for cut in [0, 5, HEADER_LEN, buf.len() - 1] {
        assert_eq!(answers(&p, &buf[..cut]), (None, vec![]), "cut at {cut}");
    }
    assert!(p.parse(OpKind::Get, b"+OK\r\n", &mut |_| {}).is_err());
}
