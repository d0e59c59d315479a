//! The command layer's side of overload protection: each command's class
//! for the shedding order (worked out once from the table), and the check
//! dispatch makes before a command runs (core admission, quotas), and the
//! cheap refusal an overloaded core makes from a command's framing alone.

use std::sync::OnceLock;
use std::time::Duration;

use super::args::Args;
use super::context::{ConnState, ReplyMode};
use super::error::CmdError;
use super::table::{self, CommandDef};
use crate::command_clock::CommandClock;
use crate::overload::{CommandClass, Identity, ThreadOverload};
use crate::thread::ThreadCtx;

/// The class of the command or subcommand with global index `idx`.
#[inline]
fn class_of(idx: usize) -> CommandClass {
    static CLASSES: OnceLock<Vec<CommandClass>> = OnceLock::new();
    let classes = CLASSES.get_or_init(|| (0..).map_while(table::by_index).map(classify).collect());
    classes.get(idx).copied().unwrap_or(CommandClass::Admin)
}

/// Compute: plugin and pipeline calls, scripts and functions. Admin: what
/// an operator or a health check needs while the server sheds (the
/// connection, server, transactions and cluster groups, anything flagged
/// admin or allowed before AUTH, and Pub/Sub's subscriptions). Then writes
/// (and publishes) and reads by their flags.
fn classify(def: &CommandDef) -> CommandClass {
    const COMPUTE: &[&str] = &[
        "plugin|call",
        "pipeline|call",
        "eval",
        "evalsha",
        "eval_ro",
        "evalsha_ro",
        "fcall",
        "fcall_ro",
    ];
    const ADMIN_GROUPS: &[&str] = &["connection", "server", "transactions", "cluster"];
    if COMPUTE.contains(&def.name) {
        CommandClass::Compute
    } else if def.has_flag("admin")
        || def.has_flag("no_auth")
        || ADMIN_GROUPS.contains(&def.group)
        || (def.group == "pubsub" && !def.name.ends_with("publish"))
    {
        CommandClass::Admin
    } else if def.has_flag("write") || def.group == "pubsub" {
        // PUBLISH and SPUBLISH (the rest of Pub/Sub is admin): each fans
        // out to every subscriber, a write's cost.
        CommandClass::Write
    } else {
        CommandClass::Read
    }
}

/// Whether the command may run now; the refusal (`-OVERLOAD ...`) if the
/// core sheds it or a quota is spent. The common answers are inlined:
/// nothing may refuse (admission off, no quotas), an admin command, or a
/// core that is not shedding, has no quota and is between two clock
/// readings (`Admission::admit_unmeasured`). Out of line, the first cost
/// ~50 instructions a command, and the last ~25 (the call and the
/// registers the measured path saves): protection on vs off, GET at
/// pipeline 16, +71 instructions a request.
#[inline(always)]
pub fn check(
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    idx: usize,
    def: &CommandDef,
    args: Args<'_>,
) -> Option<CmdError> {
    let overload = thread.overload.as_mut().filter(|o| o.may_refuse())?;
    let class = class_of(idx);
    if class == CommandClass::Admin || overload.admit_unmeasured(&mut conn.overload) {
        return None;
    }
    check_measured(overload, &thread.command_clock, conn, class, def, args)
}

#[inline(never)]
fn check_measured(
    overload: &mut ThreadOverload,
    clock: &CommandClock,
    conn: &mut ConnState,
    class: CommandClass,
    def: &CommandDef,
    args: Args<'_>,
) -> Option<CmdError> {
    let mut first_key = None;
    if overload.has_prefix_quotas() {
        def.for_each_key(args, |k| {
            first_key.get_or_insert(k);
        });
    }
    // The time this read's earlier commands took is no queueing delay.
    let own = || clock.pass_busy();
    let (client, authed) = (&conn.client, conn.authed);
    let who = || Identity::of(client, authed);
    overload
        .check(&mut conn.overload, who, None, class, first_key, own)
        .err()
        .map(|refusal| CmdError::Text(refusal.text))
}

/// While the core sheds: refuses the command at the start of `input` from
/// its framing (its name, subcommand and argument count; the arguments are
/// skipped, not parsed) when the core layer sheds it. Returns its length
/// when refused, its `-OVERLOAD core ...` line appended to `out` and
/// counted; None to parse and run it as usual, which is also the answer
/// for anything whose reply would not simply be that line (a transaction,
/// a blocked client, CLIENT REPLY OFF, subscribe mode, MONITOR, cluster
/// redirects, an unauthenticated client, an unknown or malformed command).
/// `input_age`: how long the input may have waited in the socket before
/// it was read (after a hold of the connection; zero otherwise).
pub fn shed_from_frame(
    thread: &mut ThreadCtx,
    conn: &mut ConnState,
    input: &[u8],
    max_bulk: usize,
    authed: bool,
    input_age: Duration,
    out: &mut Vec<u8>,
) -> Option<usize> {
    // A mark left by a command that never reached its full check (held by
    // CLIENT PAUSE, refused before admission) is not this command's.
    conn.overload.admitted_at_frame = false;
    // Input read after a hold is judged by its age even once the core no
    // longer sheds (`Admission::shed_stale`).
    let overload = thread
        .overload
        .as_mut()
        .filter(|o| o.shedding() || !input_age.is_zero())?;
    let plain = authed
        && !conn.tx.in_multi
        && conn.blocked.is_none()
        && conn.reply_mode == ReplyMode::On
        && conn.subscriptions == 0
        && !conn.monitor
        && thread.cluster.is_none();
    if !plain {
        return None;
    }
    let frame = citadel_resp::frame::frame(input, max_bulk)?;
    let (mut idx, mut def) = table::lookup(&input[frame.name])?;
    if !def.subcommands.is_empty() {
        (idx, def) = table::lookup_sub(def, &input[frame.second?])?;
    }
    if !def.arity_ok(frame.args) {
        return None;
    }
    let own = thread.command_clock.pass_busy();
    let (client, authed) = (&conn.client, conn.authed);
    let who = || Identity::of(client, authed);
    let class = class_of(idx);
    let shed = overload.shed_early(&mut conn.overload, who, class, input_age, own)?;
    overload.write_shed_line(&shed, out);
    let calls = &thread.stats.calls;
    calls.rejected(idx);
    calls.overload_reply();
    Some(frame.end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_admin_reads_writes_and_calls_are_told_apart() {
        let class = |name: &str| {
            let (idx, def) = table::lookup(name.as_bytes()).unwrap();
            let _ = def;
            class_of(idx)
        };
        for admin in [
            "ping",
            "info",
            "config",
            "client",
            "hello",
            "auth",
            "shutdown",
            "subscribe",
        ] {
            assert_eq!(class(admin), CommandClass::Admin, "{admin}");
        }
        assert_eq!(class("get"), CommandClass::Read);
        assert_eq!(class("lrange"), CommandClass::Read);
        assert_eq!(class("set"), CommandClass::Write);
        assert_eq!(class("publish"), CommandClass::Write);
        assert_eq!(class("eval"), CommandClass::Compute);
        let plugin = table::lookup(b"plugin").unwrap().1;
        let (idx, _) = table::lookup_sub(plugin, b"call").unwrap();
        assert_eq!(class_of(idx), CommandClass::Compute);
    }
}
