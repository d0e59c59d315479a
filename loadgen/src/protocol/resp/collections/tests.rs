use crate::protocol::resp::Resp;
use crate::protocol::{InOrder, OpKind, Outcome, Reply, Request};

fn encoded(op: OpKind, key: &[u8], value: &[u8], element: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let req = Request {
        op,
        key,
        key_ends: &[],
        value,
        element,
    };
    Resp.encode(&req, &mut out);
    out
}

/// The reply's outcome, after checking it is parsed whole and not before it is complete.
fn outcome(op: OpKind, reply: &[u8]) -> Outcome {
    for cut in 0..reply.len() {
        assert_eq!(
            Resp.parse(op, &reply[..cut]).unwrap(),
            None,
            "{op} cut at {cut}"
        );
    }
    let mut more = reply.to_vec();
    more.extend_from_slice(b"+OK\r\n");
    let Reply { len, outcome } = Resp.parse(op, &more).unwrap().expect("complete");
    assert_eq!(len, reply.len(), "{op}: length of {reply:?}");
    outcome
}

#[test]
fn encodes_what_redis_benchmark_sends() {
    let cases: [(OpKind, &[u8], &[u8]); 12] = [
        (OpKind::Lpush, b"mylist", b"*3\r\n$5\r\nLPUSH\r\n$6\r\nmylist\r\n$3\r\nxyz\r\n"),
        (OpKind::Rpush, b"mylist", b"*3\r\n$5\r\nRPUSH\r\n$6\r\nmylist\r\n$3\r\nxyz\r\n"),
        (OpKind::Lpop, b"mylist", b"*2\r\n$4\r\nLPOP\r\n$6\r\nmylist\r\n"),
        (OpKind::Rpop, b"mylist", b"*2\r\n$4\r\nRPOP\r\n$6\r\nmylist\r\n"),
        (
            OpKind::Sadd,
            b"myset",
            b"*3\r\n$4\r\nSADD\r\n$5\r\nmyset\r\n$20\r\nelement:000000000042\r\n",
        ),
        (
            OpKind::Hset,
            b"myhash",
            b"*4\r\n$4\r\nHSET\r\n$6\r\nmyhash\r\n$20\r\nelement:000000000042\r\n$3\r\nxyz\r\n",
        ),
        (OpKind::Spop, b"myset", b"*2\r\n$4\r\nSPOP\r\n$5\r\nmyset\r\n"),
        (
            OpKind::Zadd,
            b"myzset",
            b"*4\r\n$4\r\nZADD\r\n$6\r\nmyzset\r\n$12\r\n000000000042\r\n$20\r\nelement:000000000042\r\n",
        ),
        (OpKind::Zpopmin, b"myzset", b"*2\r\n$7\r\nZPOPMIN\r\n$6\r\nmyzset\r\n"),
        (
            OpKind::Lrange100,
            b"mylist",
            b"*4\r\n$6\r\nLRANGE\r\n$6\r\nmylist\r\n$1\r\n0\r\n$2\r\n99\r\n",
        ),
        (
            OpKind::Lrange600,
            b"mylist:7",
            b"*4\r\n$6\r\nLRANGE\r\n$8\r\nmylist:7\r\n$1\r\n0\r\n$3\r\n599\r\n",
        ),
        (OpKind::Bitcount, b"key:5", b"*2\r\n$8\r\nBITCOUNT\r\n$5\r\nkey:5\r\n"),
    ];
    for (op, key, want) in cases {
        assert_eq!(
            String::from_utf8_lossy(&encoded(op, key, b"xyz", 42)),
            String::from_utf8_lossy(want),
            "{op}"
        );
    }
    // The hot path's GET and SET agree with their shapes.
    for op in [OpKind::Get, OpKind::Set] {
        let mut by_shape = Vec::new();
        super::encode(
            &Request {
                op,
                key: b"k",
                key_ends: &[],
                value: b"v",
                element: 0,
            },
            &mut by_shape,
        );
        assert_eq!(encoded(op, b"k", b"v", 0), by_shape, "{op}");
    }
}

#[test]
fn element_numbers_are_twelve_padded_digits() {
    let zadd = encoded(OpKind::Zadd, b"z", b"", 999_999_999_999);
    assert!(zadd.ends_with(b"$12\r\n999999999999\r\n$20\r\nelement:999999999999\r\n"));
    let sadd = encoded(OpKind::Sadd, b"s", b"", 0);
    assert!(sadd.ends_with(b"$20\r\nelement:000000000000\r\n"));
}

