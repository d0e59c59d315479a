//! Commands that wait for a plugin. A handler sends a call with
//! [`Ctx::call_plugin`] (or `call_plugin_with` to build the payload in ring
//! memory) and returns without replying; the session then reports
//! `Progress::parked` and the event loop stops feeding the connection. When
//! the reply, an error or the timeout arrives, the loop resumes the session,
//! which runs the handler's continuation (`then`) with the [`Outcome`] to
//! write the reply, and goes on with the pipelined commands that followed.

use std::sync::Arc;

use citadel_proto::Format;

use super::dispatch::Ctx;
use super::error::{reply_error, CmdError, CmdResult};
use super::session::Conn;
use crate::plugin::{CallError, Completion, Outcome, PluginId};
use crate::resp::Reply;
use crate::state::{ServerState, ThreadCtx};

/// Writes the reply of a parked command once its call finished.
pub type ResumeFn = fn(&mut Ctx<'_>, PluginId, Outcome) -> CmdResult;

/// The call a connection waits for.
pub struct Parked {
    pub request: u64,
    pub plugin: PluginId,
    pub then: ResumeFn,
}

impl Ctx<'_> {
    /// Sends `payload` to `plugin` and parks the connection until `then`
    /// runs with the outcome. A call refused at once (ring full, too many
    /// in flight) is an error reply now.
    pub fn call_plugin(
        &mut self,
        plugin: PluginId,
        format: Format,
        payload: &[u8],
        then: ResumeFn,
    ) -> CmdResult {
        self.call_plugin_with(plugin, format, payload.len(), then, |buf| {
            buf.copy_from_slice(payload);
            payload.len()
        })
    }

    /// Like `call_plugin`; `fill` writes at most `max_len` payload bytes
    /// straight into the request ring and returns the length used.
    pub fn call_plugin_with(
        &mut self,
        plugin: PluginId,
        format: Format,
        max_len: usize,
        then: ResumeFn,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> CmdResult {
        let client = &mut self.thread.plugins;
        match client.call_with(plugin, format, max_len, fill) {
            Ok(request) => {
                self.conn.parked = Some(Parked {
                    request,
                    plugin,
                    then,
                });
                Ok(())
            }
            Err(e) => Err(call_error(client.name(plugin), &e)),
        }
    }
}

/// The client's error for a failed call to plugin `name`.
pub fn call_error(name: &str, e: &CallError) -> CmdError {
    CmdError::Text(format!("ERR plugin '{name}' {e}"))
}

/// The loop parked the connection: route the completion to `waker`.
pub fn park(conn: &Conn, thread: &mut ThreadCtx, waker: u64) {
    if let Some(p) = &conn.parked {
        if crate::readthrough::ThreadLoads::is_wait(p.request) {
            thread.loads.attach(p.request, waker);
        } else if !thread.plugins.attach(p.request, waker) {
            tracing::warn!(request = p.request, "parked on a call that is not pending");
        }
    }
}

/// Runs the parked command's continuation with the call's outcome.
pub fn resume(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut Conn,
    done: Completion,
    out: &mut Vec<u8>,
) {
    let Some(parked) = conn.parked.take() else {
        return;
    };
    if parked.request != done.request {
        conn.parked = Some(parked);
        return;
    }
    let resp3 = conn.resp3;
    let mark = out.len();
    let mut ctx = Ctx {
        state,
        thread,
        conn,
        out: Reply::new(out, resp3),
    };
    if let Err(e) = (parked.then)(&mut ctx, parked.plugin, done.outcome) {
        ctx.out.buf.truncate(mark);
        reply_error(&mut ctx.out, &e);
    }
}
