//! RPC frames on arbitrary bytes: the streaming header parser walks the
//! input as a receive buffer (frames decoded, unknown methods skipped, a
//! fatal error ends the stream), every body goes through the request and
//! reply verifiers, and a request built from the input decodes to what was
//! built. Errors are fine; panics, hangs and out-of-bounds reads are not.
#![no_main]

use citadel_proto::rpc::{
    decode_reply, decode_request, decode_request_with, Condition, FrameError, FrameHeader, Limits,
    Method, Op, RequestWriter, HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;

/// Reads every field of an operation (the verifier must have made that safe).
fn touch(op: &Op<'_>) -> usize {
    match op {
        Op::Get { key } | Op::Ttl { key } | Op::Expire { key, .. } | Op::Incr { key, .. } => {
            key.len()
        }
        Op::Set { key, value, .. } => key.len() + value.len(),
        Op::Delete(k) | Op::Exists(k) | Op::MGet(k) => k.iter().map(<[u8]>::len).sum(),
        Op::MSet(p) => p.iter().map(|(k, v)| k.len() + v.len()).sum(),
        Op::Scan { pattern, .. } => pattern.map_or(0, str::len),
        Op::Call {
            name,
            payload,
            options,
        } => name.len() + payload.len() + options.len(),
        Op::Stats { section } => section.map_or(0, str::len),
        Op::Hello {
            client_name,
            password,
            features,
            ..
        } => {
            client_name.map_or(0, str::len)
                + password.map_or(0, str::len)
                + features.iter().map(str::len).sum::<usize>()
        }
        Op::Batch(b) => b.iter().map(|o| o.map_or(1, |o| touch(&o))).sum(),
    }
}

fn stream(data: &[u8]) {
    let limits = Limits {
        max_frame: 1 << 20,
        ..Limits::default()
    };
    let mut at = 0;
    while at < data.len() {
        match FrameHeader::parse_with(&data[at..], limits.max_frame) {
            Ok(None) => break,
            Ok(Some((header, len))) => {
                assert!(len >= HEADER_LEN && at + len <= data.len());
                let body = &data[at + HEADER_LEN..at + len];
                if let Ok(req) = decode_request_with(&header, body, &limits) {
                    assert_eq!(req.op.method(), header.method);
                    touch(&req.op);
                }
                if let Ok(reply) = decode_reply(&header, body) {
                    let _ = reply.answer_type();
                }
                at += len;
            }
            Err(FrameError::UnknownMethod { frame_len, .. }) => at += frame_len,
            Err(e) => {
                assert!(e.must_close());
                break;
            }
        }
    }
}

fn round_trip(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let split = rest.first().map_or(0, |b| usize::from(*b)).min(rest.len());
    let (key, value) = rest.split_at(split);
    let text = String::from_utf8_lossy(value);
    let num = u64::from_le_bytes(
        data.iter()
            .copied()
            .chain([0; 8])
            .take(8)
            .collect::<Vec<_>>()
            .try_into()
            .unwrap(),
    );
    let mut w = RequestWriter::new();
    let cond = Condition(sel % 3);
    let op = match sel % 8 {
        0 => w.get(key),
        1 => w.set(key, value, num, cond),
        2 => w.mget(value.chunks(3)),
        3 => w.mset(value.chunks(4).map(|c| (key, c))),
        4 => w.call(&text, key, &text),
        5 => w.incr(key, num as i64),
        6 => w.hello(num as u32, Some(&text), None, text.split(' ')),
        _ => {
            let a = w.get(key);
            w.push_op(a);
            let b = w.set(key, value, num, cond);
            w.push_op(b);
            w.batch()
        }
    };
    let mut out = Vec::new();
    w.finish(&mut out, num, num ^ 1, sel, op);
    let (header, len) = FrameHeader::parse(&out).unwrap().unwrap();
    assert_eq!((len, header.id), (out.len(), num));
    let req = decode_request(&header, &out[HEADER_LEN..]).unwrap();
    assert_eq!((req.deadline_ms, req.priority), (num ^ 1, sel));
    match (sel % 8, req.op) {
        (0, Op::Get { key: k }) => assert_eq!(k, key),
        (
            1,
            Op::Set {
                key: k,
                value: v,
                ttl_ms,
                condition,
            },
        ) => {
            assert_eq!((k, v, ttl_ms, condition), (key, value, num, cond))
        }
        (2, Op::MGet(keys)) => assert!(keys.iter().eq(value.chunks(3))),
        (3, Op::MSet(pairs)) => assert!(pairs.iter().eq(value.chunks(4).map(|c| (key, c)))),
        (
            4,
            Op::Call {
                name,
                payload,
                options,
            },
        ) => assert_eq!((name, payload, options), (&*text, key, &*text)),
        (5, Op::Incr { key: k, by }) => assert_eq!((k, by), (key, num as i64)),
        (
            6,
            Op::Hello {
                version,
                client_name,
                password,
                features,
            },
        ) => {
            assert_eq!(
                (version, client_name, password),
                (num as u32, Some(&*text), None)
            );
            assert!(features.iter().eq(text.split(' ')));
        }
        (7, Op::Batch(b)) => {
            let ops: Vec<_> = b.iter().map(Result::unwrap).collect();
            assert!(
                matches!(ops[..], [Op::Get { key: a }, Op::Set { key: b, value: v, .. }] if a == key && b == key && v == value)
            );
        }
        (_, op) => panic!("built {sel}, decoded {:?}", op.method()),
    }
    assert_ne!(header.method, Method::None);
}

fuzz_target!(|data: &[u8]| {
    stream(data);
    // The same bytes as a body behind a valid header of each plausible method.
    let method = Method::from_code(data.first().map_or(0, |b| b % 15)).unwrap();
    let header = FrameHeader {
        flags: 0,
        method,
        body_len: data.len() as u32,
        id: 1,
    };
    if let Ok(req) = decode_request(&header, data) {
        touch(&req.op);
    }
    round_trip(data);
});
