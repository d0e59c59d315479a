//! RESP: requests as arrays of bulk strings; replies in RESP2 or RESP3. GET/SET/MGET here;
//! the collection operations in `collections.rs`.

mod collections;

use super::{line_end, parse_decimal, InOrder, OpKind, Outcome, ProtocolError, Reply, Request};

#[derive(Debug, Clone, Copy, Default)]
pub struct Resp;

const fn err(what: &'static str) -> ProtocolError {
    ProtocolError {
        protocol: "resp",
        what,
    }
}

/// Nesting limit for aggregate replies (none is expected for GET/SET; ZPOPMIN's and
/// LRANGE's are flat).
const MAX_DEPTH: usize = 16;

impl InOrder for Resp {
    fn name(&self) -> &'static str {
        "resp"
    }

    fn encode(&self, req: &Request<'_>, out: &mut Vec<u8>) {
        match req.op {
            OpKind::Get => {
                out.extend_from_slice(b"*2\r\n$3\r\nGET\r\n");
                bulk(req.key, out);
            }
            OpKind::Set => {
                out.extend_from_slice(b"*3\r\n$3\r\nSET\r\n");
                bulk(req.key, out);
                bulk(req.value, out);
            }
            OpKind::Mget => {
                out.push(b'*');
                out.extend_from_slice(
                    itoa::Buffer::new()
                        .format(req.key_ends.len() + 1)
                        .as_bytes(),
                );
                out.extend_from_slice(b"\r\n$4\r\nMGET\r\n");
                let mut start = 0;
                for &end in req.key_ends {
                    bulk(&req.key[start..end], out);
                    start = end;
                }
            }
            _ => collections::encode(req, out),
        }
    }

    fn parse(&self, op: OpKind, buf: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        let Some(&tag) = buf.first() else {
            return Ok(None);
        };
        let Some(len) = skip(buf, 0, 0)? else {
            return Ok(None);
        };
        let outcome = match (tag, op) {
            (b'-', _) | (b'!', _) => Outcome::ServerError(error_text(buf, len)),
            (b'$', OpKind::Get) if buf.get(1) == Some(&b'-') => Outcome::Miss,
            (b'_', OpKind::Get) => Outcome::Miss,
            (b'$', OpKind::Get) => Outcome::Hit,
            (b'+', OpKind::Set) => Outcome::Ok,
            (b'*', OpKind::Mget) => count_found(buf, len)?,
            _ => collections::outcome(tag, op, buf)?,
        };
        Ok(Some(Reply { len, outcome }))
    }
}