/// Every operation of `ops` classifies each reply of `cases` as given.
fn classifies(ops: &[OpKind], cases: &[(&[u8], Outcome)]) {
    for &op in ops {
        for (reply, want) in cases {
            let shown = String::from_utf8_lossy(reply);
            assert_eq!(&outcome(op, reply), want, "{op}: {shown:?}");
        }
    }
}

#[test]
fn pushes_and_adds_answer_integers() {
    let ops = [
        OpKind::Lpush,
        OpKind::Rpush,
        OpKind::Sadd,
        OpKind::Hset,
        OpKind::Zadd,
    ];
    classifies(
        &ops,
        &[
            (b":12345\r\n", Outcome::Ok),
            (b":0\r\n", Outcome::Ok),
            (b"$1\r\nx\r\n", Outcome::Unexpected),
            (b"+OK\r\n", Outcome::Unexpected),
        ],
    );
}

#[test]
fn pops_hit_on_an_element_and_miss_on_nil() {
    classifies(
        &[OpKind::Lpop, OpKind::Rpop, OpKind::Spop],
        &[
            (b"$3\r\nxyz\r\n", Outcome::Hit),
            (b"$0\r\n\r\n", Outcome::Hit),
            (b"$-1\r\n", Outcome::Miss),
            (b"_\r\n", Outcome::Miss), // RESP3 null
            (b":1\r\n", Outcome::Unexpected),
        ],
    );
}

#[test]
fn zpopmin_answers_a_member_and_score_or_nothing() {
    let op = OpKind::Zpopmin;
    let pair = b"*2\r\n$20\r\nelement:000000000001\r\n$1\r\n1\r\n";
    assert_eq!(outcome(op, pair), Outcome::Hit);
    assert_eq!(
        outcome(op, b"*2\r\n$1\r\nm\r\n,1.5\r\n"),
        Outcome::Hit,
        "RESP3 double score"
    );
    assert_eq!(outcome(op, b"*0\r\n"), Outcome::Miss);
    assert_eq!(outcome(op, b"*-1\r\n"), Outcome::Miss);
    assert_eq!(outcome(op, b"*1\r\n$1\r\nm\r\n"), Outcome::Unexpected);
    assert_eq!(outcome(op, b"$1\r\nm\r\n"), Outcome::Unexpected);
}

#[test]
fn lrange_counts_elements_returned_and_missing() {
    let mut three = b"*3\r\n".to_vec();
    for _ in 0..3 {
        three.extend_from_slice(b"$3\r\nxyz\r\n");
    }
    assert_eq!(
        outcome(OpKind::Lrange100, &three),
        Outcome::Keys {
            hits: 3,
            misses: 97
        }
    );
    assert_eq!(
        outcome(OpKind::Lrange600, b"*0\r\n"),
        Outcome::Keys {
            hits: 0,
            misses: 600
        }
    );
    let lrange_of = |n: usize| {
        let mut reply = format!("*{n}\r\n").into_bytes();
        reply.extend_from_slice(&b"$1\r\nv\r\n".repeat(n));
        Resp.parse(OpKind::Lrange100, &reply)
            .unwrap()
            .unwrap()
            .outcome
    };
    assert_eq!(
        lrange_of(100),
        Outcome::Keys {
            hits: 100,
            misses: 0
        }
    );
    assert_eq!(lrange_of(101), Outcome::Unexpected);
    assert_eq!(outcome(OpKind::Lrange100, b":3\r\n"), Outcome::Unexpected);
}

#[test]
fn errors_are_server_errors_for_every_operation() {
    let wrongtype = b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    for op in OpKind::ALL {
        match outcome(op, wrongtype) {
            Outcome::ServerError(r) => assert!(wrongtype[r].starts_with(b"WRONGTYPE")),
            other => panic!("{op}: {other:?}"),
        }
    }
}

#[test]
fn bitcount_answers_an_integer() {
    assert_eq!(outcome(OpKind::Bitcount, b":524288\r\n"), Outcome::Ok);
    assert_eq!(
        outcome(OpKind::Bitcount, b"$1\r\nx\r\n"),
        Outcome::Unexpected
    );
    assert!(OpKind::Bitcount.resp_only() && OpKind::Lpush.resp_only());
    assert!(!OpKind::Get.resp_only());
}
