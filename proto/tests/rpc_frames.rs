//! RPC frames end to end: every request built, framed, parsed and decoded
//! back to the same fields; replies of each kind; hostile bytes (truncated,
//! lying, mutated, deeply nested) refused with typed errors, never a panic.

use citadel_proto::rpc::{
    decode_request, decode_request_with, Condition, ErrorCode, FrameError, FrameHeader, Limits,
    Method, Op, RequestError, RequestWriter, FLAG_BATCH, HEADER_LEN,
};

/// A canonical text of an operation, to compare decoded with expected.
fn describe(op: &Op<'_>) -> String {
    let keys = |k: citadel_proto::rpc::Keys<'_>| format!("{:?}", k.iter().collect::<Vec<_>>());
    match op {
        Op::Get { key } => format!("get {key:?}"),
        Op::Set {
            key,
            value,
            ttl_ms,
            condition,
        } => {
            format!("set {key:?} {value:?} {ttl_ms} {condition:?}")
        }
        Op::Delete(k) => format!("delete {}", keys(*k)),
        Op::Exists(k) => format!("exists {}", keys(*k)),
        Op::Expire { key, ttl_ms } => format!("expire {key:?} {ttl_ms}"),
        Op::Ttl { key } => format!("ttl {key:?}"),
        Op::Incr { key, by } => format!("incr {key:?} {by}"),
        Op::MGet(k) => format!("mget {}", keys(*k)),
        Op::MSet(p) => format!("mset {:?}", p.iter().collect::<Vec<_>>()),
        Op::Scan {
            cursor,
            pattern,
            count,
        } => format!("scan {cursor} {pattern:?} {count}"),
        Op::Call {
            name,
            payload,
            options,
        } => format!("call {name} {payload:?} {options}"),
        Op::Stats { section } => format!("stats {section:?}"),
        Op::Hello {
            version,
            client_name,
            password,
            features,
        } => format!(
            "hello {version} {client_name:?} {password:?} {:?}",
            features.iter().collect::<Vec<_>>()
        ),
        Op::Batch(b) => {
            let ops: Vec<String> = b
                .iter()
                .map(|o| o.map_or_else(|e| format!("error {e}"), |o| describe(&o)))
                .collect();
            format!("batch [{}]", ops.join(", "))
        }
    }
}

type Build = fn(&mut RequestWriter) -> citadel_proto::rpc::OpBody;

/// One request of every method, and how it must read back.
fn every_method() -> Vec<(Method, Build, &'static str)> {
    vec![
        (
            Method::Get,
            |w| w.get(b"user:1"),
            "get [117, 115, 101, 114, 58, 49]",
        ),
        (
            Method::Set,
            |w| w.set(b"k", b"\0v", 1500, Condition::Nx),
            "set [107] [0, 118] 1500 Nx",
        ),
        (
            Method::Set,
            |w| w.set(b"k", b"", 0, Condition::Xx),
            "set [107] [] 0 Xx",
        ),
        (
            Method::Delete,
            |w| w.delete([&b"a"[..], b"b"]),
            "delete [[97], [98]]",
        ),
        (Method::Exists, |w| w.exists([&b""[..]]), "exists [[]]"),
        (Method::Expire, |w| w.expire(b"k", 7), "expire [107] 7"),
        (Method::Ttl, |w| w.ttl(b"k"), "ttl [107]"),
        (Method::Incr, |w| w.incr(b"n", -3), "incr [110] -3"),
        (
            Method::MGet,
            |w| w.mget([&b"a"[..], b"bc"]),
            "mget [[97], [98, 99]]",
        ),
        (
            Method::MSet,
            |w| w.mset([(&b"a"[..], &b"1"[..])]),
            "mset [([97], [49])]",
        ),
        (
            Method::Scan,
            |w| w.scan(42, Some("user:*"), 100),
            "scan 42 Some(\"user:*\") 100",
        ),
        (Method::Scan, |w| w.scan(0, None, 0), "scan 0 None 0"),
        (
            Method::Call,
            |w| w.call("ocr", b"\x01\x02", "fps=1"),
            "call ocr [1, 2] fps=1",
        ),
        (Method::Stats, |w| w.stats(None), "stats None"),
        (
            Method::Stats,
            |w| w.stats(Some("memory")),
            "stats Some(\"memory\")",
        ),
        (
            Method::Hello,
            |w| w.hello(1, Some("svc"), Some("pw"), ["batch", "stream"]),
            "hello 1 Some(\"svc\") Some(\"pw\") [\"batch\", \"stream\"]",
        ),
    ]
}

