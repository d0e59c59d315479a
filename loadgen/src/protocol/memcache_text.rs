//! memcached text protocol: `get <key>` and `set <key> 0 0 <len>`.

use super::{line_end, parse_decimal, InOrder, OpKind, Outcome, ProtocolError, Reply, Request};

#[derive(Debug, Clone, Copy, Default)]
pub struct MemcacheText;

const fn err(what: &'static str) -> ProtocolError {
    ProtocolError {
        protocol: "memcache",
        what,
    }
}

impl InOrder for MemcacheText {
    fn name(&self) -> &'static str {
        "memcache"
    }

    fn encode(&self, req: &Request<'_>, out: &mut Vec<u8>) {
        match req.op {
            // MGET is RESP only (refused before any request is made).
            OpKind::Get | OpKind::Mget => {
                out.extend_from_slice(b"get ");
                out.extend_from_slice(req.key);
                out.extend_from_slice(b"\r\n");
            }
            OpKind::Set => {
                out.extend_from_slice(b"set ");
                out.extend_from_slice(req.key);
                out.extend_from_slice(b" 0 0 ");
                out.extend_from_slice(itoa::Buffer::new().format(req.value.len()).as_bytes());
                out.extend_from_slice(b"\r\n");
                out.extend_from_slice(req.value);
                out.extend_from_slice(b"\r\n");
            }
            op => super::resp_only(op),
        }
    }

    fn parse(&self, op: OpKind, buf: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        let Some(end) = line_end(buf, 0) else {
            return Ok(None);
        };
        if end < 2 || buf[end - 2] != b'\r' {
            return Err(err("line not terminated by CRLF"));
        }
        let line = &buf[..end - 2];
        if let Some(range) = error_message(line) {
            return Ok(Some(Reply {
                len: end,
                outcome: Outcome::ServerError(range),
            }));
        }
        let outcome = match op {
            OpKind::Set => match line {
                b"STORED" => Outcome::Ok,
                b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" => Outcome::Unexpected,
                _ => return Err(err("unknown reply to set")),
            },
            OpKind::Get | OpKind::Mget if line == b"END" => Outcome::Miss,
            OpKind::Get | OpKind::Mget if line.starts_with(b"VALUE ") => {
                // VALUE <key> <flags> <bytes> [<cas>]
                let bytes = line
                    .split(|&b| b == b' ')
                    .nth(3)
                    .and_then(parse_decimal)
                    .ok_or(err("bad VALUE line"))? as usize;
                let total = end + bytes + 2 + b"END\r\n".len();
                if buf.len() < total {
                    return Ok(None);
                }
                if &buf[total - 7..total] != b"\r\nEND\r\n" {
                    return Err(err("value not followed by END"));
                }
                return Ok(Some(Reply {
                    len: total,
                    outcome: Outcome::Hit,
                }));
            }
            OpKind::Get | OpKind::Mget => return Err(err("unknown reply to get")),
            _ => Outcome::Unexpected,
        };
        Ok(Some(Reply { len: end, outcome }))
    }
}

/// `ERROR`, `CLIENT_ERROR msg` or `SERVER_ERROR msg`: the message range (the whole line).
fn error_message(line: &[u8]) -> Option<std::ops::Range<usize>> {
    (line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR"))
        .then_some(0..line.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let mut out = Vec::new();
        MemcacheText.encode(
            &Request {
                op: OpKind::Set,
                key_ends: &[],
                key: b"k",
                value: b"vv",
                element: 0,
            },
            &mut out,
        );
        MemcacheText.encode(
            &Request {
                op: OpKind::Get,
                key_ends: &[],
                key: b"k",
                value: b"",
                element: 0,
            },
            &mut out,
        );
        assert_eq!(out, b"set k 0 0 2\r\nvv\r\nget k\r\n");
    }

    #[test]
    fn classifies() {
        let p = |op, s: &[u8]| MemcacheText.parse(op, s).unwrap();
        assert_eq!(p(OpKind::Set, b"STORED\r\n").unwrap().outcome, Outcome::Ok);
        assert_eq!(p(OpKind::Get, b"END\r\n").unwrap().outcome, Outcome::Miss);
        let hit = b"VALUE k 0 2\r\nvv\r\nEND\r\n";
        assert_eq!(
            p(OpKind::Get, hit).unwrap(),
            Reply {
                len: hit.len(),
                outcome: Outcome::Hit
            }
        );
        for cut in 0..hit.len() {
            assert_eq!(p(OpKind::Get, &hit[..cut]), None);
        }
        assert_eq!(
            p(OpKind::Set, b"SERVER_ERROR out of memory\r\n")
                .unwrap()
                .outcome,
            Outcome::ServerError(0..26)
        );
        assert!(MemcacheText.parse(OpKind::Get, b"HUH\r\n").is_err());
    }
}
