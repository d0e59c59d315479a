//! Proxy mode (`cluster-proxy yes`) for the RPC front door: an operation
//! on another node's slot goes there as the Redis command that does the
//! same (`monitor::command_of`), over proxy mode's forwarder (the peer's
//! pipelined RESP2 link, `crate::forward`), and the request waits on
//! `WaitKey::Forward` like a call: the session reads on, and the RESP
//! reply is turned back into the operation's RPC answer when it comes.

use citadel_proto::rpc::{Body, Method, Op, ReplyWriter};

use super::monitor::command_of;
use super::RpcError;
use crate::command::{proxy_enabled, CmdError};
use crate::forward::reply::{bulk, elements, integer};
use crate::forward::{encode_command, Forwarder, Job, Part, PartResult};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::WaitKey;

/// Forwards `op` to the member whose RESP listener is `resp`, in proxy
/// mode; otherwise the `refusal` (a `Moved`) stands.
pub fn start(
    state: &ServerState,
    thread: &mut ThreadCtx,
    op: &Op<'_>,
    resp: String,
    refusal: RpcError,
) -> Result<WaitKey, RpcError> {
    let Some(forwarder) = state.forwarder.get().filter(|_| proxy_enabled(state)) else {
        return Err(refusal);
    };
    let argv = command_of(op);
    let mut request = Vec::new();
    encode_command(&mut request, argv.len(), argv.iter().map(Vec::as_slice));
    let part = Part {
        addr: resp,
        request,
        replies: 1,
        tracked: None,
    };
    Ok(submit(forwarder, thread, vec![part]))
}

/// Sends `parts` (RESP2 requests) as one job; the request waits on the
/// key returned.
pub fn submit(forwarder: &Forwarder, thread: &mut ThreadCtx, parts: Vec<Part>) -> WaitKey {
    let id = thread.next_forward();
    forwarder.submit(Job {
        thread: thread.index,
        id,
        resp3: false,
        parts,
    });
    WaitKey::Forward(id)
}

/// The RPC answer of a forwarded `method` from its peer's RESP2 reply.
pub fn finished(
    writer: &mut ReplyWriter,
    method: Method,
    mut results: Vec<PartResult>,
) -> Result<Body, RpcError> {
    let Some(result) = results.pop() else {
        return Err(RpcError::Forward("no reply".into()));
    };
    answer(writer, method, &check_reply(result)?)
}

/// The RPC answer of `method` from its peer's RESP2 reply (not an error:
/// see [`check_one`]).
pub fn answer(writer: &mut ReplyWriter, method: Method, reply: &[u8]) -> Result<Body, RpcError> {
    let unexpected = || reply_failed(method);
    let is_ok = reply == b"+OK\r\n";
    Ok(match method {
        Method::Get => writer.value(bulk(reply)),
        Method::Set => writer.done(is_ok),
        Method::MSet if is_ok => writer.done(true),
        Method::Expire => writer.done(integer(reply).ok_or_else(unexpected)? == 1),
        Method::Delete | Method::Exists | Method::Ttl | Method::Incr => {
            writer.int(integer(reply).ok_or_else(unexpected)?)
        }
        Method::MGet => {
            let values = elements(reply).ok_or_else(unexpected)?;
            writer.values(values.into_iter().map(bulk))
        }
        _ => return Err(unexpected()),
    })
}

/// A forwarded part's one reply, unless the part failed or the peer
/// answered an error (then the error the operation would have had here).
pub fn check_reply(result: PartResult) -> Result<Vec<u8>, RpcError> {
    match result {
        Ok(mut replies) if !replies.is_empty() => check_one(replies.swap_remove(0)),
        Ok(_) => Err(RpcError::Forward("no reply".into())),
        Err(e) => Err(RpcError::Forward(e.to_string())),
    }
}

/// One reply, unless the peer answered an error (then the error the
/// operation would have had here).
pub fn check_one(reply: Vec<u8>) -> Result<Vec<u8>, RpcError> {
    match reply.strip_prefix(b"-") {
        Some(text) => Err(peer_error(text)),
        None => Ok(reply),
    }
}

/// A peer's reply that does not fit `method`.
pub fn reply_failed(method: Method) -> RpcError {
    RpcError::Forward(format!(
        "the node's reply does not fit the operation {method:?}"
    ))
}

/// The peer's `-ERR ...` as the error the operation would have had here.
fn peer_error(text: &[u8]) -> RpcError {
    let text = String::from_utf8_lossy(text.strip_suffix(b"\r\n").unwrap_or(text));
    let known = [
        CmdError::NotInteger,
        CmdError::Overflow,
        CmdError::OutOfMemory,
    ];
    let error = known
        .into_iter()
        .find(|e| e.to_string() == text)
        .unwrap_or_else(|| CmdError::Text(text.into_owned()));
    match error {
        CmdError::Text(t) if t.starts_with("MOVED ") || t.starts_with("CLUSTERDOWN") => {
            RpcError::Forward(t)
        }
        e => RpcError::Command(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(method: Method, reply: &[u8]) -> Result<(), RpcError> {
        let mut writer = ReplyWriter::new();
        let results = vec![Ok(vec![reply.to_vec()])];
        finished(&mut writer, method, results).map(|_| ())
    }

    #[test]
    fn resp_replies_become_rpc_answers() {
        assert!(answer(Method::Get, b"$1\r\nv\r\n").is_ok());
        assert!(answer(Method::Get, b"$-1\r\n").is_ok());
        assert!(answer(Method::Incr, b":3\r\n").is_ok());
        assert!(answer(Method::MGet, b"*2\r\n$1\r\na\r\n$-1\r\n").is_ok());
        assert!(matches!(
            answer(Method::Incr, b"+OK\r\n"),
            Err(RpcError::Forward(_))
        ));
        let not_int = CmdError::NotInteger.to_string();
        assert!(matches!(
            answer(Method::Incr, format!("-{not_int}\r\n").as_bytes()),
            Err(RpcError::Command(CmdError::NotInteger))
        ));
    }
}
