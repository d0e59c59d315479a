//! Replies of every kind built by `ReplyWriter` (the hand-laid GET hit
//! included), framed, parsed and verified back to the same fields.

use citadel_proto::rpc::schema::{Answer, Reply};
use citadel_proto::rpc::{
    decode_reply, ErrorCode, FrameHeader, Method, ReplyWriter, StatValue, FLAG_BATCH, FLAG_ERROR,
    FLAG_FINAL, FLAG_PARTIAL, HEADER_LEN,
};

fn reply_of(frame: &[u8]) -> (FrameHeader, Reply<'_>) {
    let (header, len) = FrameHeader::parse(frame).unwrap().unwrap();
    assert_eq!(len, frame.len());
    (header, decode_reply(&header, &frame[HEADER_LEN..]).unwrap())
}

#[test]
fn replies_of_each_kind_decode() {
    let mut w = ReplyWriter::new();
    let mut out = Vec::new();
    let mut frames = Vec::new();
    let mut take = |out: &mut Vec<u8>| frames.push(std::mem::take(out));
    let b = w.value(Some(b"v"));
    w.finish(&mut out, 1, Method::Get, b);
    take(&mut out);
    let b = w.value(None);
    w.finish(&mut out, 2, Method::Get, b);
    take(&mut out);
    let b = w.done(true);
    w.finish(&mut out, 3, Method::Set, b);
    take(&mut out);
    let b = w.int(-2);
    w.finish(&mut out, 4, Method::Ttl, b);
    take(&mut out);
    let b = w.values([Some(&b"a"[..]), None]);
    w.finish(&mut out, 5, Method::MGet, b);
    take(&mut out);
    let b = w.scan_page(7, [&b"k1"[..], b"k2"]);
    w.finish(&mut out, 6, Method::Scan, b);
    take(&mut out);
    let b = w.partial(3, b"{\"text\":\"hi\"}");
    w.finish(&mut out, 7, Method::Call, b);
    take(&mut out);
    let b = w.call_reply(b"{}");
    w.finish(&mut out, 7, Method::Call, b);
    take(&mut out);
    let b = w.stats([
        ("keys", StatValue::Int(3)),
        ("role", StatValue::Text("primary")),
    ]);
    w.finish(&mut out, 8, Method::Stats, b);
    take(&mut out);
    let b = w.welcome(1, "citadel 0.1", ["batch"]);
    w.finish(&mut out, 9, Method::Hello, b);
    take(&mut out);
    w.error_frame(
        &mut out,
        10,
        Method::Get,
        ErrorCode::Deadline,
        "deadline passed",
    );
    take(&mut out);
    let b = w.int(1);
    w.push_outcome(b);
    let b = w.error(ErrorCode::WrongType, "not a string");
    w.push_outcome(b);
    let b = w.batch();
    w.finish(&mut out, 11, Method::Batch, b);
    take(&mut out);
    ReplyWriter::value_frame(&mut out, 12, Method::Get, b"hand-laid");
    take(&mut out);

    let (h, r) = reply_of(&frames[0]);
    assert_eq!((h.id, h.method, h.flags), (1, Method::Get, FLAG_FINAL));
    let v = r.answer_as_value().unwrap();
    assert!(v.found() && v.value().unwrap().bytes() == b"v");
    assert!(!reply_of(&frames[1]).1.answer_as_value().unwrap().found());
    assert!(reply_of(&frames[2]).1.answer_as_done().unwrap().applied());
    assert_eq!(reply_of(&frames[3]).1.answer_as_int().unwrap().value(), -2);
    let vals = reply_of(&frames[4])
        .1
        .answer_as_values()
        .unwrap()
        .values()
        .unwrap();
    assert_eq!(vals.len(), 2);
    assert_eq!(vals.get(0).value().unwrap().bytes(), b"a");
    assert!(!vals.get(1).found());
    let page = reply_of(&frames[5]).1.answer_as_scan_page().unwrap();
    assert_eq!(page.cursor(), 7);
    let keys: Vec<&[u8]> = page
        .keys()
        .unwrap()
        .iter()
        .map(|k| k.key().unwrap().bytes())
        .collect();
    assert_eq!(keys, [&b"k1"[..], b"k2"]);
    let (h, r) = reply_of(&frames[6]);
    assert_eq!((h.id, h.flags), (7, FLAG_PARTIAL));
    let p = r.answer_as_partial().unwrap();
    assert_eq!(
        (p.index(), p.data().unwrap().bytes()),
        (3, &b"{\"text\":\"hi\"}"[..])
    );
    let (h, r) = reply_of(&frames[7]);
    assert_eq!((h.id, h.flags), (7, FLAG_FINAL));
    assert_eq!(
        r.answer_as_call_reply().unwrap().payload().unwrap().bytes(),
        b"{}"
    );
    let stats = reply_of(&frames[8])
        .1
        .answer_as_stats_reply()
        .unwrap()
        .stats()
        .unwrap();
    assert_eq!(
        (stats.get(0).name(), stats.get(0).value()),
        (Some("keys"), 3)
    );
    assert_eq!(
        (stats.get(1).name(), stats.get(1).text()),
        (Some("role"), Some("primary"))
    );
    let wl = reply_of(&frames[9]).1.answer_as_welcome().unwrap();
    assert_eq!((wl.version(), wl.server()), (1, Some("citadel 0.1")));
    assert_eq!(wl.features().unwrap().get(0), "batch");
    let (h, r) = reply_of(&frames[10]);
    assert_eq!(h.flags, FLAG_FINAL | FLAG_ERROR);
    let e = r.answer_as_error().unwrap();
    assert_eq!(
        (e.code(), e.message()),
        (ErrorCode::Deadline, Some("deadline passed"))
    );
    let (h, r) = reply_of(&frames[11]);
    assert_eq!(
        (h.method, h.flags),
        (Method::Batch, FLAG_FINAL | FLAG_BATCH)
    );
    let outcomes = r.answer_as_batch_reply().unwrap().outcomes().unwrap();
    assert_eq!(outcomes.get(0).answer_as_int().unwrap().value(), 1);
    assert_eq!(
        outcomes.get(1).answer_as_error().unwrap().code(),
        ErrorCode::WrongType
    );
    assert_eq!(outcomes.get(1).answer_type(), Answer::Error);
    let (h, r) = reply_of(&frames[12]);
    assert_eq!((h.id, h.flags), (12, FLAG_FINAL));
    assert_eq!(
        r.answer_as_value().unwrap().value().unwrap().bytes(),
        b"hand-laid"
    );
}
