//! Proxy mode's replies: how the replies of a forwarded request become
//! the client's reply. A command forwarded whole gets its node's reply
//! byte for byte; a split multi-key command gets its pieces' replies
//! merged in the client's key order. Only data here (no `Ctx`), so the
//! connection's `Pending` can hold it.

use citadel_resp::Reply;

use super::error::CmdError;
use crate::forward::reply::{elements, integer};
use crate::forward::PartResult;

/// How a forwarded request's replies are answered.
pub struct Merge {
    /// The node of each part, in the job's order (for the error text).
    pub addrs: Vec<String>,
    pub how: How,
}

pub enum How {
    /// One command forwarded whole: its reply, as it came.
    Relay,
    /// MULTI, the queue, EXEC forwarded whole: EXEC's reply, as it came.
    Exec,
    /// A multi-key command split per node.
    Split(Split),
}

/// How a split command's pieces combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// MGET: one array, each key's element in the client's order.
    Values,
    /// DEL, EXISTS, UNLINK, TOUCH: the sum of the counts.
    Sum,
    /// MSET: OK when every piece says OK, else the first error.
    AllOk,
}

pub struct Split {
    pub combine: Combine,
    /// How many keys the client named.
    pub keys: usize,
    /// The client's key positions each remote part carries (by part).
    pub parts: Vec<Vec<usize>>,
    /// The local piece: its key positions and its reply, run already.
    pub local: Option<(Vec<usize>, Vec<u8>)>,
}

/// A forwarded request's failure, as the client reads it.
pub fn forward_error(addr: &str, e: &crate::forward::ForwardError) -> CmdError {
    CmdError::Text(format!("CLUSTERDOWN forwarding to node {addr} failed: {e}"))
}

/// Writes the client's reply from the parts' `results`.
pub fn merge(out: &mut Reply<'_>, merge: Merge, results: Vec<PartResult>) -> Result<(), CmdError> {
    let mut replies = Vec::with_capacity(results.len());
    for (addr, result) in merge.addrs.iter().zip(results) {
        replies.push(result.map_err(|e| forward_error(addr, &e))?);
    }
    match merge.how {
        How::Relay | How::Exec => {
            let last = replies.first().and_then(|r| r.last()).ok_or(Missing)?;
            out.buf.extend_from_slice(last);
            Ok(())
        }
        How::Split(split) => {
            let mut pieces: Vec<(&[usize], &[u8])> = Vec::with_capacity(replies.len() + 1);
            if let Some((keys, reply)) = &split.local {
                pieces.push((keys, reply));
            }
            for (keys, reply) in split.parts.iter().zip(&replies) {
                pieces.push((keys, reply.first().ok_or(Missing)?));
            }
            combine(out, &split, &pieces)
        }
    }
}

/// A part came back without its reply (cannot happen: workers read as
/// many replies as each part asks for).
struct Missing;

impl From<Missing> for CmdError {
    fn from(_: Missing) -> CmdError {
        CmdError::Static("ERR internal error: a forwarded reply is missing")
    }
}

fn combine(
    out: &mut Reply<'_>,
    split: &Split,
    pieces: &[(&[usize], &[u8])],
) -> Result<(), CmdError> {
    // A piece's error is the command's (the first, in piece order).
    if let Some((_, err)) = pieces.iter().find(|(_, r)| r.starts_with(b"-")) {
        if err.starts_with(b"-MOVED ") || err.starts_with(b"-CROSSSLOT ") {
            // The node's view of the slots differs from this one's (a
            // membership change under way): Redis's answer to retry later.
            return Err(CmdError::Static(
                "TRYAGAIN Multiple keys request during rehashing of slot",
            ));
        }
        out.buf.extend_from_slice(err);
        return Ok(());
    }
    let unexpected =
        || CmdError::Static("ERR a node's reply to a split command is not as expected");
    match split.combine {
        Combine::Values => {
            let mut values: Vec<&[u8]> = vec![&[]; split.keys];
            for (keys, reply) in pieces {
                let items = elements(reply).ok_or_else(unexpected)?;
                if items.len() != keys.len() {
                    return Err(unexpected());
                }
                for (&pos, item) in keys.iter().zip(items) {
                    values[pos] = item;
                }
            }
            out.array(split.keys);
            for v in values {
                out.buf.extend_from_slice(v);
            }
        }
        Combine::Sum => {
            let mut sum = 0;
            for (_, reply) in pieces {
                sum += integer(reply).ok_or_else(unexpected)?;
            }
            out.int(sum);
        }
        Combine::AllOk => out.ok(),
    }
    Ok(())
}
