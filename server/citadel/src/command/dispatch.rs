//! Runs one parsed command: lookup, subcommand resolution, arity and auth
//! checks in Redis's order, then the handler; errors become replies here.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::args::Args;
use super::context::{ConnState, Ctx};
use super::error::{reply_error, reply_unknown_command, reply_unknown_subcommand, CmdError};
use super::table;
use citadel_resp::Reply;

use crate::state::ServerState;
use crate::thread::ThreadCtx;

pub fn run(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    args: Args<'_>,
    out: &mut Vec<u8>,
) {
    let mut reply = Reply::new(out, conn.resp3);
    let name = args.get(0);
    let Some((mut idx, mut def)) = table::lookup(name) else {
        reply_unknown_command(&mut reply, name, args.from(1).iter());
        return;
    };
    if !def.subcommands.is_empty() && args.len() >= 2 {
        match table::lookup_sub(def, args.get(1)) {
            Some(found) => (idx, def) = found,
            None => {
                reply_unknown_subcommand(&mut reply, def.name, args.get(1));
                return;
            }
        }
    }
    if !def.arity_ok(args.len()) {
        reply_error(&mut reply, &CmdError::Arity(def.name));
        return;
    }
    if !conn.authed && !def.has_flag("no_auth") && state.auth_required() {
        reply_error(&mut reply, &CmdError::NoAuth);
        return;
    }
    if let Some(e) = super::pubsub::refuse_in_subscribe_mode(conn, def.name) {
        reply_error(&mut reply, &e);
        return;
    }
    conn.client.last_cmd.store(idx as u32, Ordering::Relaxed);
    let mark = reply.buf.len();
    let mut ctx = Ctx {
        state,
        thread,
        conn,
        out: reply,
    };
    if let Err(e) = (def.handler)(&mut ctx, args) {
        // A failing handler's partial output never reaches the client.
        ctx.out.buf.truncate(mark);
        reply_error(&mut ctx.out, &e);
    }
}