#[test]
fn every_method_round_trips() {
    let mut w = RequestWriter::new();
    let mut stream = Vec::new();
    let cases = every_method();
    for (i, (_, build, _)) in cases.iter().enumerate() {
        let op = build(&mut w);
        w.finish(&mut stream, 1000 + i as u64, 5000 + i as u64, i as u8, op);
    }
    // One stream of frames, read as a streaming decoder would.
    let mut at = 0;
    for (i, (method, _, text)) in cases.iter().enumerate() {
        let (header, len) = FrameHeader::parse(&stream[at..]).unwrap().unwrap();
        assert_eq!(
            (header.method, header.id, header.flags),
            (*method, 1000 + i as u64, 0)
        );
        let req = decode_request(&header, &stream[at + HEADER_LEN..at + len]).unwrap();
        assert_eq!(
            (req.id, req.deadline_ms, req.priority),
            (1000 + i as u64, 5000 + i as u64, i as u8)
        );
        assert_eq!(describe(&req.op), *text);
        assert!(req.expired_at(6000) && !req.expired_at(4000));
        at += len;
    }
    assert_eq!(at, stream.len());
    assert_eq!(FrameHeader::parse(&stream[at..]), Ok(None));
}

#[test]
fn a_batch_carries_many_operations_and_refuses_nesting() {
    let mut w = RequestWriter::new();
    let mut out = Vec::new();
    let mut expected = Vec::new();
    for (_, build, text) in every_method() {
        let op = build(&mut w);
        w.push_op(op);
        expected.push(text.to_string());
    }
    let inner = {
        let op = w.get(b"x");
        w.push_op(op);
        w.batch()
    };
    // `batch` consumed the ops pushed so far: the outer batch is rebuilt.
    for (_, build, _) in every_method() {
        let op = build(&mut w);
        w.push_op(op);
    }
    w.push_op(inner);
    expected.push("error a Batch inside a Batch".into());
    let batch = w.batch();
    w.finish(&mut out, 9, 0, 0, batch);
    let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!((header.method, header.flags), (Method::Batch, FLAG_BATCH));
    let req = decode_request(&header, &out[HEADER_LEN..len]).unwrap();
    let Op::Batch(b) = req.op else {
        panic!("{:?}", req.op)
    };
    assert_eq!(b.len(), expected.len());
    assert_eq!(
        describe(&req.op),
        format!("batch [{}]", expected.join(", "))
    );
    // An empty batch is a batch.
    let empty = w.batch();
    out.clear();
    w.finish(&mut out, 10, 0, 0, empty);
    let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!(
        describe(&decode_request(&header, &out[HEADER_LEN..len]).unwrap().op),
        "batch []"
    );
}

fn a_frame() -> Vec<u8> {
    let mut w = RequestWriter::new();
    let mut out = Vec::new();
    let op = w.set(b"key", b"value", 10, Condition::Always);
    w.finish(&mut out, 77, 0, 1, op);
    out
}

#[test]
fn truncated_frames_need_more_bytes() {
    let frame = a_frame();
    for n in 0..frame.len() {
        assert_eq!(FrameHeader::parse(&frame[..n]), Ok(None), "{n} bytes");
    }
    assert!(FrameHeader::parse(&frame).unwrap().is_some());
}

