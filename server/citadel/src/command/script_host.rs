//! The one way a script runs a command (`redis.call` / `redis.pcall`):
//! lookup, Redis's refusals for scripts, then the command's own handler
//! over a nested context whose replies go to the script.

use citadel_resp::Reply;

use super::args::Args;
use super::context::{Ctx, Pending};
use super::error::{reply_error, CmdError};
use super::table::{self, CommandDef};
use crate::command_clock::monotonic_nanos;
use crate::script::{CallArgs, CallRules, Host};

/// Runs `argv` for a script and writes exactly one RESP reply (maybe an
/// error reply) to `out`, in the script's protocol (`rules.resp3`).
/// Returns whether a write command ran (SCRIPT KILL then refuses).
///
/// Refused as Redis refuses them: unknown commands, wrong arity,
/// `noscript` commands (which include everything that could park the
/// connection: PLUGIN CALL, PIPELINE CALL, blocking Pub/Sub), and write
/// commands in read-only scripts. A read-through load a command would
/// wait for (GET of a `[[keyspace]]` key not cached) is not waited for: the
/// script gets an error and the load goes on in the background.
pub fn call(ctx: &mut Ctx<'_>, argv: CallArgs<'_>, rules: &CallRules, out: &mut Vec<u8>) -> bool {
    let mut reply = Reply::new(out, rules.resp3);
    let name = argv.get(0);
    let Some((mut idx, mut def)) = table::lookup(name) else {
        reply.error(b"ERR Unknown Redis command called from script");
        return false;
    };
    let parent_noscript = def.has_flag("noscript");
    if !def.subcommands.is_empty() && argv.len() >= 2 {
        match table::lookup_sub(def, argv.get(1)) {
            Some((i, sub)) => (idx, def) = (i, sub),
            None => {
                reply.error(missing_subcommand(def.name, argv.get(1)));
                return false;
            }
        }
    }
    if !def.arity_ok(argv.len()) {
        reply.error(b"ERR Wrong number of args calling Redis command from script");
        return false;
    }
    if parent_noscript || def.has_flag("noscript") {
        reply.error(b"ERR This Redis command is not allowed from script");
        return false;
    }
    let args = Args::new(argv.buf, argv.spans);
    if blocking_read(def.name, args) {
        let msg = format!(
            "ERR {} command is not allowed with BLOCK option from scripts",
            def.name
        );
        reply.error(msg.as_bytes());
        return false;
    }
    if let Some(refusal) = super::acl_check::refuse_in_script(ctx.state, ctx.conn, idx, def, args) {
        reply.error(refusal);
        return false;
    }
    let write = def.has_flag("write");
    if (write || def.may_replicate()) && rules.read_only {
        reply.error(b"ERR Write commands are not allowed from read-only scripts.");
        return false;
    }
    if let Some(refusal) = cluster_refusal(ctx, def, args) {
        reply.error(refusal);
        return false;
    }
    super::key_events::tag_changes(ctx.state, ctx.thread, idx, def.name, args);
    let mark = reply.buf.len();
    let mut inner = Ctx {
        state: ctx.state,
        thread: &mut *ctx.thread,
        conn: &mut *ctx.conn,
        out: reply,
    };
    let started = monotonic_nanos();
    let mut failed = match (def.handler)(&mut inner, args) {
        Ok(()) => {
            super::blocking::note_written(inner.state, inner.thread, inner.conn.db, def, args);
            false
        }
        Err(e) => {
            inner.out.buf.truncate(mark);
            reply_error(&mut inner.out, &e);
            true
        }
    };
    if let Some(pending) = inner.conn.pending.take() {
        failed = true;
        if let Pending::Loads { wait, .. } = pending {
            inner.thread.loads.take(wait);
        }
        inner.out.buf.truncate(mark);
        inner
            .out
            .error(b"ERR This command would wait for a read-through load, which a script cannot do; retry once the key is loaded");
    }
    if let Some(t) = inner.conn.tracking.as_mut() {
        t.script_read |= def.has_flag("readonly");
    }
    let nanos = monotonic_nanos().saturating_sub(started);
    inner.thread.nested_calls.ran(idx, nanos, failed);
    // After the run, as Redis feeds it: a SELECT's line names the database
    // it selected.
    if inner.state.monitors.active() {
        let (client, db) = (inner.conn.client.id, inner.conn.db);
        super::monitor::feed_script(inner.state, inner.thread, client, db, def, args);
    }
    write
}

/// Redis's refusal of a subcommand this server lacks: its lookup finds no
/// command ("Unknown Redis command"), unless Redis has the subcommand and
/// never lets a script run it.
fn missing_subcommand(command: &str, sub: &[u8]) -> &'static [u8] {
    /// Redis's `noscript` subcommands that are not in the command table.
    const REDIS_NOSCRIPT: &[(&str, &str)] = &[("cluster", "reset")];
    let noscript = REDIS_NOSCRIPT
        .iter()
        .any(|(c, s)| command.eq_ignore_ascii_case(c) && sub.eq_ignore_ascii_case(s.as_bytes()));
    match noscript {
        true => b"ERR This Redis command is not allowed from script",
        false => b"ERR Unknown Redis command called from script",
    }
}

/// In cluster mode, a command a script runs must touch keys of one slot
/// this node serves (the script was routed by its declared keys; one it
/// did not declare may live elsewhere), refused with Redis 7's texts.
fn cluster_refusal(ctx: &mut Ctx<'_>, def: &CommandDef, args: Args<'_>) -> Option<&'static [u8]> {
    let view = ctx.thread.cluster.as_mut()?;
    match super::redirect::check(view, def, args) {
        Ok(()) => None,
        Err(CmdError::CrossSlot) => {
            Some(b"ERR Script attempted to access keys that do not hash to the same slot")
        }
        Err(CmdError::ClusterDown) => Some(b"CLUSTERDOWN The cluster is down"),
        Err(_) => Some(b"ERR Script attempted to access a non local key in a cluster node"),
    }
}

/// The command layer as a script's [`Host`].
pub struct CtxHost<'c, 'a> {
    pub ctx: &'c mut Ctx<'a>,
}

impl Host for CtxHost<'_, '_> {
    fn call(&mut self, argv: CallArgs<'_>, rules: &CallRules, out: &mut Vec<u8>) -> bool {
        call(self.ctx, argv, rules, out)
    }

    fn acl_check(&mut self, argv: CallArgs<'_>) -> Option<bool> {
        let (mut idx, mut def) = table::lookup(argv.get(0))?;
        if !def.subcommands.is_empty() && argv.len() >= 2 {
            (idx, def) = table::lookup_sub(def, argv.get(1))?;
        }
        let args = Args::new(argv.buf, argv.spans);
        let ctx = &mut *self.ctx;
        Some(super::acl_check::allows(
            ctx.state, ctx.conn, idx, def, args,
        ))
    }
}

/// XREAD or XREADGROUP with BLOCK among its options (before STREAMS):
/// Redis refuses them in scripts, where nothing may wait, even when data
/// is there to read.
fn blocking_read(name: &str, args: Args<'_>) -> bool {
    // XREADGROUP's options follow GROUP group consumer (a group named
    // "block" is not the option).
    let options_at = match name {
        "xread" => 1,
        "xreadgroup" => 4,
        _ => return false,
    };
    (options_at..args.len())
        .map(|i| args.get(i))
        .take_while(|a| !a.eq_ignore_ascii_case(b"streams"))
        .any(|a| a.eq_ignore_ascii_case(b"block"))
}
