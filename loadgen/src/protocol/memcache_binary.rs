//! memcached binary protocol: 24-byte headers, GET (0x00) and SET (0x01).

use super::{InOrder, OpKind, Outcome, ProtocolError, Reply, Request};

#[derive(Debug, Clone, Copy, Default)]
pub struct MemcacheBinary;

const HEADER: usize = 24;
const REQUEST_MAGIC: u8 = 0x80;
const RESPONSE_MAGIC: u8 = 0x81;
const OP_GET: u8 = 0x00;
const OP_SET: u8 = 0x01;
const STATUS_OK: u16 = 0x0000;
const STATUS_KEY_NOT_FOUND: u16 = 0x0001;
const STATUS_KEY_EXISTS: u16 = 0x0002;
const STATUS_NOT_STORED: u16 = 0x0005;

/// Largest body accepted before declaring the stream corrupt.
const MAX_BODY: usize = 256 << 20;

impl InOrder for MemcacheBinary {
    fn name(&self) -> &'static str {
        "memcache-binary"
    }

    fn encode(&self, req: &Request<'_>, out: &mut Vec<u8>) {
        let (opcode, extras): (u8, &[u8]) = match req.op {
            // MGET is RESP only (refused before any request is made).
            OpKind::Get | OpKind::Mget => (OP_GET, &[]),
            // flags (4 bytes) and expiration (4 bytes), both zero.
            OpKind::Set => (OP_SET, &[0; 8]),
            op => super::resp_only(op),
        };
        let body = extras.len() + req.key.len() + req.value.len();
        out.push(REQUEST_MAGIC);
        out.push(opcode);
        out.extend_from_slice(&(req.key.len() as u16).to_be_bytes());
        out.push(extras.len() as u8);
        out.push(0); // data type
        out.extend_from_slice(&[0, 0]); // vbucket
        out.extend_from_slice(&(body as u32).to_be_bytes());
        out.extend_from_slice(&[0; 4]); // opaque
        out.extend_from_slice(&[0; 8]); // cas
        out.extend_from_slice(extras);
        out.extend_from_slice(req.key);
        out.extend_from_slice(req.value);
    }

    fn parse(&self, op: OpKind, buf: &[u8]) -> Result<Option<Reply>, ProtocolError> {
        if buf.len() < HEADER {
            return Ok(None);
        }
        if buf[0] != RESPONSE_MAGIC {
            return Err(ProtocolError {
                protocol: "memcache-binary",
                what: "bad response magic",
            });
        }
        let status = u16::from_be_bytes([buf[6], buf[7]]);
        let body = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
        if body > MAX_BODY {
            return Err(ProtocolError {
                protocol: "memcache-binary",
                what: "body length too large",
            });
        }
        let len = HEADER + body;
        if buf.len() < len {
            return Ok(None);
        }
        let outcome = match (status, op) {
            (STATUS_OK, OpKind::Get | OpKind::Mget) => Outcome::Hit,
            (STATUS_OK, OpKind::Set) => Outcome::Ok,
            (STATUS_KEY_NOT_FOUND, OpKind::Get | OpKind::Mget) => Outcome::Miss,
            (STATUS_KEY_EXISTS | STATUS_NOT_STORED | STATUS_KEY_NOT_FOUND, OpKind::Set) => {
                Outcome::Unexpected
            }
            // Error bodies carry the message (after any extras and key).
            _ => {
                let skip = usize::from(buf[4]) + usize::from(u16::from_be_bytes([buf[2], buf[3]]));
                Outcome::ServerError((HEADER + skip).min(len)..len)
            }
        };
        Ok(Some(Reply { len, outcome }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &[u8]) -> Vec<u8> {
        let mut r = vec![RESPONSE_MAGIC, 0, 0, 0, 0, 0];
        r.extend_from_slice(&status.to_be_bytes());
        r.extend_from_slice(&(body.len() as u32).to_be_bytes());
        r.extend_from_slice(&[0; 12]);
        r.extend_from_slice(body);
        r
    }

    #[test]
    fn encodes_set() {
        let mut out = Vec::new();
        MemcacheBinary.encode(
            &Request {
                op: OpKind::Set,
                key_ends: &[],
                key: b"ab",
                value: b"xyz",
                element: 0,
            },
            &mut out,
        );
        assert_eq!(out.len(), HEADER + 8 + 2 + 3);
        assert_eq!(&out[..2], &[REQUEST_MAGIC, OP_SET]);
        assert_eq!(&out[8..12], &13u32.to_be_bytes());
    }

    #[test]
    fn classifies() {
        let p = |op, r: &[u8]| MemcacheBinary.parse(op, r).unwrap().unwrap().outcome;
        assert_eq!(p(OpKind::Get, &response(0, b"\0\0\0\0val")), Outcome::Hit);
        assert_eq!(p(OpKind::Get, &response(1, b"Not found")), Outcome::Miss);
        assert_eq!(p(OpKind::Set, &response(0, b"")), Outcome::Ok);
        assert_eq!(
            p(OpKind::Set, &response(0x82, b"oom")),
            Outcome::ServerError(24..27)
        );
        let r = response(0, b"abc");
        assert_eq!(MemcacheBinary.parse(OpKind::Get, &r[..25]).unwrap(), None);
    }
}