#[test]
fn bad_headers_are_typed_errors() {
    let frame = a_frame();
    let mut bad = frame.clone();
    bad[0] = b'*';
    let e = FrameHeader::parse(&bad[..1]).unwrap_err();
    assert_eq!(
        (e, e.must_close(), e.code()),
        (FrameError::BadMagic(b'*'), true, ErrorCode::BadFrame)
    );
    let mut bad = frame.clone();
    bad[1] = 2;
    let e = FrameHeader::parse(&bad[..2]).unwrap_err();
    assert_eq!(
        (e, e.must_close(), e.code()),
        (FrameError::Version(2), true, ErrorCode::Version)
    );
    // Unknown method: reported once the frame is whole, to be skipped.
    let mut bad = frame.clone();
    bad[3] = 99;
    assert_eq!(FrameHeader::parse(&bad[..HEADER_LEN]), Ok(None));
    let e = FrameHeader::parse(&bad).unwrap_err();
    assert_eq!(
        e,
        FrameError::UnknownMethod {
            id: 77,
            method: 99,
            frame_len: frame.len()
        }
    );
    assert!(!e.must_close());
    assert_eq!((e.id(), e.code()), (Some(77), ErrorCode::UnknownMethod));
    // Oversized: refused from the header alone.
    let mut big = frame[..HEADER_LEN].to_vec();
    big[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = FrameHeader::parse(&big).unwrap_err();
    assert!(
        matches!(e, FrameError::TooLarge { id: 77, .. }) && e.must_close(),
        "{e}"
    );
    let e = FrameHeader::parse_with(&frame, frame.len() - 1).unwrap_err();
    assert_eq!(e.code(), ErrorCode::TooLarge);
    assert!(FrameHeader::parse_with(&frame, frame.len())
        .unwrap()
        .is_some());
}

#[test]
fn lying_lengths_and_mismatches_are_refused() {
    let frame = a_frame();
    let (header, len) = FrameHeader::parse(&frame).unwrap().unwrap();
    let body = &frame[HEADER_LEN..len];
    // A header that claims less than the body: the cut body fails, but
    // for trailing padding, which changes nothing.
    let whole = describe(&decode_request(&header, body).unwrap().op);
    let mut refused = 0;
    for cut in 0..body.len() {
        let short = FrameHeader {
            body_len: cut as u32,
            ..header
        };
        match decode_request(&short, &body[..cut]) {
            Ok(req) => assert_eq!(describe(&req.op), whole, "cut at {cut}"),
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::BadFrame, "{e}");
                refused += 1;
            }
        }
    }
    assert!(refused >= body.len() - 4, "{refused} of {}", body.len());
    // A body of another length than the header's.
    assert!(matches!(
        decode_request(&header, &body[1..]),
        Err(RequestError::Length { .. })
    ));
    // The header's method must be the body's.
    let get = FrameHeader {
        method: Method::Get,
        ..header
    };
    let e = decode_request(&get, body).unwrap_err();
    assert_eq!(
        e,
        RequestError::MethodMismatch {
            header: Method::Get,
            body: Method::Set
        }
    );
    let none = FrameHeader {
        method: Method::None,
        ..header
    };
    assert!(decode_request(&none, body).is_err());
}

#[test]
fn bad_offsets_and_mutations_never_panic() {
    let frame = a_frame();
    let (header, len) = FrameHeader::parse(&frame).unwrap().unwrap();
    let body = frame[HEADER_LEN..len].to_vec();
    let mut bad = body.clone();
    bad[..4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    assert!(matches!(
        decode_request(&header, &bad),
        Err(RequestError::Invalid(_))
    ));
    // Every byte, set to a few values: decodes or is refused.
    let mut refused = 0;
    for i in 0..body.len() {
        for v in [0u8, 1, 0x7F, 0x80, 0xFF, body[i] ^ 4] {
            let mut m = body.clone();
            m[i] = v;
            match decode_request(&header, &m) {
                Ok(req) => drop(describe(&req.op)),
                Err(e) => {
                    let _ = (e.code(), e.to_string());
                    refused += 1;
                }
            }
        }
    }
    assert!(refused > 0);
}

#[test]
fn deep_nesting_is_refused_by_the_verifier() {
    let mut w = RequestWriter::new();
    let mut op = w.get(b"k");
    for _ in 0..40 {
        w.push_op(op);
        op = w.batch();
    }
    let mut out = Vec::new();
    w.finish(&mut out, 1, 0, 0, op);
    let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
    let e = decode_request(&header, &out[HEADER_LEN..len]).unwrap_err();
    assert!(matches!(e, RequestError::Invalid(_)), "{e}");
    // With a looser depth limit it verifies; the nested batch is refused
    // operation by operation.
    let loose = Limits {
        max_depth: 128,
        ..Limits::default()
    };
    let req = decode_request_with(&header, &out[HEADER_LEN..len], &loose).unwrap();
    let Op::Batch(b) = req.op else { panic!() };
    assert!(matches!(
        b.iter().next(),
        Some(Err(RequestError::NestedBatch))
    ));
    // Too many tables.
    let few = Limits {
        max_tables: 10,
        ..Limits::default()
    };
    let keys: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let op = w.mget(keys.iter().map(|k| &k[..]));
    out.clear();
    w.finish(&mut out, 2, 0, 0, op);
    let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
    assert!(decode_request(&header, &out[HEADER_LEN..len]).is_ok());
    assert!(decode_request_with(&header, &out[HEADER_LEN..len], &few).is_err());
}
