//! RESP encoding and reply classification of the collection operations, as redis-benchmark
//! sends them: `LPUSH mylist VALUE`, `SADD myset element:000000000042`, `HSET myhash
//! element:… VALUE`, `ZADD myzset 000000000042 element:…`, `LRANGE mylist 0 99`, … Elements
//! are `element:` and 12 zero-padded digits and a ZADD's score is the element's number, the
//! bytes redis-benchmark `-r` writes over its `__rand_int__` placeholders. BITCOUNT (a plain
//! key's read with an integer reply) is encoded and classified here too.

use super::{bulk, err, Outcome, ProtocolError};
use crate::protocol::{OpKind, Request};

/// An argument after the key.
enum Arg {
    /// The request's value.
    Value,
    /// `element:N`.
    Element,
    /// N, as ZADD's score.
    Score,
    /// Fixed, already-encoded bulk strings.
    Encoded(&'static [u8]),
}

/// The command's head (`*ARGC`, then the name as a bulk string) and what follows the key.
fn shape(op: OpKind) -> (&'static [u8], &'static [Arg]) {
    match op {
        OpKind::Lpush => (b"*3\r\n$5\r\nLPUSH\r\n", &[Arg::Value]),
        OpKind::Rpush => (b"*3\r\n$5\r\nRPUSH\r\n", &[Arg::Value]),
        OpKind::Lpop => (b"*2\r\n$4\r\nLPOP\r\n", &[]),
        OpKind::Rpop => (b"*2\r\n$4\r\nRPOP\r\n", &[]),
        OpKind::Sadd => (b"*3\r\n$4\r\nSADD\r\n", &[Arg::Element]),
        OpKind::Hset => (b"*4\r\n$4\r\nHSET\r\n", &[Arg::Element, Arg::Value]),
        OpKind::Spop => (b"*2\r\n$4\r\nSPOP\r\n", &[]),
        OpKind::Zadd => (b"*4\r\n$4\r\nZADD\r\n", &[Arg::Score, Arg::Element]),
        OpKind::Zpopmin => (b"*2\r\n$7\r\nZPOPMIN\r\n", &[]),
        OpKind::Lrange100 => (
            b"*4\r\n$6\r\nLRANGE\r\n",
            &[Arg::Encoded(b"$1\r\n0\r\n$2\r\n99\r\n")],
        ),
        OpKind::Lrange600 => (
            b"*4\r\n$6\r\nLRANGE\r\n",
            &[Arg::Encoded(b"$1\r\n0\r\n$3\r\n599\r\n")],
        ),
        OpKind::Bitcount => (b"*2\r\n$8\r\nBITCOUNT\r\n", &[]),
        // Encoded by `Resp::encode` itself (the hot path).
        OpKind::Get => (b"*2\r\n$3\r\nGET\r\n", &[]),
        OpKind::Set => (b"*3\r\n$3\r\nSET\r\n", &[Arg::Value]),
        OpKind::Mget => unreachable!("MGET has a key count, not a shape"),
    }
}

/// Appends the encoding of a collection operation.
pub(super) fn encode(req: &Request<'_>, out: &mut Vec<u8>) {
    let (head, args) = shape(req.op);
    out.extend_from_slice(head);
    bulk(req.key, out);
    for arg in args {
        match arg {
            Arg::Value => bulk(req.value, out),
            Arg::Element => {
                out.extend_from_slice(b"$20\r\nelement:");
                padded(req.element, out);
                out.extend_from_slice(b"\r\n");
            }
            Arg::Score => {
                out.extend_from_slice(b"$12\r\n");
                padded(req.element, out);
                out.extend_from_slice(b"\r\n");
            }
            Arg::Encoded(bytes) => out.extend_from_slice(bytes),
        }
    }
}

/// Digits of an element number (below 10^12: `--elements` is capped there).
const DIGITS: usize = 12;

/// `n`'s last 12 decimal digits, zero-padded, like redis-benchmark's `__rand_int__`.
fn padded(mut n: u64, out: &mut Vec<u8>) {
    let mut digits = [b'0'; DIGITS];
    for d in digits.iter_mut().rev() {
        *d = b'0' + (n % 10) as u8;
        n /= 10;
    }
    out.extend_from_slice(&digits);
}

/// Classifies a complete, non-error reply of `len` bytes to a collection operation (and
/// any reply GET/SET/MGET should not get): pushes and adds answer an integer; pops a bulk
/// string or nil (hit or miss); ZPOPMIN a member and its score, or nothing; LRANGE 0 N-1
/// up to N elements (hits: elements returned, misses: the rest of N).
pub(super) fn outcome(tag: u8, op: OpKind, buf: &[u8]) -> Result<Outcome, ProtocolError> {
    let nil = buf.get(1) == Some(&b'-');
    Ok(match (tag, op) {
        (
            b':',
            OpKind::Lpush
            | OpKind::Rpush
            | OpKind::Sadd
            | OpKind::Hset
            | OpKind::Zadd
            | OpKind::Bitcount,
        ) => Outcome::Ok,
        (b'$' | b'_', OpKind::Lpop | OpKind::Rpop | OpKind::Spop) => {
            if nil || tag == b'_' {
                Outcome::Miss
            } else {
                Outcome::Hit
            }
        }
        (b'_', OpKind::Zpopmin) => Outcome::Miss,
        (b'*', OpKind::Zpopmin) => match array_len(buf, nil)? {
            0 => Outcome::Miss,
            2 => Outcome::Hit,
            _ => Outcome::Unexpected,
        },
        (b'*', OpKind::Lrange100 | OpKind::Lrange600) => {
            let want = u64::from(op.range_len().unwrap_or(0));
            match array_len(buf, nil)? {
                n if n <= want => Outcome::Keys {
                    hits: n as u32,
                    misses: (want - n) as u32,
                },
                _ => Outcome::Unexpected,
            }
        }
        _ => Outcome::Unexpected,
    })
}

/// The element count of the (complete, well-formed) array at the front of `buf`; a nil
/// array counts as empty.
fn array_len(buf: &[u8], nil: bool) -> Result<u64, ProtocolError> {
    if nil {
        return Ok(0);
    }
    let end = super::line_end(buf, 0).ok_or(err("truncated array"))?;
    super::parse_decimal(&buf[1..end - 2]).ok_or(err("bad aggregate length"))
}

#[cfg(test)]
mod tests;
