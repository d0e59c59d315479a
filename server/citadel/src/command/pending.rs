//! Commands that wait. A handler that cannot answer at once (it called a
//! plugin, or must load keys through read-through) records a [`Pending`]
//! on the connection and returns without replying; the session then
//! reports `Progress::parked`, the event loop stops feeding the connection
//! and parks it on [`Pending::key`]. When the operation's
//! [`Completion`] arrives, the loop resumes the session, which runs the
//! matching continuation here to write the reply, then goes on with the
//! pipelined commands that followed.
//!
//! A new kind of wait is a variant of `context::Pending` with its
//! continuation here, and in `crate::wait` (its key and completion).

use std::sync::Arc;

use citadel_proto::Format;
use citadel_resp::Reply;

use super::context::{ConnState, Ctx, Pending, ResumeFn};
use super::error::{reply_error, CmdError, CmdResult};
use crate::plugin::{CallError, PluginId};
use crate::state::ServerState;
use crate::thread::ThreadCtx;
use crate::wait::{Caller, Completion};

impl Ctx<'_> {
    /// Sends `payload` to `plugin` and parks the connection until `then`
    /// runs with the outcome. A call refused at once (ring full, too many
    /// in flight) is an error reply now. `key`: the key the call is about
    /// (it stays on one version of the plugin).
    pub fn call_plugin(
        &mut self,
        plugin: PluginId,
        format: Format,
        key: Option<&[u8]>,
        payload: &[u8],
        then: ResumeFn,
    ) -> CmdResult {
        self.call_plugin_with(plugin, format, key, payload.len(), then, |buf| {
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
        key: Option<&[u8]>,
        max_len: usize,
        then: ResumeFn,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> CmdResult {
        let client = &mut self.thread.plugins;
        match client.call_with(Caller::Client, plugin, format, key, max_len, fill) {
            Ok(request) => {
                self.conn.pending = Some(Pending::Plugin {
                    request,
                    plugin,
                    then,
                });
                Ok(())
            }
            Err(e) => {
                let error = call_error(client.name(plugin), &e);
                if let Some(reason) = e.shed_reason() {
                    self.thread
                        .count_downstream(reason, self.conn.overload.priority);
                }
                Err(error)
            }
        }
    }
}

/// The client's error for a failed call to plugin `name`.
pub fn call_error(name: &str, e: &CallError) -> CmdError {
    CmdError::Text(format!("{} plugin '{name}' {e}", e.reply_prefix()))
}

/// Runs the parked command's continuation with its completion.
pub fn resume(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    done: Completion,
    out: &mut Vec<u8>,
) {
    if done.is_partial() {
        // RESP answers a pipeline call whole (it never asks to stream).
        return;
    }
    let Some(pending) = conn.pending.take() else {
        tracing::warn!("a completion for a connection that waits for nothing");
        return;
    };
    if pending.key() != done.key() {
        tracing::error!(waits = ?pending.key(), got = ?done.key(), "completion for another wait");
        conn.pending = Some(pending);
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
    let result = match (pending, done) {
        (Pending::Plugin { then, plugin, .. }, Completion::Plugin { outcome, .. }) => {
            then(&mut ctx, plugin, outcome)
        }
        (Pending::Loads { plan, .. }, Completion::Loads { results, .. }) => {
            super::loading::render(&mut ctx, *plan, results)
        }
        (Pending::Pipeline { .. }, Completion::Pipeline { result, .. }) => {
            super::pipeline::done(&mut ctx, result)
        }
        (Pending::Forward { plan, .. }, Completion::Forward { results, .. }) => {
            super::proxy_merge::merge(&mut ctx.out, *plan, results)
        }
        (Pending::Handoff { wait, .. }, Completion::Forward { results, .. }) => {
            super::handoff::settle(&mut ctx, *wait, results)
        }
        (Pending::Migrate { plan, .. }, Completion::Migrate { outcome, .. }) => {
            super::migrate::finish(&mut ctx, *plan, outcome)
        }
        // Nothing to write: the held command runs from the buffered input.
        (Pending::Paused { .. }, Completion::Unpaused { .. }) => {
            ctx.state.introspect.pause.release_one();
            Ok(())
        }
        // Likewise: the blocked command runs again and looks at its keys.
        (Pending::Blocked { .. }, Completion::Unblocked { .. }) => Ok(()),
        _ => Err(CmdError::Static(
            "ERR internal error: mismatched completion",
        )),
    };
    if let Err(e) = result {
        ctx.out.buf.truncate(mark);
        reply_error(&mut ctx.out, &e);
    }
}