fn bulk(data: &[u8], out: &mut Vec<u8>) {
    out.push(b'$');
    out.extend_from_slice(itoa::Buffer::new().format(data.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// An MGET array of `len` bytes: how many elements are values and how many
/// nil (a wrong element type makes the whole reply unexpected).
fn count_found(buf: &[u8], len: usize) -> Result<Outcome, ProtocolError> {
    let (mut hits, mut misses) = (0u32, 0u32);
    let mut at = line_end(buf, 0).unwrap_or(len);
    while at < len {
        let next = skip(buf, at, 1)?.ok_or(err("truncated array"))?;
        match (buf[at], buf.get(at + 1)) {
            (b'$', Some(b'-')) | (b'_', _) => misses += 1,
            (b'$', _) => hits += 1,
            _ => return Ok(Outcome::Unexpected),
        }
        at = next;
    }
    Ok(Outcome::Keys { hits, misses })
}

/// The message of an error reply of total length `len`.
fn error_text(buf: &[u8], len: usize) -> std::ops::Range<usize> {
    let first_line_end = line_end(buf, 0).unwrap_or(len);
    if buf[0] == b'-' {
        1..first_line_end.saturating_sub(2)
    } else {
        // Blob error: `!<len>\r\n<msg>\r\n`.
        first_line_end..len.saturating_sub(2)
    }
}

/// End of the element starting at `pos`, `None` if incomplete.
fn skip(buf: &[u8], pos: usize, depth: usize) -> Result<Option<usize>, ProtocolError> {
    if depth > MAX_DEPTH {
        return Err(err("nesting too deep"));
    }
    let Some(&tag) = buf.get(pos) else {
        return Ok(None);
    };
    let Some(end) = line_end(buf, pos) else {
        return Ok(None);
    };
    if end < pos + 3 || buf[end - 2] != b'\r' {
        return Err(err("line not terminated by CRLF"));
    }
    let header = &buf[pos + 1..end - 2];
    match tag {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Ok(Some(end)),
        b'$' | b'!' | b'=' => {
            if header == b"-1" {
                return Ok(Some(end));
            }
            let n = parse_decimal(header).ok_or(err("bad bulk length"))? as usize;
            let total = end + n + 2;
            if buf.len() < total {
                return Ok(None);
            }
            if &buf[total - 2..total] != b"\r\n" {
                return Err(err("bulk string not terminated by CRLF"));
            }
            Ok(Some(total))
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            if header == b"-1" {
                return Ok(Some(end));
            }
            let mut n = parse_decimal(header).ok_or(err("bad aggregate length"))?;
            if matches!(tag, b'%' | b'|') {
                n *= 2;
            }
            let mut at = end;
            for _ in 0..n {
                match skip(buf, at, depth + 1)? {
                    Some(next) => at = next,
                    None => return Ok(None),
                }
            }
            Ok(Some(at))
        }
        _ => Err(err("unknown type byte")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(op: OpKind, s: &[u8]) -> Option<Reply> {
        Resp.parse(op, s).unwrap()
    }

    #[test]
    fn encodes() {
        let mut out = Vec::new();
        Resp.encode(
            &Request {
                op: OpKind::Set,
                key_ends: &[],
                key: b"k1",
                value: b"abc",
                element: 0,
            },
            &mut out,
        );
        Resp.encode(
            &Request {
                op: OpKind::Get,
                key_ends: &[],
                key: b"k1",
                value: b"",
                element: 0,
            },
            &mut out,
        );
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$2\r\nk1\r\n$3\r\nabc\r\n*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n"
        );
    }

    #[test]
    fn classifies() {
        assert_eq!(
            parse(OpKind::Set, b"+OK\r\n").unwrap(),
            Reply {
                len: 5,
                outcome: Outcome::Ok
            }
        );
        assert_eq!(
            parse(OpKind::Get, b"$-1\r\n").unwrap().outcome,
            Outcome::Miss
        );
        assert_eq!(parse(OpKind::Get, b"_\r\n").unwrap().outcome, Outcome::Miss);
        assert_eq!(
            parse(OpKind::Get, b"$3\r\nabc\r\n+OK").unwrap(),
            Reply {
                len: 9,
                outcome: Outcome::Hit
            }
        );
        let e = b"-ERR oom\r\n";
        assert_eq!(
            parse(OpKind::Set, e).unwrap().outcome,
            Outcome::ServerError(1..8)
        );
        assert_eq!(
            parse(OpKind::Get, b"*2\r\n:1\r\n$1\r\nx\r\n").unwrap().len,
            15
        );
        assert_eq!(
            parse(OpKind::Get, b":1\r\n").unwrap().outcome,
            Outcome::Unexpected
        );
    }

    #[test]
    fn mget_encodes_every_key_and_counts_found_ones() {
        let mut out = Vec::new();
        Resp.encode(
            &Request {
                op: OpKind::Mget,
                key_ends: &[2, 4],
                key: b"k1k2",
                value: b"",
                element: 0,
            },
            &mut out,
        );
        assert_eq!(out, b"*3\r\n$4\r\nMGET\r\n$2\r\nk1\r\n$2\r\nk2\r\n");
        let reply = b"*3\r\n$1\r\na\r\n$-1\r\n_\r\n";
        assert_eq!(
            parse(OpKind::Mget, reply).unwrap(),
            Reply {
                len: reply.len(),
                outcome: Outcome::Keys { hits: 1, misses: 2 }
            }
        );
        assert_eq!(
            parse(OpKind::Mget, b"*1\r\n:1\r\n").unwrap().outcome,
            Outcome::Unexpected
        );
    }

    #[test]
    fn incomplete_then_complete() {
        let full = b"$5\r\nhello\r\n";
        for cut in 0..full.len() {
            assert_eq!(parse(OpKind::Get, &full[..cut]), None, "cut at {cut}");
        }
        assert!(parse(OpKind::Get, full).is_some());
    }

    #[test]
    fn rejects_garbage() {
        assert!(Resp.parse(OpKind::Get, b"?what\r\n").is_err());
        assert!(Resp.parse(OpKind::Get, b"$3\r\nabcXY").is_err());
    }
}
