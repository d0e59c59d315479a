//! Citadel's RPC (`/work/spec/rpc-contract.md`, `citadel_proto::rpc`): each request a frame
//! of a 24-byte header and a FlatBuffers body, replies matched by the header's request id.
//!
//! Encoding reuses one `RequestWriter` per worker thread (its builder keeps its capacity),
//! so a request costs no allocation. With `--batch N` up to N operations share one `Batch`
//! frame whose id is that of its first operation; the server answers with one
//! `BatchReply` whose outcome `i` belongs to request `id + i` (ids of one connection are
//! consecutive). A batch of one is sent as a plain frame.
//!
//! Decoding finds whole frames with `FrameHeader::parse` and classifies them after
//! `decode_reply` has verified the body (cheap for GET/SET: no per-byte walk of values).

use citadel_proto::rpc::{
    decode_reply, schema, Condition, FrameHeader, Method, OpBody, RequestWriter, FLAG_BATCH,
    FLAG_ERROR, FLAG_PARTIAL, HEADER_LEN,
};

use super::{Answer, OpKind, Outcome, Protocol, ProtocolError, Request, Target};

const fn err(what: &'static str) -> ProtocolError {
    ProtocolError {
        protocol: "rpc",
        what,
    }
}

/// The RPC encoder/decoder of one worker thread.
pub struct Rpc {
    writer: RequestWriter,
    /// Operations per frame, at least 1.
    batch: usize,
    /// Operations held back for the frame being built.
    held: usize,
    /// The first held operation, pushed into the batch only once a second one comes
    /// (so that a lone operation goes out as a plain frame).
    first: Option<OpBody>,
    first_id: u64,
}

impl Rpc {
    pub fn new(batch: usize) -> Rpc {
        Rpc {
            writer: RequestWriter::new(),
            batch: batch.max(1),
            held: 0,
            first: None,
            first_id: 0,
        }
    }

    fn build(&mut self, req: &Request<'_>) -> OpBody {
        match req.op {
            // MGET is RESP only (refused before any request is made).
            OpKind::Get | OpKind::Mget => self.writer.get(req.key),
            OpKind::Set => self.writer.set(req.key, req.value, 0, Condition::Always),
            op => super::resp_only(op),
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>, id: u64, op: OpBody) {
        // No deadline (0) and default priority: the load measures the plain path.
        self.writer.finish(out, id, 0, 0, op);
    }
}

// The builder's contents are per frame; a clone starts empty.
impl Clone for Rpc {
    fn clone(&self) -> Rpc {
        Rpc::new(self.batch)
    }
}

/// Classifies a `Reply` or an `Outcome` table (same union accessors): the operation its
/// answer belongs to and the outcome. `$buf` is what an error message's range refers to.
macro_rules! classify {
    ($t:expr, $buf:expr) => {{
        let t = &$t;
        match t.answer_type() {
            schema::Answer::Value => {
                let found = t.answer_as_value().is_some_and(|v| v.found());
                let outcome = if found { Outcome::Hit } else { Outcome::Miss };
                (Some(OpKind::Get), outcome)
            }
            schema::Answer::Done => {
                let applied = t.answer_as_done().is_some_and(|d| d.applied());
                let outcome = if applied {
                    Outcome::Ok
                } else {
                    Outcome::Unexpected
                };
                (Some(OpKind::Set), outcome)
            }
            schema::Answer::Error => {
                let msg = t.answer_as_error().and_then(|e| e.message()).unwrap_or("");
                (None, Outcome::ServerError(range_in($buf, msg.as_bytes())))
            }
            _ => (None, Outcome::Unexpected),
        }
    }};
}

impl Protocol for Rpc {
    fn name(&self) -> &'static str {
        "rpc"
    }

    fn encode(&mut self, id: u64, req: &Request<'_>, out: &mut Vec<u8>) {
        let op = self.build(req);
        if self.batch == 1 {
            return self.finish(out, id, op);
        }
        match self.first {
            None => {
                self.first = Some(op);
                self.first_id = id;
            }
            Some(first) => {
                debug_assert_eq!(id, self.first_id + self.held as u64, "ids not consecutive");
                if self.held == 1 {
                    self.writer.push_op(first);
                }
                self.writer.push_op(op);
            }
        }
        self.held += 1;
        if self.held == self.batch {
            self.flush(out);
        }
    }

    fn flush(&mut self, out: &mut Vec<u8>) {
        let Some(first) = self.first.take() else {
            return;
        };
        let op = if self.held == 1 {
            first
        } else {
            self.writer.batch()
        };
        self.held = 0;
        self.finish(out, self.first_id, op);
    }

    fn parse(
        &self,
        _oldest: OpKind,
        buf: &[u8],
        each: &mut impl FnMut(Answer),
    ) -> Result<Option<usize>, ProtocolError> {
        let Some((header, len)) = FrameHeader::parse(buf).map_err(|_| err("bad frame header"))?
        else {
            return Ok(None);
        };
        if header.has(FLAG_PARTIAL) {
            return Err(err("streamed reply to GET/SET"));
        }
        let reply =
            decode_reply(&header, &buf[HEADER_LEN..len]).map_err(|_| err("malformed body"))?;
        if header.has(FLAG_BATCH) && !header.has(FLAG_ERROR) {
            let outcomes = reply
                .answer_as_batch_reply()
                .and_then(|b| b.outcomes())
                .ok_or(err("batch reply without outcomes"))?;
            for (i, o) in outcomes.iter().enumerate() {
                let (op, outcome) = classify!(o, buf);
                let to = Target::Id(header.id + i as u64);
                each(Answer { to, op, outcome });
            }
        } else {
            let (op, outcome) = classify!(reply, buf);
            // An error names the method it answers; trust the header for the operation.
            let op = op.or(match header.method {
                Method::Get => Some(OpKind::Get),
                Method::Set => Some(OpKind::Set),
                _ => None,
            });
            let to = Target::Id(header.id);
            each(Answer { to, op, outcome });
        }
        Ok(Some(len))
    }
}

/// Where `part` (a slice of `buf`) lies in `buf`.
fn range_in(buf: &[u8], part: &[u8]) -> std::ops::Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(buf.as_ptr() as usize);
    let start = start.min(buf.len());
    start..(start + part.len()).min(buf.len())
}

#[cfg(test)]
mod tests;
