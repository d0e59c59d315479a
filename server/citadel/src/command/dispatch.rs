//! Runs one parsed command: lookup, subcommand resolution, arity and auth
//! checks in Redis's order, then the handler; errors become replies here.
//! What it did ([`Ran`]) feeds the statistics, the slow log and the
//! latency monitor (`observe.rs`), then CLIENT REPLY's mode applies.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::args::Args;
use super::context::{ConnState, Ctx};
use super::error::{reply_error, reply_unknown_command, reply_unknown_subcommand, CmdError};
use super::observe::{self, Ran};
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
    let mark = out.len();
    let ran = execute(state, thread, conn, args, out);
    observe::after(state, thread, conn, args, ran, out, mark);
}

fn execute(
    state: &Arc<ServerState>,
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    args: Args<'_>,
    out: &mut Vec<u8>,
) -> Ran {
    let mut reply = Reply::new(out, conn.resp3);
    let name = args.get(0);
    let Some((mut idx, mut def)) = table::lookup(name) else {
        reply_unknown_command(&mut reply, name, args.from(1).iter());
        return Ran::Unknown;
    };
    if !def.subcommands.is_empty() && args.len() >= 2 {
        match table::lookup_sub(def, args.get(1)) {
            Some(found) => (idx, def) = found,
            None => {
                reply_unknown_subcommand(&mut reply, def.name, args.get(1));
                return Ran::Unknown;
            }
        }
    }
    if !def.arity_ok(args.len()) {
        reply_error(&mut reply, &CmdError::Arity(def.name));
        return Ran::Rejected(idx);
    }
    if !conn.authed && !def.has_flag("no_auth") && state.auth_required() {
        reply_error(&mut reply, &CmdError::NoAuth);
        return Ran::Rejected(idx);
    }
    if let Some(e) = super::pubsub::refuse_in_subscribe_mode(conn, def.name) {
        reply_error(&mut reply, &e);
        return Ran::Rejected(idx);
    }
    conn.client.last_cmd.store(idx as u32, Ordering::Relaxed);
    let mark = reply.buf.len();
    let mut ctx = Ctx {
        state,
        thread,
        conn,
        out: reply,
    };
    let started = Instant::now();
    let result = (def.handler)(&mut ctx, args);
    let nanos = started.elapsed().as_nanos() as u64;
    let failed = result.is_err();
    if let Err(e) = result {
        // A failing handler's partial output never reaches the client.
        ctx.out.buf.truncate(mark);
        reply_error(&mut ctx.out, &e);
    }
    Ran::Executed {
        cmd: idx,
        def,
        nanos,
        failed,
    }
}
